"""Response and request bodies of the v1 API: ``*Read`` for one object, ``*Page`` for a cursor page."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from pydantic_core import PydanticCustomError

from libs.common.contracts.crm import Relationship
from libs.common.contracts.fields import SafeStr, SafeText, check_line
from libs.common.contracts.goals import GoalAttainment
from libs.common.jobs import JobStatus
from libs.common.jwt_revocations import JwtRevocation
from libs.common.tenancy import WebhookSecretInfo


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


class LeaderboardMetric(StrEnum):
    """``score`` or any counter of the rollups."""

    SCORE = "score"
    ACTIVITIES = "activities"
    DIALS = "dials"
    CONNECTS = "connects"
    CONVERSATIONS = "conversations"
    TALK_SECONDS = "talk_seconds"
    EMAILS_SENT = "emails_sent"
    EMAILS_RECEIVED = "emails_received"
    BUYER_REPLIES = "buyer_replies"
    MEETINGS_BOOKED = "meetings_booked"
    MEETINGS_HELD = "meetings_held"
    MEETINGS_CANCELLED = "meetings_cancelled"
    MEETINGS_NO_SHOW = "meetings_no_show"
    INTERNAL_MEETINGS_HELD = "internal_meetings_held"


#: Counter columns of ``metric_rollups`` (and of ``metric_contributions``), in display order.
COUNTERS = tuple(m.value for m in LeaderboardMetric if m is not LeaderboardMetric.SCORE)


class InsightKind(StrEnum):
    AT_RISK_REP = "at_risk_rep"
    STALE_DEAL = "stale_deal"
    BRIGHT_SPOT = "bright_spot"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class RepRead(BaseModel):
    model_config = _examples(
        {
            "rep_id": "rep-1",
            "name": "Ana Adams",
            "active": True,
            "manager_id": None,
            "role": "SDR",
            "team_ids": ["team-east"],
            "phones": ["+14155550900"],
            "phone_extensions": ["+14155550900;ext=101"],
        }
    )

    rep_id: str
    name: str
    active: bool
    manager_id: str | None
    #: The rep's job role as the CRM names it; role goals apply to the reps holding it.
    role: str | None
    #: Teams the rep belongs to today.
    team_ids: list[str]
    #: The rep's phones as E.164 (a line shared with colleagues included).
    phones: list[str]
    #: The phones listed with an extension, keyed ``+14155550900;ext=101`` (the line is in ``phones``).
    phone_extensions: list[str]


class RepPage(BaseModel):
    items: list[RepRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class TeamRead(BaseModel):
    model_config = _examples(
        {"team_id": "team-east", "name": "East", "parent_id": None, "member_ids": ["rep-1", "rep-2"]}
    )

    team_id: str
    name: str
    parent_id: str | None
    #: Reps on the team today.
    member_ids: list[str]


class TeamPage(BaseModel):
    items: list[TeamRead]
    next_cursor: str | None


class GoalAttainmentRead(GoalAttainment):
    """A rep against one goal in one period, as the metrics service last measured it."""

    metric: str
    goal_id: str


class GoalRead(BaseModel):
    goal_id: str
    scope: str
    subject_id: str | None
    role: str | None
    period: str
    metric: str
    target: float
    updated_at: datetime
    updated_by: str


class GoalList(BaseModel):
    items: list[GoalRead]


class PeriodScoreRead(BaseModel):
    model_config = _examples(
        {
            "period_start": "2026-11-02",
            "score": 8.0,
            "counts": {"activities": 3, "dials": 2, "connects": 1},
            "team_percentile": 75.0,
            "baseline_score": 6.5,
            "change_vs_baseline": 0.2308,
        }
    )

    period_start: date
    score: float
    counts: dict[str, int]
    #: Percentile of the rep within its team for the period (null for teams and when not computed).
    team_percentile: float | None = None
    baseline_score: float | None = None
    #: Relative change against the baseline: 0.25 is 25 % above it.
    change_vs_baseline: float | None = None
    #: The rep's goals measured in this period (the current and the last complete one); empty for teams.
    goals: list[GoalAttainmentRead] = []
    #: The recency-decayed score as of today, on the current period when the scoring model has a
    #: ``decay`` (docs/metrics.md, "Recency decay"); null otherwise.
    recency_score: float | None = None


class RepScoresRead(BaseModel):
    rep_id: str
    granularity: Granularity
    periods: list[PeriodScoreRead]


class TeamScoresRead(BaseModel):
    team_id: str
    granularity: Granularity
    periods: list[PeriodScoreRead]


class CalendarPeriodRead(BaseModel):
    """Local days ``start`` (inclusive) to ``end`` (exclusive) of one period."""

    start: date
    end: date
    #: ``2026-W48``, ``2026-11``, ``FY2027-Q1`` (fiscal years named by the year they end in).
    label: str
    #: Today (in the tenant's time zone) falls inside it: its figures are still growing.
    in_progress: bool


class PeriodsRead(BaseModel):
    model_config = _examples(
        {
            "granularity": "week",
            "time_zone": "Europe/Paris",
            "today": "2026-12-02",
            "period": {"start": "2026-11-23", "end": "2026-11-30", "label": "2026-W48", "in_progress": False},
            "previous": {
                "start": "2026-11-16",
                "end": "2026-11-23",
                "label": "2026-W47",
                "in_progress": False,
            },
            "next": {"start": "2026-11-30", "end": "2026-12-07", "label": "2026-W49", "in_progress": True},
            "current": {"start": "2026-11-30", "end": "2026-12-07", "label": "2026-W49", "in_progress": True},
            "last_complete": {
                "start": "2026-11-23",
                "end": "2026-11-30",
                "label": "2026-W48",
                "in_progress": False,
            },
        }
    )

    granularity: Granularity
    #: The tenant's IANA time zone, in which days (and so every period) are counted.
    time_zone: str
    today: date
    period: CalendarPeriodRead
    previous: CalendarPeriodRead
    #: Null when ``period`` is the period in progress.
    next: CalendarPeriodRead | None
    current: CalendarPeriodRead
    last_complete: CalendarPeriodRead


class LeaderboardEntryRead(BaseModel):
    rank: int
    rep_id: str
    name: str
    value: float
    score: float
    #: Counted activities in the period: 0 for a silent member.
    activities: int = 0
    team_percentile: float | None
    change_vs_baseline: float | None
    #: Too few trailing periods with data for a baseline (a new rep); null until computed.
    insufficient_data: bool | None = None
    #: The rep's goal on the ranked metric for this period, when one applies and was measured.
    goal: GoalAttainmentRead | None = None
    #: The recency-decayed score as of today (current period, a model with ``decay``); else null.
    recency_score: float | None = None


class LeaderboardRead(BaseModel):
    model_config = _examples(
        {
            "granularity": "week",
            "period_start": "2026-11-02",
            "metric": "score",
            "team_id": "team-east",
            "entries": [
                {
                    "rank": 1,
                    "rep_id": "rep-1",
                    "name": "Ana Adams",
                    "value": 42.5,
                    "score": 42.5,
                    "activities": 31,
                    "team_percentile": 100.0,
                    "change_vs_baseline": 0.12,
                    "insufficient_data": False,
                }
            ],
        }
    )

    granularity: Granularity
    #: The period shown; null when the tenant has no data at or before the date.
    period_start: date | None
    metric: LeaderboardMetric
    team_id: str | None
    entries: list[LeaderboardEntryRead]


class FunnelStepRead(BaseModel):
    step: str
    count: int
    #: This step over the previous one; null for the first step and on a zero denominator.
    ratio_to_previous: float | None


class LeadingIndicatorsRead(BaseModel):
    """Early signals of the range (docs/metrics.md, "Leading indicators")."""

    activities: int
    emails_sent: int
    buyer_replies: int
    opportunities_created: int
    #: Sum of the CRM amounts of the distinct deals the work in the range engaged.
    pipeline_amount_touched: float
    #: Buyer emails answered in their thread by an outbound email, and the median delay.
    buyer_emails_answered: int
    buyer_response_median_seconds: float | None


class FunnelRead(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "rep_id": "rep-1",
                    "team_id": None,
                    "from": "2026-11-01",
                    "to": "2026-11-28",
                    "steps": [
                        {"step": "dials", "count": 120, "ratio_to_previous": None},
                        {"step": "connects", "count": 30, "ratio_to_previous": 0.25},
                    ],
                    "dials_per_deal_won": 60.0,
                }
            ]
        },
    )

    rep_id: str | None
    team_id: str | None
    from_: date = Field(alias="from")
    to: date
    steps: list[FunnelStepRead]
    dials_per_deal_won: float | None
    #: Effort per result (docs/metrics.md, "Funnel"); null on a zero denominator.
    ratios: dict[str, float | None] = {}
    leading_indicators: LeadingIndicatorsRead | None = None


class InsightRead(BaseModel):
    model_config = _examples(
        {
            "kind": "stale_deal",
            "subject_id": "deal-7",
            "subject_name": "Acme renewal",
            "team_id": "team-east",
            "period_start": None,
            "reasons": ["no_recent_activity"],
            "details": {"days_quiet": 19},
            "computed_at": "2026-11-24T05:00:00Z",
        }
    )

    kind: InsightKind
    subject_id: str
    subject_name: str
    team_id: str | None
    period_start: date | None
    reasons: list[str]
    details: dict[str, Any]
    computed_at: datetime


class InsightList(BaseModel):
    kind: InsightKind
    items: list[InsightRead]


class AttributionRead(BaseModel):
    model_config = _examples(
        {
            "status": "attributed",
            "version": 2,
            "deal_id": "deal-1",
            "secondary_deal_ids": [],
            "account_id": "acc-1",
            "rep_id": "rep-1",
            "team_id": "team-east",
            "confidence": 0.92,
            "rule_path": "contact_role",
            "runners_up": [{"deal_id": "deal-2", "score": 0.4}],
            "is_override": False,
            "decided_at": "2026-11-02T16:00:01Z",
            "explanation": {"rule_path": "contact_role", "steps": []},
        }
    )

    status: str
    version: int
    deal_id: str | None
    #: Close runners-up of an ``ambiguous`` activity (``primary_with_secondaries``); else empty.
    secondary_deal_ids: list[str]
    account_id: str | None
    rep_id: str | None
    team_id: str | None
    confidence: float
    rule_path: str | None
    runners_up: list[dict[str, Any]]
    is_override: bool
    decided_at: datetime
    explanation: dict[str, Any]
    #: A second report of a call another source reported first: that activity's id. Attributed
    #: as usual, not counted in metrics (docs/metrics.md, "One call, several sources").
    duplicate_of: uuid.UUID | None = None


class AttributionVersionRead(BaseModel):
    version: int
    status: str
    deal_id: str | None
    account_id: str | None
    rep_id: str | None
    team_id: str | None
    confidence: float
    is_override: bool
    decided_at: datetime


class ActivitySummaryRead(BaseModel):
    """One row of a list or timeline: the activity and the headline of its attribution."""

    activity_id: uuid.UUID
    source: str
    kind: str
    direction: str
    outcome: str
    occurred_at: datetime
    duration_seconds: int
    status: str | None
    rep_id: str | None
    team_id: str | None
    account_id: str | None
    deal_id: str | None
    #: Close runners-up of an ``ambiguous`` activity (``primary_with_secondaries``); else empty.
    secondary_deal_ids: list[str]
    confidence: float | None
    rule_path: str | None
    runners_up: list[dict[str, Any]]
    is_override: bool
    #: The chosen deal's matching score, comparable with the runners-up's (null when not scored).
    deal_score: float | None = None
    #: The report of the same call this one duplicates (not counted in metrics), if any.
    duplicate_of: uuid.UUID | None = None


class ActivityPage(BaseModel):
    items: list[ActivitySummaryRead]
    next_cursor: str | None


class PendingOverrideRead(BaseModel):
    deal_id: str | None
    rep_id: str | None
    account_id: str | None
    set_by: str
    set_at: datetime
    reason: str | None


class ActivityRead(BaseModel):
    activity_id: uuid.UUID
    payload: dict[str, Any]
    attribution: AttributionRead | None
    history: list[AttributionVersionRead]
    #: The manual override on record, if any (applied as a sticky version by attribution).
    override: PendingOverrideRead | None


class DealRead(BaseModel):
    deal_id: str
    name: str
    account_id: str | None
    owner_rep_id: str | None
    stage: str
    amount: float | None
    is_closed: bool
    is_won: bool
    created_at: datetime
    closed_at: datetime | None


class DealPage(BaseModel):
    items: list[DealRead]
    next_cursor: str | None


class AccountRead(BaseModel):
    model_config = _examples(
        {
            "account_id": "acc-1",
            "name": "Buyer Inc",
            "domains": ["buyer.example"],
            "updated_at": "2026-11-01T00:00:00Z",
            "relationship": "partner",
            "account_type": "Channel Partner / Reseller",
        }
    )

    account_id: str
    name: str
    domains: list[str]
    #: The CRM's ``updated_at`` of the version the system holds.
    updated_at: datetime
    #: What the account is to the tenant (``customer``, ``prospect``, ``partner``, ``vendor``,
    #: ``other``): sent, or read from ``account_type``. Null when the CRM states neither (an
    #: untyped account is no partner). A partner's deal yields to its customer's in attribution.
    relationship: Relationship | None = None
    #: The account's type as the CRM holds it (``Channel Partner / Reseller``), as sent; null if none.
    account_type: str | None = None


class AccountPage(BaseModel):
    items: list[AccountRead]
    next_cursor: str | None


class ContactRead(BaseModel):
    contact_id: str
    name: str
    emails: list[str]
    phones: list[str]
    #: The phones listed with an extension, keyed ``+14155550100;ext=12`` (the line is in ``phones``).
    phone_extensions: list[str]
    account_id: str | None
    updated_at: datetime


class ContactPage(BaseModel):
    items: list[ContactRead]
    next_cursor: str | None


class PipelineStageRead(BaseModel):
    #: ``ingest`` (accepted), ``attribution`` (decided), ``metrics`` (counted in the rollups).
    stage: str
    #: Activities this stage has handled for the tenant (its latest revision or version).
    processed: int
    #: Activities that reached the stage before and wait for it (0: caught up).
    pending: int
    #: Age of the oldest waiting activity; 0 when none waits.
    oldest_pending_seconds: float
    latest_at: datetime | None


class CrmCountsRead(BaseModel):
    reps: int
    teams: int
    accounts: int
    contacts: int
    deals: int
    #: The newest CRM ``updated_at`` the system holds.
    latest_updated_at: datetime | None


class PipelineStatusRead(BaseModel):
    """How far the tenant's data has got: poll until ``up_to_date`` after a sync."""

    as_of: datetime
    #: Nothing waits in any stage and the read models (scores, insights) include everything counted.
    up_to_date: bool
    stages: list[PipelineStageRead]
    #: Scores and insights were last recomputed then; ``read_models_dirty_since`` is set while a
    #: recomputation is due.
    read_models_refreshed_at: datetime | None
    read_models_dirty_since: datetime | None
    #: Settings jobs that rewrite the tenant's figures (rollup rebuilds, re-attributions that are not
    #: dry runs, recredits, phone re-reads, ``rematch`` jobs finishing a deal change's window) queued,
    #: running or waiting to be retried: ``up_to_date`` waits for them.
    settings_jobs_pending: int = 0
    #: ``rematch`` jobs that failed after their retries (kept 14 days): part of a deal change's
    #: window may be decided as before it; ``spm reattribute`` over the window finishes it.
    rematch_jobs_failed: int = 0
    crm: CrmCountsRead


