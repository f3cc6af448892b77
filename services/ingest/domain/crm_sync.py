"""CRM entities as ingest publishes them: identities read once, with warnings for the rest.

Phones become E.164, emails bare lower-cased addresses (``Bo Buyer <Bo@Buyer.example>`` is
``bo@buyer.example``), an account's domains host names as addresses carry them
(``https://www.buyer.example/`` is ``buyer.example``): what attribution compares activities
with. A contact's or an account's country becomes its ISO 3166 alpha-2 code, and a contact's
national-format phones are read in its country, else its account's, else the tenant's region
(``020 7946 0958`` of a UK contact is ``+442079460958`` for a US tenant too). A value that cannot
be read does not cost the entity: the contact, rep or account is
accepted without it, and the answer names the entity's index, the field and the reason, so the
integrator can fix the CRM record. A deal's ``closed_at`` is its close, not the date every CRM
keeps on an open deal for when it is expected to close, and a deal sent with a closing stage but
no flags is closed (:func:`read_deal`). Everything else in the entity is passed on as sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from libs.common.contracts.activities import line_of
from libs.common.contracts.crm import LIST_LIMITS, AccountV1, ContactV1, CrmEntity, DealV1, RepV1
from libs.common.phones import (
    PhoneProblem,
    RefusedPhone,
    Regions,
    parse_phones_in,
)
from services.ingest.domain.countries import contact_phone_regions, country_code, country_of, phone_regions_of
from services.ingest.domain.normalize import (
    ReadPhones,
    normalize_domains,
    normalize_email,
    not_ahead,
    read_phones,
    stored_phone_sources,
)
from services.ingest.domain.webhook_types import AheadOfReceipt


@dataclass(frozen=True, slots=True)
class EntityWarning:
    """Something dropped from an accepted entity, or an entity left out (``left_out``: one dated
    ahead of receipt): ``field`` is a dotted path into the request; ``problem`` is set for a
    phone (the dropped-phones counter's reason)."""

    index: int
    field: str
    reason: str
    problem: PhoneProblem | None = None
    left_out: bool = False


class ListTooLong(ValueError):
    """A record's list holds more values once read than its contract allows (a value may list
    several): ``field`` is its dotted path in the request."""

    def __init__(self, field: str, count: int, limit: int) -> None:
        self.field = field
        self.reason = (
            f"lists {count} values once read (a value may list several); at most {limit} are accepted"
        )
        super().__init__(f"{field}: {self.reason}")


def _within_limits(index: int, entity_type: str, update: Mapping[str, object]) -> None:
    for name, value in update.items():
        limit = LIST_LIMITS.get(name)
        if limit is not None and isinstance(value, tuple) and len(value) > limit:
            raise ListTooLong(f"entities.{index}.{entity_type}.{name}", len(value), limit)


def read_entities(
    entities: Sequence[CrmEntity],
    region: str,
    stored_countries: Mapping[str, str] | None = None,
    *,
    received_at: datetime | None = None,
) -> tuple[tuple[CrmEntity, ...], tuple[EntityWarning, ...]]:
    """Each rep's and contact's phones as E.164 (``raw_phones`` keeps what was sent) and emails as
    bare addresses, each account's domains as host names, each contact's and account's country
    as its ISO 3166 alpha-2 code, each deal's state as :func:`read_deal` reads it; a warning per
    value dropped. A value repeated in another form is kept once.

    A contact's national-format phones are read in its own country, else its account's (as this
    batch sends the account, else as ``stored_countries`` holds it: account id -> alpha-2), else
    in ``region``, the tenant's (:func:`countries.contact_phone_regions`; a number valid only in a later
    region is read there, :func:`phones.parse_phone_in`).

    With ``received_at``, an entity whose ``updated_at`` is too far ahead of it is left out, with
    a warning (``left_out``; :func:`dated_ahead`).

    Raises :class:`ListTooLong` when a list reads longer than ``LIST_LIMITS`` allows."""
    warnings: list[EntityWarning] = []
    kept = [
        (index, entity)
        for index, entity in enumerate(entities)
        if received_at is None or not dated_ahead(entity, index, received_at, warnings)
    ]
    countries = _account_countries(kept, region, warnings)
    read: list[CrmEntity] = []
    for index, entity in kept:
        update: dict[str, object] = {}
        if isinstance(entity, RepV1 | ContactV1):
            regions: Regions = region
            if isinstance(entity, ContactV1):
                own, regions = _contact_regions(
                    entity, index, countries, stored_countries or {}, region, warnings
                )
                if own != entity.country:
                    update["country"] = own
            # ``unread_phones`` are ingest's to write: read from ``phones`` (sent ones dropped).
            if entity.phones or entity.phone_extensions or getattr(entity, "unread_phones", ()):
                update |= _phones_update(entity, index, regions, warnings)
            emails = _read_each(entity.emails, _an_email, "an email address", entity, index, warnings)
            if emails != entity.emails:
                update["emails"] = emails
        elif isinstance(entity, AccountV1):
            domains = _read_each(entity.domains, normalize_domains, "a domain", entity, index, warnings)
            if domains != entity.domains:
                update["domains"] = domains
            if entity.country is not None and (code := country_code(entity.country)) != entity.country:
                update["country"] = code
        elif isinstance(entity, DealV1):
            update |= read_deal(entity)
        _within_limits(index, entity.entity_type, update)
        read.append(entity.model_copy(update=update) if update else entity)
    # In the batch's order: the accounts' countries were read first.
    return tuple(read), tuple(sorted(warnings, key=lambda w: w.index))


def dated_ahead(entity: CrmEntity, index: int, received_at: datetime, warnings: list[EntityWarning]) -> bool:
    """Whether ``entity``'s ``updated_at`` is more than ``INGEST_MAX_FUTURE_SKEW_SECONDS`` ahead of
    ``received_at`` (:func:`normalize.not_ahead`, the rule every vendor's CRM record and every
    activity time is held to); if so a warning naming ``entities.{index}.updated_at`` says it is
    left out. Newest ``updated_at`` wins downstream, so a record dated 2099 would freeze against
    every later real edit; it is not published, and the CRM's versions stay ordered by its own
    times (a re-sent or late batch never becomes a newer version)."""
    try:
        not_ahead(entity.updated_at, received_at, f"entities.{index}.updated_at")
    except AheadOfReceipt as ahead:
        reason = f"{ahead.reason}; the {entity.entity_type} was left out"
        warnings.append(EntityWarning(index, ahead.field, reason, left_out=True))
        return True
    return False


def accounts_to_look_up(entities: Sequence[CrmEntity], *, read: bool = False) -> frozenset[str]:
    """The accounts whose stored country may decide where contacts' phones are read: those of
    the contacts with no country of their own that can be read, not sent with them. Contacts as
    sent (``read`` False: :func:`read_entities` is to read them) need it for their phones only;
    contacts a vendor's adapter read (``read`` True) whenever they state no country, their
    unreadable phones being gone."""
    sent = {e.id for e in entities if isinstance(e, AccountV1)}
    return frozenset(
        e.account_id
        for e in entities
        if isinstance(e, ContactV1)
        and (read or e.phones)
        and e.account_id is not None
        and e.account_id not in sent
        and (e.country is None or country_code(e.country) is None)
    )


def accounts_with_new_country(
    entities: Sequence[CrmEntity], held: Mapping[str, tuple[str | None, datetime]]
) -> dict[str, str | None]:
    """The accounts of a read batch whose country is not the one held (``held``: account id ->
    its country and ``updated_at``; an account not held had none): account id -> its country
    now (``None``: it states none that can be read). The batch's last version of each counts;
    one older than the version held changes nothing (attribution keeps the newer), nor does a
    deleted or merged account. An account not held yet counts: its contacts may have come
    before it, read in the tenant's region (the lookup of its contacts is an index probe,
    migration 0026)."""
    changed: dict[str, str | None] = {}
    latest = {e.id: e for e in entities if isinstance(e, AccountV1)}
    for account in latest.values():
        country, updated_at = held.get(account.id, (None, None))
        if (
            account.deleted
            or account.merged_into
            or (updated_at is not None and account.updated_at < updated_at)
        ):
            continue
        if account.country != country:
            changed[account.id] = account.country
    return changed


def contacts_read_again(
    contacts: Sequence[ContactV1], countries: Mapping[str, str | None], region: str
) -> tuple[ContactV1, ...]:
    """Held ``contacts`` stating no country of their own, of accounts whose country changed
    (``countries``, :func:`accounts_with_new_country`): their phones read again from what they
    were sent as (``normalize.stored_phone_sources``, the ``unread_phones`` no region read
    included) in the account's country now, else ``region`` (:func:`countries.phone_regions_of`,
    the rule of every sync). Each contact whose phones read differently, as the same version
    with its phones replaced (``updated_at`` kept: a correction of the version held, which a
    later version of the CRM's still replaces)."""
    again: list[ContactV1] = []
    for contact in contacts:
        account = contact.account_id
        if contact.country is not None or account is None or account not in countries:
            continue
        regions = phone_regions_of(None, countries[account], region)
        sources = stored_phone_sources(contact.phones, contact.raw_phones, contact.unread_phones)
        read = read_phones(sources, regions)
        update = {
            "phones": read.phones,
            "raw_phones": read.raw_phones,
            "phone_extensions": read.phone_extensions,
            "unread_phones": read.unread,
        }
        # A list read longer than its limit (values listing several) would be refused downstream:
        # such a contact keeps its phones as held.
        too_long = any(len(v) > LIST_LIMITS[name] for name, v in update.items())
        if not too_long and any(getattr(contact, name) != value for name, value in update.items()):
            again.append(contact.model_copy(update=update))
    return tuple(again)


class ReadInNewRegion(NamedTuple):
    """What :func:`contacts_read_in_new_region` made of a page of contacts (or reps)."""

    #: The contacts (reps) gaining a number, to publish.
    again: tuple[ContactV1 | RepV1, ...]
    #: The ids of those that would gain one but then list more than ``LIST_LIMITS`` allows (kept
    #: as held: nothing published).
    over_limits: tuple[str, ...]


def contacts_read_in_new_region(
    contacts: Sequence[ContactV1 | RepV1], account_countries: Mapping[str, str | None], region: str
) -> ReadInNewRegion:
    """Held ``contacts`` keeping values no region read (``unread_phones``), read again now that the
    tenant's phone region is ``region`` (its ``default_phone_region`` or time zone changed), in the
    contact's country, else its account's (``account_countries``), else ``region``. A value read
    now joins the contact's phones; those read before stay as they are (a US mobile read in a
    tenant's former region US is still that number: nothing accepted is lost); the rest stay
    unread. Each contact that gains a number, as the same version (``updated_at`` kept: a
    correction, as :func:`contacts_read_again` publishes). A contact that would then list more
    than ``LIST_LIMITS`` allows is named in ``over_limits`` instead. A rep (``RepV1``: no country,
    no account) is read in ``region``, as her record was synced (rules 2026.12.40)."""
    again: list[ContactV1 | RepV1] = []
    over: list[str] = []
    for contact in contacts:
        if not contact.unread_phones:
            continue
        account_id, country = (
            (contact.account_id, contact.country) if isinstance(contact, ContactV1) else (None, None)
        )
        account = account_countries.get(account_id) if account_id else None
        read = read_phones(contact.unread_phones, phone_regions_of(country, account, region))
        gained = [
            (e164, raw)
            for e164, raw in zip(read.phones, read.raw_phones, strict=True)
            if e164 not in contact.phones
        ]
        if not gained:
            continue
        # The raw forms when kept alongside (same length), else the stored values.
        raws = contact.raw_phones if len(contact.raw_phones) == len(contact.phones) else contact.phones
        update = {
            "phones": (*contact.phones, *(e164 for e164, _ in gained)),
            "raw_phones": (*raws, *(raw for _, raw in gained)),
            "phone_extensions": tuple(dict.fromkeys((*contact.phone_extensions, *read.phone_extensions))),
            "unread_phones": read.unread,
        }
        if any(len(v) > LIST_LIMITS[name] for name, v in update.items()):
            over.append(contact.id)
        else:
            again.append(contact.model_copy(update=update))
    return ReadInNewRegion(tuple(again), tuple(over))


def _account_countries(
    entities: Sequence[tuple[int, CrmEntity]], region: str, warnings: list[EntityWarning]
) -> dict[str, str | None]:
    """The country of each account of the batch (as its last version there states it), ``None``
    when it states none or one that cannot be read (a warning names the value); ``entities``
    with their index in the batch."""
    countries: dict[str, str | None] = {}
    for index, entity in entities:
        if isinstance(entity, AccountV1):
            code = country_of(entity.country)
            countries[entity.id] = code
            if entity.country is not None and code is None:
                then = f"its contacts' phones read in their own country, else region {region}"
                warnings.append(_unknown_country(index, "account", then))
    return countries


def _contact_regions(
    contact: ContactV1,
    index: int,
    sent: Mapping[str, str | None],
    stored: Mapping[str, str],
    region: str,
    warnings: list[EntityWarning],
) -> tuple[str | None, tuple[str, ...]]:
    """The contact's country (alpha-2, ``None`` when it states none that can be read) and the
    regions its phones are read in (:func:`countries.contact_phone_regions`)."""
    own = country_of(contact.country)
    regions = contact_phone_regions(own, contact.account_id, sent, stored, region)
    if contact.country is not None and own is None:
        warnings.append(_unknown_country(index, "contact", f"its phones read in region {regions[0]}"))
    return own, regions


def _unknown_country(index: int, entity_type: str, then: str) -> EntityWarning:
    return EntityWarning(
        index,
        f"entities.{index}.country",
        f"not a country (an ISO 3166 code or an English name); it was dropped, the {entity_type} "
        f"accepted, {then}",
    )


def read_deal(deal: DealV1) -> dict[str, object]:
    """What changes in ``deal`` read as the CRM meant it: its flags from a closing stage when
    they were not sent (:func:`stage_outcome`), then its close (:func:`deal_close`)."""
    update: dict[str, object] = {}
    if "is_closed" not in deal.model_fields_set and (won := stage_outcome(deal.stage)) is not None:
        # The contract refuses a won deal that is not closed: neither flag was sent.
        update = {"is_closed": True, "is_won": won}
        deal = deal.model_copy(update=update)
    closed_at = deal_close(deal)
    if closed_at != deal.closed_at:
        update["closed_at"] = closed_at
    return update


def stage_outcome(stage: str) -> bool | None:
    """Whether a stage's name says the deal was won (``True``) or lost (``False``); ``None`` when it
    names no close. "Closed Won" (Salesforce, Zoho), ``closedwon`` (HubSpot), ``closed_won``,
    ``Won`` (Pipedrive's status), "Closed Lost to Competition", ``Lost``, ``Closed``; and as CRMs
    name them in German, French, Spanish, Portuguese, Italian and Dutch ("Geschlossen und
    gewonnen", "Fermée gagnée", "Cerrada perdida", "Fechado/Ganho", "Chiusa persa", "Verloren"):
    an outcome word alone, a closing word alone (lost), or a closing word then an outcome word
    (``and`` between them allowed, anything after). Case, accents and punctuation are ignored."""
    letters = "".join(c for c in stage.lower() if c.isalpha())
    if letters in ("won", "closedwon") or letters.startswith("closedwon"):
        return True
    if letters in ("lost", "closed") or letters.startswith("closedlost"):
        return False
    words = [w for w in _WORD_SPLIT.split(_without_accents(stage.lower())) if w and w not in _AND]
    if len(words) == 1:
        if words[0] in _CLOSED:
            return False
        return _OUTCOME.get(words[0])
    if len(words) >= 2 and words[0] in _CLOSED:
        return _OUTCOME.get(words[1])
    return None


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


_WORD_SPLIT = re.compile(r"[^a-z]+")
_AND = frozenset({"and", "und", "et", "y", "e", "en"})
#: "Closed" in the languages CRMs are used in (Salesforce's, HubSpot's and Pipedrive's translations).
_CLOSED = frozenset(
    {"closed", "geschlossen", "abgeschlossen", "ferme", "fermee", "cerrado", "cerrada"}
    | {"fechado", "fechada", "chiuso", "chiusa", "gesloten"}
)
_WON = ("won", "gewonnen", "gagne", "gagnee", "ganado", "ganada", "ganho", "ganha", "vinto", "vinta")
_LOST = ("lost", "verloren", "perdu", "perdue", "perdido", "perdida", "perso", "persa")
_OUTCOME: dict[str, bool] = {word: True for word in _WON} | {word: False for word in _LOST}


def deal_close(deal: DealV1) -> datetime | None:
    """When ``deal`` closed, or ``None`` while it is open.

    The close date of an open deal is when it is expected to close (Salesforce's ``CloseDate``,
    HubSpot's ``closedate``, required or defaulted on every deal, and slipping as deals do): it
    is not a close, and read as one it ended the deal's life at that date plus the grace window.
    A deal reported closed without a date closed at the latest when the CRM reported it so
    (``updated_at``, never before its creation), as the metrics date a won deal without one:
    read as open-ended, a lost deal stayed a candidate of every later activity of its contacts.
    """
    if not deal.is_closed:
        return None
    if deal.closed_at is None:
        return max(deal.updated_at, deal.created_at)
    return deal.closed_at


def _phones_update(
    entity: RepV1 | ContactV1, index: int, regions: Regions, warnings: list[EntityWarning]
) -> dict[str, object]:
    """The record's phones read (:func:`_read_phones`); the keyed extensions sent already read (a
    vendor adapter's) stay while their line does."""
    read = _read_phones(entity, index, regions, warnings)
    kept = (k for k in entity.phone_extensions if line_of(k) in read.phones)
    update: dict[str, object] = {"phones": read.phones, "raw_phones": read.raw_phones}
    if (keyed := tuple(dict.fromkeys((*read.phone_extensions, *kept)))) != entity.phone_extensions:
        update["phone_extensions"] = keyed
    if read.unread != entity.unread_phones:
        update["unread_phones"] = read.unread
    return update


def _read_phones(
    entity: RepV1 | ContactV1, index: int, regions: Regions, warnings: list[EntityWarning]
) -> ReadPhones:
    """The record's phones read as every CRM record's are (:func:`normalize.read_phones`), and a
    warning naming each value dropped, a blank one included (``read_phones`` passes over it)."""
    read = read_phones(entity.phones, regions)
    refusals = {refused.raw: refused for refused in read.refused}
    for position, raw in enumerate(entity.phones):
        refusal = refusals.get(raw)
        if refusal is None and not raw.strip():
            blank = parse_phones_in(raw, regions)
            refusal = blank if isinstance(blank, RefusedPhone) else None
        if refusal is not None:
            warnings.append(
                EntityWarning(
                    index,
                    f"entities.{index}.phones.{position}",
                    f"{refusal.reason}; the phone was dropped, the {entity.entity_type} accepted",
                    refusal.problem,
                )
            )
    return read


def _an_email(raw: str) -> tuple[str, ...]:
    """The address of one value of a record's emails, or each of several listed in it
    (``bo@buyer.example; Bo Li <bo.li@buyer.example>``, as a spreadsheet cell holds them: a
    record's addresses are all its own); none when one of them cannot be read."""
    read = normalize_email(raw)
    if read is not None:
        return (read,)
    listed = [part for part in _EMAIL_LIST_SEPARATOR.split(raw) if part.strip()]
    if len(listed) < 2:
        return ()
    each = [normalize_email(part) for part in listed]
    return tuple(e for e in each if e is not None) if all(each) else ()


_EMAIL_LIST_SEPARATOR = re.compile(r"[;,\n]+")


def _read_each(
    values: tuple[str, ...],
    read_one: Callable[[str], tuple[str, ...]],
    what: str,
    entity: RepV1 | ContactV1 | AccountV1,
    index: int,
    warnings: list[EntityWarning],
) -> tuple[str, ...]:
    """``values`` read by ``read_one`` (a value may list several), each kept once; a warning names
    each value dropped."""
    field = "emails" if isinstance(entity, RepV1 | ContactV1) else "domains"
    kept: dict[str, None] = {}
    for position, raw in enumerate(values):
        read = read_one(raw)
        if not read:
            warnings.append(
                EntityWarning(
                    index,
                    f"entities.{index}.{field}.{position}",
                    f"not {what}; it was dropped, the {entity.entity_type} accepted",
                )
            )
        for value in read:
            kept.setdefault(value)
    return tuple(kept)
