"""A team membership the CRM edits in place: a move, not a rewrite of history.

The CRM sync carries each membership's current state only. An admin who moves a rep by editing
her membership row (another team on the same id, from the move's day or with its start left as
it was: a CRM exporting only each rep's current team), or by deleting the row, would otherwise
rewrite where her past work was done: the days before the move would read the new team (or
none), and her earlier work would leave the team she earned it on. So attribution keeps the
spell the newer version ends (rules 2026.12.30): the held team, from its start to the move's
day, as a membership of its own (``former_spell_id``), and the new team from that day on.

The move's day is the new version's ``valid_from`` when it starts later than the held one (the
admin dated the move), else the day of the new version's ``updated_at`` in the tenant's time
zone (the CRM says "now"). A version under the same ``updated_at`` is a correction, not a move,
and keeps nothing, as for a contact's account.

A membership record the CRM re-assigns to another rep (its id reused) keeps the held rep's
current spell as hers, to the day it was sent (rules 2026.12.32), and the new rep's starts as
sent: the spells kept of one rep never move another rep's start (``starts_after_spells`` is
given only the same rep's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

#: Joins a membership's id and the first day of a spell it ended (U+001F, as ``team_rep`` ids).
SPELL_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class MembershipVersion:
    """One version of a membership: as attribution holds it (``held``), or the newer one the CRM
    sent of it (``sent``)."""

    rep_id: str
    team_id: str
    valid_from: date
    valid_to: date | None
    updated_at: datetime
    deleted: bool


def former_spell(
    held: MembershipVersion | None, sent: MembershipVersion, sent_on: date
) -> tuple[date, date] | None:
    """``[start, end)`` of the held team's spell to keep when ``sent`` replaces ``held``
    (``sent_on``: the local day of ``sent.updated_at``), or ``None``: nothing was held live, the
    version is not newer (a correction), it keeps the rep and the team, or the spell had not
    started by the move.

    A record the CRM reuses for another rep (rules 2026.12.32) ends the held rep's spell on the day
    it was sent, kept as hers; the new rep's membership starts as sent."""
    if held is None or held.deleted or sent.updated_at <= held.updated_at:
        return None
    if sent.rep_id != held.rep_id:
        end = sent_on
    elif not sent.deleted and sent.team_id == held.team_id:
        return None
    else:
        end = sent.valid_from if not sent.deleted and sent.valid_from > held.valid_from else sent_on
    if held.valid_to is not None:
        end = min(end, held.valid_to)
    return (held.valid_from, end) if end > held.valid_from else None


def former_spell_id(membership_id: str, start: date) -> str:
    """The id a kept spell is held under: the membership's id and the spell's first day."""
    return f"{membership_id}{SPELL_SEPARATOR}{start.isoformat()}"


def starts_after_spells(valid_from: date, valid_to: date | None, spells_end: date | None) -> date:
    """The first day of a membership whose earlier spells (kept when it moved) end on
    ``spells_end``: not before it, so the new team never reaches back over a kept spell; as sent
    when nothing was kept, or when it would leave the membership no day."""
    if spells_end is None or spells_end <= valid_from or (valid_to is not None and valid_to <= spells_end):
        return valid_from
    return spells_end
