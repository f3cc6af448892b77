"""Binary codecs for numeric and boolean array parameters, registered on every connection.

Rows are written many at a time as one array per column, ``unnest``ed in SQL. asyncpg encodes an
array element by element, and for each element asks ``isinstance(element, Iterable)`` (is it a
sub-array?): a call of the Python-level ``ABCMeta.__instancecheck__`` per element, more than the
element's encoding. These codecs encode ``smallint[]``, ``integer[]``, ``bigint[]``,
``double precision[]`` and ``boolean[]`` in PostgreSQL's binary array format themselves: a list
without NULLs is packed in a few C calls (``struct`` and the ``array`` module's strided slices;
booleans by ``bytes``); anything else (NULLs, other
numeric types, nested lists) element by element, with asyncpg's own conversions (``int()`` of an
object that has ``__int__``, ``float()``, booleans only). ``timestamp with time zone[]`` is
written the same way as the int64 microseconds asyncpg's ``timestamptz_encode`` writes: an instant
in ``datetime.UTC`` (what the services hold: msgspec's decoder, ``datetime.now(UTC)``) by one
subtraction, anything else as asyncpg converts it (another offset, a naive datetime read as local
time, a date at local midnight, asyncpg's infinities); asyncpg compared each element with its two
infinities and converted it with ``astimezone``, about 0.85 us an element. ``uuid[]`` is written
from each id's 16 bytes, and ``character varying[]`` (below) from each string's UTF-8. PostgreSQL
receives the same binary array it did (``array_recv``): it pays nothing more.

asyncpg's public ``set_type_codec`` refuses array types (it takes scalar and composite types), so
the codecs go in through the connection's codec settings (``add_python_codec``, what
``set_type_codec`` calls after its check): ``register_array_codecs`` fails loudly if that ever
changes, and ``tests/unit/common/test_array_codecs.py`` holds the bytes against asyncpg's own
encoding. No schema column has these types; results of these types (an ``array_agg`` of
integers) decode to the lists asyncpg returns (instants in UTC, asyncpg's naive infinities, ids as
asyncpg's own ``UUID``).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta, timezone, tzinfo
from itertools import chain, repeat
from operator import attrgetter
from typing import Any
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as PgUUID

_HEADER = struct.Struct(">iiI")  # dimensions, has-NULLs flag, element type
_DIMENSION = struct.Struct(">ii")  # length, lower bound
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
#: Element types that cannot be a sub-array: a list of only these is one-dimensional.
_SCALARS = frozenset({type(None), int, float, bool})
_BOOL = {bool}
#: Below this many elements one ``struct.pack`` is cheaper than the ``array`` module's slicing.
_SMALL = 32
_LITTLE_ENDIAN = sys.byteorder == "little"


@dataclass(frozen=True)
class _Element:
    oid: int  # the element type's
    array_oid: int
    name: str  # the array type's, as PostgreSQL names it
    code: str  # ``struct`` / ``array`` type code
    size: int
    convert: Callable[[Any], Any]  # asyncpg's conversion of a non-native element


def _to_int(value: Any) -> int:
    # asyncpg's integer encoders: an int, else whatever has __int__ (a float is truncated).
    if type(value) is int:
        return value
    if isinstance(value, (str, bytes)) or not hasattr(type(value), "__int__"):
        raise TypeError(f"an integer is required (got type {type(value).__name__})")
    return int(value)


def _to_float(value: Any) -> float:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"a float is required (got type {type(value).__name__})")
    return float(value)


def _to_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"a boolean is required (got type {type(value).__name__})")
    return value


_ELEMENTS = (
    _Element(21, 1005, "_int2", "h", 2, _to_int),
    _Element(23, 1007, "_int4", "i", 4, _to_int),
    _Element(20, 1016, "_int8", "q", 8, _to_int),
    _Element(701, 1022, "_float8", "d", 8, _to_float),
    _Element(16, 1000, "_bool", "?", 1, _to_bool),
)


def _is_sub_array(value: Any) -> bool:
    # asyncpg's test: a sized iterable, not text or bytes, not a mapping, not a tuple (a record).
    return (
        isinstance(value, Iterable)
        and isinstance(value, Sized)
        and not isinstance(value, (str, bytes, bytearray, memoryview, tuple, Mapping))
    )


def _shape(values: Any, dims: list[int], depth: int) -> None:
    """Append the dimensions of ``values`` (nested lists or tuples, rectangular) to ``dims``."""
    if not (_is_sub_array(values) or type(values) is tuple):
        raise TypeError(f"a sized iterable container expected (got type {type(values).__name__})")
    if depth == len(dims):
        dims.append(len(values))
    elif dims[depth] != len(values):
        raise ValueError("non-homogeneous array")
    inner = [_is_sub_array(v) for v in values]
    if any(inner):
        if not all(inner):
            raise ValueError("non-homogeneous array")
        for v in values:
            _shape(v, dims, depth + 1)
    elif depth + 1 < len(dims):
        raise ValueError("non-homogeneous array")


def _flatten(values: Any, levels: int) -> list[Any]:
    if levels <= 1:
        return list(values)
    return [e for v in values for e in _flatten(v, levels - 1)]


def _dimensions(data: bytes) -> tuple[list[int], int, int]:
    """The dimensions of an array's binary form (none for an empty array), the offset of its
    first element and how many elements it holds."""
    ndims, _, _ = _HEADER.unpack_from(data)
    dims = [_DIMENSION.unpack_from(data, 12 + 8 * i)[0] for i in range(ndims)]
    n = 1
    for d in dims:
        n *= d
    return dims, 12 + 8 * ndims, n


def _nest(flat: list[Any], dims: list[int]) -> list[Any]:
    """``flat`` (the elements in order) nested as ``dims`` say."""
    for d in reversed(dims[1:]):
        flat = [flat[i : i + d] for i in range(0, len(flat), d)]
    return flat


def _length_prefixed(data: bytes, offset: int, n: int, read: Callable[[bytes], Any]) -> list[Any]:
    """The ``n`` elements from ``offset``, each its length (-1: NULL, ``None``) and its bytes,
    which ``read`` turns into the value."""
    flat: list[Any] = []
    for _ in range(n):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += 4
        if length < 0:
            flat.append(None)
        else:
            flat.append(read(data[offset : offset + length]))
            offset += length
    return flat


def _array_header(oid: int, dims: Sequence[int]) -> bytes:
    """A binary array's header: its dimensions, each from 1, of elements of type ``oid``. The
    has-NULLs flag stays 0, as asyncpg sends it: PostgreSQL finds the NULLs itself."""
    return _HEADER.pack(len(dims), 0, oid) + b"".join(_DIMENSION.pack(d, 1) for d in dims)


def _decode_length_prefixed(data: bytes, read: Callable[[bytes], Any]) -> list[Any]:
    """A binary array whose elements are each read by ``read`` from its bytes, NULLs as ``None``."""
    dims, offset, n = _dimensions(data)
    if not dims:
        return []
    return _nest(_length_prefixed(data, offset, n, read), dims)


def _bool_elements(values: Sequence[Any]) -> bytes:
    """Booleans as a binary array's elements, each its length (1) and its byte (``bytes`` of
    booleans is their 0 and 1); TypeError for anything else."""
    if set(map(type, values)) != _BOOL:
        raise TypeError
    n = len(values)
    out = bytearray(5 * n)
    out[3::5] = b"\x01" * n
    out[4::5] = bytes(values)
    return bytes(out)


def _word_elements(
    values: Sequence[Any], code: str, words_per_value: int, element_words: array[int]
) -> bytes:
    """Values of a 4- or 8-byte type as a binary array's elements, in 4-byte words: each its
    length word, then its value's words. Packed by ``struct`` in the machine's order (``array``'s
    constructor parses each element with ``PyArg_Parse``: about 200 instructions more an element;
    ``struct``'s big-endian integers go through ``_PyLong_AsByteArray``, about 100 more than its
    native ones), swapped to big-endian by ``array``, then laid out by a strided slice per word.
    TypeError or ``struct.error`` for a value not of the type."""
    n = len(values)
    native = array(code, struct.pack(f"@{n}{code}", *values))
    if _LITTLE_ENDIAN:
        native.byteswap()
    words = array("I", native.tobytes())
    out = element_words * n
    stride = 1 + words_per_value
    for k in range(words_per_value):
        out[1 + k :: stride] = words[k::words_per_value]
    return out.tobytes()


def _byte_elements(values: Sequence[Any], code: str, size: int) -> bytes:
    """Values of a 2-byte type as a binary array's elements: each its length, then its bytes."""
    raw = array(code, values)
    if sys.byteorder == "little":
        raw.byteswap()
    body = raw.tobytes()
    n = len(values)
    out = bytearray((4 + size) * n)
    out[3 :: 4 + size] = bytes([size]) * n
    for k in range(size):
        out[4 + k :: 4 + size] = body[k::size]
    return bytes(out)


