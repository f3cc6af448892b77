"""One rep per person: the ids several sources give one seller resolve to one canonical rep.

A seller arrives as a canonical rep (``POST /v1/crm/sync``), a HubSpot owner, a Salesforce
User, a dialer user... each with its own id. Reps that share a verified email (the sign-in
address a CRM or dialer holds for its user), or that the tenant maps explicitly (emails that
differ), are one person. The tenant's mapping (``rep_aliases``) may also name an address no
source lists (``ana-emea@``): that address is the rep's (``mapped_addresses``). The canonical id is chosen by a rule that does not depend on the
order the sources arrive in: the best-ranked source (the tenant's canonical sync, then a CRM,
then a dialer), then the rep the tenant's mapping names as a target, then the smallest id. Every other id becomes an alias: activities and deals
naming it credit the canonical rep and its team.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.common.personal_domains import address_key, untagged

#: Lower ranks win. Sources not listed are the tenant's canonical feed (``api``, a sync job).
SOURCE_RANKS: Mapping[str, int] = {
    "hubspot": 1,
    "salesforce": 1,
    "aircall": 2,
    "twilio": 2,
    "dialer": 2,
}


#: Letters a mail system spells out rather than dropping their mark (NFKD does not decompose
#: them): ``Weiß`` is ``weiss``, ``Søren`` ``soren``.
_SPELLED_OUT = str.maketrans(
    {"ß": "ss", "ẞ": "ss", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe",
     "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "þ": "th", "Þ": "th", "\u0131": "i"}
)  # fmt: skip
#: The German spelling of the umlauts in an address (``Müller`` is ``mueller`` as often as
#: ``muller``).
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "ae", "Ö": "oe", "Ü": "ue"})


def name_aliases(name: str) -> frozenset[str]:
    """The mailbox names a company's naming conventions derive from a person's name: for
    "Ana María López", ``ana.lopez``, ``analopez``, ``a.lopez``, ``alopez``, ``ana_lopez``,
    ``ana-lopez``, ``lopez.ana``. A one-word name derives none (``ana@`` could be anyone).

    Accents are dropped, and letters without one spelled out (``ß`` ``ss``, ``ø`` ``o``); a name
    with umlauts derives both spellings mail systems use: "Jürgen Müller" is ``jurgen.muller``
    and ``juergen.mueller`` (rules 2026.12.34; before, ``Weiß`` gave ``wei``)."""
    return frozenset(alias for spelling in name_spellings(name) for alias in spelling)


def name_spellings(name: str) -> frozenset[frozenset[str]]:
    """``name_aliases`` by spelling: one set of mailbox names per spelling of the name (two for
    a name with umlauts, "Jürgen Müller" and "Juergen Mueller"; none for a one-word name). A
    rep named in one spelling ("Jurgen Muller") holds that set whole (rules 2026.12.37)."""
    composed = unicodedata.normalize("NFC", name)
    spellings = {_aliases_of(s) for s in (composed, composed.translate(_UMLAUTS))}
    return frozenset(s for s in spellings if s)


def _aliases_of(name: str) -> frozenset[str]:
    spelled = name.translate(_SPELLED_OUT)
    ascii_name = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z]+", ascii_name)
    if len(words) < 2:
        return frozenset()
    first, last = words[0], words[-1]
    return frozenset(
        {
            f"{first}.{last}",
            f"{first}{last}",
            f"{first[0]}.{last}",
            f"{first[0]}{last}",
            f"{first}_{last}",
            f"{first}-{last}",
            f"{last}.{first}",
        }
    )


def rep_alias_mapping(tenant_settings: Mapping[str, object]) -> dict[str, str]:
    """The tenant's explicit ``{source id: rep id}`` (the ``rep_aliases`` tenant setting).

    Raises ``ValueError`` when the setting is not such an object (the caller names the setting).
    """
    raw = tenant_settings.get("rep_aliases")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in raw.items()
    ):
        raise ValueError("expected an object of source rep id -> rep id")
    return dict(raw)


def mapped_addresses(mapping: Mapping[str, str]) -> dict[str, str]:
    """The addresses among the keys of the tenant's ``rep_aliases`` (lower-cased) -> the rep id
    each names: an alias a rep writes from that no source lists (``ana-emea@``, a shared
    signature address) is that rep's, wherever the address's domain."""
    return {
        unicodedata.normalize("NFC", key.strip()).lower(): rep_id
        for key, rep_id in mapping.items()
        if "@" in key
    }


def is_rename(email_change: str | None, held_name: str | None, name: str) -> bool:
    """Whether a rep's version that lists a new address in place of one it drops renames her
    (the dropped address her former one, still linking her to a source not synced with the new
    one: ``ref_rep_former_identities.renamed``) rather than correcting her record (it links
    nobody). As the source says (``RepV1.email_change``); unsaid, a rename only when the version
    also changes her name (``Gia Lopez`` -> ``Gia Moreno``), compared in one Unicode form, case
    and spacing aside: a correction read as a rename joins two people for good, a rename read as
    a correction splits one person until the other source syncs her new address (rules
    2026.12.40; before, every replacement was a rename)."""
    if email_change is not None:
        return email_change == "rename"
    if held_name is None:
        return False
    before, after = _name_key(held_name), _name_key(name)
    return bool(before and after) and before != after


def _name_key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def source_rank(source: str) -> int:
    return SOURCE_RANKS.get(source.lower(), 0)


@dataclass(frozen=True, slots=True)
class RepRecord:
    """What rep resolution needs to know about one rep id."""

    rep_id: str
    source: str
    emails: tuple[str, ...]
    #: Deleted by its source: it links nobody and is nobody's alias, but the addresses it held
    #: count in the one-source check (a leaver's mailbox on his successor's record).
    left: bool = False


def resolve_rep_aliases(
    records: Sequence[RepRecord], mapping: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``alias id -> canonical id`` for every rep that is another rep's person.

    ``mapping`` is the tenant's explicit ``{source id: rep id}`` for people whose emails differ
    across sources; an id it names that is not among ``records`` still links the others. A key
    that is an address (``{"ana@seller.io": "rep-ana"}``) says the address is that rep's: a rep
    listing it (a dialer's user signed in with it) is that rep's person too, as two reps sharing
    an email are.
    """
    parent: dict[str, str] = {}

    def find(rep_id: str) -> str:
        parent.setdefault(rep_id, rep_id)
        while parent[rep_id] != rep_id:
            parent[rep_id] = parent[parent[rep_id]]
            rep_id = parent[rep_id]
        return rep_id

    def union(first: str, second: str) -> None:
        parent[find(first)] = find(second)

    by_email = _person_emails(records, find, union)
    for address, target in sorted(mapped_addresses(mapping or {}).items()):
        key = address_key(address)
        for rep_id in by_email.get(key, ()):
            union(rep_id, target)
    for alias, target in sorted((mapping or {}).items()):
        union(alias, target)
    ranks = {r.rep_id: source_rank(r.source) for r in records if not r.left}
    left = {r.rep_id for r in records if r.left} - ranks.keys()
    targets = set((mapping or {}).values()) - set(mapping or {})
    groups: dict[str, list[str]] = {}
    for rep_id in parent:
        if rep_id in left:
            continue
        groups.setdefault(find(rep_id), []).append(rep_id)
    aliases: dict[str, str] = {}
    for members in groups.values():
        known = [m for m in members if m in ranks] or members
        # The best-ranked source is the person's id; among reps of one rank, the one the tenant
        # maps others to (rules 2026.12.38; before, a mapping to a CRM or dialer id demoted the
        # canonical rep, and an unrelated mapping entry flipped it back).
        canonical = min(known, key=lambda m: (ranks.get(m, 0), m not in targets, m))
        aliases.update({m: canonical for m in members if m != canonical and m in ranks})
    return aliases


