"""Field types every contract shares, so that what a contract accepts can always be stored.

A value that passes these types fits PostgreSQL and JSON on the way through: text has no NUL,
no other C0 control character and no lone surrogate; times are aware and between
:data:`EARLIEST` and :data:`LATEST` once in UTC; integers fit the column that stores them;
amounts are finite and bounded. Integers, booleans and amounts are strict where a lax
coercion would hide a client's mistake (``"30"`` or ``true`` as a duration).

The canonical API, the CRM sync and every vendor adapter build the same models, so these
checks run once, here, for all of them; a failure is a pydantic error that names the field,
which the services answer with a 422.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

import msgspec
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = [
    "EARLIEST",
    "INT4_MAX",
    "INT8_MAX",
    "LATEST",
    "Amount",
    "Count",
    "DayOrUtcDatetime",
    "DurationSeconds",
    "Email",
    "ExternalId",
    "FiniteFloat",
    "Revision",
    "RoleName",
    "SafeDate",
    "SafeStr",
    "SafeText",
    "StrictBool",
    "StrictFloat",
    "StrictInt",
    "TenantId",
    "UtcDatetime",
    "Version",
    "check_line",
    "check_utc_datetime",
    "lower_email",
    "meaningful_errors",
    "reason_of",
    "unicode_domain",
]

#: The sane window for every time and date a contract carries, checked after conversion to UTC.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: PostgreSQL ``integer`` and ``bigint``.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
#: Deal amounts: a quadrillion either way, to the millionth.
AMOUNT_LIMIT = 10**15
AMOUNT_DECIMAL_PLACES = 6

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"

# C0 controls and lone surrogates: PostgreSQL refuses NUL in text and jsonb, and a surrogate
# cannot be encoded to UTF-8 at all; the other controls are never meant in an identifier.
# (pydantic-core refuses a lone surrogate before any pattern runs: Rust strings cannot hold one.)
# One line (an identifier, a name) also refuses DEL, the C1 controls (U+0080-U+009F: a NEL is a
# line break, the rest are mis-decoded bytes) and the Unicode noncharacters, which no text means.
_NONCHARACTERS = "\\ufdd0-\\ufdef" + "".join(
    f"\\U{plane:04X}FFFE\\U{plane:04X}FFFF" if plane else "\\ufffe\\uffff" for plane in range(17)
)
LINE_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f{_NONCHARACTERS}]*$"
# Free text (a subject, a reason) may hold tabs and line breaks.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_BY_PATTERN = {LINE_PATTERN: _CONTROL, TEXT_PATTERN: _CONTROL_IN_TEXT}


def _kind_of(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "a lone surrogate"
    if "\ufdd0" <= char <= "\ufdef" or (ord(char) & 0xFFFE) == 0xFFFE:
        return "a Unicode noncharacter"
    return "a control character"


def _refuse(value: str, pattern: re.Pattern[str]) -> str:
    # isprintable() is a fast C pass that holds for almost every real value; only a value it
    # flags (a tab, a non-breaking space, a control) pays for the regex.
    if value.isprintable():
        return value
    found = pattern.search(value)
    if found is not None:
        char = found.group()
        what = _kind_of(char)
        raise ValueError(f"must not contain {what} (U+{ord(char):04X} at position {found.start()})")
    return value


def check_line(value: str) -> str:
    """``value`` unless it holds a control character (C0 with tab and line breaks, DEL, C1), a
    noncharacter or a surrogate.

    For values that no model validates: URL parameters, cursors, the duplicate ledger's keys.
    """
    return _refuse(value, _CONTROL)


def reason_of(error: ErrorDetails) -> str:
    """A client-readable reason for one pydantic error: which character, where, for ours."""
    kind = error["type"]
    value = error.get("input")
    if kind == "string_pattern_mismatch" and isinstance(value, str):
        pattern = _BY_PATTERN.get(str((error.get("ctx") or {}).get("pattern")))
        if pattern is not None:
            try:
                _refuse(value, pattern)
            except ValueError as exc:
                return str(exc)
    if kind == "string_unicode":
        return "must be valid Unicode text (a lone surrogate is not)"
    if kind == "union_tag_not_found":
        tag = str((error.get("ctx") or {}).get("discriminator", "the kind")).strip("'")
        if tag == "entity_type":
            return "entity_type is required: rep, team, team_membership, account, contact or deal"
        return f"{tag} is required"
    if kind == "decimal_parsing":
        return "must be a number such as 12000.50 (no currency, no thousands separator)"
    if kind == "timezone_aware":
        # "2026-11-02T10:00:00" could be any of 26 hours: it is not read as UTC or as the tenant's.
        return "must carry a timezone offset (2026-11-02T10:00:00Z or 2026-11-02T10:00:00+01:00)"
    return str(error.get("msg", "invalid"))


def meaningful_errors(errors: Sequence[ErrorDetails]) -> list[ErrorDetails]:
    """``errors`` without a container's ``too_short`` that only follows from its items' errors.

    pydantic-core counts a tuple's valid items after validation, so one bad entity of one
    added "entities: Tuple should have at least 1 item after validation, not 0": a wrong reason.
    """
    failed_inside = {tuple(e["loc"][:-1]) for e in errors if e["loc"]}
    prefixes = {loc[:i] for loc in failed_inside for i in range(len(loc) + 1)}
    return [e for e in errors if not (e["type"] == "too_short" and tuple(e["loc"]) in prefixes)]


def check_utc_datetime(value: datetime) -> datetime:
    """``value`` unless it is naive or outside :data:`EARLIEST`..:data:`LATEST` in UTC (``UtcDatetime``
    outside a model: a time decoded from a cursor)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a timezone offset")
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:  # year 1 at +14:00 is before year 1 in UTC
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc < LATEST:
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()} (UTC)")
    return value