class DealSummaryRead(BaseModel):
    """The deal's engagement, by the definition the stale-deal insight uses (docs/metrics.md)."""

    activities: int
    last_activity_at: datetime | None
    engaged_contact_ids: list[str]
    buyer_replies: int
    last_buyer_reply_at: datetime | None = None


class DealTimelinePage(BaseModel):
    deal: DealRead
    summary: DealSummaryRead
    items: list[ActivitySummaryRead]
    next_cursor: str | None


class AttributionOverrideCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"deal_id": "deal-2", "reason": "call was about the renewal"}]},
    )

    deal_id: SafeStr | None = Field(default=None, min_length=1, max_length=200)
    rep_id: SafeStr | None = Field(default=None, min_length=1, max_length=200)
    account_id: SafeStr | None = Field(default=None, min_length=1, max_length=200)
    reason: SafeText | None = Field(default=None, max_length=1_000)


class AttributionOverrideRead(PendingOverrideRead):
    activity_id: uuid.UUID
    #: ``pending`` until attribution applies it as a new sticky version.
    state: str = "pending"


class ScoringModelRead(BaseModel):
    version: int
    created_at: datetime | None
    created_by: str
    #: The model itself (``libs.common.contracts.tenant_settings.ScoringModel``).
    model: dict[str, Any]


