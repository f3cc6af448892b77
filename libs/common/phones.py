"""The one phone rule of every ingest path: a number as people type it -> E.164, or a reason.

CRM sync, canonical events and every vendor adapter call ``parse_phone`` with the tenant's
default region (``tenant_config.phone_region``), so that a contact stored from
``(415) 555-0100`` and a dialer's ``+14155550100`` are the same identity. Matching compares
E.164 strings; the raw form travels next to it for display.

A CRM contact whose record (or account) states a country is read in that country first
(:func:`parse_phone_in`, regions from ``countries.phone_regions_of``): a US tenant's UK buyer
typed ``020 7946 0958`` is ``+442079460958``. A number that is no valid number there but one
in the next region (the same buyer's US mobile typed ``(415) 555-0100``, a ``011 44 ...`` dialled
from the US) is read there; the first region's reading stands otherwise.

Nothing is guessed:

* an extension (``x123``, ``ext. 7``) is kept apart; the number matched is the line the
  extension hangs off, which is what a dialer reports;
* a short code (``911``, ``12345``) is not a person's line: refused with its reason;
* a national number missing its area code (``555-0100``: possible only as a local number) is
  refused;
* a number with a full length for its country is taken as written, whether written with its
  ``+`` or nationally in the tenant's region, even when the numbering-plan metadata does not know
  its range: a dialer's ``+12121234567`` and a CRM's ``(212) 123-4567`` are the same digits and
  must be the same identity (test data, fictional ranges and numbers newer than the library are
  common), and nothing is guessed in reading them;
* a number among words (a label such as ``(mobile)`` or ``Tel:``) is read when it is the only
  number in the text; a participant's phone holding two numbers is refused, not chosen between;
* a CRM record's phone field listing several numbers (``415-555-0107 / 415-555-0108``,
  ``4155550107;4155550108``, ``+1 415 555 0107 or +1 415 555 0108``: a spreadsheet cell, a
  field a rep filled by hand) gives each of them (:func:`parse_phones_in`): a record's numbers
  are all its own, as its emails are. Only when every listed part is a valid number on its own
  (or, the field being no number as a whole, a full-length number, those of no known range of
  one shape, that of the valid parts of their country);
  else the field is read as one (``+14155550200,12`` is a line and a dialled extension;
  ``0221/1234567`` in Germany is area code and number, ``+492211234567``; ``+49 89 1234560 /
  1234599``, a range, is refused). Numbers another region may read (two UK numbers in a US
  tenant) are refused for the region, so a contact keeps them unread;
* a German direct-dial suffix (``Durchwahl 12``, ``DW 12``) is the number's last digits, in place
  of the switchboard's ``-0`` when written after it (``+49 89 123456-0 Durchwahl 12`` is
  ``+498912345612``);
* ``00`` followed by a country code is the international prefix of most of the world (a number
  copied from a European signature, ``0044 20 7946 0958``): read as ``+44 20 7946 0958`` when
  the result is a valid number, in any region.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import PhoneMetadata, shortnumberinfo

#: Longer than any real number with an extension: refused before parsing.
MAX_PHONE_LENGTH = 64


class PhoneProblem(StrEnum):
    """Why a phone was refused; also the ``reason`` label of the dropped-phones counter."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    NOT_A_NUMBER = "not_a_number"
    SHORT_CODE = "short_code"
    INVALID = "invalid"
    PLACEHOLDER = "placeholder"


#: Refusals a number typed for another country gets (``020 7946 0958`` read in the US): read in
#: that country's region it may be a number. A contact keeps such a value (``unread_phones``) to
#: read again when it learns where it is. A placeholder (``PLACEHOLDER``) is refused in every
#: region and never kept: read in another country it would become one "number" shared by every
#: contact with that placeholder (``123-456-7890`` as the UK's ``+441234567890``).
REGIONAL_PROBLEMS = frozenset({PhoneProblem.INVALID, PhoneProblem.SHORT_CODE})

_REASONS: dict[PhoneProblem, str] = {
    PhoneProblem.EMPTY: "empty phone number",
    PhoneProblem.TOO_LONG: f"longer than {MAX_PHONE_LENGTH} characters",
    PhoneProblem.NOT_A_NUMBER: "not a phone number",
    PhoneProblem.SHORT_CODE: "a short code, not a person's line",
    PhoneProblem.PLACEHOLDER: "a placeholder, not a phone number",
    PhoneProblem.INVALID: "not a valid number (missing area code, or no such number in region {region}; "
    "an international number needs its +)",
}


@dataclass(frozen=True, slots=True)
class ParsedPhone:
    """A usable number: ``e164`` is what is stored and matched, ``raw`` what the source sent."""

    e164: str
    raw: str
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class RefusedPhone:
    raw: str
    problem: PhoneProblem
    reason: str


