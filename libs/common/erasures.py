"""Erased people: the keyed hash that names them, the per-tenant list, and the one check every service runs.

An erasure request is kept without the identity in clear: only an HMAC-SHA256 of the normalised
email or phone, keyed by a key derived from ``SPM_SECRET_KEY``, so the list cannot be read
back into addresses, yet any later delivery naming the person is recognised. Ingest and
attribution both run :func:`screen_participants` against :class:`ErasureListCache`'s set for
the tenant, so a replay of older raw data cannot bring the person back.

Ingest cannot tell every internal participant from an external one (a rep's phone), so it
replaces an erased participant with :data:`ERASED_ADDRESS` instead of judging; attribution,
which knows the reps, then removes the placeholder and drops the activity when no external
participant remains.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.common.caching import LoadingCache
from libs.common.contracts.activities import Participant, ParticipantFields, extension_of
from libs.common.contracts.copying import with_changes
from libs.common.personal_domains import held_address, mailbox_address, mailbox_forms

#: What an erased participant becomes in what ingest publishes (``.invalid`` is reserved, RFC 2606).
ERASED_ADDRESS = "erased@erased.invalid"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


def normalise_identity(kind: IdentityKind, value: str) -> str:
    """The identity as activities store it: an email lower-cased, a phone in E.164; ValueError otherwise."""
    value = value.strip()
    if kind is IdentityKind.EMAIL:
        if value.count("@") != 1 or not value.split("@")[0] or "." not in value.split("@")[1]:
            raise ValueError("must be an email address")
        return value.lower()
    compact = re.sub(r"[\s().-]", "", value)
    if not _E164.match(compact):
        raise ValueError("must be a phone number in E.164, e.g. +14155550100")
    return compact


def erasure_key(secret_key: str) -> bytes:
    """The HMAC key of identity hashes, derived so it differs from every other use of the secret."""
    return hashlib.sha256(b"spm-erasure\x00" + secret_key.encode()).digest()


def identity_hash(key: bytes, kind: IdentityKind, normalised: str) -> str:
    return hmac.new(key, f"{kind.value}:{normalised}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ErasedIdentities:
    """One tenant's erased people, as keyed hashes."""

    key: bytes
    hashes: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def names(self, email: str | None, phone: str | None) -> bool:
        """Whether an address or a phone is one of an erased person's: an address also by the
        mailbox it delivers to (``personal_domains.mailbox_address``), as attribution reads it:
        ``pia+news@plume.example`` is erased ``pia@plume.example``'s. In either Unicode form:
        composed (``held_address``, as attribution holds addresses), as written and decomposed (the
        hashes of an erasure listed before rules 2026.12.40 are of the address as typed, maybe
        decomposed, while the mail attribution holds is composed; lower-casing and NFD commute)."""
        if email:
            spellings = address_spellings(email)
            forms = spellings | {mailbox_address(form) for form in spellings}
            if any(
                identity_hash(self.key, IdentityKind.EMAIL, form) in self.hashes
                for form in forms
                if form is not None
            ):
                return True
        return bool(phone) and identity_hash(self.key, IdentityKind.PHONE, str(phone)) in self.hashes


def address_spellings(email: str) -> set[str]:
    """An address (trimmed, lower-cased) in each Unicode form it may be held in: as written,
    composed (NFC, ``held_address``) and decomposed (NFD; lower-casing and NFD commute)."""
    address = email.strip().lower()
    decomposed = address if address.isascii() else unicodedata.normalize("NFD", address)
    return {address, held_address(address), decomposed}


def names_anyone(value: Any, erased: ErasedIdentities) -> bool:
    """Whether any string in a JSON document is one of the erased person's addresses or phones."""
    if isinstance(value, dict):
        return any(names_anyone(v, erased) for v in value.values())
    if isinstance(value, list):
        return any(names_anyone(v, erased) for v in value)
    return isinstance(value, str) and erased.names(value, value)


