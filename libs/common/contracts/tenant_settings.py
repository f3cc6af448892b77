"""Per-tenant configuration: one :class:`TenantSettings` document that every service reads.

The gateway's admin routes and ``spm tenants settings set`` validate and version it when it is
written; ingest, attribution and metrics read it through one cache
(:class:`libs.common.tenant_settings_store.TenantSettingsCache`) and drop their copy when a
``settings-changed`` event says so. The defaults live here and nowhere else.

A document stored by other means (SQL by hand) that does not validate raises
:class:`InvalidTenantSettings` for that tenant only: ingest answers it 503 naming the setting,
consumers send that tenant's messages to the DLQ with the same message.

These are contracts, not rules: the rules that use them live in each service's domain.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from libs.common.contracts.activities import TenantId
from libs.common.contracts.fields import SafeStr, StrictBool, StrictFloat, StrictInt
from libs.common.contracts.retention import RetentionSettings

#: A rep's own baseline looks back over this many periods.
TRAILING_BASELINE_PERIODS = 8


class ScoredActivity(StrEnum):
    """An activity kind and outcome that carries a weight, and the counter that counts it."""

    CALL_DIALLED = "call.dialled"
    CALL_CONNECTED = "call.connected"
    CALL_CONVERSATION = "call.conversation"
    EMAIL_SENT = "email.sent"
    EMAIL_RECEIVED = "email.received"
    MEETING_BOOKED = "meeting.booked"
    MEETING_HELD = "meeting.held"
    MEETING_CANCELLED = "meeting.cancelled"
    MEETING_NO_SHOW = "meeting.no_show"


Weight = Annotated[StrictFloat, Field(ge=0.0, le=1_000.0, allow_inf_nan=False)]


class RecencyDecay(BaseModel):
    """Halve a day's weight every ``half_life_days``; days ``window_days`` or more old weigh nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: StrictInt = Field(ge=1, le=3_660)
    half_life_days: StrictFloat = Field(gt=0.0, le=3_660.0, allow_inf_nan=False)


class ScoringModel(BaseModel):
    """A tenant's versioned scoring weights. A new version means rescoring, never a silent change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: StrictInt = Field(ge=1)
    #: Missing activities weigh nothing.
    activity_weights: dict[ScoredActivity, Weight] = Field(default_factory=dict)
    #: Added per inbound email with an external participant, on top of ``email.received``.
    buyer_response_bonus: Weight = 0.0
    #: Added per held meeting with an external attendee, on top of ``meeting.held``.
    external_meeting_bonus: Weight = 0.0
    decay: RecencyDecay | None = None


DEFAULT_SCORING_MODEL = ScoringModel(
    version=1,
    activity_weights={
        ScoredActivity.CALL_DIALLED: 1.0,
        ScoredActivity.CALL_CONNECTED: 2.0,
        ScoredActivity.CALL_CONVERSATION: 3.0,
        ScoredActivity.EMAIL_SENT: 1.0,
        ScoredActivity.EMAIL_RECEIVED: 0.5,
        ScoredActivity.MEETING_BOOKED: 5.0,
        ScoredActivity.MEETING_HELD: 3.0,
        ScoredActivity.MEETING_CANCELLED: 0.0,
        ScoredActivity.MEETING_NO_SHOW: 0.0,
    },
    buyer_response_bonus=2.0,
    external_meeting_bonus=5.0,
)


class InsightThresholds(BaseModel):
    """A tenant's insight thresholds; the defaults suit a team of SDRs reviewed weekly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: At risk when the score is below this share of the team median...
    at_risk_share_of_team_median: StrictFloat = Field(default=0.5, gt=0.0, le=1.0)
    #: ...in each of this many consecutive periods (the evaluated one and those before it).
    at_risk_consecutive_periods: StrictInt = Field(default=2, ge=1, le=12)
    #: Or at risk when the score is more than this fraction below the rep's own baseline.
    at_risk_drop_against_baseline: StrictFloat = Field(default=0.3, gt=0.0, lt=1.0)
    #: Or at risk when the activity count is below this share of the rep's own baseline count.
    at_risk_low_volume_share: StrictFloat = Field(default=0.5, gt=0.0, lt=1.0)
    #: A baseline needs at least this many of the trailing 8 periods with data.
    min_baseline_periods: StrictInt = Field(default=4, ge=1, le=TRAILING_BASELINE_PERIODS)
    #: Team comparisons (median, bright spots) need at least this many reps with data.
    min_team_size: StrictInt = Field(default=3, ge=2, le=1_000)
    #: An open deal without any counted activity for this many days is stale.
    stale_after_days: StrictInt = Field(default=14, ge=1, le=365)
    #: An open deal whose engaged external contacts number 1..this is single-threaded...
    single_threaded_max_contacts: StrictInt = Field(default=1, ge=1, le=10)
    #: ...once it is at least this old (every deal starts with one contact).
    single_threaded_min_deal_age_days: StrictInt = Field(default=14, ge=0, le=365)
    #: An open deal without an inbound buyer email for this many days has gone quiet.
    no_buyer_reply_days: StrictInt = Field(default=21, ge=1, le=365)
    bright_spot_top_n: StrictInt = Field(default=3, ge=1, le=50)
    #: A bright spot's value is strictly above the team median and at least this many times it.
    bright_spot_min_ratio_to_median: StrictFloat = Field(default=1.5, ge=1.0, le=100.0)
    #: A bright spot's value is at least this (minimum data: one lucky meeting is not a pattern).
    bright_spot_min_value: StrictInt = Field(default=2, ge=1, le=100_000)
    #: At risk when, in the week in progress, a rep is below this share of the goal due so far.
    goal_at_risk_pace: StrictFloat = Field(default=0.6, gt=0.0, le=1.0)


