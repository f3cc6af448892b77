"""A contact ingest publishes again after the tenant's phone region changed (``reread_phones``,
source ``PHONE_REREAD_SOURCE``) carries the ``updated_at`` of the version it read: written as any
version, it would replace a CRM correction sent under the same ``updated_at`` and received since
(same time, other content: the last received wins) with the job's older copy. It is written
only over the version it was read from."""

from __future__ import annotations

from libs.common.contracts.crm import ContactV1


def reread_of(held: ContactV1 | None, reread: ContactV1) -> bool:
    """Whether ``reread`` is ``held`` with numbers read from its ``unread_phones`` added: the same
    version and fields, ``held``'s phones (raw forms, extensions) first and then the numbers
    gained, each read from a value ``held`` kept unread, every such value either read (a number
    gained from it, or its numbers held already) or still unread. Anything else (a correction received since the job read the
    contact, its deletion) keeps ``held``."""
    if held is None or held.updated_at != reread.updated_at:
        return False
    same = ("name", "emails", "account_id", "country", "deleted", "merged_into")
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
        and read <= gained | set(raws)
    )
