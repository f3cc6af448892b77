"""Kafka's default partitioning of keyed messages, exactly as aiokafka computes it, in fewer steps.

aiokafka's ``murmur2`` is pure Python reading one byte at a time; for a publish of a thousand
activities it was the largest single cost of sending. This one reads the key four bytes at a
time and gives the same hash (checked against aiokafka's for arbitrary keys in the tests), so
every key keeps the partition the Java client and aiokafka would give it.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence

from aiokafka.partitioner import DefaultPartitioner

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as Kafka's clients compute it (``Utils.murmur2``), unsigned 32-bit."""
    length = len(data)
    end = length & ~3
    h = _SEED ^ length
    for k in struct.unpack(f"<{end // 4}I", data[:end]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra = length & 3
    if extra >= 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra >= 1:
        h = ((h ^ data[end]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


#: One 64-bit lane holding 1, little-endian: ``int.from_bytes(_ONE_LANE * n, "little")`` is 1 in each of n lanes.
_ONE_LANE = (1).to_bytes(8, "little")


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """``murmur2`` of each key, the keys of one length hashed together (about a quarter of the
    instructions of one ``murmur2`` each for a thousand ids, most of it packing and unpacking).

    Each key is a 64-bit lane of one big integer: multiplying it by the 32-bit constant
    multiplies every lane at once (a product of two 32-bit values fits its lane), and each step
    masks every lane to its low 32 bits, which also drops what a right shift brings down from
    the next lane (into bits 40 and up). Bit for bit Kafka's murmur2 in every lane.
    """
    out = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(position)
    for length, positions in by_length.items():
        group = [keys[p] for p in positions]
        n = len(group)
        lanes = struct.Struct(f"<{n}Q")
        ones = int.from_bytes(_ONE_LANE * n, "little")
        mask = _MASK * ones

        def column(values: Iterable[int], lanes: struct.Struct = lanes) -> int:
            return int.from_bytes(lanes.pack(*values), "little")

        end = length & ~3
        h = (_SEED ^ length) * ones
        if end:
            words = struct.Struct(f"<{end // 4}I").unpack_from
            for word in zip(*map(words, group), strict=True):
                k = (column(word) * _M) & mask
                k = (((k ^ (k >> 24)) & mask) * _M) & mask
                h = ((h * _M) & mask) ^ k
        extra = length & 3
        if extra >= 3:
            h ^= column(key[end + 2] for key in group) << 16
        if extra >= 2:
            h ^= column(key[end + 1] for key in group) << 8
        if extra >= 1:
            h = ((h ^ column(key[end] for key in group)) * _M) & mask
        h = (h ^ (h >> 13)) & mask
        h = (h * _M) & mask
        h = (h ^ (h >> 15)) & mask
        for position, value in zip(positions, lanes.unpack(h.to_bytes(8 * n, "little")), strict=True):
            out[position] = value
    return out


class KeyHashPartitioner:
    """aiokafka's ``DefaultPartitioner``: a keyed message goes to murmur2(key) over all partitions,
    an unkeyed one to a random available partition (delegated).

    A publish of many messages hashes its keys together first (``hash_ahead``, ``murmur2_many``)
    and forgets them after (``forget``); a key hashed ahead is looked up, any other hashed on its
    own. The hashes are the keys' own, so publishes in flight together only miss each other's."""

    _unkeyed = DefaultPartitioner()

    def __init__(self) -> None:
        self._ahead: dict[bytes, int] = {}

    def hash_ahead(self, keys: Iterable[bytes]) -> None:
        known = self._ahead
        new = [key for key in dict.fromkeys(keys) if key not in known]
        known.update(zip(new, murmur2_many(new), strict=True))

    def forget(self, keys: Iterable[bytes]) -> None:
        known = self._ahead
        for key in keys:
            known.pop(key, None)

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            partition: int = self._unkeyed(key, all_partitions, available)
            return partition
        hashed = self._ahead.get(key)
        if hashed is None:
            hashed = _murmur2_remembered(key)
        return all_partitions[(hashed & 0x7FFFFFFF) % len(all_partitions)]


#: A single message's key (a webhook's: its raw capture's ``tenant:source``, the same for every
#: delivery of a tenant's source, and its activity's id, the same for each status of one call)
#: comes back often: its hash is remembered, where each was about 40,000 instructions of Python.
_murmur2_remembered = functools.lru_cache(maxsize=4_096)(murmur2)