def _encoder(element: _Element) -> Callable[[Any], bytes]:
    code, size = element.code, element.size
    native = struct.Struct(f">i{code}")
    pair = f"i{code}"

    # An element as 4-byte words (its length, then its value's words), where they divide it.
    words_per_value = size // 4 if size % 4 == 0 and array("I").itemsize == 4 else 0
    element_words = array("I", _LENGTH.pack(size) + bytes(size) if words_per_value else b"")

    def header(dims: Sequence[int]) -> bytes:
        return _array_header(element.oid, dims)

    def fast(values: Sequence[Any]) -> bytes:
        # No NULL, every element of the native type: TypeError otherwise.
        n = len(values)
        if code == "?":
            body = _bool_elements(values)
        elif n < _SMALL:
            body = struct.pack(">" + pair * n, *[x for v in values for x in (size, v)])
        elif words_per_value:
            body = _word_elements(values, code, words_per_value, element_words)
        else:
            body = _byte_elements(values, code, size)
        return header((n,)) + body

    def general(values: Any) -> bytes:
        flat: list[Any]
        if type(values) is list and set(map(type, values)) <= _SCALARS:
            dims, flat = [len(values)], values
        else:
            dims = []
            _shape(values, dims, 0)
            flat = _flatten(values, len(dims))
        try:
            parts = [_NULL if v is None else native.pack(size, element.convert(v)) for v in flat]
        except struct.error as e:
            raise OverflowError(f"value out of {element.name[1:]} range") from e
        return header(dims) + b"".join(parts)

    def encode(values: Any) -> bytes:
        if type(values) is list and values:
            try:
                return fast(values)
            except (TypeError, struct.error):
                pass  # a NULL, a nested list or a non-native element: the general form says which
        return general(values)

    return encode