#: The version of the :class:`TenantSettings` document; additive changes only within a version.
SETTINGS_SCHEMA_VERSION: Literal[1] = 1


class InvalidTenantSettings(ValueError):
    """A tenant's stored settings do not validate: permanent for that tenant until an admin fixes them.

    ``settings`` names the offending settings as dotted paths (``privacy.excluded_domain``).
    A consumer treats it as a permanent error for that tenant's messages only.
    """

    def __init__(self, tenant_id: str, settings: tuple[str, ...], reasons: tuple[str, ...] = ()) -> None:
        self.tenant_id = tenant_id
        self.settings = settings
        self.reasons = reasons
        detail = "; ".join(
            f"{name}: {reason}" if reason else name
            for name, reason in zip(settings, reasons or ("",) * len(settings), strict=True)
        )
        super().__init__(f"tenant {tenant_id!r} has invalid settings: {detail}")

    @classmethod
    def from_validation(cls, tenant_id: str, exc: ValidationError) -> InvalidTenantSettings:
        names, reasons = [], []
        for error in exc.errors():
            names.append(".".join(str(part) for part in error["loc"]) or "(document)")
            reasons.append(str(error["msg"]))
        return cls(tenant_id, tuple(names), tuple(reasons))


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


#: A host of a Twilio SIP Domain: ``<name>.sip.twilio.com``, or the same domain at an edge
#: location (``acme.sip.us1.twilio.com``).
_TWILIO_SIP_HOST = re.compile(r"\A(?P<name>.+?)\.sip(?:\.[a-z0-9-]+)?\.twilio\.com\Z")


def twilio_sip_domain(host: str) -> str | None:
    """The Twilio SIP Domain ``host`` belongs to, as the Twilio console names it
    (``acme.sip.us1.twilio.com`` -> ``acme.sip.twilio.com``; case ignored), else None."""
    match = _TWILIO_SIP_HOST.match(host.strip().lower())
    return None if match is None else f"{match['name']}.sip.twilio.com"


def twilio_sip_identity(identity: str) -> str:
    """A softphone's SIP address with its host read as its Twilio SIP Domain
    (``ana@acme.sip.us1.twilio.com`` -> ``ana@acme.sip.twilio.com``, the ``rep_aliases`` key the
    docs name); any other identity as it is."""
    user, at, host = identity.rpartition("@")
    if not at or ".sip." not in host.lower():
        return identity
    domain = twilio_sip_domain(host)
    return identity if domain is None else f"{user}@{domain}"