@dataclass(frozen=True, slots=True)
class Absence:
    """A spell a rep was away: she left (deleted or deactivated by her CRM) on ``left_at`` and was
    active again from ``returned_at``. An identity she held when she left names nobody through
    her for what happened in ``[left_at, returned_at)``: it is decided as it was while she was
    gone (the deal's owner of the time, the rules for an address nobody holds)."""

    rep_id: str
    left_at: datetime
    returned_at: datetime

    def covers(self, at: datetime) -> bool:
        return self.left_at <= at < self.returned_at


def departure_marker(rep_id: str) -> str:
    """The identity a rep's departure is kept under when she held no email or phone then (or
    none that was hers alone): her ``ref_rep_former_identities`` row and, once she is back, her
    ``ref_rep_absences`` row, so her spells are known all the same (rules 2026.12.18). No
    participant holds it (no ``@``, no ``+``): it names nobody."""
    return f"rep:{rep_id}"


def absences_on_return(
    rep_id: str,
    held_when_she_left: Mapping[str, datetime],
    returned_at: datetime,
    listed: Iterable[str] = (),
) -> dict[str, Absence]:
    """``identity -> Absence`` for a rep active again from ``returned_at``: each identity she held
    when she left (``identity -> when she left``, her ``ref_rep_former_identities``, her
    :func:`departure_marker` when she held none) did not name her in between; nor did one she
    lists on her return (``listed``) that she did not hold then (an address given to her while
    she was away, or on her return: rules 2026.12.18), from when she last left. A departure not
    before her return (a version re-sent) leaves no gap."""
    gaps = {
        identity: Absence(rep_id, left_at, returned_at)
        for identity, left_at in held_when_she_left.items()
        if left_at < returned_at
    }
    if gaps:
        left_at = max(gap.left_at for gap in gaps.values())
        for identity in listed:
            gaps.setdefault(identity, Absence(rep_id, left_at, returned_at))
    return gaps


