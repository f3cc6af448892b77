"""Shared normalisation rules: bodies, fields, emails, phones, times and direction.

Every failure becomes a ``WebhookRejected`` that names the field, so an adapter built from
these helpers cannot leak a ``KeyError`` or ``ValueError`` whatever bytes it is given.
"""

from __future__ import annotations

import email.utils
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from libs.common.calendar_attendance import meeting_attendance
from libs.common.calendar_holds import is_hold
from libs.common.contracts.activities import (
    ActivityIn,
    Direction,
    Outcome,
    Participant,
    ParticipantFields,
    ParticipantRole,
    ResponseStatus,
    declined,
    phone_key,
)
from libs.common.contracts.crm import PHONE_MAX_LENGTH
from libs.common.contracts.fields import ExternalId, check_line, reason_of, unicode_domain
from libs.common.phones import (
    REGIONAL_PROBLEMS,
    ParsedPhone,
    RefusedPhone,
    Regions,
    e164_or_none,
    parse_phone,
    parse_phones_in,
)
from services.ingest.domain.ignored import TIME_AHEAD, TIME_BLOCK, Ignored, ignored_line
from services.ingest.domain.webhook_types import (
    AdapterResult,
    AheadOfReceipt,
    SourceDeletion,
    TimeBlock,
    WebhookRejected,
)

#: Larger bodies are refused before parsing (Salesforce's 100 notifications stay well below).
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_DURATION_SECONDS = 86_400
MAX_SUBJECT_CHARS = 2_000

_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# --- bodies -----------------------------------------------------------------------------------


def ensure_body_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, "body", f"larger than {MAX_BODY_BYTES} bytes")


def decode_utf8(body: bytes, field: str = "body") -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, field, "not valid UTF-8") from None


def load_json(body: bytes) -> object:
    ensure_body_size(body)
    text = decode_utf8(body)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookRejected(400, "body", "not valid JSON") from None


def load_json_object(body: bytes) -> JsonObject:
    value = load_json(body)
    if not isinstance(value, dict):
        raise WebhookRejected(400, "body", "expected a JSON object")
    return JsonObject(value, "")


