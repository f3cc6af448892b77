"""A contact or rep ingest publishes again after the tenant's phone region changed
(``reread_phones``, source ``PHONE_REREAD_SOURCE``) carries the ``updated_at`` of the version it
read: written as any version, it would replace a CRM correction sent under the same
``updated_at`` and received since (same time, other content: the last received wins) with the
job's older copy. It is written only over the version it was read from."""

from __future__ import annotations

from libs.common.contracts.crm import ContactV1, RepV1

#: A record keeping phones no region read (``unread_phones``).
PhoneHolder = ContactV1 | RepV1

#: Its fields a re-read reads again; ``updated_at`` and ``id`` are compared apart, and a rep's
#: ``email_change`` is not held (it says how to read the version that carries it).
_PHONE_FIELDS = frozenset({"phones", "raw_phones", "phone_extensions", "unread_phones"})
_NOT_HELD = frozenset({"id", "updated_at", "entity_type", "email_change"})


def _held_fields(record: PhoneHolder) -> tuple[str, ...]:
    return tuple(f for f in type(record).model_fields if f not in _NOT_HELD)


def reread_of(held: PhoneHolder | None, reread: PhoneHolder) -> bool:
    """Whether ``reread`` is ``held`` with numbers read from its ``unread_phones`` added: the same
    version and fields, ``held``'s phones (raw forms, extensions) first and then the numbers
    gained, each read from a value ``held`` kept unread, every such value either read (a number
    gained from it, or its digits those of a number the copy holds: held already, or read from
    another value too) or still unread. Anything else (a correction received since the job read the
    contact, its deletion) keeps ``held``."""
    if held is None or type(held) is not type(reread) or held.updated_at != reread.updated_at:
        return False
    same = (f for f in _held_fields(held) if f not in _PHONE_FIELDS)
    if any(getattr(held, f) != getattr(reread, f) for f in same):
        return False
    n = len(held.phones)
    raws = held.raw_phones if len(held.raw_phones) == n else held.phones
    if reread.phones[:n] != held.phones or reread.raw_phones[:n] != raws:
        return False
    if reread.phone_extensions[: len(held.phone_extensions)] != held.phone_extensions:
        return False
    # A number read keeps the value it was read from as its raw form (two numbers of one field
    # both keep the whole field).
    gained = set(reread.raw_phones[n:])
    read = set(held.unread_phones) - set(reread.unread_phones)
    return (
        bool(gained)
        and set(reread.unread_phones) <= set(held.unread_phones)
        and gained <= read
        and all(v in gained or v in raws or _reads_into(v, reread.phones) for v in read)
    )


def _reads_into(value: str, numbers: tuple[str, ...]) -> bool:
    """Whether ``value``'s digits are one of ``numbers`` (E.164) written nationally (its trunk
    ``0``s dropped) or internationally: a value read into a number the contact holds already, or
    into the number another value gave too. (A correction's new value, never read by the job,
    is not one of them.)"""
    digits = "".join(c for c in value if c.isdigit()).lstrip("0")
    return len(digits) >= 6 and any(
        n.lstrip("+").endswith(digits) or digits.endswith(n.lstrip("+")[3:]) for n in numbers
    )


def supersedes(other: PhoneHolder, held: PhoneHolder | None) -> bool:
    """Whether ``other``, a version of the record received with a ``reread_phones`` job's copy,
    replaces the version the job read (``held``): newer, or under the same ``updated_at`` with
    other content (a correction). An older version, or a replay of ``held``, is ignored by
    newest-wins: the job's copy is still written."""
    if held is None or other.updated_at > held.updated_at:
        return True
    return other.updated_at == held.updated_at and any(
        getattr(other, f) != getattr(held, f) for f in _held_fields(held)
    )
