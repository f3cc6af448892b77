"""Our murmur2 partitioning gives every key the partition aiokafka (and the Java client) gives it."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from libs.common.kafka.partitioning import KeyHashPartitioner, murmur2, murmur2_many


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafkas_for_any_key(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_a_keyed_message_gets_the_default_partitioners_partition(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert KeyHashPartitioner()(key, partitions, partitions) == DefaultPartitioner()(
        key, partitions, partitions
    )


def test_a_key_asked_again_keeps_the_default_partitioners_partition_for_any_partition_count() -> None:
    # A single message's hash is remembered: asked again, with any partition count, it is the same.
    partitioner = KeyHashPartitioner()
    keys = [b"acme:twilio", b"", bytes(range(40)), b"\xff" * 36]
    for count in (1, 2, 3, 4, 7, 64):
        partitions = list(range(count))
        for key in keys * 2:
            assert partitioner(key, partitions, partitions) == DefaultPartitioner()(
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


@given(st.lists(st.binary(max_size=80), max_size=60))
def test_keys_hashed_together_hash_as_each_alone(keys: list[bytes]) -> None:
    assert murmur2_many(keys) == [murmur2(key) for key in keys]


def test_a_publishs_ids_hashed_together_hash_as_each_alone() -> None:
    """A thousand message keys of one length (ingest's activity ids), and keys whose every byte
    is 0xff or 0x00 (each lane's and each word's extremes), of every length to 40."""
    import uuid

    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))).encode() for i in range(1_000)]
    extremes = [bytes([fill]) * length for fill in (0x00, 0xFF) for length in range(41)]
    keys = ids + extremes + ids[:10]
    assert murmur2_many(keys) == [aiokafka_murmur2(key) for key in keys]


def test_keys_hashed_ahead_keep_their_partitions_and_are_forgotten_after() -> None:
    keys = [f"key-{i}".encode() for i in range(200)]
    partitions = list(range(12))
    partitioner = KeyHashPartitioner()
    expected = [DefaultPartitioner()(key, partitions, partitions) for key in keys]
    partitioner.hash_ahead(keys)
    assert len(partitioner._ahead) == 200
    assert [partitioner(key, partitions, partitions) for key in keys] == expected
    partitioner.forget(keys)
    assert partitioner._ahead == {}
    assert [partitioner(key, partitions, partitions) for key in keys] == expected
