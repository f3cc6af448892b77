"""Shared plumbing: key format and hashing, scopes, secret encryption, settings refusal, log masking."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from pydantic import ValidationError

from libs.common.logging import JsonFormatter
from libs.common.settings import Mode, RuntimeSettings
from libs.common.tenancy import (
    Principal,
    Scope,
    decrypt_secret,
    encrypt_secret,
    generate_api_key,
    hash_api_key,
    key_id_of,
)


def test_api_key_has_an_identifiable_prefix_and_hashes_deterministically() -> None:
    key_id, key = generate_api_key(Scope.READ)
    assert key_id.startswith("spm_read_")
    assert len(key_id) == len("spm_read_") + 8
    assert key.startswith(key_id + "_")
    assert key_id_of(key) == key_id
    assert hash_api_key(key, "pepper") == hash_api_key(key, "pepper")
    assert hash_api_key(key, "pepper") != hash_api_key(key, "other pepper")
    assert key not in hash_api_key(key, "pepper")


@pytest.mark.parametrize("token", ["", "spm_read", "spm_root_abc_def", "Bearer spm", "xyz_read_1_2"])
def test_malformed_keys_have_no_id(token: str) -> None:
    assert key_id_of(token) is None


def test_admin_may_read_but_ingest_may_not() -> None:
    admin = Principal("acme", frozenset({Scope.ADMIN}), "k1")
    ingest = Principal("acme", frozenset({Scope.INGEST}), "k2")
    assert admin.allows(Scope.READ)
    assert admin.allows(Scope.ADMIN)
    assert not admin.allows(Scope.INGEST)
    assert not ingest.allows(Scope.READ)
    assert ingest.allows(Scope.INGEST)


def test_webhook_secrets_round_trip_and_need_the_same_pepper() -> None:
    token = encrypt_secret("whsec-123", "pepper")
    assert "whsec-123" not in token
    assert decrypt_secret(token, "pepper") == "whsec-123"
    with pytest.raises(ValueError, match="SPM_SECRET_KEY"):
        decrypt_secret(token, "another pepper")


def test_production_mode_refuses_the_local_secret_key() -> None:
    with pytest.raises(ValidationError, match="SPM_SECRET_KEY must be set"):
        RuntimeSettings(mode=Mode.PRODUCTION)
    assert RuntimeSettings(mode=Mode.PRODUCTION, secret_key="s3cr3t-value").mode is Mode.PRODUCTION


def test_json_logs_carry_extra_fields_and_mask_secrets() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("ingest"))
    logger = logging.getLogger("tests.plumbing")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning("rejected", extra={"topic": "activity-ingested", "partition": 2, "webhook_secret": "abc"})
    record = orjson.loads(stream.getvalue())
    assert record["service"] == "ingest"
    assert record["message"] == "rejected"
    assert record["topic"] == "activity-ingested"
    assert record["partition"] == 2
    assert record["webhook_secret"] == "***"


def test_audit_masks_every_secret_like_value_at_any_depth() -> None:
    from libs.common.audit import MASK, mask_secrets

    document = {
        "source": "zoom",
        "secret": "s3cret",
        "key_id": "spm_admin_1a2b3c4d",
        "nested": {"client_state": "cs", "api_token": "t", "password": "p", "threshold": 3},
        "list": [{"webhook_secret": "w"}, "plain"],
        "token": None,
    }
    assert mask_secrets(document) == {
        "source": "zoom",
        "secret": MASK,
        "key_id": "spm_admin_1a2b3c4d",
        "nested": {"client_state": MASK, "api_token": MASK, "password": MASK, "threshold": 3},
        "list": [{"webhook_secret": MASK}, "plain"],
        "token": None,
    }