@functools.lru_cache(maxsize=8_192)
def parse_phone(raw: str, region: str) -> ParsedPhone | RefusedPhone:
    """``raw`` read in ``region`` (ISO 3166 alpha-2) when it has no ``+``.

    A number among words (``(415) 555-0100 (mobile)``, ``Tel: 415 555 0100``) is read when it is
    the only number there. Cached: parsing is the dearest step of a call callback, and numbers
    recur across deliveries.
    """
    read = _read(raw, region)
    if isinstance(read, ParsedPhone) or read.problem not in (PhoneProblem.NOT_A_NUMBER, PhoneProblem.INVALID):
        return read
    if not any(c.isalpha() for c in raw):
        return read
    found = list(
        phonenumbers.PhoneNumberMatcher(raw, region.upper(), leniency=phonenumbers.Leniency.POSSIBLE)
    )
    if len(found) != 1:
        return read
    inner = _read(found[0].raw_string, region)
    if isinstance(inner, ParsedPhone):
        return ParsedPhone(inner.e164, raw, inner.extension)
    return _refused(raw, inner.problem, region) if inner.problem is PhoneProblem.PLACEHOLDER else read


#: A German direct-dial suffix (``+49 89 123456 Durchwahl -12``, ``DW 12``): the digits a caller
#: appends to the company's number to reach the person (``+498912345612``), not an extension
#: dialled after the call connects.
_DIRECT_DIAL = re.compile(r"\b(?:durchwahl|durchw|dw)\b\.?\s*[:\-\u2013]?\s*(\d{1,6})\s*$", re.IGNORECASE)
#: The switchboard's ``-0`` of a company number (DIN 5008: ``+49 89 123456-0``): a direct-dial
#: suffix replaces it (``123456-0 Durchwahl 12`` is ``+498912345612``), not appended to it.
_SWITCHBOARD = re.compile(r"\s*[-\u2013]\s*0$")


def _read(raw: str, region: str) -> ParsedPhone | RefusedPhone:
    text = raw.strip()
    if not text:
        return _refused(raw, PhoneProblem.EMPTY, region)
    if len(text) > MAX_PHONE_LENGTH:
        return _refused(raw, PhoneProblem.TOO_LONG, region)
    if (direct := _DIRECT_DIAL.search(text)) is not None:
        text = f"{_SWITCHBOARD.sub('', text[: direct.start()].rstrip(' ,;'))}-{direct[1]}"
    if is_placeholder(text):
        return _refused(raw, PhoneProblem.PLACEHOLDER, region)
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region.upper())
    except phonenumbers.NumberParseException:
        return _refused(raw, PhoneProblem.NOT_A_NUMBER, region)
    international = text.startswith("+")
    if phonenumbers.is_valid_number(number) or _full_length(number, international):
        return _parsed(number, raw)
    if not international and (abroad := _after_international_prefix(text)) is not None:
        return _parsed(abroad, raw)
    # A short code is dialled as it is, never behind a country code.
    short = len(
        phonenumbers.national_significant_number(number)
    ) <= 6 or shortnumberinfo.is_valid_short_number(number)
    if short and not international:
        return _refused(raw, PhoneProblem.SHORT_CODE, region)
    return _refused(raw, PhoneProblem.INVALID, region)


#: A number written the North American way (``123-456-7890``, ``(123) 456-7890``; its extension
#: aside): area code, exchange, line.
_NANP_SHAPED = re.compile(r"(?P<code>\+?1[\s.-]*)?\(?(?P<area>\d{3})\)?[\s.-]*\d{3}[\s.-]*\d{4}")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d+$", re.IGNORECASE)
#: Digits typed in a run (``1234567890``, ``0123456789``, ``9876543210``): nobody's line.
_RUNS = ("01234567890", "09876543210")


def is_placeholder(text: str) -> bool:
    """What is typed into a required phone field for want of a number, in any region: one digit
    repeated (``000-000-0000``, ``111-111-1111``, seven digits or more), a run
    (``1234567890``), or a North American number whose area code starts with 1 (``123-456-7890``)
    or, written with its ``+1``/``1``, with 0 or 1 (``+1 000 555 0100``): no North American area
    code starts with 0 or 1. A national number of another country that merely looks alike is
    none: a Berlin ``030 123 4567`` (its area code starts with 0, not written with ``1``)."""
    main = _EXTENSION.sub("", text.strip())
    digits = "".join(c for c in main if c.isdigit())
    national = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
    if len(national) >= 7 and len(set(national)) == 1:
        return True
    if len(digits) >= 9 and any(digits in run for run in _RUNS):
        return True
    shaped = _NANP_SHAPED.fullmatch(main)
    if shaped is None:
        return False
    return shaped["area"][0] == "1" or (shaped["code"] is not None and shaped["area"][0] == "0")


