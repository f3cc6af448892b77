"""One phone call reported by two sources: the second report is marked, never counted twice.

A dialer (Aircall, Twilio) and a CRM's call log (a HubSpot or Salesforce engagement, or canonical
events from two ``source`` names) often report the same call. Both are attributed as usual, and
both activity ids stay readable; but the report attributed second is marked ``duplicate_of`` the
first, and metrics counts the call (dials, connects, talk time, score) once, under the first.

Two reports are one call (:func:`same_call`) when they are calls of the same tenant credited to
the same rep (after one rep per person: a dialer user and a CRM owner of one person are one rep),
from **different** sources, sharing a counterpart number in E.164 (the callee of an outbound call,
the caller of an inbound one; ingest reads every phone to E.164), starting at most
:data:`CALL_DUPLICATE_TOLERANCE` apart. Two calls of one source to one number minutes apart are
two calls (a redial is the source's own business, as a double booking is a calendar's).

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

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from libs.common.contracts.activities import ActivityKind, Direction, ParticipantRole
from libs.common.contracts.activities_fast import IngestedEvent

#: How far apart two sources may place the start of one call (clocks, rounding, ring time).
CALL_DUPLICATE_TOLERANCE = timedelta(minutes=2)

#: The participant on the other end, by the call's direction.
_COUNTERPART_ROLE: Mapping[Direction, ParticipantRole] = {
    Direction.OUTBOUND: ParticipantRole.CALLEE,
    Direction.INBOUND: ParticipantRole.CALLER,
}


@dataclass(frozen=True, slots=True)
class CallReport:
    """One source's report of a call, as the duplicate rule compares it."""

    activity_id: uuid.UUID
    source: str
    rep_id: str
    #: The counterpart's numbers in E.164.
    counterparts: frozenset[str]
    occurred_at: datetime
    #: The report this one duplicates, as stored (None: kept, or never decided).
    duplicate_of: uuid.UUID | None = None


def counterpart_phones(
    kind: ActivityKind | str, direction: Direction | str, participants: Iterable[Any]
) -> frozenset[str]:
    """The numbers of the call's other end (the callee of an outbound call, the caller of an
    inbound one); none for anything but an inbound or outbound call. ``participants`` are the
    activity's, or their stored JSON (dicts)."""
    if kind != ActivityKind.CALL:
        return frozenset()
    role = _COUNTERPART_ROLE.get(Direction(direction))
    if role is None:
        return frozenset()
    phones: set[str] = set()
    for participant in participants:
        if isinstance(participant, dict):
            phone, participant_role = participant.get("phone"), participant.get("role")
        else:
            phone, participant_role = participant.phone, participant.role
        if phone and participant_role == role:
            phones.add(phone)
    return frozenset(phones)


def report_of(activity: IngestedEvent, rep_id: str | None) -> CallReport | None:
    """The activity as a call report, or None when it cannot duplicate anything (not a call, no
    rep credited, no counterpart number)."""
    if rep_id is None or activity.kind is not ActivityKind.CALL:
        return None
    counterparts = counterpart_phones(activity.kind, activity.direction, activity.participants)
    if not counterparts:
        return None
    return CallReport(activity.activity_id, activity.source, rep_id, counterparts, activity.occurred_at)


def same_call(one: CallReport, other: CallReport, tolerance: timedelta = CALL_DUPLICATE_TOLERANCE) -> bool:
    """Whether two reports are one call: same rep, different sources, a shared counterpart number,
    starts at most ``tolerance`` apart."""
    return (
        one.activity_id != other.activity_id
        and one.rep_id == other.rep_id
        and one.source != other.source
        and not one.counterparts.isdisjoint(other.counterparts)
        and abs(one.occurred_at - other.occurred_at) <= tolerance
    )


def call_windows(
    reports: Iterable[CallReport], tolerance: timedelta = CALL_DUPLICATE_TOLERANCE
) -> list[tuple[str, str, datetime, datetime]]:
    """Where another report of these calls can be: ``(rep, number, first, last)``, each report's
    start widened by ``tolerance``, overlapping ones merged (a batch's calls of one rep to one
    number are one range)."""
    spans: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for report in reports:
        for number in report.counterparts:
            spans.setdefault((report.rep_id, number), []).append(
                (report.occurred_at - tolerance, report.occurred_at + tolerance)
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
    decided: Sequence[CallReport],
    stored: Sequence[CallReport],
    tolerance: timedelta = CALL_DUPLICATE_TOLERANCE,
) -> dict[uuid.UUID, CallReport | None]:
    """For each report of ``decided`` (in arrival order), the kept report it duplicates, or None
    when it is kept itself. ``stored`` are the reports attributed before, each with the
    ``duplicate_of`` it holds: those not decided now are settled; for those decided now, it says
    how they stood (see the module's rules)."""
    deciding = {report.activity_id for report in decided}
    before = {report.activity_id: report.duplicate_of for report in stored}
    settled = [report for report in stored if report.activity_id not in deciding]
    #: Kept reports by (rep, counterpart number): only those can be the same call.
    kept: dict[tuple[str, str], list[CallReport]] = {}
    for report in settled:
        if report.duplicate_of is None:
            _keep(kept, report)
    #: (keeper, source) pairs that already hold a duplicate.
    held: set[tuple[uuid.UUID, str]] = {
        (report.duplicate_of, report.source) for report in settled if report.duplicate_of is not None
    }
    rank = {report.activity_id: position for position, report in enumerate(decided)}

    def previous_state(report: CallReport) -> int:
        """0: kept when last decided; 1: a duplicate then; 2: never decided."""
        if report.activity_id not in before:
            return 2
        return 0 if before[report.activity_id] is None else 1

    result: dict[uuid.UUID, CallReport | None] = {}
    for report in sorted(decided, key=lambda r: (previous_state(r), rank[r.activity_id])):
        candidates = {c.activity_id: c for n in report.counterparts for c in kept.get((report.rep_id, n), ())}
        keeper = _keeper(report, candidates.values(), held, tolerance)
        result[report.activity_id] = keeper
        if keeper is None:
            _keep(kept, report)
        else:
            held.add((keeper.activity_id, report.source))
    return result


def _keep(kept: dict[tuple[str, str], list[CallReport]], report: CallReport) -> None:
    for number in report.counterparts:
        kept.setdefault((report.rep_id, number), []).append(report)


def _keeper(
    report: CallReport,
    kept: Iterable[CallReport],
    held: set[tuple[uuid.UUID, str]],
    tolerance: timedelta,
) -> CallReport | None:
    matching = [candidate for candidate in kept if same_call(report, candidate, tolerance)]
    if not matching:
        return None
    return min(
        matching,
        key=lambda c: (
            (c.activity_id, report.source) in held,
            abs(c.occurred_at - report.occurred_at),
            c.occurred_at,
            c.activity_id,
        ),
    )


def duplicate_explanation(report: CallReport, keeper: CallReport) -> dict[str, Any]:
    """What the explanation says of a second report of a call."""
    return {
        "of": str(keeper.activity_id),
        "source": keeper.source,
        "seconds_apart": round(abs((keeper.occurred_at - report.occurred_at).total_seconds()), 3),
        "reason": (
            f"the same call as the report from {keeper.source} attributed first: same rep, a shared "
            f"counterpart number, starts at most {int(CALL_DUPLICATE_TOLERANCE.total_seconds())} s apart; "
            "attributed as usual, counted once, under the first report"
        ),
    }