def identity_hashes(key: bytes, emails: Iterable[str] = (), phones: Iterable[str] = ()) -> set[str]:
    """The hashes that name a person of these addresses and phones, to list: each address as
    written and the mailbox it delivers to, as a CRM record's addresses are held
    (``personal_domains.mailbox_forms``: ``pia+crm@plume.example`` also as ``pia@plume.example``,
    ``jo.doe@gmail.com`` also as ``jodoe@gmail.com``), so mail from the plain mailbox is erased too;
    an address with a letter beyond ASCII also as written (lower-cased), beside its composed form."""
    listed = [e.strip() for e in emails]
    forms = {*mailbox_forms(listed), *(e.lower() for e in listed)}
    return {identity_hash(key, IdentityKind.EMAIL, e) for e in forms} | {
        identity_hash(key, IdentityKind.PHONE, p) for p in phones
    }


#: A tenant with no erased person.
NO_ERASURES = ErasedIdentities(b"")


def is_erased(participant: ParticipantFields, erased: ErasedIdentities) -> bool:
    """The one check: a participant who is an erased person, or ingest's placeholder for one."""
    if participant.email == ERASED_ADDRESS:
        return True
    return bool(erased) and erased.names(participant.email, participant.phone)


def names_erased_person(emails: Sequence[str], phones: Sequence[str], erased: ErasedIdentities) -> bool:
    """Whether a CRM contact with these addresses and phones is an erased person (an address also
    by its mailbox: the contact listing ``pia+crm@plume.example`` is erased ``pia@plume.example``)."""
    return bool(erased) and (
        any(erased.names(e, None) for e in emails) or any(erased.names(None, p) for p in phones)
    )


def screen_participants(
    participants: Sequence[Participant], erased: ErasedIdentities
) -> tuple[tuple[Participant, ...], int]:
    """The participants who are not erased, and how many were."""
    kept = tuple(p for p in participants if not is_erased(p, erased))
    return kept, len(participants) - len(kept)


#: An erased participant's fields once masked: the placeholder address, no phone, no name (same role).
_MASKED: dict[str, object] = {"email": ERASED_ADDRESS, "phone": None, "name": None}
#: ... and no extension: the contract's none, the batch path's unset (both written as absent).
_MASKED_MODEL: dict[str, object] = {**_MASKED, "extension": None}
_MASKED_STRUCT: dict[str, object] = {**_MASKED, "extension": msgspec.UNSET}
_ParticipantT = TypeVar("_ParticipantT", bound=ParticipantFields)


def mask_participants(
    participants: Sequence[_ParticipantT], erased: ErasedIdentities
) -> tuple[_ParticipantT, ...]:
    """Each erased participant replaced by the placeholder (same role), for attribution to judge.

    A contract model or the batch path's struct alike (``copying.with_changes``)."""
    if not erased:
        return tuple(participants)
    return tuple(with_changes(p, _masked(p)) if is_erased(p, erased) else p for p in participants)


def _masked(participant: ParticipantFields) -> dict[str, object]:
    if extension_of(participant) is None:
        return _MASKED
    return _MASKED_STRUCT if isinstance(participant, msgspec.Struct) else _MASKED_MODEL


async def load_erased_hashes(conn: AsyncConnection, tenant_id: str) -> frozenset[str]:
    rows = await conn.execute(
        text("SELECT identity_hash FROM privacy_erased_identities WHERE tenant_id = :t"), {"t": tenant_id}
    )
    return frozenset(row.identity_hash for row in rows)