def _full_length(number: phonenumbers.PhoneNumber, international: bool) -> bool:
    """A length its country allows, in its numbering plan; read nationally, a full one (not a local
    number short of its area code, which would be a guess)."""
    if not _in_numbering_plan(number):
        return False
    if international:
        return bool(phonenumbers.is_possible_number(number))
    reason = phonenumbers.is_possible_number_with_reason(number)
    return bool(reason == phonenumbers.ValidationResult.IS_POSSIBLE)


def _in_numbering_plan(number: phonenumbers.PhoneNumber) -> bool:
    """Whether the country's numbering plan has room for ``number`` at all (the general pattern of
    its metadata), known range or not. A placeholder typed into a required field (``(000)
    000-0000``, ``123-456-7890``: no North American area code starts with 0 or 1) and a number of
    another country read in the tenant's (a US ``(415) 555-0100`` in a UK tenant: no UK number
    starts with 4) have none; a fictional ``(212) 555-0100`` has."""
    if number.country_code is None:
        return True
    region = phonenumbers.region_code_for_country_code(number.country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, region)
    general = metadata.general_desc if metadata is not None else None
    if general is None or general.national_number_pattern is None:
        return True
    national = phonenumbers.national_significant_number(number)
    return re.fullmatch(general.national_number_pattern, national) is not None


def _after_international_prefix(text: str) -> phonenumbers.PhoneNumber | None:
    """``0044 20 7946 0958`` read as ``+44 20 7946 0958`` when that is a valid number."""
    stripped = text.lstrip()
    if not stripped.startswith("00"):
        return None
    try:
        number = phonenumbers.parse("+" + stripped[2:], None)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _parsed(number: phonenumbers.PhoneNumber, raw: str) -> ParsedPhone:
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return ParsedPhone(e164=e164, raw=raw, extension=number.extension or None)


def _refused(raw: str, problem: PhoneProblem, region: str) -> RefusedPhone:
    return RefusedPhone(raw=raw, problem=problem, reason=_REASONS[problem].format(region=region.upper()))


#: The regions a number is read in, first to last (:func:`parse_phone_in`); one region alone is
#: the tenant's.
Regions = str | tuple[str, ...]


def parse_phone_in(raw: str, regions: Regions) -> ParsedPhone | RefusedPhone:
    """``raw`` read in the first of ``regions`` where it is a valid number, else as the first
    reads it (a full-length number of an unknown range, or the first region's refusal).

    A number written with ``+`` or an international prefix reads the same in every region."""
    if isinstance(regions, str):
        return parse_phone(raw, regions)
    first = parse_phone(raw, regions[0])
    if isinstance(first, ParsedPhone) and _valid_e164(first.e164):
        return first
    for region in regions[1:]:
        other = parse_phone(raw, region)
        if isinstance(other, ParsedPhone) and _valid_e164(other.e164):
            return other
    return first


@functools.lru_cache(maxsize=8_192)
def _valid_e164(e164: str) -> bool:
    return bool(phonenumbers.is_valid_number(phonenumbers.parse(e164, None)))


#: What separates several numbers typed in one field: ``/``, ``;``, ``,``, ``|``, a line break or
#: the word ``or`` (the spaces around it are stripped from the parts: a pattern taking them too,
#: ``\s*`` first, looked again from each space of a long run, quadratic in the field's length).
_PHONE_LIST_SEPARATOR = re.compile(r"[/;,|\n]|\bor\b", re.IGNORECASE)


#: The most parts (between separators, blank ones included) a phone field's list is read in: a
#: field of more, longer than a number, is refused as too long. A person's field lists two or three numbers; a field of
#: hundreds is a paste, and each part read costs a parse on the event loop of every tenant
#: (a HubSpot batch of 1,000 contacts, two such fields each: 20,000 parses at most, not 100,000
#: as with the 50 a record holds, nor 18 million as with no bound).
MAX_LISTED_PHONES = 10


