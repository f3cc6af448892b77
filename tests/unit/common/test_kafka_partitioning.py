"""Our murmur2 partitioning gives every key the partition aiokafka (and the Java client) gives it."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from libs.common.kafka.partitioning import KeyHashPartitioner, murmur2


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafkas_for_any_key(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_a_keyed_message_gets_the_default_partitioners_partition(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert KeyHashPartitioner()(key, partitions, partitions) == DefaultPartitioner()(
        key, partitions, partitions
    )


def test_known_hashes_of_the_java_client() -> None:
    # Values from Kafka's own test suite (org.apache.kafka.common.utils.UtilsTest.testMurmur2).
    assert murmur2(b"21") & 0xFFFFFFFF == -973932308 & 0xFFFFFFFF
    assert murmur2(b"foobar") & 0xFFFFFFFF == -790332482 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") & 0xFFFFFFFF == -985981536 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") & 0xFFFFFFFF == -1486304829 & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") & 0xFFFFFFFF == -58897971 & 0xFFFFFFFF
    assert murmur2(b"abc") & 0xFFFFFFFF == 479470107


def test_an_unkeyed_message_goes_to_an_available_partition() -> None:
    assert KeyHashPartitioner()(None, [0, 1, 2], [2]) == 2