class ErasureListCache:
    """Each tenant's erased hashes, kept ``ttl_seconds``: a new erasure applies within that bound."""

    def __init__(
        self,
        engine: AsyncEngine,
        secret_key: str,
        ttl_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.key = erasure_key(secret_key)
        self.ttl = ttl_seconds
        self._cache: LoadingCache[str, ErasedIdentities] = LoadingCache(self._load, clock)

    async def get(self, tenant_id: str) -> ErasedIdentities:
        return await self._cache.get(tenant_id)

    async def _load(self, tenant_id: str) -> tuple[ErasedIdentities, float]:
        async with self.engine.connect() as conn:
            hashes = await load_erased_hashes(conn, tenant_id)
        return ErasedIdentities(self.key, hashes), self.ttl


async def request_erasure(
    conn: AsyncConnection,
    tenant_id: str,
    kind: IdentityKind,
    identity_hash_: str,
    requested_by: str,
    also: Iterable[str] = (),
) -> tuple[dict[str, object], bool]:
    """Record (or find) the erasure of one person; a failed one is queued again. Returns (row, created).

    The hash goes on the list at once, with ``also``, the hashes of the identity's other forms
    (:func:`identity_hashes`: the mailbox of a ``+tagged`` address), so ingest and attribution
    drop the person's new deliveries within their cache TTL even before the job has run.
    """
    row = (
        await conn.execute(
            text(
                """
                INSERT INTO privacy_erasures (tenant_id, erasure_id, identity_kind, identity_hash, state, requested_by)
                VALUES (:t, gen_random_uuid(), :kind, :hash, 'queued', :by)
                ON CONFLICT (tenant_id, identity_hash) DO UPDATE
                    SET state = CASE WHEN privacy_erasures.state = 'failed' THEN 'queued' ELSE privacy_erasures.state END,
                        error = CASE WHEN privacy_erasures.state = 'failed' THEN NULL ELSE privacy_erasures.error END
                RETURNING erasure_id, state, (xmax = 0) AS created
                """
            ),
            {"t": tenant_id, "kind": kind.value, "hash": identity_hash_, "by": requested_by},
        )
    ).one()
    await add_erased_identities(conn, tenant_id, row.erasure_id, sorted({identity_hash_, *also}))
    return {"erasure_id": row.erasure_id, "state": row.state}, bool(row.created)


async def add_erased_identities(
    conn: AsyncConnection, tenant_id: str, erasure_id: object, hashes: Sequence[str]
) -> None:
    """Put hashes on the tenant's list (what ingest and attribution check); already listed ones stay."""
    await conn.execute(
        text(
            "INSERT INTO privacy_erased_identities (tenant_id, identity_hash, erasure_id) "
            "SELECT :t, h, :id FROM unnest(CAST(:hashes AS text[])) AS h ON CONFLICT DO NOTHING"
        ),
        {"t": tenant_id, "id": erasure_id, "hashes": list(hashes)},
    )


async def get_erasure(conn: AsyncConnection, tenant_id: str, erasure_id: object) -> dict[str, object] | None:
    """One erasure request with its progress and counts (never the identity: it is not stored)."""
    row = (
        await conn.execute(
            text(
                "SELECT erasure_id, identity_kind, state, requested_by, requested_at, finished_at, done, total, "
                "counts, error FROM privacy_erasures WHERE tenant_id = :t AND erasure_id = :id"
            ),
            {"t": tenant_id, "id": erasure_id},
        )
    ).first()
    return None if row is None else dict(row._mapping)


# What names a person outside activities' payloads, read by erasure (to delete) and by the
# subject access export (to answer), each filtered with ``ErasedIdentities.names``.


async def webhook_states(conn: AsyncConnection, tenant_id: str) -> list[tuple[str, str, Any]]:
    """The tenant's folded webhook states (``webhook_state``): (source, object_key, state)."""
    rows = await conn.execute(
        text(
            "SELECT source, object_key, state FROM webhook_state WHERE tenant_id = :t ORDER BY source, object_key"
        ),
        {"t": tenant_id},
    )
    return [(r.source, r.object_key, r.state) for r in rows]


async def meeting_removals(conn: AsyncConnection, tenant_id: str) -> list[Any]:
    """The tenant's remembered removals of meetings from guests' calendars (``meeting_removals``),
    with the guests' addresses, their answer then and the meeting's revision."""
    result = await conn.execute(
        text(
            "SELECT activity_id, address, answer, revision FROM meeting_removals WHERE tenant_id = :t "
            "ORDER BY activity_id, address"
        ),
        {"t": tenant_id},
    )
    return list(result)


async def undated_deletion_calendars(conn: AsyncConnection, tenant_id: str) -> list[str]:
    """The calendars (mailboxes) the tenant's undated calendar deletions were read in
    (``ingest_undated_deletions.calendar``; ``''``, none named, left out)."""
    result = await conn.execute(
        text(
            "SELECT DISTINCT calendar FROM ingest_undated_deletions WHERE tenant_id = :t AND calendar <> '' "
            "ORDER BY calendar"
        ),
        {"t": tenant_id},
    )
    return [row.calendar for row in result]