class InsightThresholdsRead(BaseModel):
    #: 0 means the built-in defaults.
    version: int
    created_at: datetime | None
    created_by: str
    thresholds: dict[str, Any]


class SettingsGroup(StrEnum):
    """A group of settings with its own route (``/v1/settings/{group}``)."""

    CALENDAR = "calendar"
    ORGANIZATION = "organization"
    PRIVACY = "privacy"
    ATTRIBUTION = "attribution"
    METRICS = "metrics"
    INSIGHT_THRESHOLDS = "insight_thresholds"
    RETENTION = "retention"


class SettingsRead(BaseModel):
    """A tenant's settings (``libs.common.contracts.tenant_settings.TenantSettings``) and their version."""

    #: The version in the settings history; 0 when never changed through the API or the CLI.
    version: int
    changed_at: datetime | None
    changed_by: str
    settings: dict[str, Any]
    #: When the stored document does not validate (it was written by hand): what is wrong.
    #: Services refuse that tenant's work until a PUT or PATCH fixes it.
    errors: list[dict[str, Any]] = Field(default_factory=list)
    #: Background work the change started (a rebuild of period rollups), to follow at
    #: ``GET /v1/settings/jobs/{id}``.
    jobs: list[str] = Field(default_factory=list)
    #: What the change saved that deserves a look (``field``, ``reason``): an alias to a rep id
    #: the tenant's CRM data does not hold (yet).
    warnings: list[dict[str, str]] = Field(default_factory=list)