def _decoder(element: _Element) -> Callable[[bytes], list[Any]]:
    code, size = element.code, element.size
    one = struct.Struct(f">{code}")

    def read(value: bytes) -> Any:
        return one.unpack(value)[0]

    def decode(data: bytes) -> list[Any]:
        dims, offset, n = _dimensions(data)
        if not dims:
            return []
        flat: list[Any]
        if len(data) - offset == (4 + size) * n:  # no NULL: every element has its full length
            flat = list(struct.unpack_from(">" + f"i{code}" * n, data, offset)[1::2])
        else:
            flat = _length_prefixed(data, offset, n, read)
        return _nest(flat, dims)

    return decode


# ---------------------------------------------------------------------- timestamptz[]

#: ``timestamptz[]`` is written as ``bigint[]`` is, with its own element type: each instant is
#: the int64 asyncpg's ``timestamptz_encode`` writes (microseconds since 2000-01-01 UTC).
_TIMESTAMPTZ = _Element(1184, 1185, "_timestamptz", "q", 8, _to_int)
_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: asyncpg's infinities: naive datetimes, and the instants written as PostgreSQL's infinities.
_INFINITY = datetime(MAXYEAR, 12, 31, 23, 59, 59, 999999)
_NEGATIVE_INFINITY = datetime(MINYEAR, 1, 1)
_INFINITY_TS, _NEGATIVE_INFINITY_TS = 252455615999999999, -63082281600000000
_PG_INFINITY, _PG_NEGATIVE_INFINITY = 2**63 - 1, -(2**63)