def _twilio_sip_domains(values: Iterable[str]) -> tuple[str, ...]:
    """Each a Twilio SIP Domain as the console names it (an edge location's host is its
    domain), repeats and blanks dropped; anything else refused."""
    cleaned: dict[str, None] = {}
    for value in values:
        if not value.strip():
            continue
        domain = twilio_sip_domain(value)
        if domain is None or not _DOMAIN.match(domain):
            raise ValueError(
                f"{value!r} is not a Twilio SIP domain: write it as the Twilio console lists it, "
                "<name>.sip.twilio.com"
            )
        cleaned[domain] = None
    return tuple(cleaned)


def _domains(values: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased, ``@`` stripped, blanks dropped, de-duplicated; a value that is not a domain is refused."""
    cleaned: dict[str, None] = {}
    for value in values:
        domain = value.strip().lower().lstrip("@")
        if not domain:
            continue
        if not _DOMAIN.match(domain):
            raise ValueError(f"{value!r} is not a domain name")
        cleaned[domain] = None
    return tuple(cleaned)


class PrivacySettings(BaseModel):
    """What ingest drops or strips before anything is published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Addresses and phone numbers whose activities are never ingested.
    # SafeStr: jsonb cannot store a NUL, which made the PATCH a 500 instead of a 422.
    excluded_addresses: tuple[Annotated[SafeStr, Field(min_length=1, max_length=320)], ...] = Field(
        default=(), max_length=10_000
    )
    excluded_domains: tuple[str, ...] = Field(default=(), max_length=10_000)
    excluded_subject_keywords: tuple[Annotated[SafeStr, Field(min_length=1, max_length=200)], ...] = Field(
        default=(), max_length=1_000
    )
    #: Subjects are personal data and rarely needed for scoring: stripped unless the tenant opts in.
    keep_subjects: StrictBool = False
    #: Drop activities whose participants are all internal.
    drop_internal_only: StrictBool = False

    @field_validator("excluded_domains")
    @classmethod
    def _valid_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _domains(value)


class AmbiguityPolicy(StrEnum):
    #: Keep the best deal and list the close runners-up as secondaries.
    PRIMARY_WITH_SECONDARIES = "primary_with_secondaries"
    #: Assert a deal only when it is clearly the one; otherwise leave the deal empty.
    UNIQUE_ONLY = "unique_only"


class AttributionPolicySettings(BaseModel):
    """How attribution decides between deals, and how long undecided activities wait (parking)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ambiguity_policy: AmbiguityPolicy = AmbiguityPolicy.PRIMARY_WITH_SECONDARIES
    #: An activity up to this many days before a deal's creation still counts (first calls).
    grace_days_before_created: StrictInt = Field(default=14, ge=0, le=365)
    #: An activity up to this many days after a deal's close still counts (paperwork, thanks).
    grace_days_after_closed: StrictInt = Field(default=14, ge=0, le=365)
    #: Tenant additions to the maintained list of free-mail and personal domains.
    extra_personal_domains: tuple[str, ...] = Field(default=(), max_length=10_000)
    #: Below this confidence a deal is not asserted: the activity stays ``account_only``.
    min_confidence: StrictFloat = Field(default=0.35, ge=0.0, le=1.0, allow_inf_nan=False)
    #: How long an undecided activity is parked, waiting for CRM data, before re-matching stops.
    park_days: StrictInt = Field(default=30, ge=1, le=365)

    @field_validator("extra_personal_domains")
    @classmethod
    def _valid_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _domains(value)


class MetricRules(BaseModel):
    """Metric definitions a tenant may tune."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A connected call at least this long counts as a conversation.
    conversation_min_seconds: StrictInt = Field(default=60, ge=0, le=86_400)


@functools.cache
def _zone_countries() -> dict[str, str]:
    """IANA zone -> ISO 3166 country, from the ``zone.tab`` of the system's time-zone database."""
    for root in zoneinfo.TZPATH:
        table = Path(root) / "zone.tab"
        if table.is_file():
            countries: dict[str, str] = {}
            for line in table.read_text().splitlines():
                if line and not line.startswith("#"):
                    fields = line.split("\t")
                    if len(fields) >= 3:
                        countries[fields[2]] = fields[0]
            return countries
    return {}


def country_of_zone(time_zone: str) -> str | None:
    """The country a time zone belongs to (``Europe/Paris`` -> ``FR``); None for ``UTC`` and the like."""
    return _zone_countries().get(time_zone)


RepId = Annotated[SafeStr, Field(min_length=1, max_length=256)]

#: A phone system's extension as its notifications name it: RingCentral's ``extensionId`` (a
#: number of up to 20 digits, ``"62944090001"``) or the short number dialled to reach it
#: (``"101"``), digits only.
_EXTENSION = re.compile(r"^[0-9]{1,20}$")

#: The phone region when neither the tenant nor its time zone names a country.
FALLBACK_PHONE_REGION = "US"

#: Per-group routes and CLI keys: a group is one nested object, or a set of top-level fields.
NESTED_GROUPS = ("privacy", "attribution", "metrics", "insight_thresholds", "retention")
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "calendar": ("time_zone", "fiscal_year_start_month"),
    "organization": (
        "internal_domains",
        "default_phone_region",
        "salesforce_organization_id",
        "rep_aliases",
        "menu_extensions",
        "twilio_sip_domains",
    ),
}
#: Settings that are references to documents versioned elsewhere: shown, never written here.
READ_ONLY = ("scoring_model_version",)
#: Settings a release added, stored only when set to something other than their default
#: (:meth:`TenantSettings.stored`). The previous release's model refuses unknown keys
#: (``extra="forbid"``), so a document that names none of them stays readable by it while a
#: deploy rolls and after a rollback: only a tenant that uses the new setting needs the new
#: release. A key may leave this set only in the release after the one that added it, once no
#: replica of a release without it runs and none is kept to roll back to (docs/operations.md,
#: "Upgrades"). Add here every top-level setting a release adds.
OMITTED_AT_DEFAULT: frozenset[str] = frozenset({"menu_extensions", "twilio_sip_domains"})