class SettingsGroupRead(BaseModel):
    group: SettingsGroup
    version: int
    changed_at: datetime | None
    changed_by: str
    settings: dict[str, Any]
    jobs: list[str] = Field(default_factory=list)
    warnings: list[dict[str, str]] = Field(default_factory=list)


class SettingsJobRead(JobStatus):
    """Background work a settings change started, with its progress."""

    model_config = _examples(
        {
            "job_id": "7d1f0c52-3f0e-4c43-9a55-0c8f0f7b2d11",
            "kind": "rebuild_rollups",
            "state": "running",
            "done": 3,
            "total": 6,
            "progress": 0.5,
            "parameters": {},
            "settings_version": 4,
            "result": None,
            "error": None,
            "created_by": "spm_admin_1a2b3c4d",
            "created_at": "2026-12-02T09:30:00Z",
            "started_at": "2026-12-02T09:30:01Z",
            "finished_at": None,
            "attempts": 0,
        }
    )

    #: ``done / total`` once the total is known.
    progress: float | None


class ReattributionCreate(BaseModel):
    """Re-attribute ``[since, until)`` under the current settings, or only count what would move."""

    model_config = ConfigDict(extra="forbid")

    since: date
    until: date | None = None
    #: Count what would change and write nothing (run it first: the real run then does exactly that).
    dry_run: bool = True


