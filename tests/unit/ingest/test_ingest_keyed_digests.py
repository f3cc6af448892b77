"""Webhook signatures: the HMAC from kept key states is ``hmac.digest``'s, byte for byte."""

from __future__ import annotations

import hmac

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.signatures import hmac_sha1, hmac_sha256


@given(st.binary(max_size=200), st.binary(max_size=2_000))
def test_a_keyed_digest_is_hmac_digests_for_any_key_and_message(key: bytes, message: bytes) -> None:
    # Keys longer than the block (64 bytes) are hashed first, shorter ones padded: both shapes.
    assert hmac_sha1(key, message) == hmac.digest(key, message, "sha1")
    assert hmac_sha256(key, message) == hmac.digest(key, message, "sha256")


def test_a_key_used_again_signs_each_message_afresh() -> None:
    # The key's states are copied, never updated in place: a second message is not chained on.
    key = b"tenant-secret"
    for message in (b"first", b"second", b"first", b""):
        assert hmac_sha1(key, message) == hmac.digest(key, message, "sha1")
        assert hmac_sha256(key, message) == hmac.digest(key, message, "sha256")
