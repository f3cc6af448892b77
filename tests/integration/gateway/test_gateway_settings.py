"""Scoring model and insight thresholds: defaults, versioned PUTs, validation and scopes."""

from __future__ import annotations

import httpx

from libs.common.contracts.tenant_settings import DEFAULT_SCORING_MODEL, InsightThresholds

from .gateway_support import Keys, bearer


async def test_scoring_model_defaults_then_versions(gateway: httpx.AsyncClient, keys: Keys) -> None:
    default = await gateway.get("/v1/scoring-model", headers=bearer(keys.read))
    assert default.status_code == 200
    assert default.json()["version"] == 1
    assert default.json()["created_by"] == "default"
    assert default.json()["model"] == DEFAULT_SCORING_MODEL.model_dump(mode="json")

    model = {"version": 77, "activity_weights": {"call.dialled": 2.0}, "buyer_response_bonus": 1.0}
    saved = await gateway.put("/v1/scoring-model", json=model, headers=bearer(keys.admin))
    assert saved.status_code == 200, saved.text
    body = saved.json()
    # The client's version is ignored: the default is 1, so the first saved model is 2.
    assert body["version"] == 2
    assert body["created_by"] == "_".join(keys.admin.split("_")[:3])
    assert body["model"]["activity_weights"] == {"call.dialled": 2.0}
    assert body["model"]["version"] == 2
    again = await gateway.put("/v1/scoring-model", json=model, headers=bearer(keys.admin))
    assert again.json()["version"] == 3
    latest = await gateway.get("/v1/scoring-model", headers=bearer(keys.read))
    assert latest.json()["version"] == 3
    # Another tenant still has the default.
    theirs = await gateway.get("/v1/scoring-model", headers=bearer(keys.other_read))
    assert theirs.json()["version"] == 1


async def test_scoring_model_refuses_invalid_models_and_readers(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    negative = await gateway.put(
        "/v1/scoring-model", json={"activity_weights": {"call.dialled": -1}}, headers=bearer(keys.admin)
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "activity_weights.call.dialled"
    unknown = await gateway.put(
        "/v1/scoring-model", json={"activity_weights": {"smoke.signal": 1}}, headers=bearer(keys.admin)
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"].startswith("activity_weights")
    reader = await gateway.put("/v1/scoring-model", json={}, headers=bearer(keys.read))
    assert reader.status_code == 403
    unchanged = await gateway.get("/v1/scoring-model", headers=bearer(keys.read))
    assert unchanged.json()["version"] == 1


async def test_insight_thresholds_defaults_then_versions(gateway: httpx.AsyncClient, keys: Keys) -> None:
    default = await gateway.get("/v1/insight-thresholds", headers=bearer(keys.read))
    assert default.json()["version"] == 0
    assert default.json()["thresholds"] == InsightThresholds().model_dump(mode="json")
    saved = await gateway.put(
        "/v1/insight-thresholds", json={"stale_after_days": 7}, headers=bearer(keys.admin)
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    assert saved.json()["thresholds"]["stale_after_days"] == 7
    assert saved.json()["thresholds"]["bright_spot_top_n"] == 3
    latest = await gateway.get("/v1/insight-thresholds", headers=bearer(keys.read))
    assert latest.json()["version"] == 1
    invalid = await gateway.put(
        "/v1/insight-thresholds", json={"stale_after_days": 0}, headers=bearer(keys.admin)
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "stale_after_days"
    reader = await gateway.put("/v1/insight-thresholds", json={}, headers=bearer(keys.read))
    assert reader.status_code == 403