class SettingsVersionRead(BaseModel):
    version: int
    #: Top-level settings whose value this version changed.
    changed: list[str]
    changed_by: str
    changed_at: datetime
    settings: dict[str, Any]


class SettingsVersionPage(BaseModel):
    items: list[SettingsVersionRead]
    next_cursor: str | None


class WebhookSecretRead(WebhookSecretInfo):
    """A webhook secret, masked, with its validity window."""


class WebhookSecretList(BaseModel):
    items: list[WebhookSecretRead]


class WebhookSecretCreate(BaseModel):
    """A vendor-issued signing secret to register, or none to have one generated."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"secret": "the signing secret the vendor shows", "grace_hours": 24}]
        },
    )

    secret: str | None = Field(default=None, max_length=1_024)
    #: The older secrets of the source stay valid this long, so the vendor is reconfigured without a gap.
    grace_hours: float = Field(default=24.0, ge=0.0, le=720.0, allow_inf_nan=False)


class WebhookSecretCreated(WebhookSecretRead):
    #: Only when the secret was generated: shown once, set it at the vendor now.
    secret: str | None = None
    #: Older secrets of the source that expire at the end of the grace period.
    expiring: int


class JwtRevocationRead(JwtRevocation):
    """A signed-out JWT subject: its tokens issued before `not_before` (or without `iat`) are refused."""


class JwtRevocationList(BaseModel):
    items: list[JwtRevocationRead]


class JwtRevocationCreate(BaseModel):
    """Why the subject is signed out (kept with the revocation and in the audit log)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "left the company"}]}
    )

    reason: SafeStr = Field(default="", max_length=500)