class TenantSettings(BaseModel):
    """Everything a tenant configures, with its defaults. Unknown keys are refused.

    ``time_zone`` and ``fiscal_year_start_month`` are stored in ``tenants`` columns, the
    insight thresholds in the versioned ``insight_thresholds`` table, the rest in
    ``tenants.settings``; :mod:`libs.common.tenant_settings_store` assembles the document.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SETTINGS_SCHEMA_VERSION
    #: IANA zone in which activities are bucketed into days, weeks, months and quarters.
    time_zone: str = "UTC"
    #: The month (1..12) the fiscal year starts; quarters follow from it.
    fiscal_year_start_month: StrictInt = Field(default=1, ge=1, le=12)
    #: The tenant's own e-mail domains; when unset, the domains of its reps' addresses.
    internal_domains: tuple[str, ...] | None = Field(default=None, max_length=1_000)
    #: ISO 3166 region for phone numbers written without a country code; when unset, the
    #: country of ``time_zone`` (``US`` when the zone has none, e.g. ``UTC``).
    default_phone_region: str | None = None
    #: Reps known under another id in some source, ``{source rep id: rep id}`` (e.g. a dialer's
    #: user id ``"7701"`` -> ``"rep-a"``): attribution treats them as one person.
    rep_aliases: dict[RepId, RepId] = Field(default_factory=dict, max_length=10_000)
    #: The phone system's extensions that answer for nobody: IVR menus (auto-receptionists),
    #: call queues, announcements. A call only these answered is not connected; talk starts when
    #: a person answers (RingCentral ``extensionId`` values, or extension numbers).
    menu_extensions: tuple[str, ...] = Field(default=(), max_length=1_000)
    #: The tenant's own Twilio SIP Domains (``acme.sip.twilio.com``): a softphone registered on
    #: one is one of its people, its SIP user kept for ``rep_aliases`` mapped later. Empty: any
    #: ``*.sip.twilio.com`` host counts as the tenant's (docs/webhooks.md, Twilio).
    twilio_sip_domains: tuple[str, ...] = Field(default=(), max_length=100)
    #: The Salesforce org whose outbound messages this tenant accepts.
    salesforce_organization_id: str | None = Field(
        default=None, pattern=r"^00D[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?$"
    )
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    attribution: AttributionPolicySettings = Field(default_factory=AttributionPolicySettings)
    metrics: MetricRules = Field(default_factory=MetricRules)
    insight_thresholds: InsightThresholds = Field(default_factory=InsightThresholds)
    #: How long activities and raw captures are kept (docs/operations.md, "Data protection").
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    #: The scoring model in use (``/v1/scoring-model`` versions it); None: the default model.
    scoring_model_version: StrictInt | None = Field(default=None, ge=1)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @field_validator("internal_domains")
    @classmethod
    def _valid_domains(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _domains(value)

    @field_validator("twilio_sip_domains")
    @classmethod
    def _valid_twilio_sip_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _twilio_sip_domains(value)

    @field_validator("menu_extensions", mode="before")
    @classmethod
    def _extensions(cls, value: Any, info: ValidationInfo) -> Any:
        """Digits only (blanks stripped, repeats dropped), none mapped to a rep: a menu answers
        for nobody, so an extension cannot be both (``rep_aliases`` is validated first)."""
        if not isinstance(value, list | tuple):
            return value
        cleaned: dict[str, None] = {}
        aliases = info.data.get("rep_aliases") or {}
        for entry in value:
            if not isinstance(entry, str):
                raise ValueError(f'{entry!r} is not a string: write an extension as text, "62944090001"')
            extension = entry.strip()
            if not _EXTENSION.match(extension):
                raise ValueError(
                    f"{entry!r} is not an extension id or number: 1 to 20 digits (a phone number "
                    "with + or spaces is not an extension)"
                )
            if extension in aliases:
                raise ValueError(
                    f"{extension!r} is mapped to a rep in rep_aliases ({aliases[extension]!r}): "
                    "a menu answers for nobody, so list it in one of the two"
                )
            cleaned[extension] = None
        return tuple(cleaned)

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a phone region (ISO 3166 alpha-2, e.g. US, GB, FR)")
        return region

    @property
    def phone_region(self) -> str:
        """The region to read national phone numbers in."""
        return self.default_phone_region or country_of_zone(self.time_zone) or FALLBACK_PHONE_REGION

    def stored(self) -> dict[str, Any]:
        """The document to store: every setting as JSON but those of ``OMITTED_AT_DEFAULT``
        left at their default, which the previous release would refuse."""
        document = self.model_dump(mode="json")
        for name in OMITTED_AT_DEFAULT:
            if getattr(self, name) == TenantSettings.model_fields[name].get_default(
                call_default_factory=True
            ):
                document.pop(name, None)
        return document

    def group(self, name: str) -> dict[str, Any]:
        """One group as JSON: a nested object, or the top-level fields of a field group."""
        document = self.model_dump(mode="json")
        if name in NESTED_GROUPS:
            value: dict[str, Any] = document[name]
            return value
        return {field: document[field] for field in FIELD_GROUPS[name]}


DEFAULT_TENANT_SETTINGS = TenantSettings()


def merge_patch(document: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch: objects merge, ``null`` removes a key (back to its default)."""
    merged = dict(document)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_tenant_settings(tenant_id: str, document: dict[str, Any]) -> TenantSettings:
    """Validate a stored document; :class:`InvalidTenantSettings` names what is wrong."""
    try:
        return TenantSettings.model_validate(document)
    except ValidationError as exc:
        raise InvalidTenantSettings.from_validation(tenant_id, exc) from None


class SettingsChangedV1(BaseModel):
    """Event ``settings-changed``: a tenant's settings got a new version; drop cached copies now.

    Every process of every service reads this topic (without a consumer group) and forgets its
    copy of the tenant's settings, so a change applies within seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    #: The version in ``tenant_settings_history``.
    version: StrictInt = Field(ge=1)
    #: Top-level settings whose value changed (``time_zone``, ``privacy``, ...).
    changed: tuple[str, ...] = ()
    changed_by: str
    changed_at: datetime