def parse_phones_in(raw: str, regions: Regions) -> tuple[ParsedPhone, ...] | RefusedPhone:
    """Each number a CRM record's phone field holds: several when it lists several, each part a
    valid number on its own (each read by :func:`parse_phone_in`, ``raw`` kept whole as what the
    source sent), else the field read as one number, or its refusal.

    Tried before the single reading: ``4155550107;4155550108`` reads as one line with a ten-digit
    extension. A part that is no valid number on its own (``12`` in ``+14155550200,12``, the
    dialled extension; ``415`` in ``415/555-0100``; the area code of the German and Austrian
    ``0221/1234567``, DIN 5008's "area code / number", whose parts merely have a possible length)
    leaves the field to the single reading.

    A field that is no number as a whole whose parts are full-length numbers, those of a range
    the library does not know (Ofcom's ``07700 900123`` for fiction, a range newer than the
    library) of one shape (one country, as many digits) and that of the valid parts of their
    country, gives each of them (``07700 900123 / +49 170 1234567``: both). Parts of different
    shapes are not split on a guess: ``+49 89 1234560 / 1234599`` is a range of direct-dial
    numbers, not two numbers, and is refused whole. A field whose parts the region cannot read,
    each refused, or of no known range as read, only for the region (``020 7946 0954 / 07700
    900124`` in a US tenant, ``07700 900123 / 0161 496 000`` in GB), is refused for the region
    (``REGIONAL_PROBLEMS``): a contact keeps it to read again in another.

    A field longer than a number listing more than ``MAX_LISTED_PHONES`` parts (a vendor's phone
    property is not length-capped as the CRM sync route's is) is refused as too long, no part
    read: the work of a field is bounded whatever its length."""
    pieces = _PHONE_LIST_SEPARATOR.split(raw, maxsplit=MAX_LISTED_PHONES)
    if len(pieces) > MAX_LISTED_PHONES and len(raw.strip()) > MAX_PHONE_LENGTH:
        # More numbers than a record holds: refused whole (too long) before any part is read,
        # so a field of thousands costs no read per number.
        return _refused(raw, PhoneProblem.TOO_LONG, regions if isinstance(regions, str) else regions[0])
    parts = [part.strip() for part in pieces if part.strip()]
    read_parts = [parse_phone_in(part, regions) for part in parts] if len(parts) > 1 else []
    each = [read for read in read_parts if isinstance(read, ParsedPhone)]
    if read_parts and len(each) == len(parts) and all(_valid_e164(read.e164) for read in each):
        return tuple(ParsedPhone(read.e164, raw, read.extension) for read in each)
    single = parse_phone_in(raw, regions)
    if isinstance(single, ParsedPhone):
        return (single,)
    if read_parts and len(each) == len(parts) and _one_shape(each):
        # No number as a whole, each part a full-length number, those of no known range of one
        # shape (rules 2026.12.34).
        return tuple(ParsedPhone(read.e164, raw, read.extension) for read in each)
    # ``read_parts`` is empty for a field of one part: nothing refused for the region alone.
    regional = [
        problem for part, read in zip(parts, read_parts, strict=False) if (problem := _problem(part, read))
    ]
    if (
        single.problem is PhoneProblem.NOT_A_NUMBER
        and regional
        and all(problem in REGIONAL_PROBLEMS for problem in regional)
    ):
        # Numbers of another country listed together: refused for the region, not as no number.
        first = regions if isinstance(regions, str) else regions[0]
        return _refused(raw, regional[0], first)
    return single


def _one_shape(each: list[ParsedPhone]) -> bool:
    """Whether the parts that are no valid number on their own (of a range the library does not
    know) are of one shape, that of each valid part of their country: ``07700 900123 / +49 170
    1234567`` (a UK number of no known range beside a German mobile) is two numbers; ``+49 89
    1234560 / 1234599`` (a German number beside 7 digits) is a range, not two."""
    unknown = {_shape(read) for read in each if not _valid_e164(read.e164)}
    if len(unknown) != 1:
        return len(unknown) == 0
    [(country, digits)] = unknown
    return all(_shape(read) == (country, digits) for read in each if _shape(read)[0] == country)


def _problem(part: str, read: ParsedPhone | RefusedPhone) -> PhoneProblem | None:
    """Why a part of a field listing numbers is no valid number: its refusal, or ``INVALID`` for a
    full-length number of no known range written in the region's national form (another region
    may read it); ``None`` for a valid number or one written internationally (``+``, ``00``: read
    alike in every region)."""
    if isinstance(read, RefusedPhone):
        return read.problem
    if _valid_e164(read.e164) or part.startswith(("+", "00")):
        return None
    return PhoneProblem.INVALID


def _shape(parsed: ParsedPhone) -> tuple[int | None, int]:
    """A number's country and its count of digits (``+442079460954`` and ``+447700900124``: the
    same shape; ``+49891234560`` and ``+491234599``: not)."""
    number = phonenumbers.parse(parsed.e164, None)
    return number.country_code, len(phonenumbers.national_significant_number(number))


def e164_or_none(raw: str | None, regions: Regions) -> str | None:
    """The E.164 form of ``raw``, or ``None`` when it is absent or refused."""
    if raw is None:
        return None
    parsed = parse_phone_in(raw, regions)
    return parsed.e164 if isinstance(parsed, ParsedPhone) else None
