"""Binary codecs for numeric and boolean array parameters, registered on every connection.

Rows are written many at a time as one array per column, ``unnest``ed in SQL. asyncpg encodes an
array element by element, and for each element asks ``isinstance(element, Iterable)`` (is it a
sub-array?): a call of the Python-level ``ABCMeta.__instancecheck__`` per element, more than the
element's encoding. These codecs encode ``smallint[]``, ``integer[]``, ``bigint[]``,
``double precision[]`` and ``boolean[]`` in PostgreSQL's binary array format themselves: a list
without NULLs goes through the ``array`` module in a few C calls; anything else (NULLs, other
numeric types, nested lists) element by element, with asyncpg's own conversions (``int()`` of an
object that has ``__int__``, ``float()``, booleans only). PostgreSQL receives the same binary
array it did (``array_recv``): it pays nothing more.

asyncpg's public ``set_type_codec`` refuses array types (it takes scalar and composite types), so
the codecs go in through the connection's codec settings (``add_python_codec``, what
``set_type_codec`` calls after its check): ``register_array_codecs`` fails loudly if that ever
changes, and ``tests/unit/common/test_array_codecs.py`` holds the bytes against asyncpg's own
encoding. No schema column has these types; results of these types (an ``array_agg`` of
integers) decode to the lists asyncpg returns.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any

_HEADER = struct.Struct(">iiI")  # dimensions, has-NULLs flag, element type
_DIMENSION = struct.Struct(">ii")  # length, lower bound
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
#: Element types that cannot be a sub-array: a list of only these is one-dimensional.
_SCALARS = frozenset({type(None), int, float, bool})
#: Below this many elements one ``struct.pack`` is cheaper than the ``array`` module's slicing.
_SMALL = 32


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


def _encoder(element: _Element) -> Callable[[Any], bytes]:
    code, size = element.code, element.size
    native = struct.Struct(f">i{code}")
    pair = f"i{code}"
    length = bytes([size])

    def header(dims: Sequence[int]) -> bytes:
        # The has-NULLs flag stays 0, as asyncpg sends it: PostgreSQL finds the NULLs itself.
        return _HEADER.pack(len(dims), 0, element.oid) + b"".join(_DIMENSION.pack(d, 1) for d in dims)

    def fast(values: Sequence[Any]) -> bytes:
        # No NULL, every element of the native type: TypeError otherwise.
        n = len(values)
        if n < _SMALL or code == "?":
            if code == "?" and any(type(v) is not bool for v in values):
                raise TypeError
            data = struct.pack(">" + pair * n, *[x for v in values for x in (size, v)])
            return header((n,)) + data
        raw = array(code, values)
        if sys.byteorder == "little":
            raw.byteswap()
        body = raw.tobytes()
        out = bytearray((4 + size) * n)
        out[3 :: 4 + size] = length * n
        for k in range(size):
            out[4 + k :: 4 + size] = body[k::size]
        return header((n,)) + out

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

    def decode(data: bytes) -> list[Any]:
        ndims, _, _ = _HEADER.unpack_from(data)
        if ndims == 0:
            return []
        dims = [_DIMENSION.unpack_from(data, 12 + 8 * i)[0] for i in range(ndims)]
        offset = 12 + 8 * ndims
        n = 1
        for d in dims:
            n *= d
        flat: list[Any]
        if len(data) - offset == (4 + size) * n:  # no NULL: every element has its full length
            flat = list(struct.unpack_from(">" + f"i{code}" * n, data, offset)[1::2])
        else:
            flat = []
            for _ in range(n):
                (length,) = _LENGTH.unpack_from(data, offset)
                offset += 4
                if length < 0:
                    flat.append(None)
                else:
                    flat.append(struct.unpack_from(f">{code}", data, offset)[0])
                    offset += length
        for d in reversed(dims[1:]):
            flat = [flat[i : i + d] for i in range(0, len(flat), d)]
        return flat

    return decode


#: (element, encoder, decoder) of each array type the codecs take over.
CODECS: tuple[tuple[_Element, Callable[[Any], bytes], Callable[[bytes], list[Any]]], ...] = tuple(
    (e, _encoder(e), _decoder(e)) for e in _ELEMENTS
)


async def register_array_codecs(connection: Any) -> None:
    """Install the codecs on an asyncpg connection (before its first statement)."""
    settings = connection._protocol.get_settings()
    for element, encode, decode in CODECS:
        settings.add_python_codec(
            element.array_oid, element.name, "pg_catalog", [], "scalar", encode, decode, "binary"
        )
