"""An alert webhook's URL in the audit log: its origin alone."""

from __future__ import annotations

from services.gateway.domain.urls import audited_url


def test_audited_url_keeps_the_origin_alone() -> None:
    assert audited_url("https://hooks.slack.com/services/T0/B0/abc") == "https://hooks.slack.com/***"
    assert audited_url("https://h.example.com:8443/x?token=1") == "https://h.example.com:8443/***"
    assert audited_url("https://h.example.com") == "https://h.example.com"
    assert audited_url("https://h.example.com/") == "https://h.example.com"
    assert audited_url("https://user:pw@h.example.com/") == "https://h.example.com"
