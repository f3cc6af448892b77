"""One phone call or email reported by two sources: the second report is marked, never counted twice.

A dialer (Aircall, Twilio) and a CRM's call log (a HubSpot or Salesforce engagement, or canonical
events from two ``source`` names) often report the same call; a mailbox connector (Gmail, Graph)
and a CRM's logged email (HubSpot's BCC logging or Sales extension, a Salesforce EmailMessage)
the same email. Both are attributed as usual, and both activity ids stay readable; but the
report attributed second is marked ``duplicate_of`` the first, and metrics counts the call
(dials, connects, talk time, score) or the email once, under the first.

Two reports are one activity (:func:`same_activity`) when they are of the same kind and tenant,
credited to the same rep (after one rep per person: a dialer user and a CRM owner of one person
are one rep), from **different** sources, sharing a counterpart (for a call a number in E.164:
the callee of an outbound call, the caller of an inbound one, ingest reads every phone to E.164;
for an email an address: a recipient of an outbound email, the sender of an inbound one), and,
for emails, under the same subject (compared without ``Re:``/``Fwd:`` prefixes, case or extra
spaces; two without a subject are alike), at most :data:`DUPLICATE_TOLERANCE` apart (2 minutes for a call, 1 for an email).
Two calls (or emails) of one source to one counterpart minutes apart are two (a redial is the
source's own business, as a double booking is a calendar's).

Which report is kept (:func:`mark_duplicates`) does not depend on arrival order beyond "who came
first", and does not move once settled:

* a report attributed before (``stored``, not re-decided now) keeps its state: a kept one stays
  kept, a duplicate stays the duplicate of its keeper;
* a report decided now is the duplicate of a stored kept report it matches;
* otherwise the reports decided now are settled in turn (those kept before, then those that were
  duplicates, then new ones in arrival order), each the duplicate of the first kept report that
  precedes it and matches it, else kept.

Among several kept reports a report matches, the one holding no report of its source yet comes
first (two dialer calls a minute apart, each logged by the CRM, pair one to one), then the
nearest in time, then the earliest, then the smallest id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from libs.common.contracts.activities import ActivityKind, Direction, ParticipantRole
from libs.common.contracts.activities_fast import IngestedEvent

#: How far apart two sources may place one call's start (clocks, rounding, ring time) or one
#: email's sending (a mailbox's and a CRM's copy carry the Date header or the time the copy
#: arrived, seconds apart). Tighter for emails: privacy drops subjects by default
#: (``keep_subjects``), and a rep's next email to the same buyer may follow within minutes.
DUPLICATE_TOLERANCE: Mapping[ActivityKind, timedelta] = {
    ActivityKind.CALL: timedelta(minutes=2),
    ActivityKind.EMAIL: timedelta(minutes=1),
}

#: Reply and forward prefixes mail clients add to a subject, in the languages they come in.
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|tr|rv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)

#: Read as a module constant: an enum member read from its class costs about 1,300 instructions
#: in Python 3.11 (``EnumType.__getattr__``'s slot); see ``domain.matching``.
_CALL, _EMAIL = ActivityKind.CALL, ActivityKind.EMAIL
_DEDUPLICATED_KINDS = frozenset({_CALL, _EMAIL})

#: The participants on the other end, by the kind and direction of the activity.
_COUNTERPART_ROLES: Mapping[tuple[ActivityKind, Direction], frozenset[ParticipantRole]] = {
    (ActivityKind.CALL, Direction.OUTBOUND): frozenset({ParticipantRole.CALLEE}),
    (ActivityKind.CALL, Direction.INBOUND): frozenset({ParticipantRole.CALLER}),
    (ActivityKind.EMAIL, Direction.OUTBOUND): frozenset(
        {ParticipantRole.TO, ParticipantRole.CC, ParticipantRole.BCC}
    ),
    (ActivityKind.EMAIL, Direction.INBOUND): frozenset({ParticipantRole.FROM}),
}


class SourceReport(msgspec.Struct, frozen=True):
    """One source's report of a call or email, as the duplicate rule compares it (a frozen
    msgspec struct, as ``AttributionDecision``: one per call or email decided)."""

    activity_id: uuid.UUID
    source: str
    rep_id: str
    #: The counterparts' numbers in E.164 (a call) or lower-cased addresses (an email).
    counterparts: frozenset[str]
    occurred_at: datetime
    #: The report this one duplicates, as stored (None: kept, or never decided).
    duplicate_of: uuid.UUID | None = None
    #: An email's subject as compared (``subject_key``); None for a call.
    subject: str | None = None
    kind: ActivityKind = ActivityKind.CALL


def subject_key(subject: str | None) -> str:
    """An email's subject as two sources' copies of it compare: without reply or forward
    prefixes, case-folded, spaces collapsed; "" when there is none."""
    if not subject:
        return ""
    return " ".join(_SUBJECT_PREFIX.sub("", subject).split()).casefold()


def counterparts(
    kind: ActivityKind | str, direction: Direction | str, participants: Iterable[Any]
) -> frozenset[str]:
    """The identities of the other end: the callee's number of an outbound call, the caller's of
    an inbound one, the recipients' addresses (lower-cased) of an outbound email, the sender's of
    an inbound one; none for anything else. ``participants`` are the activity's, or their stored
    JSON (dicts)."""
    # A member as it is (calling the enum returns it, through two Python-level calls); a stored
    # string as its member.
    kind = kind if type(kind) is ActivityKind else ActivityKind(kind)
    direction = direction if type(direction) is Direction else Direction(direction)
    roles = _COUNTERPART_ROLES.get((kind, direction))
    if roles is None:
        return frozenset()
    is_call = kind is _CALL
    found: set[str] = set()
    for participant in participants:
        if isinstance(participant, dict):
            phone, email, role = participant.get("phone"), participant.get("email"), participant.get("role")
        else:
            phone, email, role = participant.phone, participant.email, participant.role
        identity = phone if is_call else (email.lower() if email else None)
        if identity and role in roles:
            found.add(identity)
    return frozenset(found)


def report_of(activity: IngestedEvent, rep_id: str | None) -> SourceReport | None:
    """The activity as a source's report, or None when it cannot duplicate anything (not a call
    or email, no rep credited, no counterpart)."""
    if rep_id is None or activity.kind not in _DEDUPLICATED_KINDS:
        return None
    found = counterparts(activity.kind, activity.direction, activity.participants)
    if not found:
        return None
    subject = subject_key(activity.subject) if activity.kind is _EMAIL else None
    return SourceReport(
        activity.activity_id,
        activity.source,
        rep_id,
        found,
        activity.occurred_at,
        None,
        subject,
        activity.kind,
    )


def same_activity(one: SourceReport, other: SourceReport) -> bool:
    """Whether two reports are one call or email: same kind and rep, different sources, a shared
    counterpart, the same subject (an email's; a call's is None), at most the kind's
    ``DUPLICATE_TOLERANCE`` apart."""
    return (
        one.activity_id != other.activity_id
        and one.rep_id == other.rep_id
        and one.source != other.source
        and one.kind == other.kind
        and one.subject == other.subject
        and not one.counterparts.isdisjoint(other.counterparts)
        and abs(one.occurred_at - other.occurred_at) <= DUPLICATE_TOLERANCE[one.kind]
    )


def report_windows(
    reports: Iterable[SourceReport],
) -> list[tuple[str, str, datetime, datetime]]:
    """Where another report of these calls and emails can be: ``(rep, counterpart, first, last)``,
    each report's time widened by its kind's tolerance, overlapping ones merged (a batch's calls of one rep to one
    number are one range)."""
    spans: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for report in reports:
        for number in report.counterparts:
            spans.setdefault((report.rep_id, number), []).append(
                (report.occurred_at - (slack := DUPLICATE_TOLERANCE[report.kind]), report.occurred_at + slack)
            )
    windows: list[tuple[str, str, datetime, datetime]] = []
    for (rep_id, number), ranges in sorted(spans.items()):
        ranges.sort()
        first, last = ranges[0]
        for start, end in ranges[1:]:
            if start <= last:
                last = max(last, end)
            else:
                windows.append((rep_id, number, first, last))
                first, last = start, end
        windows.append((rep_id, number, first, last))
    return windows


def mark_duplicates(
    decided: Sequence[SourceReport],
    stored: Sequence[SourceReport],
) -> dict[uuid.UUID, SourceReport | None]:
    """For each report of ``decided`` (in arrival order), the kept report it duplicates, or None
    when it is kept itself. ``stored`` are the reports attributed before, each with the
    ``duplicate_of`` it holds: those not decided now are settled; for those decided now, it says
    how they stood (see the module's rules)."""
    deciding = {report.activity_id for report in decided}
    before = {report.activity_id: report.duplicate_of for report in stored}
    settled = [report for report in stored if report.activity_id not in deciding]
    #: Kept reports by (rep, counterpart number): only those can be the same call.
    kept: dict[tuple[str, str], list[SourceReport]] = {}
    for report in settled:
        if report.duplicate_of is None:
            _keep(kept, report)
    #: (keeper, source) pairs that already hold a duplicate.
    held: set[tuple[uuid.UUID, str]] = {
        (report.duplicate_of, report.source) for report in settled if report.duplicate_of is not None
    }
    rank = {report.activity_id: position for position, report in enumerate(decided)}

    def previous_state(report: SourceReport) -> int:
        """0: kept when last decided; 1: a duplicate then; 2: never decided."""
        if report.activity_id not in before:
            return 2
        return 0 if before[report.activity_id] is None else 1

    result: dict[uuid.UUID, SourceReport | None] = {}
    for report in sorted(decided, key=lambda r: (previous_state(r), rank[r.activity_id])):
        candidates = {c.activity_id: c for n in report.counterparts for c in kept.get((report.rep_id, n), ())}
        keeper = _keeper(report, candidates.values(), held)
        result[report.activity_id] = keeper
        if keeper is None:
            _keep(kept, report)
        else:
            held.add((keeper.activity_id, report.source))
    return result


def _keep(kept: dict[tuple[str, str], list[SourceReport]], report: SourceReport) -> None:
    for number in report.counterparts:
        kept.setdefault((report.rep_id, number), []).append(report)


def _keeper(
    report: SourceReport,
    kept: Iterable[SourceReport],
    held: set[tuple[uuid.UUID, str]],
) -> SourceReport | None:
    # A loop, and the ``min`` apart: their comprehension and lambda made ``report`` and ``held``
    # cells on every call (``performance.md``, nineteenth round). One alone needs no key.
    matching: list[SourceReport] = []
    for candidate in kept:
        if same_activity(report, candidate):
            matching.append(candidate)
    if not matching:
        return None
    if len(matching) == 1:
        return matching[0]
    return _closest(report, matching, held)


def _closest(
    report: SourceReport, matching: list[SourceReport], held: set[tuple[uuid.UUID, str]]
) -> SourceReport:
    return min(
        matching,
        key=lambda c: (
            (c.activity_id, report.source) in held,
            abs(c.occurred_at - report.occurred_at),
            c.occurred_at,
            c.activity_id,
        ),
    )


def duplicate_explanation(report: SourceReport, keeper: SourceReport) -> dict[str, Any]:
    """What the explanation says of a second report of a call or email."""
    is_call = report.kind is ActivityKind.CALL
    shared = "a shared counterpart number" if is_call else "a shared counterpart address, the same subject"
    return {
        "of": str(keeper.activity_id),
        "source": keeper.source,
        "seconds_apart": round(abs((keeper.occurred_at - report.occurred_at).total_seconds()), 3),
        "reason": (
            f"the same {'call' if is_call else 'email'} as the report from {keeper.source} attributed "
            f"first: same rep, {shared}, at most {int(DUPLICATE_TOLERANCE[report.kind].total_seconds())} s apart; "
            "attributed as usual, counted once, under the first report"
        ),
    }
