"""The admin audit log: gateway changes recorded with actor and before/after, paged and filtered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.audit import Actor, AuditAction, CredentialKind, record_admin_action
from libs.common.contracts.tenant_settings import DEFAULT_SCORING_MODEL

from .gateway_support import HS256_SECRET, Keys, bearer


def _key_id(key: str) -> str:
    return "_".join(key.split("_")[:3])


async def test_settings_changes_are_audited_with_before_and_after(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    first = await gateway.put(
        "/v1/scoring-model", json={"activity_weights": {"call.dialled": 2.0}}, headers=bearer(keys.admin)
    )
    assert first.status_code == 200, first.text
    second = await gateway.put(
        "/v1/scoring-model", json={"activity_weights": {"call.dialled": 3.0}}, headers=bearer(keys.admin)
    )
    assert second.status_code == 200, second.text
    thresholds = await gateway.put("/v1/insight-thresholds", json={}, headers=bearer(keys.admin))
    assert thresholds.status_code == 200, thresholds.text

    page = await gateway.get("/v1/audit", headers=bearer(keys.admin))
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert [i["action"] for i in items] == [
        "settings.changed",
        "scoring_model.changed",
        "scoring_model.changed",
    ]
    assert {i["actor"] for i in items} == {_key_id(keys.admin)}
    assert {i["credential"] for i in items} == {"api_key"}
    newest_model, oldest_model = items[1], items[2]
    assert oldest_model["target"] == "scoring_model"
    # Before the first saved version, the built-in default (version 1) was in force.
    assert oldest_model["before"] == DEFAULT_SCORING_MODEL.model_dump(mode="json")
    assert oldest_model["after"]["version"] == 2
    assert oldest_model["after"]["activity_weights"] == {"call.dialled": 2.0}
    assert newest_model["before"]["version"] == 2
    assert newest_model["before"]["activity_weights"] == {"call.dialled": 2.0}
    assert newest_model["after"]["version"] == 3
    assert newest_model["after"]["activity_weights"] == {"call.dialled": 3.0}
    # The thresholds are a settings group now: the same defaults again change no setting.
    assert items[0]["target"] == "settings"
    assert (items[0]["before"], items[0]["after"]) == ({"version": 0}, {"version": 1})

    patched = await gateway.patch(
        "/v1/settings", json={"privacy": {"keep_subjects": True}}, headers=bearer(keys.admin)
    )
    assert patched.status_code == 200, patched.text
    [change] = (
        await gateway.get(
            "/v1/audit", params={"action": "settings.changed", "limit": 1}, headers=bearer(keys.admin)
        )
    ).json()["items"]
    assert change["before"]["version"] == 1
    assert change["after"]["version"] == 2
    assert change["before"]["privacy"]["keep_subjects"] is False
    assert change["after"]["privacy"]["keep_subjects"] is True
    assert set(change["after"]) == {"version", "privacy"}

    # Another tenant sees none of it.
    theirs = await gateway.get("/v1/audit", headers=bearer(keys.other_admin))
    assert theirs.json() == {"items": [], "next_cursor": None}


async def test_audit_pages_filters_and_needs_admin(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    actor = Actor("cli:ops", CredentialKind.CLI)
    async with db_engine.begin() as conn:
        for n in range(5):
            await record_admin_action(
                conn,
                "acme",
                actor,
                AuditAction.WEBHOOK_SECRET_ROTATED,
                "webhook_secret:zoom",
                after={"source": "zoom", "secret": f"s3cret-{n}", "n": n},
            )
        await record_admin_action(conn, "acme", actor, AuditAction.API_KEY_REVOKED, "api_key:spm_read_x")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, "action": "webhook_secret.rotated"}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await gateway.get("/v1/audit", params=params, headers=bearer(keys.admin))).json()
        seen.extend(i["after"]["n"] for i in page["items"])
        # Secrets never reach the log, only their mask.
        assert {i["after"]["secret"] for i in page["items"]} == {"***"}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [4, 3, 2, 1, 0]
    everything = (await gateway.get("/v1/audit", headers=bearer(keys.admin))).json()["items"]
    assert len(everything) == 6
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await gateway.get("/v1/audit", params={"since": future}, headers=bearer(keys.admin))).json()[
        "items"
    ] == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (
        len(
            (await gateway.get("/v1/audit", params={"since": past}, headers=bearer(keys.admin))).json()[
                "items"
            ]
        )
        == 6
    )

    reader = await gateway.get("/v1/audit", headers=bearer(keys.read))
    assert reader.status_code == 403
    unknown = await gateway.get("/v1/audit", params={"action": "coffee.made"}, headers=bearer(keys.admin))
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "action"
    naive = await gateway.get(
        "/v1/audit", params={"since": "2026-12-01T00:00:00"}, headers=bearer(keys.admin)
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "since"
    bad = await gateway.get("/v1/audit", params={"cursor": "nope"}, headers=bearer(keys.admin))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"


async def test_a_jwt_and_a_session_are_named_as_actors(gateway: httpx.AsyncClient, keys: Keys) -> None:
    token = jwt.encode(
        {
            "sub": "alice",
            "tenant": "acme",
            "role": "admin",
            "iss": "https://idp.example",
            "aud": "spm",
            "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
        },
        HS256_SECRET,
        algorithm="HS256",
    )
    by_jwt = await gateway.put("/v1/insight-thresholds", json={}, headers=bearer(token))
    assert by_jwt.status_code == 200, by_jwt.text
    session = await gateway.post("/v1/session", headers=bearer(keys.admin))
    assert session.status_code == 201, session.text
    token = SimpleCookie(session.headers["set-cookie"])["spm_session"].value
    gateway.cookies.clear()
    by_session = await gateway.put(
        "/v1/insight-thresholds", json={}, headers={"Cookie": f"spm_session={token}", "x-spm-csrf": "1"}
    )
    assert by_session.status_code == 200, by_session.text
    items = (await gateway.get("/v1/audit", headers=bearer(keys.admin))).json()["items"]
    assert [(i["credential"], i["actor"].split(":")[0]) for i in items] == [
        ("session", "session"),
        ("jwt", "jwt"),
    ]
    assert items[1]["actor"] == "jwt:alice"
    assert items[0]["actor"].endswith(f"({_key_id(keys.admin)})")
