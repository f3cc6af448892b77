"""Which activities a deal change may re-decide: a better candidate has appeared.

When a deal is created or reopened, a contact gains or loses a role on it, or it changes name,
account or dates, every activity of its account(s), of those contacts and of every contact of its
account(s) (whichever account it was decided on: a meeting with buyers of two accounts) inside the
affected window (the deal's life, old and new, widened by the grace windows, and bounded) is re-decided
through the same versioned path, attributed ones included: a new version is published only when
the decision changes, and overrides stay as they are (they are never selected, and
``next_version`` refuses to replace one), but for a rep-only override, whose deal the rules decide:
it is selected, its rep kept. Windows holding more than the consumer's bound are finished by a
``rematch`` job (``windows_as_parameters``).

A contact's new emails and phones (a new contact, or one an address or number was added to) are a
better candidate too (``identity_rematch_window``): mail decided before the CRM knew her (on the
account's other open deal, its owner having written it) may be the deal she holds a role on, or
her account's. Every activity of the last ``DEFAULT_REMATCH_WINDOW_DAYS`` with a participant
holding one of them is re-decided the same way, attributed ones included.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from libs.common.personal_domains import parent_domains
from services.attribution.domain.reference import Deal, TenantAttributionPolicy

#: No re-match reaches further back than this from the end of the window (or from now).
DEFAULT_REMATCH_WINDOW_DAYS = 400


def day_start(day: date, time_zone: str) -> datetime:
    """The instant ``day`` begins in ``time_zone``: a team membership dated from ``day`` (in the
    tenant's time) changes the team of activities from then on, which in UTC may be the evening
    before (``Europe/Berlin``: 23:00 UTC the day before)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RematchWindow:
    """Activities of these accounts, or with a participant who is one of these contacts or a
    contact of these accounts, or who holds one of these ``identities`` (emails and phones as a
    contact's are held, ``mailbox_forms``), with ``since <= occurred_at <= until`` (``until``
    ``None``: up to now) are re-decided."""

    account_ids: frozenset[str]
    contact_ids: frozenset[str]
    since: datetime
    until: datetime | None
    identities: frozenset[str] = frozenset()


def _changed(
    before: Deal | None, after: Deal, left: Collection[str] = ()
) -> tuple[frozenset[str], frozenset[str]]:
    """(accounts, contacts) whose activities the change may move; empty when it moves none."""
    accounts = frozenset(a for a in (after.account_id,) if a)
    if before is None:
        return accounts, after.contact_ids
    reopened = before.is_closed and not after.is_closed
    dates = (before.created_at, before.closed_at) != (after.created_at, after.closed_at)
    moved = before.account_id != after.account_id
    # A role gained or lost (rules 2026.12.14: lost too): mail with a contact who no longer holds
    # a role on the deal was decided by that role, and may now be another deal's or a close call.
    # A role lost by a contact now of another account (``left``: a new job) went with her: her
    # mail from before stays as decided, as for a contact's account change.
    lost = before.contact_ids - after.contact_ids - frozenset(left)
    roles = (after.contact_ids - before.contact_ids) | lost
    # A new name (rules 2026.12.14): a subject naming the deal, or its old name, may decide otherwise.
    renamed = before.name != after.name
    if moved:
        accounts |= frozenset(a for a in (before.account_id,) if a)
    if reopened or dates or moved:
        return accounts, after.contact_ids | before.contact_ids
    if roles or renamed:
        return accounts, roles
    return frozenset(), frozenset()


def deal_rematch_window(
    before: Deal | None,
    after: Deal,
    policy: TenantAttributionPolicy,
    now: datetime,
    max_days: int = DEFAULT_REMATCH_WINDOW_DAYS,
    left: Collection[str] = (),
) -> RematchWindow | None:
    """The window a deal change re-decides, or ``None`` when it cannot change any decision
    (a new stage, amount or role name; a role lost by a contact of ``left``, now of another
    account; a deleted or merged deal is handled by its own rule)."""
    accounts, contacts = _changed(before, after, left)
    if not (accounts or contacts):
        return None
    lives = [after] if before is None else [before, after]
    since = min(d.created_at for d in lives) - timedelta(days=policy.grace_days_before_created)
    ends = [d.closed_at for d in lives]
    until = (
        None
        if any(end is None for end in ends)
        else max(e for e in ends if e is not None) + timedelta(days=policy.grace_days_after_closed)
    )
    floor = (until or now) - timedelta(days=max_days)
    return RematchWindow(accounts, contacts, max(since, floor), until)


def identity_rematch_window(
    identities: Collection[str], now: datetime, max_days: int = DEFAULT_REMATCH_WINDOW_DAYS
) -> RematchWindow | None:
    """The window a contact's new emails and phones re-decide (``None`` when she gained none: a
    re-sent record, a new name or account alone): every activity of the last ``max_days`` with a
    participant holding one of them, whatever it was decided (rules unchanged, issue #14)."""
    if not identities:
        return None
    return RematchWindow(
        frozenset(), frozenset(), now - timedelta(days=max_days), None, frozenset(identities)
    )


def windows_as_parameters(windows: Iterable[RematchWindow]) -> list[dict[str, object]]:
    """``windows`` as a job's JSON parameters (``windows_from_parameters`` reads them back); a
    window of a contact's new identities lists them under ``identities``."""
    return [
        {
            "accounts": sorted(w.account_ids),
            "contacts": sorted(w.contact_ids),
            "since": w.since.isoformat(),
            "until": w.until.isoformat() if w.until else None,
            **({"identities": sorted(w.identities)} if w.identities else {}),
        }
        for w in windows
    ]


def windows_from_parameters(parameters: Iterable[dict[str, object]]) -> list[RematchWindow]:
    """The windows ``windows_as_parameters`` wrote (a job queued before ``identities`` holds none)."""
    return [
        RematchWindow(
            frozenset(str(a) for a in p["accounts"]),  # type: ignore[attr-defined]
            frozenset(str(c) for c in p["contacts"]),  # type: ignore[attr-defined]
            datetime.fromisoformat(str(p["since"])),
            datetime.fromisoformat(str(p["until"])) if p["until"] else None,
            frozenset(str(i) for i in p.get("identities", ())),  # type: ignore[attr-defined]
        )
        for p in parameters
    ]


def merged_windows(windows: Iterable[RematchWindow]) -> list[RematchWindow]:
    """``windows`` with those of the same accounts, contacts and identities that overlap or touch
    made one (a coalesced ``rematch`` job: twenty close-date pushes on one deal are one window), in
    order of (since, accounts, contacts, identities)."""

    def end(w: RematchWindow) -> datetime:
        return w.until or datetime.max.replace(tzinfo=UTC)

    def who(w: RematchWindow) -> tuple[list[str], list[str], list[str]]:
        return sorted(w.account_ids), sorted(w.contact_ids), sorted(w.identities)

    merged: list[RematchWindow] = []
    for window in sorted(set(windows), key=lambda w: (who(w), w.since, end(w))):
        last = merged[-1] if merged else None
        if last is not None and who(last) == who(window) and window.since <= end(last):
            until = None if last.until is None or window.until is None else max(last.until, window.until)
            merged[-1] = replace(last, until=until)
        else:
            merged.append(window)
    return sorted(merged, key=lambda w: (w.since, who(w)))


def narrowing_domains(gained: Iterable[str], held: Collection[str]) -> frozenset[str]:
    """The domains of ``gained`` (an account's new ones) under a domain an account holds
    (``held``): mail from such a domain was the parent's (rules 2026.12.5, the most specific
    domain held decides) and is the new account's now, so it is re-decided, attributed or not."""
    return frozenset(d for d in gained if any(parent in held for parent in parent_domains(d)[1:]))