def _local_timezone() -> tzinfo:
    # asyncpg's, for a date given as a timestamptz: the process's current UTC offset.
    offset = datetime.now(UTC).astimezone().utcoffset()
    assert offset is not None
    return timezone(offset)


def _instant(value: Any) -> Any:
    """What asyncpg writes for one element that is not an instant in ``UTC`` itself: another
    offset, a naive datetime (local time), a date (local midnight), its infinities; a sub-array
    converted element by element."""
    if not isinstance(value, datetime):
        if isinstance(value, date):
            value = datetime(value.year, value.month, value.day, tzinfo=_local_timezone())
        elif _is_sub_array(value):
            return [None if v is None else _instant(v) for v in value]
        else:
            raise TypeError(
                f"expected a datetime.date or datetime.datetime instance, got {type(value).__name__!r}"
            )
    if value == _INFINITY:
        return _PG_INFINITY
    if value == _NEGATIVE_INFINITY:
        return _PG_NEGATIVE_INFINITY
    return _edge((value.astimezone(UTC) - _EPOCH_UTC) // _MICROSECOND)


def _edge(ts: Any) -> Any:
    """asyncpg writes the instants of its infinities as PostgreSQL's, however they were given."""
    if ts == _INFINITY_TS:
        return _PG_INFINITY
    if ts == _NEGATIVE_INFINITY_TS:
        return _PG_NEGATIVE_INFINITY
    return ts


_encode_instants = _encoder(_TIMESTAMPTZ)
_decode_instants = _decoder(_TIMESTAMPTZ)


def _encode_timestamptz(values: Any) -> bytes:
    """asyncpg's ``timestamptz[]`` encoding: an instant in ``UTC`` (what the services hold) by one
    subtraction, anything else as asyncpg converts it (``_instant``)."""
    if type(values) is not list and (type(values) is tuple or _is_sub_array(values)):
        values = list(values)
    if type(values) is list:
        first = values[0] if values else None
        if (
            first is not None
            and values[-1] is first
            and type(first) is datetime
            and first.tzinfo is UTC
            and values.count(first) == len(values)
        ):
            # One instant throughout (a batch's ``now`` on every version): converted once. Equal
            # instants are one figure, whatever their offsets.
            micros: list[Any] = [(first - _EPOCH_UTC) // _MICROSECOND] * len(values)
        else:
            micros = [
                None
                if v is None
                else (v - _EPOCH_UTC) // _MICROSECOND
                if type(v) is datetime and v.tzinfo is UTC
                else _instant(v)
                for v in values
            ]
        # Those converted by ``_instant`` are already; an instant in UTC may be one too.
        if _INFINITY_TS in micros or _NEGATIVE_INFINITY_TS in micros:
            micros = [_edge(m) for m in micros]
        return _encode_instants(micros)
    return _encode_instants(values)  # not an array: refused as the other codecs refuse it


def _moment(ts: Any) -> Any:
    if ts is None:
        return None
    if type(ts) is list:
        return [_moment(t) for t in ts]
    if ts == _PG_INFINITY:
        return _INFINITY
    if ts == _PG_NEGATIVE_INFINITY:
        return _NEGATIVE_INFINITY
    return _EPOCH_UTC + timedelta(microseconds=ts)


def _decode_timestamptz(data: bytes) -> list[Any]:
    return [_moment(ts) for ts in _decode_instants(data)]


# ---------------------------------------------------------------------- date[]

#: ``date[]`` (a contribution's day, a rollup cell's period start) is written as ``integer[]`` is,
#: with its own element type: each day the int32 asyncpg's ``date_encode`` writes, its
#: ``toordinal()`` less 2000-01-01's, ``date.max`` and ``date.min`` as PostgreSQL's infinities.
#: asyncpg asked each element its two ``isinstance`` checks (``Iterable``, ``Sized``) first.
_DATE = _Element(1082, 1182, "_date", "i", 4, _to_int)
_DATE_OFFSET = date(2000, 1, 1).toordinal()
#: asyncpg's infinities (``date.max``, ``date.min``) as days since 2000-01-01, and PostgreSQL's.
_MAX_DAYS, _MIN_DAYS = date.max.toordinal() - _DATE_OFFSET, date.min.toordinal() - _DATE_OFFSET
_PG_DATE_INFINITY, _PG_DATE_NEGATIVE_INFINITY = 2**31 - 1, -(2**31)
_DAYS_OF = {_MAX_DAYS: _PG_DATE_INFINITY, _MIN_DAYS: _PG_DATE_NEGATIVE_INFINITY}
_DATE_FROM = {_PG_DATE_INFINITY: date.max, _PG_DATE_NEGATIVE_INFINITY: date.min}
_FLAT_DATES = frozenset({date, type(None)})


def _days(value: Any) -> Any:
    """What asyncpg writes for one element: ``value.toordinal()`` (a date, a datetime, anything
    that has it) less 2000-01-01's; a sub-array element by element."""
    if not isinstance(value, date) and _is_sub_array(value):
        return [None if v is None else _days(v) for v in value]
    days = value.toordinal() - _DATE_OFFSET
    return _DAYS_OF.get(days, days)


def _encode_date(values: Any) -> bytes:
    """asyncpg's ``date[]`` encoding: a list of dates (and NULLs) in one pass, anything else
    element by element as asyncpg converts it (``_days``)."""
    if type(values) is not list and (type(values) is tuple or _is_sub_array(values)):
        values = list(values)
    if type(values) is list:
        if set(map(type, values)) <= _FLAT_DATES:
            days = [None if v is None else v.toordinal() - _DATE_OFFSET for v in values]
            if _MAX_DAYS in days or _MIN_DAYS in days:
                days = [d if d is None else _DAYS_OF.get(d, d) for d in days]
        else:
            days = [None if v is None else _days(v) for v in values]
        return _encode_day_numbers(days)
    return _encode_day_numbers(values)  # not an array: refused as the other codecs refuse it


def _date_of(days: Any) -> Any:
    if days is None:
        return None
    if type(days) is list:
        return [_date_of(d) for d in days]
    found = _DATE_FROM.get(days)
    return date.fromordinal(days + _DATE_OFFSET) if found is None else found


_encode_day_numbers = _encoder(_DATE)
_decode_day_numbers = _decoder(_DATE)


def _decode_date(data: bytes) -> list[Any]:
    return [_date_of(days) for days in _decode_day_numbers(data)]


# ---------------------------------------------------------------------- varchar[]

#: ``character varying[]``, which no column has: statements that write many strings declare their
#: text arrays as ``varchar[]`` (PostgreSQL reads a ``varchar`` into a ``text`` column as it is,
#: binary-coercible), and their elements skip asyncpg's two ``isinstance`` checks per string.
#: ``text[]`` stays asyncpg's, so every ``text[]`` read keeps its decoder in Cython.
_VARCHAR = _Element(1043, 1015, "_varchar", "", 0, str)
_VARCHAR_HEADER = struct.Struct(">iiIii")  # one dimension: the header and its length, lower bound 1
_pack_length = _LENGTH.pack
_NONE = type(None)
_FLAT_TEXT = frozenset({str, _NONE})
_UTF8_KINDS = frozenset({bytes, _NONE})
#: A column whose first string is this long or longer is not looked at for repeated values.
_REPEATED_BELOW = 256
#: The length prefixes of the strings most values are, packed once.
_SHORT_LENGTHS = tuple(_pack_length(n) for n in range(4096))


def _varchar_element(value: str) -> bytes:
    data = value.encode()
    return _pack_length(len(data)) + data


class Utf8Texts(list[bytes | None]):
    """A ``varchar[]`` parameter whose elements are texts already encoded as UTF-8, or None: JSON
    that orjson or msgspec wrote, sent as it is instead of decoded to a ``str`` and encoded back
    (about 4,000 instructions for a kilobyte). PostgreSQL checks the bytes are UTF-8 as it reads
    them (``varchar_recv``), as it does every string's; a plain list of bytes is still refused."""


def _length_prefixed_elements(encoded: list[bytes]) -> bytes:
    """Texts encoded as UTF-8 as a binary array's elements: each its length, then its bytes."""
    try:
        lengths = list(map(_SHORT_LENGTHS.__getitem__, map(len, encoded)))
    except IndexError:  # a string of 4 kB or more
        lengths = list(map(_pack_length, map(len, encoded)))
    return b"".join(chain.from_iterable(zip(lengths, encoded, strict=True)))


def _encode_utf8_texts(values: Utf8Texts) -> bytes:
    """A ``Utf8Texts`` parameter: each element its length and its bytes (-1 for a NULL)."""
    kinds = set(map(type, values))
    if not kinds <= _UTF8_KINDS:
        raise TypeError(f"Utf8Texts holds bytes or None, not {', '.join(sorted(k.__name__ for k in kinds))}")
    if not values:
        return _encode_varchar([])
    head = _VARCHAR_HEADER.pack(1, 0, _VARCHAR.oid, len(values), 1)
    if _NONE in kinds:
        return head + b"".join([_NULL if v is None else _pack_length(len(v)) + v for v in values])
    return head + _length_prefixed_elements(values)  # type: ignore[arg-type]  # None is absent


def _encode_varchar(values: Any) -> bytes:
    """asyncpg's encoding of a ``varchar[]`` parameter, PostgreSQL's binary array of UTF-8 strings."""
    if type(values) is Utf8Texts:
        return _encode_utf8_texts(values)
    if type(values) is list and values:
        kinds = set(map(type, values))
        if kinds <= _FLAT_TEXT or all(k is _NONE or issubclass(k, str) for k in kinds):
            head = _VARCHAR_HEADER.pack(1, 0, _VARCHAR.oid, len(values), 1)
            first = values[0]
            # Looked for repeats only in a column of short strings: hashing every JSON document
            # of a batch (a payload, an explanation: never repeated) cost more than encoding it.
            if kinds <= _FLAT_TEXT and (first is None or len(first) < _REPEATED_BELOW):
                distinct = set(values)
                if 2 * len(distinct) <= len(values):
                    # Repeated values (a tenant, a status, a rep): each encoded once, then looked up.
                    element = {v: _NULL if v is None else _varchar_element(v) for v in distinct}
                    return head + b"".join(map(element.__getitem__, values))
            if _NONE not in kinds:  # ``str.encode``, ``len`` and the lengths' bytes all in C
                return head + _length_prefixed_elements(list(map(str.encode, values)))
            return head + b"".join(
                [_NULL if v is None else _pack_length(len(e := v.encode())) + e for v in values]
            )
    dims: list[int] = []
    _shape(values, dims, 0)
    parts: list[bytes] = []
    for i, v in enumerate(_flatten(values, len(dims))):
        if v is None:
            parts.append(_NULL)
        elif isinstance(v, str):
            text = v.encode()
            parts.append(_pack_length(len(text)) + text)
        else:
            # asyncpg's refusal of an element (``array_encode`` around ``text_encode``).
            where = f" at index {i}" if len(dims) == 1 else ""
            raise ValueError(f"invalid array element{where}: expected str, got {type(v).__name__}")
    return _array_header(_VARCHAR.oid, dims) + b"".join(parts)


def _decode_varchar(data: bytes) -> list[Any]:
    return _decode_length_prefixed(data, bytes.decode)


# ---------------------------------------------------------------------- uuid[]

#: ``uuid[]``: ids travel as 16 bytes each, which asyncpg's ``uuid_encode`` writes from a
#: ``uuid.UUID``'s ``bytes`` (a Python property per element) after its two ``isinstance`` checks.
#: Here a list of ids (``uuid.UUID`` or asyncpg's own) is joined from their ``bytes`` in one pass.
_UUID = _Element(2950, 2951, "_uuid", "", 16, str)
_UUID_LENGTH = _pack_length(16)
_UUID_BYTES = attrgetter("bytes")
_UUIDS = frozenset({UUID, PgUUID})
_STANDARD_UUID = {UUID}
_UUID_INT = attrgetter("int")
_SIXTEEN = repeat(16)


def _uuid_element(value: Any) -> bytes:
    """asyncpg's ``uuid_encode`` of one element: its own ``UUID``, a string as it parses one
    (``pgproto.UUID`` parses with the same function), anything else by its ``bytes`` as ``bytea``."""
    data: bytes
    if type(value) is PgUUID:
        data = value.bytes
    elif isinstance(value, str):
        data = PgUUID(value).bytes
    else:
        data = memoryview(value.bytes).tobytes()
    return _pack_length(len(data)) + data


def _encode_uuid(values: Any) -> bytes:
    """asyncpg's encoding of a ``uuid[]`` parameter, PostgreSQL's binary array of 16-byte ids."""
    if type(values) is list and values:
        kinds = set(map(type, values))
        head = _VARCHAR_HEADER.pack(1, 0, _UUID.oid, len(values), 1)
        if kinds == _STANDARD_UUID:
            # ``uuid.UUID.bytes`` is a Python-level property, ``self.int.to_bytes(16)``: the same
            # bytes from each id's integer in C.
            return (
                head + _UUID_LENGTH + _UUID_LENGTH.join(map(int.to_bytes, map(_UUID_INT, values), _SIXTEEN))
            )
        if kinds <= _UUIDS:
            # Every element is its length (16) and its bytes: the length joins them.
            return head + _UUID_LENGTH + _UUID_LENGTH.join(map(_UUID_BYTES, values))
    dims: list[int] = []
    _shape(values, dims, 0)
    parts = [_NULL if v is None else _uuid_element(v) for v in _flatten(values, len(dims))]
    return _array_header(_UUID.oid, dims) + b"".join(parts)


def _decode_uuid(data: bytes) -> list[Any]:
    """asyncpg's: each element its own ``UUID`` (a ``uuid.UUID``), NULLs as ``None``."""
    return _decode_length_prefixed(data, PgUUID)


#: (element, encoder, decoder) of each array type the codecs take over.
CODECS: tuple[tuple[_Element, Callable[[Any], bytes], Callable[[bytes], list[Any]]], ...] = (
    *((e, _encoder(e), _decoder(e)) for e in _ELEMENTS),
    (_TIMESTAMPTZ, _encode_timestamptz, _decode_timestamptz),
    (_DATE, _encode_date, _decode_date),
    (_VARCHAR, _encode_varchar, _decode_varchar),
    (_UUID, _encode_uuid, _decode_uuid),
)


async def register_array_codecs(connection: Any) -> None:
    """Install the codecs on an asyncpg connection (before its first statement)."""
    settings = connection._protocol.get_settings()
    for element, encode, decode in CODECS:
        settings.add_python_codec(
            element.array_oid, element.name, "pg_catalog", [], "scalar", encode, decode, "binary"
        )