def in_spell(at: datetime, left_at: datetime | None, absences: Iterable[Absence]) -> bool:
    """Whether an activity at ``at`` falls in one of a rep's active spells, for one identity of
    hers: before she left (``left_at``; ``None`` while she holds it now) and in none of the
    spells she was away (``absences``, hers for that identity)."""
    if left_at is not None and at >= left_at:
        return False
    return not any(absence.covers(at) for absence in absences)


def _person_emails(
    records: Sequence[RepRecord], find: Callable[[str], str], union: Callable[[str, str], None]
) -> dict[str, tuple[str, ...]]:
    """Links the reps sharing an address (``address_key``: case, Unicode form and Gmail's dots
    aside) and returns ``address key -> the rep listing it`` for the addresses that link. An address two reps of one source list beside different addresses (a team inbox
    each SDR lists with her own, a leaver's address on his successor's record, the leaver deleted
    or not) is no person's and links nobody (rules 2026.12.35): a source lists one person twice
    only as the same record again (a dialer's second seat with the same login).

    A ``+tagged`` login (``dan+hubspot@``) is the person whose own address, the first her record
    lists, is exactly its untagged mailbox (``dan@``), of another source (rules 2026.12.38; before,
    every address was compared without its tag: ``sales+anna@`` and ``sales+bob@`` were one rep,
    and a "Sales Team" login ``sales+hs@`` a manager listing ``sales@`` beside her own). Two
    differently tagged addresses never link each other."""
    listed = {r.rep_id: tuple(dict.fromkeys(address_key(e) for e in r.emails if e.strip())) for r in records}
    holders: dict[str, list[RepRecord]] = {}
    for record in sorted(records, key=lambda r: r.rep_id):
        if not record.left:
            find(record.rep_id)
        for key in listed[record.rep_id]:
            holders.setdefault(key, []).append(record)
    by_email: dict[str, tuple[str, ...]] = {}
    for key, listing in holders.items():
        seen: dict[str, frozenset[str]] = {}
        if any(
            seen.setdefault(r.source.lower(), frozenset(listed[r.rep_id])) != frozenset(listed[r.rep_id])
            for r in listing
        ):
            continue
        live = [r for r in listing if not r.left]
        for record in live[1:]:
            union(record.rep_id, live[0].rep_id)
        if live:
            by_email[key] = (live[0].rep_id,)
    _link_tagged_logins(records, listed, holders, by_email, union)
    return by_email


def _link_tagged_logins(
    records: Sequence[RepRecord],
    listed: Mapping[str, tuple[str, ...]],
    holders: Mapping[str, list[RepRecord]],
    by_email: Mapping[str, tuple[str, ...]],
    union: Callable[[str, str], None],
) -> None:
    """A ``+tagged`` login links to the reps of other sources whose own (first) address is its
    untagged mailbox, when that mailbox links at all and is tagged one way only: two tags of one
    mailbox (``sales+anna@``, ``sales+bob@``) are two people sharing it, linked to nobody by it."""
    tags: dict[str, set[str]] = {}
    for record in records:
        for key in listed[record.rep_id]:
            if (mailbox := untagged(key)) is not None:
                tags.setdefault(mailbox, set()).add(key)
    for record in sorted(records, key=lambda r: r.rep_id):
        for key in listed[record.rep_id]:
            mailbox = untagged(key)
            if record.left or mailbox is None or mailbox not in by_email or len(tags[mailbox]) > 1:
                continue
            for owner in holders[mailbox]:
                own = listed[owner.rep_id][0] == mailbox and not owner.left
                if own and owner.source.lower() != record.source.lower():
                    union(record.rep_id, owner.rep_id)