class JsonObject:
    """A JSON object that knows its path, so every missing or mistyped field is named in the 422."""

    __slots__ = ("data", "path")

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _missing(self, key: str) -> WebhookRejected:
        return WebhookRejected(422, self.field(key), "required")

    def opt_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise WebhookRejected(422, self.field(key), "expected a string")
        text = str(value).strip()
        return text or None

    def req_str(self, key: str) -> str:
        value = self.opt_str(key)
        if value is None:
            raise self._missing(key)
        return value

    def opt_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise WebhookRejected(422, self.field(key), "expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
            return int(value)
        raise WebhookRejected(422, self.field(key), "expected an integer")

    def req_int(self, key: str) -> int:
        value = self.opt_int(key)
        if value is None:
            raise self._missing(key)
        return value

    def opt_bool(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise WebhookRejected(422, self.field(key), "expected a boolean")

    def opt_obj(self, key: str) -> JsonObject | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise WebhookRejected(422, self.field(key), "expected an object")
        return JsonObject(value, self.field(key))

    def req_obj(self, key: str) -> JsonObject:
        value = self.opt_obj(key)
        if value is None:
            raise self._missing(key)
        return value

    def objs(self, key: str) -> tuple[JsonObject, ...]:
        """A list of objects; absent means empty."""
        value = self.data.get(key)
        if value is None:
            return ()
        return objects_in(value, self.field(key))


def part_field(obj: JsonObject, keys: Sequence[str]) -> str:
    """The field a value joined from several of ``obj`` (a first and a last name) is named by
    when it is refused: the first part holding a character no line may (a control character),
    else the first part."""
    for key in keys:
        value = obj.opt_str(key)
        if value is not None:
            try:
                check_line(value)
            except ValueError:
                return obj.field(key)
    return obj.field(keys[0])


def objects_in(value: object, path: str) -> tuple[JsonObject, ...]:
    if not isinstance(value, list):
        raise WebhookRejected(422, path, "expected a list")
    items: list[JsonObject] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise WebhookRejected(422, f"{path}[{index}]", "expected an object")
        items.append(JsonObject(item, f"{path}[{index}]"))
    return tuple(items)


# --- emails and phones ------------------------------------------------------------------------


def normalize_email(raw: str | None) -> str | None:
    """Lower-cased address, or None when it is not shaped like one.

    The address as people paste it is read: with a display name (``Bo Buyer <bo@buyer.example>``,
    ``bo@buyer.example (Bo)``), in angle brackets, behind ``mailto:``, with the trailing dot of a
    fully qualified domain, behind a display name holding a comma (``Diaz, Dana <dana@...>``).
    Two addresses in one value are refused, not chosen between. Its domain
    is read as the contract's ``Email`` reads it (``unicode_domain``: IDNA labels decoded).
    """
    if raw is None:
        return None
    value = raw.strip().lower()
    if is_decorated_email(value):
        value = _bare_address(value)
    if not value or len(value) > 320 or not _EMAIL_SHAPE.match(value):
        return None
    local, _, domain = value.rpartition("@")
    read = unicode_domain(domain)
    return value if read is domain else f"{local}@{read}"


#: What a bare address never holds besides a leading ``mailto:`` and a trailing dot: a display
#: name's space or quote, brackets, a comment, a list separator.
_DECORATION_CHARACTERS = re.compile(r"[\s<>\"(),;]")


def is_decorated_email(value: str) -> bool:
    """Whether ``value`` holds more than a bare address (``normalize_email`` reads the address).

    What ``re.search(r"[\\s<>\"(),;]|^mailto:|\\.$", value)`` finds, in three steps: a search led
    by a character set scans for it, where the alternation was tried at every position (6,900
    instructions for an address of 25 characters, against about 2,600); ``\\.$``'s match before a
    final newline is the set's (a newline is a space)."""
    return (
        value.startswith("mailto:") or value.endswith(".") or _DECORATION_CHARACTERS.search(value) is not None
    )


def _bare_address(value: str) -> str:
    pairs = email.utils.getaddresses([value.removeprefix("mailto:")])
    # A display name with a comma (Outlook's "Diaz, Dana <dana@...>") parses as a fragment
    # without an @ and the address: a fragment is no second address.
    addresses = [address for _, address in pairs if "@" in address]
    if len(addresses) != 1 or any(c.isspace() for c in addresses[0]):
        return ""
    return addresses[0].removeprefix("mailto:").rstrip(".")


#: Calendar resources listed as attendees: a booked room, a shared or imported calendar
#: (Google's addresses; Microsoft's rooms are mailboxes at the tenant's own domain, so internal).
#: A bare, lower-cased address ending so is a room or a calendar, not a person.
CALENDAR_RESOURCE_SUFFIXES = (
    "@resource.calendar.google.com",
    "@group.calendar.google.com",
    "@group.v.calendar.google.com",
    "@import.calendar.google.com",
)

#: A CRM's email-logging mailboxes, which reps copy on mail to file it in the CRM (HubSpot's BCC
#: and forwarding addresses, ``123456@bcc.hubspot.com``; Email to Salesforce,
#: ``emailtosalesforce@...le.salesforce.com``; Pipedrive's Smart BCC, ``acme@pipedrivemail.com``):
#: the address or a subdomain of it is a filing cabinet, not a person.
CRM_LOGGING_DOMAINS = ("bcc.hubspot.com", "forward.hubspot.com", "le.salesforce.com", "pipedrivemail.com")


def is_crm_logging_mailbox(address: str) -> bool:
    """A bare address at one of ``CRM_LOGGING_DOMAINS`` (or a subdomain)."""
    return domain_matches(email_domain(address.lower()), CRM_LOGGING_DOMAINS)


#: Meeting notetakers invited by their own address to record a meeting: a bot, not a person of
#: the buyer's or the seller's (an internal meeting it records stays internal). Only addresses
#: the vendor documents for the invitation: Fireflies' "Fred" ("Add fred@fireflies.ai to your
#: Google or Outlook calendar invite", guide.fireflies.ai, "How Fireflies joins and records your
#: meetings - FAQs").
MEETING_NOTETAKERS = frozenset({"fred@fireflies.ai"})
#: Domains whose every address is a notetaker: Gong's assistant, one address per customer
#: ("Add your company's Gong Assistant email address (e.g., companyname@assistant.gong.io) as a
#: participant to the meeting invite", help.gong.io, "Manually request recording of web
#: conference calls"). Otter, Read.ai, Fathom, tl;dv and Zoom's AI Companion join from the
#: calendar they sync or the meeting link, not from an address on the invitation (their help
#: centres name none), so there is none of theirs to list.
MEETING_NOTETAKER_DOMAINS = ("assistant.gong.io",)


#: The domains whose every address (or a subdomain's) is not a person's, and what ends such an
#: address: its domain after the ``@``, a subdomain's after a dot (``domain_matches`` of its
#: ``email_domain``, which is all of a value without ``@``).
_NOT_A_PERSON_DOMAINS = (*MEETING_NOTETAKER_DOMAINS, *CRM_LOGGING_DOMAINS)
_NOT_A_PERSON_SUFFIXES = (
    *CALENDAR_RESOURCE_SUFFIXES,
    *(f"@{domain}" for domain in _NOT_A_PERSON_DOMAINS),
    *(f".{domain}" for domain in _NOT_A_PERSON_DOMAINS),
)
_NOT_A_PERSON_EXACT = MEETING_NOTETAKERS | frozenset(_NOT_A_PERSON_DOMAINS)


def is_not_a_person(address: str) -> bool:
    """A bare address that is a calendar resource, a CRM's logging mailbox or a meeting
    notetaker, not a person: one ``endswith`` and one set lookup of the lower-cased address (a
    suffix ``.domain`` holds no ``@``, so it lies within the address's domain)."""
    lowered = address.lower()
    return lowered.endswith(_NOT_A_PERSON_SUFFIXES) or lowered in _NOT_A_PERSON_EXACT


#: A host name once cleaned: dot-separated labels, no space, no URL or address punctuation.
_DOMAIN_SHAPE = re.compile(r"^[^\s./@:<>,;\"'()\[\]\\]+(\.[^\s./@:<>,;\"'()\[\]\\]+)+$")


def normalize_domain(raw: str | None) -> str | None:
    """An account's domain as email addresses carry it: lower-cased, or None when it is not one.

    Read as CRM users type it: a website (``https://www.acme.example/about``: scheme, path,
    port and ``www.`` dropped, since nobody's mailbox is at ``www.``), an ``@acme.example``, an
    address, a wildcard ``*.acme.example``, a trailing dot.
    """
    if raw is None:
        return None
    value = raw.strip().lower()
    value = value.split("://", 1)[-1].rpartition("@")[2]
    value = re.split(r"[/?#]", value, maxsplit=1)[0]
    value = re.sub(r":\d*$", "", value).rstrip(".").removeprefix("*.").removeprefix("www.")
    if len(value) > 253 or not _DOMAIN_SHAPE.match(value):
        return None
    return unicode_domain(value)


def normalize_domains(raw: str) -> tuple[str, ...]:
    """The domains of one value of an account's domains: each of several listed in it
    (``acme.example, acme.co.uk``, as a spreadsheet cell holds them), or the one
    :func:`normalize_domain` reads; none when one cannot be read."""
    listed = [part for part in _DOMAIN_LIST_SEPARATOR.split(raw) if part]
    if len(listed) < 2:
        one = normalize_domain(raw)
        return () if one is None else (one,)
    read = [normalize_domain(part) for part in listed]
    return tuple(r for r in read if r is not None) if None not in read else ()


_DOMAIN_LIST_SEPARATOR = re.compile(r"[,;\s]+")


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1]


def domain_matches(domain: str, domains: Iterable[str]) -> bool:
    """A domain or any of its subdomains (``eu.acme.example`` belongs to ``acme.example``)."""
    if isinstance(domains, tuple | frozenset):
        wanted = _lowered(domains)
    else:
        wanted = frozenset(d.lower() for d in domains)
    # Each parent domain in turn is one set lookup: eu.acme.example, acme.example, example.
    domain = domain.lower()
    while domain:
        if domain in wanted:
            return True
        domain = domain.partition(".")[2]
    return False


@functools.lru_cache(maxsize=1_024)
def _lowered(domains: tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    # A tenant's internal domains are one tuple checked for every address of every activity.
    return frozenset(d.lower() for d in domains)


def is_internal(address: str, internal_domains: Iterable[str]) -> bool:
    """``domain_matches(email_domain(address), internal_domains)``; for a tuple or frozenset of
    domains (a tenant's, checked for every address of every activity) by :func:`in_domains`."""
    if isinstance(internal_domains, tuple | frozenset):
        return in_domains(address, domain_suffixes(internal_domains))
    return domain_matches(email_domain(address), internal_domains)


#: What ends a lower-cased address at one of some domains or at one of their subdomains
#: (``@domain``, ``.domain``), and those domains whole (:func:`domain_suffixes`).
DomainSuffixes = tuple[tuple[str, ...], frozenset[str]]


@functools.lru_cache(maxsize=1_024)
def domain_suffixes(domains: tuple[str, ...] | frozenset[str]) -> DomainSuffixes:
    """``domains`` (any case) as :func:`in_domains` reads them. A domain holding an ``@`` is no
    address's domain (``email_domain`` is what follows the last one), an empty one none: they
    match nothing, as in ``domain_matches``."""
    lowered = sorted({d.lower() for d in domains} - {""})
    kept = [d for d in lowered if "@" not in d]
    return (*(f"@{d}" for d in kept), *(f".{d}" for d in kept)), frozenset(kept)


def in_domains(address: str, suffixes: DomainSuffixes) -> bool:
    """Whether the address's domain (``email_domain``: all of a value without ``@``), lower-cased,
    or one of its parent domains is one of the domains ``suffixes`` was made of: what
    ``domain_matches`` finds looking each parent domain up in turn, by one ``endswith`` and one
    set lookup of the lower-cased address (a suffix ``.domain`` holds no ``@``, so it lies within
    the address's domain; ``@domain`` is that domain whole)."""
    lowered = address.lower()
    return lowered.endswith(suffixes[0]) or lowered in suffixes[1]


def normalize_phone(raw: str | None, region: Regions) -> str | None:
    """E.164, or None when the number is absent or refused (the rule: ``phones.parse_phone``)."""
    return e164_or_none(raw, region)


class ReadPhones(NamedTuple):
    """A CRM record's phones read (:func:`read_phones`)."""

    #: The usable phones as E.164 (a number repeated in another format kept once).
    phones: tuple[str, ...]
    #: Each of ``phones`` as the source sent it (same order; as first sent).
    raw_phones: tuple[str, ...]
    #: The lines listed with an extension, keyed ``+14155550100;ext=12``.
    phone_extensions: tuple[str, ...]
    #: The values no region tried read, as sent, that another region may
    #: (``phones.REGIONAL_PROBLEMS``; a contact's ``unread_phones``).
    unread: tuple[str, ...]
    #: The values no region tried read (``unread`` ones included), each once with its refusal
    #: (``raw`` as sent; as the first region tried refuses it).
    refused: tuple[RefusedPhone, ...]


def read_phones(raws: Iterable[str | None], region: Regions) -> ReadPhones:
    """The phones of a CRM record: ``region`` is the tenant's, or a contact's regions
    (``countries.phone_regions_of``). A field listing several numbers gives each
    (``phones.parse_phones_in``); a blank one is none."""
    read: dict[str, str] = {}
    extended: dict[str, None] = {}
    unread: dict[str, None] = {}
    refused: dict[str, RefusedPhone] = {}
    for raw in raws:
        if raw is None or not raw.strip():
            continue
        parsed = parse_phones_in(raw, region)
        # A vendor's field may be longer than a stored phone (CRM sync caps it): its number as read
        # stands for what was sent, and an unread one is not kept (never the whole record's 422).
        fits = len(raw) <= PHONE_MAX_LENGTH
        if not isinstance(parsed, tuple):
            refused.setdefault(raw, parsed)
            if parsed.problem in REGIONAL_PROBLEMS and fits:
                unread[raw] = None
            continue
        for number in parsed:
            read.setdefault(number.e164, number.raw if fits else number.e164)
            if number.extension:
                extended[phone_key(number.e164, number.extension)] = None
    return ReadPhones(
        tuple(read), tuple(read.values()), tuple(extended), tuple(unread), tuple(refused.values())
    )


def stored_phone_sources(
    phones: Sequence[str], raw_phones: Sequence[str], unread_phones: Sequence[str] = ()
) -> tuple[str, ...]:
    """What a stored CRM record's phones were sent as, to read again (:func:`read_phones`): the
    raw forms when kept alongside (same length), else the stored values; then the values no
    region read (a contact's ``unread_phones``)."""
    sources = raw_phones if raw_phones and len(raw_phones) == len(phones) else phones
    return (*sources, *unread_phones)


#: What dialers report for a caller who withheld their number (Aircall's ``raw_digits``
#: "anonymous"; Twilio's ``From`` "Anonymous", or the keypad spellings +266696687 ANONYMOUS,
#: +86282452253 UNAVAILABLE, +7378742833 RESTRICTED, +2562533 BLOCKED): nobody to match, and a
#: call all the same. Only these exact markers; any other unreadable number is still refused.
WITHHELD_NUMBERS = frozenset(
    {
        "anonymous",
        "restricted",
        "private",
        "unknown",
        "unavailable",
        "withheld",
        "blocked",
        "+266696687",
        "+86282452253",
        "+7378742833",
        "+2562533",
    }
)


def is_withheld_number(phone: str) -> bool:
    """Whether ``phone`` is a dialer's marker for a withheld number (``WITHHELD_NUMBERS``, any
    case, surrounding spaces ignored): no phone, not an unreadable one. Every path (vendor calls
    through ``make_participant``, ``POST /v1/events``) reads withheld numbers with this."""
    return phone.strip().lower() in WITHHELD_NUMBERS


def make_participant(
    *,
    role: ParticipantRole,
    field: str,
    region: str,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    response_status: ResponseStatus | None = None,
    named: Mapping[str, str] | None = None,
) -> Participant | None:
    """One participant, or None when it has no address at all (``response_status``: how an
    invitee answered a calendar invitation, when known). ``named``: the payload's field each
    value was read from (``{"name": "data.user.name"}``), named by a refusal of it.

    An unusable phone is dropped when the participant still has an email; a participant whose
    only address is an unusable phone is a 422 naming ``field``, because silently losing the
    counterpart of a call would under-count the rep. A withheld number (``WITHHELD_NUMBERS``) is
    no phone: the caller is unknown, not unreadable, and the call keeps the rep's side.
    """
    if email is None and name is None and response_status is None and named is None and phone is not None:
        return _phone_participant(role, field, region, phone)
    return _participant(role, field, region, email, phone, name, response_status, named)


def _participant(
    role: ParticipantRole,
    field: str,
    region: str,
    email: str | None,
    phone: str | None,
    name: str | None,
    response_status: ResponseStatus | None,
    named: Mapping[str, str] | None,
) -> Participant | None:
    clean_email = normalize_email(email)
    withheld = phone is not None and is_withheld_number(phone)
    parsed = parse_phone(phone, region) if phone and not withheld else None
    clean_phone = parsed.e164 if isinstance(parsed, ParsedPhone) else None
    extension = parsed.extension if isinstance(parsed, ParsedPhone) else None
    if isinstance(parsed, RefusedPhone) and clean_email is None:
        raise WebhookRejected(422, field, parsed.reason)
    if clean_email is None and clean_phone is None:
        return None
    clean_name = name.strip()[:256] if name and name.strip() else None
    try:
        return Participant(
            email=clean_email,
            phone=clean_phone,
            name=clean_name,
            role=role,
            response_status=response_status,
            extension=extension,
        )
    except ValidationError as error:
        raise validation_to_rejection(field, error, named) from None


@functools.lru_cache(maxsize=8_192)
def _phone_participant(role: ParticipantRole, field: str, region: str, phone: str) -> Participant | None:
    """:func:`make_participant` of a phone alone (a call's side), remembered as ``parse_phone``
    is: a rep's own numbers and a customer's come back call after call, and validating the
    model was about half of reading the number. The model is frozen, so one is shared; a refused
    number raises, and is not remembered."""
    return _participant(role, field, region, None, phone, None, None, None)


def unique_participants(participants: Iterable[Participant | None]) -> tuple[Participant, ...]:
    """Drops Nones and repeats of one address, keeping the first role seen (organizer before
    attendee), and a CRM's logging mailbox copied on the mail (a BCC to HubSpot) unless nobody
    else takes part: it is not a person."""
    seen: set[str] = set()
    kept: list[Participant] = []
    for participant in participants:
        if participant is None:
            continue
        key = participant.email or participant.phone or ""
        if key in seen:
            continue
        seen.add(key)
        kept.append(participant)
    people = [p for p in kept if p.email is None or not is_crm_logging_mailbox(p.email)]
    return tuple(people if people else kept)


def parse_address_list(raw: str | None, field: str) -> tuple[tuple[str, str], ...]:
    """(name, address) pairs from an RFC 5322 header or a ; or , separated list. The standard
    library's parser recurses on each nested comment (``(a (b))``) and group (``team: a, b``):
    a list nested past its recursion limit is a 422 naming ``field``, not a crash."""
    if not raw:
        return ()
    try:
        pairs = email.utils.getaddresses([raw.replace(";", ",")])
    except RecursionError:
        raise WebhookRejected(422, field, "not an address list: nested too deep") from None
    return tuple((name, address) for name, address in pairs if address)


# --- times ------------------------------------------------------------------------------------


def aware_utc(value: datetime) -> datetime:
    """``value`` in UTC (a naive value is taken as UTC); raises OverflowError past year 1 or 9999."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_iso_datetime(raw: str, field: str, *, assume_utc: bool = False) -> datetime:
    """RFC 3339 / ISO 8601 to aware UTC; a time without offset is a 422 unless ``assume_utc``."""
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Graph writes seven fractional digits; Python reads at most six.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise WebhookRejected(422, field, "not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        if not assume_utc:
            raise WebhookRejected(422, field, "date-time without a UTC offset")
        parsed = parsed.replace(tzinfo=UTC)
    return _utc_in_range(parsed, field)


def from_epoch_seconds(value: int | float, field: str) -> datetime:
    return _from_epoch(float(value), field)


def from_epoch_millis(value: int, field: str) -> datetime:
    return _from_epoch(value / 1000, field)


def _from_epoch(seconds: float, field: str) -> datetime:
    # Years 2000..2100: anything else is a unit mistake, not a real call.
    if not 946_684_800 <= seconds <= 4_102_444_800:
        raise WebhookRejected(422, field, "timestamp out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)


#: A year of three or four digits: not part of the time (``04:00``) or of the zone (``-0500``).
_RFC2822_LONG_YEAR = re.compile(r"(?<![0-9:+\-])[0-9]{3,4}(?![0-9:])")


@functools.lru_cache(maxsize=256)
def parse_rfc2822(raw: str, field: str) -> datetime:
    """``raw`` (an RFC 2822 date) in UTC, or a 422 naming ``field``. Cached: a pure function of
    its arguments (a refusal raises and is not cached), and a vendor's callbacks of one second
    carry the same text (Twilio's ``Timestamp``), where ``email.utils`` parses it in Python."""
    try:
        parsed = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        raise WebhookRejected(422, field, "not an RFC 2822 date") from None
    # The parser reads a year under 100 as 19xx/20xx: right for the obsolete two-digit "01",
    # wrong for "0001" or "0026", which became 2001 and 2026.
    written = _RFC2822_LONG_YEAR.search(raw)
    if written is not None and int(written.group()) != parsed.year:
        raise WebhookRejected(422, field, "date-time out of range")
    return _utc_in_range(parsed, field)


def _utc_in_range(value: datetime, field: str) -> datetime:
    try:
        # Year 1 at +14:00 (or 9999 at -14:00) has no UTC value: a 422 like any year out of range.
        in_utc = aware_utc(value)
    except OverflowError:
        raise WebhookRejected(422, field, "date-time out of range") from None
    return _in_range(in_utc, field)


def _in_range(value: datetime, field: str) -> datetime:
    if not 2000 <= value.year <= 2100:
        raise WebhookRejected(422, field, "date-time out of range")
    return value


#: How far ahead of its receipt an activity's time may be: ``INGEST_MAX_FUTURE_SKEW_SECONDS``'s
#: default, the canonical API's and every vendor webhook's.
MAX_AHEAD_SECONDS = 86_400

#: The allowance :func:`not_ahead` applies: the service sets ``INGEST_MAX_FUTURE_SKEW_SECONDS``
#: around a delivery's parsing (:func:`ahead_allowance`), so one setting bounds every path.
_ALLOWED_AHEAD: ContextVar[int] = ContextVar("allowed_ahead_seconds", default=MAX_AHEAD_SECONDS)


@contextmanager
def ahead_allowance(seconds: int) -> Iterator[None]:
    """Within it, vendor times more than ``seconds`` ahead of their receipt are not read."""
    token = _ALLOWED_AHEAD.set(seconds)
    try:
        yield
    finally:
        _ALLOWED_AHEAD.reset(token)


#: What :func:`ahead_of`'s reason says of a time ahead.
IN_THE_FUTURE = "s in the future"


def ahead_of(value: datetime, now: datetime, seconds: int = MAX_AHEAD_SECONDS) -> str | None:
    """Why ``value`` is refused as too far ahead of ``now`` (a clock or a unit gone wrong), else
    None. A revision dated in 2099 would freeze its object (every later real revision looks
    older); a call dated then would be counted in a period nobody has reached."""
    if value > now + timedelta(seconds=seconds):
        return f"more than {seconds} {IN_THE_FUTURE}"
    return None


def not_ahead(value: datetime, received_at: datetime, field: str) -> datetime:
    """``value`` unless :func:`ahead_of` its receipt: :class:`AheadOfReceipt` naming ``field``, the
    payload's (a 422 for a one-object delivery, the item listed as ignored in a batch). A call's,
    an email's or a message's time, and any revision clock (a calendar meeting's start may be
    months ahead: only its revision is bounded)."""
    reason = ahead_of(value, received_at, _ALLOWED_AHEAD.get())
    if reason is not None:
        raise AheadOfReceipt(422, field, f"{reason} (received {received_at.isoformat()})")
    return value


def ahead_reason(ahead: AheadOfReceipt) -> Ignored:
    """How an item of a batch left out for a time ahead of receipt is listed in ``ignored``
    (after its label: ``domain.ignored.ignored_line``), counted as ``time_ahead``."""
    return Ignored(f"{ahead.field} {ahead.reason}", TIME_AHEAD)


def epoch_millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def reported_duration(seconds: int, field: str) -> int:
    """A call length a vendor reports, refused when it cannot be one.

    No telephony vendor connects a call for more than a day (Twilio's longest time limit is
    24 h), so a longer one is a corrupt record: answering 422 names the field to the admin who
    wired the webhook, where clamping it to 24 h would add a day of talk time to a rep's
    figures without anyone seeing why. A negative length reads as 0 (not connected).
    """
    if seconds > MAX_DURATION_SECONDS:
        raise WebhookRejected(
            422, field, f"longer than {MAX_DURATION_SECONDS} seconds (24 h): not a call's length"
        )
    return max(seconds, 0)


def duration_between(start: datetime, end: datetime | None) -> int:
    if end is None or end <= start:
        return 0
    return min(int((end - start).total_seconds()), MAX_DURATION_SECONDS)


def check_timestamp_window(sent_at: datetime, received_at: datetime, window_seconds: int, field: str) -> None:
    """Refuse replays: a signed timestamp must be within the window of our clock, either way."""
    if abs(received_at - sent_at) > timedelta(seconds=window_seconds):
        raise WebhookRejected(401, field, "timestamp outside the accepted window")


# --- direction and outcome --------------------------------------------------------------------


def direction_for(
    sender: str | None, recipients: Sequence[str], internal_domains: Iterable[str]
) -> Direction:
    """From internal -> outbound, from external to internal -> inbound, everyone internal -> internal."""
    domains = tuple(internal_domains)
    sender_internal = sender is not None and is_internal(sender, domains)
    recipients_internal = [is_internal(r, domains) for r in recipients]
    if sender_internal:
        return Direction.INTERNAL if all(recipients_internal) else Direction.OUTBOUND
    return Direction.INBOUND


def email_outcome(direction: Direction) -> Outcome:
    return Outcome.RECEIVED if direction is Direction.INBOUND else Outcome.SENT


def meeting_outcome(start: datetime, end: datetime | None, received_at: datetime) -> Outcome:
    """A confirmed meeting is held once it has ended (or started, without an end) by ``received_at``."""
    return Outcome.HELD if (end or start) <= received_at else Outcome.SCHEDULED


#: Why a calendar entry nobody but its organizer was ever to attend (time a rep blocks for
#: herself: "Prep", "Lunch"; a room booked alone) is no activity.
BLOCKED_TIME = "nobody but its organizer attends: time blocked in a calendar, not a meeting"
#: Why an all-day (or several days') calendar entry only colleagues are invited to is no activity:
#: "Ana OOO", "Company holiday", "Offsite" sent to the team mark time away, as Google's own
#: out-of-office type and Outlook's ``oof`` do (with a customer there, a workshop day, a meeting).
ALL_DAY_TIME = "an all-day event only colleagues are invited to: time away or blocked, not a meeting"
#: Why an event shown as free (Google ``transparency`` ``transparent``, Outlook ``showAs``
#: ``free``: the calendar says it blocks no time) only colleagues are invited to is no activity:
#: "Ana in Berlin", an optional talk shared with the team (with a customer there, a meeting).
FREE_TIME = "shown as free, only colleagues invited: time the calendar does not block, not a meeting"
#: Why a hold only colleagues attend is no activity: its title labels it a hold or placeholder
#: ("HOLD: Acme demo", "Placeholder: Acme"; ``libs.common.calendar_holds``), time a rep blocks for
#: a meeting not arranged yet, the SE invited to keep it free (with a customer there, the meeting).
HOLD_TIME = "a hold or placeholder only colleagues are invited to: time blocked for a meeting, not one"


def held_for_a_meeting(title: str | None) -> str | None:
    """``HOLD_TIME`` when a calendar event's title labels it a hold (``is_hold``), else None."""
    return HOLD_TIME if is_hold(title) else None


def colleagues_only_hold(
    title: str | None,
    participants: Iterable[ParticipantFields],
    internal_domains: Iterable[str],
    *,
    filed_with_a_customer: bool = False,
) -> str | None:
    """``HOLD_TIME`` when a meeting's title labels a hold (``held_for_a_meeting``) and no customer
    attends it (``a_customer_attends``), else None: the rule for a source that tells a meeting
    by its people and title alone (HubSpot's meetings, canonical meetings); the calendars apply it
    among their other kinds of time (``_time_not_blocked``: all-day, free, out of office).

    ``filed_with_a_customer``: the source files the meeting with a CRM contact not known to be a
    colleague (a HubSpot association to a contact held with no address at the tenant's domains,
    a canonical ``crm.contact_ids``): a customer attends, whoever the participants list."""
    hold = held_for_a_meeting(title)
    if hold is None or filed_with_a_customer or a_customer_attends(participants, internal_domains):
        return None
    return hold


def a_customer_attends(participants: Iterable[ParticipantFields], internal_domains: Iterable[str]) -> bool:
    """Whether someone outside ``internal_domains`` takes part in a calendar event (its
    organizer included) and did not decline it; a room, a shared calendar (a team's "Company
    holidays", its address at Google's ``group.calendar.google.com``) or a notetaker is nobody.

    Time a calendar marks as away or not blocked (an all-day entry, Outlook's "Out of office",
    an event shown as free) is no meeting when only colleagues are invited ("Ana OOO", "Company
    holiday", "Offsite", "Ana in Berlin"); with a customer there (an on-site workshop day, a
    visit a rep marks "Out of office") it is the meeting with her.

    Someone known by a phone number alone (a caller who dialled in, a CRM contact with no
    address) is outside too: ingest knows no colleague's number, and attribution tells a caller
    no contact lists apart (an internal meeting until a contact lists the number)."""
    domains = tuple(internal_domains)
    return any(
        not declined(p)
        and (
            (p.email is None and p.phone is not None)
            or (p.email is not None and not is_internal(p.email, domains) and not is_not_a_person(p.email))
        )
        for p in participants
    )


def calendar_people(
    organizer: Participant | None,
    attending: Iterable[Participant | None],
    declining: Iterable[Participant | None],
    internal_domains: Iterable[str],
) -> tuple[tuple[Participant, ...], bool] | None:
    """A calendar event's participants, and whether the answers called it off; None for time
    blocked (``BLOCKED_TIME``): the rule is ``libs.common.calendar_attendance.meeting_attendance``.

    ``organizer`` carries her own answer (Google lists her among the attendees with
    ``organizer: true``; Graph gives her answer on the event), ``attending`` are the other
    invitees who did not decline, ``declining`` those who did (each marked declined). Repeats of
    one address are dropped first (and from the people a called-off meeting lists); the
    organizer is internal when her address is at ``internal_domains``.
    """
    present = unique_participants([organizer, *attending])
    email = organizer.email if organizer is not None else None
    internal = email is not None and is_internal(email, tuple(internal_domains))
    attendance = meeting_attendance(
        present, unique_participants(declining), organizer, organizer_internal=internal
    )
    if attendance is None or not attendance[1]:
        return attendance
    return unique_participants(attendance[0]), True


def meeting_direction(participants: Sequence[Participant], internal_domains: Iterable[str]) -> Direction:
    """The meeting's direction from its people: a room, a shared calendar or a notetaker
    (``is_not_a_person``) is nobody, so the team calendar's "All hands" (its organizer
    ``...@group.calendar.google.com``) with colleagues only is internal, not inbound."""
    people = [p for p in participants if p.email is None or not is_not_a_person(p.email)]
    organizer = next((p.email for p in people if p.role is ParticipantRole.ORGANIZER and p.email), None)
    others = [p.email for p in people if p.email and p.email != organizer]
    if organizer is None:
        # No organizer known: the meeting is outbound when some internal person meets someone external.
        domains = tuple(internal_domains)
        emails = [p.email for p in people if p.email]
        internal = [e for e in emails if is_internal(e, domains)]
        if internal and len(internal) == len(emails):
            return Direction.INTERNAL
        return Direction.OUTBOUND if internal else Direction.INBOUND
    return direction_for(organizer, others, internal_domains)


# --- building the contract --------------------------------------------------------------------


def build_activity(field: str, named: Mapping[str, str] | None = None, /, **values: Any) -> ActivityIn:
    """``ActivityIn`` with subject and duration clamped, its validation errors turned into a 422
    naming the payload's field each value was read from (``named``, as ``validation_to_rejection``)."""
    subject = values.get("subject")
    if isinstance(subject, str):
        values["subject"] = subject.strip()[:MAX_SUBJECT_CHARS] or None
    duration = values.get("duration_seconds")
    if isinstance(duration, int):
        values["duration_seconds"] = max(0, min(duration, MAX_DURATION_SECONDS))
    if not values.get("participants"):
        raise WebhookRejected(422, field, "no participant with a usable email or phone")
    try:
        return ActivityIn(**values)
    except ValidationError as error:
        raise validation_to_rejection(field, error, named) from None


_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)


def checked_id(external_id: str, field: str) -> str:
    """``external_id`` unless the contract refuses it as an id (a NUL, a control character, too
    long): then a 422 naming ``field``, where the sender wrote it."""
    try:
        return _EXTERNAL_ID.validate_python(external_id)
    except ValidationError as error:
        raise WebhookRejected(422, field, _error_reason(error)) from None


def source_deletion(source: str, external_id: str, field: str, revision: int | None = None) -> SourceDeletion:
    """The source deleted what it sent as ``external_id`` (at ``revision``, when it tells); an id
    the contract refuses (a NUL, a control character, too long) is a 422 naming ``field``, as it
    is on an activity."""
    return SourceDeletion(source, checked_id(external_id, field), revision)


def deletion_on_receipt(source: str, external_id: str, field: str, received_at: datetime) -> SourceDeletion:
    """A deletion its source does not date (Graph's ``@removed`` entry, Google's stripped
    ``cancelled`` event without ``updated``), marked ``on_receipt``: ingest publishes it right
    after the highest revision of the object it published (``handlers.deletion_revision``), in
    the source's own order, so that any later revision the source dates after that one (a
    restore, an edit) is newer, whatever our clock said when the page was read. The moment it
    was read, in epoch ms, stands only when ingest published nothing of it it remembers."""
    deletion = source_deletion(source, external_id, field, epoch_millis(received_at))
    return replace(deletion, on_receipt=True)


def observed_at(body: JsonObject, received_at: datetime) -> datetime:
    """When the page was read from its source: a sync connector's ``observed_at``, never later
    than ingest received it, else ``received_at``. A deletion its source does not date is dated
    by it only when ingest published nothing of the object it remembers (``deletion_on_receipt``).
    Not an ISO 8601 time with an offset: a 422 naming ``observed_at``."""
    raw = body.opt_str("observed_at")
    if raw is None:
        return received_at
    return min(parse_iso_datetime(raw, body.field("observed_at")), received_at)


def seen_in_calendar(result: AdapterResult, body: JsonObject, read_at: datetime) -> AdapterResult:
    """``result`` read at ``read_at`` (``observed_at``) in the calendar of the page's ``mailbox``
    (``read_in``), its deletions marked as seen there (a calendar connector names the mailbox it
    synced; a deletion seen in an attendee's calendar is not the meeting's). An address that is
    not one is a 422 naming ``mailbox`` on a page that deletes (on another, no calendar is read)."""
    result = replace(result, read_at=read_at)
    if not body.has("mailbox"):
        return result
    mailbox = normalize_email(body.opt_str("mailbox"))
    if not result.deletions:
        return replace(result, read_in=mailbox)
    if mailbox is None:
        raise WebhookRejected(422, body.field("mailbox"), "not an email address")
    deletions = tuple(replace(d, seen_in=mailbox) for d in result.deletions)
    return replace(result, deletions=deletions, read_in=mailbox)


def validation_to_rejection(
    field: str, error: ValidationError, named: Mapping[str, str] | None = None
) -> WebhookRejected:
    """A model's refusal as a 422 naming the payload's field: ``named`` maps a model field to the
    payload's path it was read from (``{"subject": "[0].properties.hs_call_title"}``), so an error
    of it (or of an item of it) names what the sender wrote, not the model's name; any other is
    named under ``field``."""
    if named:
        location = error.errors(include_input=False)[0]["loc"]
        if location and str(location[0]) in named:
            return WebhookRejected(422, named[str(location[0])], _error_reason(error))
    return WebhookRejected(422, _error_field(field, error), _error_reason(error))


def _error_field(field: str, error: ValidationError) -> str:
    first = error.errors(include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{field}.{location}" if location else field


def _error_reason(error: ValidationError) -> str:
    return reason_of(error.errors()[0])


def one_or_page(body: JsonObject, key: str, limit: int) -> tuple[JsonObject, ...]:
    """Connectors post one resource, or a page of them under ``key``; more than ``limit`` is a 413."""
    items = body.objs(key) if key in body.data else (body,)
    if len(items) > limit:
        raise WebhookRejected(413, key, f"more than {limit} items")
    return items


class Converted:
    """What a delivery's items became, sorted as they are converted: activities, deletions,
    calendar time blocks (each also listed as ignored with its reason) and what was ignored."""

    def __init__(self) -> None:
        self.activities: list[ActivityIn] = []
        self.deletions: list[SourceDeletion] = []
        self.blocks: list[TimeBlock] = []
        self.ignored: list[Ignored] = []

    def add(self, converted: ActivityIn | SourceDeletion | TimeBlock | None, reason: str, label: str) -> None:
        """Sort one item's conversion; ``label`` names the item in ``ignored`` (path and id)."""
        if isinstance(converted, SourceDeletion):
            self.deletions.append(converted)
        elif isinstance(converted, TimeBlock):
            self.blocks.append(converted)
            self.ignored.append(Ignored(f"{label}: {converted.reason}", TIME_BLOCK))
        elif converted is not None:
            self.activities.append(converted)
        else:
            self.ignored.append(ignored_line(label, reason))


def convert_each(
    items: Sequence[JsonObject],
    convert: Callable[[JsonObject], tuple[ActivityIn | SourceDeletion | TimeBlock | None, str]],
) -> AdapterResult:
    """Each item becomes an activity or a deletion, or is listed as ignored with the converter's
    reason (a calendar's time block, with its own, kept too: ``TimeBlock``)."""
    out = Converted()
    for item in items:
        try:
            activity, reason = convert(item)
        except AheadOfReceipt as ahead:
            activity, reason = None, ahead_reason(ahead)
        out.add(activity, reason, f"{item.path or 'body'} {item.opt_str('id')}")
    return AdapterResult(
        activities=tuple(out.activities),
        ignored=tuple(out.ignored),
        deletions=tuple(out.deletions),
        time_blocks=tuple(out.blocks),
    )