class ProblemRead(BaseModel):
    """An RFC 9457 problem, served as ``application/problem+json``."""

    model_config = _examples(
        {
            "type": "about:blank",
            "title": "Invalid request",
            "status": 422,
            "detail": "query to: must not be before from",
            "instance": "/v1/reps/rep-1/scores",
            "errors": [{"in": "query", "field": "to", "reason": "must not be before from"}],
        }
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    #: For 422: one entry per invalid parameter, with ``in``, ``field`` and ``reason``.
    errors: list[dict[str, Any]] = Field(default_factory=list)


class SessionRead(BaseModel):
    """Who the dashboard is signed in as; the session itself is the httpOnly cookie."""

    tenant_id: str
    #: The API key id or ``jwt:<sub>`` the session was exchanged for.
    subject: str
    scopes: list[str]
    #: When the cookie stops working (a JWT's own expiry may come first); None for a header credential.
    expires_at: datetime | None


class AuditEntryRead(BaseModel):
    """One admin action: who did what to which object, and the state before and after (secrets masked)."""

    model_config = _examples(
        {
            "audit_id": 42,
            "at": "2026-12-02T10:15:00Z",
            "actor": "spm_admin_1a2b3c4d",
            "credential": "api_key",
            "action": "scoring_model.changed",
            "target": "scoring_model",
            "before": {"version": 2},
            "after": {"version": 3},
        }
    )

    audit_id: int
    at: datetime
    #: An API key id, ``jwt:<sub>``, ``session:<id> (<key id or jwt:sub>)`` or ``cli:<user>``.
    actor: str
    #: ``api_key``, ``jwt``, ``session``, ``cli`` or ``system``.
    credential: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    next_cursor: str | None


class ErasureCreate(BaseModel):
    """The person to erase: exactly one of an email address or an E.164 phone number."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "bo@buyer.example"}, {"phone": "+14155550100"}]},
    )

    email: str | None = Field(default=None, min_length=3, max_length=320)
    phone: str | None = Field(default=None, min_length=8, max_length=40)


class _ErasureRequest(BaseModel):
    """What an erasure request is, as ``ErasureRead`` and a subject's export show it."""

    erasure_id: uuid.UUID
    identity_kind: str
    #: ``queued``, ``running``, ``done`` or ``failed`` (POST the same person again to retry).
    state: str
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None


class ErasureRead(_ErasureRequest):
    """An erasure request and its progress; the identity itself is never stored or shown."""

    #: Activities examined so far, of ``total``.
    done: int
    total: int | None
    progress: float | None
    #: activities_deleted, activities_redacted, contacts_deleted, webhook_states_deleted, versions_published.
    counts: dict[str, int]
    error: str | None


class SubjectIdentity(BaseModel):
    #: ``email`` or ``phone``.
    kind: str
    #: As activities store it: an address lower-cased, a phone in E.164 (read in the tenant's region).
    value: str


class SubjectContact(BaseModel):
    """A CRM contact naming the person, as stored."""

    contact_id: str
    name: str
    account_id: str | None
    account_name: str | None
    emails: list[str]
    #: E.164, and each as the CRM sent it (``raw_phones``, same order).
    phones: list[str]
    raw_phones: list[str]
    deleted: bool
    #: ``{"deal_id", "role"}`` each.
    deal_roles: list[dict[str, Any]]
    #: Numbers the record dropped, ``{"phone", "until"}`` each (kept to match calls from before).
    former_phones: list[dict[str, Any]]
    #: Accounts the contact was of before, ``{"account_id", "until"}`` each.
    former_accounts: list[dict[str, Any]]


class SubjectAttribution(BaseModel):
    rep_id: str | None
    deal_id: str | None
    status: str


class SubjectActivity(BaseModel):
    """An activity in which the person is a participant, with its current attribution."""

    activity_id: uuid.UUID
    source: str
    kind: str
    direction: str
    occurred_at: datetime
    subject: str | None
    #: As stored (email, phone, name, role, ...).
    participants: list[dict[str, Any]]
    #: None while attribution has not decided it.
    attribution: SubjectAttribution | None


class SubjectErasure(_ErasureRequest):
    """A past erasure request of the person (the identity itself is not stored)."""

    counts: dict[str, int]


class SubjectMeetingRemoval(BaseModel):
    """A meeting the person removed from her calendar (the meeting no longer lists her)."""

    activity_id: uuid.UUID
    #: Her address as the meeting listed her, her answer then and the meeting's revision.
    address: str
    answer: str | None
    revision: int


class SubjectUndatedDeletion(BaseModel):
    """A calendar deletion read in the person's calendar (her mailbox), kept to order revisions."""

    activity_id: uuid.UUID
    calendar: str
    read_at: datetime


class SubjectWebhookState(BaseModel):
    """A source's folded webhook state (a dialer's call) naming the person, as stored."""

    source: str
    object_key: str
    state: dict[str, Any]


class SubjectExport(BaseModel):
    """GDPR Art. 15: what the tenant holds naming one person (``GET /v1/privacy/subjects/export``)."""

    identity: SubjectIdentity
    contacts: list[SubjectContact]
    #: Oldest first, at most ``limit``; ``next_cursor`` names the next page.
    activities: list[SubjectActivity]
    erasures: list[SubjectErasure]
    meeting_removals: list[SubjectMeetingRemoval]
    undated_deletions: list[SubjectUndatedDeletion]
    webhook_states: list[SubjectWebhookState]
    next_cursor: str | None


class ConnectorMailboxRead(BaseModel):
    """A connected mailbox or calendar (``spm connectors add``); credentials are never shown."""

    mailbox_id: int
    provider: str
    address: str
    health: str = Field(description="ok, pending, backfilling, stale, failing or paused")
    paused: bool
    fetched: int
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    subscription_expires_at: datetime | None


class ConnectorMailboxPage(BaseModel):
    items: list[ConnectorMailboxRead]


_MAILBOX = re.compile(r"^[^@\s]+@[^@\s]+$")


def _mailbox(value: str) -> str:
    """A mailbox's address; refused in words, not as the pattern (before 2026-12 the 422 read
    "String should match pattern '^[^@\\s]+@[^@\\s]+$'")."""
    if not _MAILBOX.match(value):
        raise PydanticCustomError("mailbox", f"{value!r} is not an email address: write it as ana@acme.com")
    return value


class ConnectorCreate(BaseModel):
    """Connect mailboxes (``POST /v1/connectors``), as ``spm connectors add`` does.

    Google (``gmail``, ``google-calendar``): ``service_account`` is the key file's JSON, with
    domain-wide delegation granted. Microsoft: ``directory_tenant_id``, ``client_id`` and
    ``client_secret`` of an app with application permissions. Credentials are stored encrypted
    and never returned.
    """

    model_config = ConfigDict(extra="forbid")

    provider: Literal["gmail", "google-calendar", "microsoft"]
    # check_line: a NUL (which the pattern's [^@\s] lets through) reached the audit row's jsonb,
    # a 500; the other control characters, noncharacters and surrogates are refused with it.
    users: list[
        Annotated[
            str, StringConstraints(max_length=320), AfterValidator(check_line), AfterValidator(_mailbox)
        ]
    ] = Field(min_length=1, max_length=1_000)
    backfill_days: int = Field(default=7, ge=0, le=365)
    service_account: dict[str, Any] | None = None
    pubsub_topic: Annotated[str, AfterValidator(check_line)] | None = Field(
        default=None, pattern=r"^projects/[^/]+/topics/[^/]+$"
    )
    directory_tenant_id: SafeStr | None = Field(default=None, min_length=1, max_length=100)
    client_id: SafeStr | None = Field(default=None, min_length=1, max_length=100)
    client_secret: SecretStr | None = None
    mail: bool = True
    calendar: bool = True


class AlertWebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="http(s) endpoint receiving a POST per insight change")
    #: ``standard``: a Standard Webhooks signed JSON event; ``slack``: a Slack incoming-webhook body.
    format: Literal["standard", "slack"] = "standard"


class AlertWebhookRead(BaseModel):
    webhook_id: str
    url: str
    format: str
    created_at: datetime
    created_by: str


class AlertWebhookCreated(AlertWebhookRead):
    #: ``whsec_...``: verify ``webhook-signature`` with it. Shown once.
    secret: str


class AlertWebhookList(BaseModel):
    items: list[AlertWebhookRead]


class DigestRepRead(BaseModel):
    rep_id: str
    name: str
    team_id: str | None
    score: float
    activities: int
    team_percentile: float | None
    change_vs_baseline: float | None
    insufficient_data: bool | None
    goals: list[GoalAttainmentRead]


class DigestInsightRead(BaseModel):
    subject_id: str
    team_id: str | None
    period_start: date | None
    reasons: list[str]
    details: dict[str, Any]


class WeeklyDigestRead(BaseModel):
    """A manager's week: their reps (direct and indirect) and the current insights about them."""

    manager_id: str
    week_start: date
    reps: list[DigestRepRead]
    at_risk_reps: list[DigestInsightRead]
    bright_spots: list[DigestInsightRead]
    #: Stale deals owned by the manager's reps.
    stale_deals: list[DigestInsightRead]
