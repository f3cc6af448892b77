"""Fixtures for the privacy integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_erasure_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Erasures are picked up and the list re-read at once; production polls every few seconds."""
    monkeypatch.setenv("ATTRIBUTION_ERASURE_POLL_SECONDS", "0.2")
    monkeypatch.setenv("ATTRIBUTION_ERASURE_CACHE_SECONDS", "0")
    monkeypatch.setenv("INGEST_TENANT_CACHE_SECONDS", "0")
