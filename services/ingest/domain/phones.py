"""The one phone rule of every ingest path: a number as people type it -> E.164, or a reason.

CRM sync, canonical events and every vendor adapter call ``parse_phone`` with the tenant's
default region (``tenant_config.phone_region``), so that a contact stored from
``(415) 555-0100`` and a dialer's ``+14155550100`` are the same identity. Matching compares
E.164 strings; the raw form travels next to it for display.

Nothing is guessed:

* an extension (``x123``, ``ext. 7``) is kept apart; the number matched is the line the
  extension hangs off, which is what a dialer reports;
* a short code (``911``, ``12345``) is not a person's line: refused with its reason;
* a national number missing its area code, or one no numbering plan allows, is refused; an
  international number needs its ``+`` (``0044...`` is not rewritten for a US tenant);
* a number written with its ``+`` is taken as written when it has a possible length, even if
  the numbering-plan metadata does not know its range yet: nothing is guessed there, and a
  dialer's E.164 is never refused for being newer than the library.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import shortnumberinfo

#: Longer than any real number with an extension: refused before parsing.
MAX_PHONE_LENGTH = 64


class PhoneProblem(StrEnum):
    """Why a phone was refused; also the ``reason`` label of the dropped-phones counter."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    NOT_A_NUMBER = "not_a_number"
    SHORT_CODE = "short_code"
    INVALID = "invalid"


_REASONS: dict[PhoneProblem, str] = {
    PhoneProblem.EMPTY: "empty phone number",
    PhoneProblem.TOO_LONG: f"longer than {MAX_PHONE_LENGTH} characters",
    PhoneProblem.NOT_A_NUMBER: "not a phone number",
    PhoneProblem.SHORT_CODE: "a short code, not a person's line",
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

    Cached: parsing is the dearest step of a call callback, and numbers recur across deliveries.
    """
    text = raw.strip()
    if not text:
        return _refused(raw, PhoneProblem.EMPTY, region)
    if len(text) > MAX_PHONE_LENGTH:
        return _refused(raw, PhoneProblem.TOO_LONG, region)
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region.upper())
    except phonenumbers.NumberParseException:
        return _refused(raw, PhoneProblem.NOT_A_NUMBER, region)
    international = text.startswith("+")
    if phonenumbers.is_valid_number(number) or (international and phonenumbers.is_possible_number(number)):
        e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return ParsedPhone(e164=e164, raw=raw, extension=number.extension or None)
    # A short code is dialled as it is, never behind a country code.
    short = len(str(number.national_number)) <= 6 or shortnumberinfo.is_valid_short_number(number)
    if short and not international:
        return _refused(raw, PhoneProblem.SHORT_CODE, region)
    return _refused(raw, PhoneProblem.INVALID, region)


def _refused(raw: str, problem: PhoneProblem, region: str) -> RefusedPhone:
    return RefusedPhone(raw=raw, problem=problem, reason=_REASONS[problem].format(region=region.upper()))


def e164_or_none(raw: str | None, region: str) -> str | None:
    """The E.164 form of ``raw``, or ``None`` when it is absent or refused."""
    if raw is None:
        return None
    parsed = parse_phone(raw, region)
    return parsed.e164 if isinstance(parsed, ParsedPhone) else None