_to_builtins = msgspec.to_builtins


def isoformat(value: date) -> str:
    """``value.isoformat()``, the same text: msgspec writes a date, and an instant in ``UTC``, in
    RFC 3339 (``Z`` for the offset, which is put back as ``+00:00``) in about a seventh of the
    time of ``datetime.isoformat`` (its fields go through ``sprintf`` one by one). Anything else
    (another offset, a naive time, a subclass) is ``isoformat``'s own.
    ``tests/unit/common/test_isoformat.py`` holds the two equal."""
    kind = type(value)
    if kind is datetime:
        if value.tzinfo is UTC:  # type: ignore[attr-defined]
            text: str = _to_builtins(value)
            return text[:-1] + "+00:00"
        return value.isoformat()
    if kind is date:
        return _to_builtins(value)  # type: ignore[no-any-return]
    return value.isoformat()


def lower_email(value: str) -> str:
    """``Email``'s normalisation: trimmed and lower-cased, its domain as :func:`unicode_domain`
    reads it, or ``ValueError`` when not shaped like one."""
    value = value.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "@" in domain or "." not in domain:
        raise ValueError("not an email address")
    if "xn--" not in domain and domain.isascii():  # almost every address: no call
        return value
    read = unicode_domain(domain)
    return value if read is domain else f"{local}@{read}"


def unicode_domain(domain: str) -> str:
    """A lower-cased domain in one form whichever way it was written: IDNA labels as mail carries
    them (``xn--bcher-kva.example``) decoded, Unicode composed (NFC) as ``bücher.example`` is
    typed; the very object when there is nothing to read (a plain ASCII domain, a bad label)."""
    if domain.isascii():
        if "xn--" not in domain:
            return domain
        try:
            decoded = domain.encode("ascii").decode("idna")
        except UnicodeError:
            return domain
        return decoded if decoded != domain else domain
    composed = unicodedata.normalize("NFC", domain)
    return composed if composed != domain else domain


# The checks run in pydantic-core (a Rust regex, a datetime comparison), not in Python: ingest
# validates every string of every activity of a batch, and Python validators per string took a
# 1,000-call batch from about 11 to 28 ms to parse (in the core: about 12.5 ms).
# ``reason_of`` turns their errors into a reason that names the character and its position.

#: One line of text: an identifier, a name, a stage. No control character (C0, DEL, C1) and no
#: noncharacter at all.
SafeStr = Annotated[str, Field(pattern=LINE_PATTERN)]
#: Free text (a subject, a reason): tab, LF and CR allowed, no other control character.
SafeText = Annotated[str, Field(pattern=TEXT_PATTERN)]
_NUMBER = re.compile(r"\s*[-+]?[0-9]+(\.[0-9]*)?\s*")


def _not_a_number(value: object) -> object:
    # pydantic reads a number, or a string of digits, as Unix seconds (or milliseconds): a
    # CRM's "20261201" became 1970-08-23 and a deal closed then. Times and days are ISO text.
    if value.__class__ is str:
        # Every time decoded from a message starts "YYYY-": no regex for those (it ran for each
        # time of each event in every service).
        if len(value) > 4 and value[4] == "-":
            return value
        if _NUMBER.fullmatch(value):
            raise PydanticCustomError("iso_text_expected", "must be ISO 8601 text, not a number")
        return value
    if isinstance(value, int | float):
        raise PydanticCustomError("iso_text_expected", "must be ISO 8601 text, not a number")
    return value


#: An aware time between 1970 and 2200 in UTC (kept in the offset it was given); ISO 8601 text.
UtcDatetime = Annotated[AwareDatetime, Field(ge=EARLIEST, lt=LATEST), BeforeValidator(_not_a_number)]
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day_as_its_start(value: object) -> object:
    if value.__class__ is str and len(value) == 10 and _DAY.fullmatch(value):
        return f"{value}T00:00:00Z"
    return value


#: A :data:`UtcDatetime`, or a calendar day read as its start in UTC: a CRM's deal dates are days
#: (Salesforce's ``CloseDate``, an export's ``"2026-11-05"``).
DayOrUtcDatetime = Annotated[UtcDatetime, BeforeValidator(_day_as_its_start)]
#: A calendar day between 1970 and 2200; ISO 8601 text.
SafeDate = Annotated[date, Field(ge=EARLIEST.date(), lt=LATEST.date()), BeforeValidator(_not_a_number)]

TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN)]
ExternalId = Annotated[SafeStr, Field(min_length=1, max_length=256)]
Email = Annotated[SafeStr, Field(max_length=320), AfterValidator(lower_email)]
#: A rep's job role as the CRM names it ("SDR", "Account Executive"): one line, trimmed, never blank.
#: The CRM contract carries it on a rep and a role goal names it, so both accept the same text.
RoleName = Annotated[SafeStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]

#: A vendor object's revision: PostgreSQL ``bigint``, never negative.
Revision = Annotated[StrictInt, Field(ge=0, le=INT8_MAX)]
#: An attribution version: PostgreSQL ``integer``, from 1.
Version = Annotated[StrictInt, Field(ge=1, le=INT4_MAX)]
#: A count stored as PostgreSQL ``integer``.
Count = Annotated[StrictInt, Field(ge=0, le=INT4_MAX)]
#: The length of a call or meeting: at most one day.
DurationSeconds = Annotated[StrictInt, Field(ge=0, le=86_400)]
#: A float that is a number (no NaN, no infinity).
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: Money: finite, within a quadrillion either way, at most six decimal places.
Amount = Annotated[
    Decimal,
    Field(allow_inf_nan=False, ge=-AMOUNT_LIMIT, le=AMOUNT_LIMIT, decimal_places=AMOUNT_DECIMAL_PLACES),
]
