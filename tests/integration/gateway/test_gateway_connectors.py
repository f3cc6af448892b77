"""Admin routes over the connectors' state: health per mailbox, pause and resume, tenant-scoped."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .gateway_support import Keys, bearer


async def _connect(db: AsyncEngine, tenant: str, rows: list[tuple[str, str, str]]) -> list[int]:
    """(provider, address, state) rows: state is ok, failing or backfilling."""
    ids: list[int] = []
    async with db.begin() as conn:
        connection = await conn.scalar(
            text(
                "INSERT INTO connector_connections (tenant_id, vendor, credentials_encrypted) "
                "VALUES (:t, 'google', 'gAAAA-encrypted') RETURNING connection_id"
            ),
            {"t": tenant},
        )
        for provider, address, state in rows:
            ids.append(
                await conn.scalar(
                    text(
                        """
                        INSERT INTO connector_mailboxes (connection_id, tenant_id, provider, address, fetched,
                            last_success_at, last_error, last_error_at, full_sync_since)
                        VALUES (:c, :t, :p, :a, 7, now() - interval '1 minute',
                            CASE WHEN :s = 'failing' THEN '403 forbidden: Delegation denied' END,
                            CASE WHEN :s = 'failing' THEN now() END,
                            CASE WHEN :s = 'backfilling' THEN now() - interval '3 days' END)
                        RETURNING mailbox_id
                        """
                    ),
                    {"c": connection, "t": tenant, "p": provider, "a": address, "s": state},
                )
            )
    return ids


#: Ana's Microsoft 365 connection (an app registration's client secret).
MICROSOFT: dict[str, Any] = {
    "provider": "microsoft",
    "users": ["ana@acme.example"],
    "directory_tenant_id": "dir-1",
    "client_id": "app-1",
    "client_secret": "app~secret~value",
}


async def test_admins_list_pause_and_resume_their_own_mailboxes(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    ana, bo, cal = await _connect(
        db_engine,
        "acme",
        [
            ("gmail", "ana@acme.example", "ok"),
            ("gmail", "bo@acme.example", "failing"),
            ("google-calendar", "ana@acme.example", "backfilling"),
        ],
    )
    [theirs] = await _connect(db_engine, "globex", [("gmail", "zed@globex.example", "ok")])

    listed = await gateway.get("/v1/connectors", headers=bearer(keys.admin))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(i["mailbox_id"], i["provider"], i["address"], i["health"], i["fetched"]) for i in items] == [
        (ana, "gmail", "ana@acme.example", "ok", 7),
        (bo, "gmail", "bo@acme.example", "failing", 7),
        (cal, "google-calendar", "ana@acme.example", "backfilling", 7),
    ]
    assert items[1]["last_error"] == "403 forbidden: Delegation denied"
    assert "credentials" not in listed.text
    assert "gAAAA" not in listed.text

    paused = await gateway.post(f"/v1/connectors/{bo}/pause", headers=bearer(keys.admin))
    assert paused.status_code == 200
    assert (paused.json()["health"], paused.json()["paused"]) == ("paused", True)
    resumed = await gateway.post(f"/v1/connectors/{bo}/resume", headers=bearer(keys.admin))
    assert (resumed.json()["health"], resumed.json()["paused"]) == ("failing", False)
    audited = (await gateway.get("/v1/audit", headers=bearer(keys.admin))).json()["items"]
    assert [(a["action"], a["target"], a["after"]) for a in audited] == [
        ("connector.resumed", f"connector_mailbox:{bo}", {"paused": False}),
        ("connector.paused", f"connector_mailbox:{bo}", {"paused": True}),
    ]

    # Another tenant's mailbox is not found; readers may not look or act.
    assert (
        await gateway.post(f"/v1/connectors/{theirs}/pause", headers=bearer(keys.admin))
    ).status_code == 404
    assert (await gateway.get("/v1/connectors", headers=bearer(keys.read))).status_code == 403
    assert (await gateway.post(f"/v1/connectors/{ana}/pause", headers=bearer(keys.read))).status_code == 403
    bad = await gateway.post("/v1/connectors/0/pause", headers=bearer(keys.admin))
    assert bad.status_code == 422
    async with db_engine.connect() as conn:
        assert (
            await conn.scalar(
                text("SELECT paused FROM connector_mailboxes WHERE mailbox_id = :i"), {"i": theirs}
            )
            is False
        )


async def test_admins_connect_mailboxes_and_the_credentials_stay_secret(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    key = {
        "type": "service_account",
        "client_email": "spm@acme-project.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    body = {
        "provider": "gmail",
        "users": ["Bo@Acme.example", "ana@acme.example"],
        "backfill_days": 3,
        "service_account": key,
        "pubsub_topic": "projects/acme-project/topics/spm-gmail",
    }
    created = await gateway.post("/v1/connectors", json=body, headers=bearer(keys.admin))
    assert created.status_code == 201, created.text
    assert [(i["provider"], i["address"], i["health"]) for i in created.json()["items"]] == [
        ("gmail", "ana@acme.example", "backfilling"),
        ("gmail", "bo@acme.example", "backfilling"),
    ]
    assert "PRIVATE KEY" not in created.text
    microsoft = {**MICROSOFT, "mail": False}
    made = await gateway.post("/v1/connectors", json=microsoft, headers=bearer(keys.admin))
    assert [(i["provider"], i["address"]) for i in made.json()["items"]] == [
        ("microsoft-calendar", "ana@acme.example")
    ]
    assert "app~secret" not in made.text
    audited = (await gateway.get("/v1/audit", headers=bearer(keys.admin))).json()
    assert [(a["action"], a["after"]["provider"], a["after"]["users"]) for a in audited["items"]] == [
        ("connector.connected", "microsoft", ["ana@acme.example"]),
        ("connector.connected", "gmail", ["ana@acme.example", "bo@acme.example"]),
    ]
    assert "PRIVATE KEY" not in str(audited)
    assert "app~secret" not in str(audited)
    async with db_engine.connect() as conn:
        stored = [
            r[0] for r in await conn.execute(text("SELECT credentials_encrypted FROM connector_connections"))
        ]
        windows = {
            r.address: r.days
            for r in await conn.execute(
                text(
                    "SELECT address, round(extract(epoch FROM now() - backfill_since) / 86400) AS days "
                    "FROM connector_mailboxes WHERE provider = 'gmail'"
                )
            )
        }
    assert len(stored) == 2
    assert not any("PRIVATE KEY" in s or "app~secret" in s for s in stored)
    assert windows == {"ana@acme.example": 3, "bo@acme.example": 3}

    # Each problem names its field; readers may not connect.
    cases = [
        ({**body, "service_account": None}, "service_account"),
        ({**body, "service_account": {**key, "private_key": ""}}, "service_account.private_key"),
        ({**body, "users": []}, "users"),
        ({**body, "users": ["not-an-email"]}, "users.0"),
        ({**body, "backfill_days": 400}, "backfill_days"),
        ({**body, "provider": "yahoo"}, "provider"),
        ({**microsoft, "client_secret": None}, "client_secret"),
        ({**body, "password": "x"}, "password"),
    ]
    for case, field in cases:
        refused = await gateway.post("/v1/connectors", json=case, headers=bearer(keys.admin))
        assert refused.status_code == 422, (field, refused.text)
        assert refused.json()["errors"][0]["field"] == field
    assert (await gateway.post("/v1/connectors", json=body, headers=bearer(keys.read))).status_code == 403


async def test_a_control_character_in_what_a_connection_stores_is_a_422_naming_the_field(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """A NUL in an address (the pattern's ``[^@\\s]`` took it) reached the audit row's jsonb: a 500,
    and the connection was not made."""
    cases = [
        (
            {**MICROSOFT, "users": ["ana@acme.example", "a\u0000b@acme.example"]},
            "users.1",
            "U+0000 at position 1",
        ),
        ({**MICROSOFT, "users": ["a\u009bb@acme.example"]}, "users.0", "U+009B at position 1"),
        ({**MICROSOFT, "directory_tenant_id": "dir\u0000"}, "directory_tenant_id", "U+0000 at position 3"),
        ({**MICROSOFT, "client_id": "app\u0007"}, "client_id", "U+0007 at position 3"),
        (
            {"provider": "gmail", "users": ["ana@acme.example"], "pubsub_topic": "projects/p\u0000/topics/t"},
            "pubsub_topic",
            "U+0000 at position 10",
        ),
    ]
    for case, field, where in cases:
        refused = await gateway.post("/v1/connectors", json=case, headers=bearer(keys.admin))
        assert refused.status_code == 422, (field, refused.text)
        [error] = refused.json()["errors"]
        assert error["field"] == field
        assert error["reason"].endswith(f"must not contain a control character ({where})"), error
    async with db_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM connector_connections")) == 0
    listed = await gateway.get("/v1/connectors", headers=bearer(keys.admin))
    assert listed.json()["items"] == []
