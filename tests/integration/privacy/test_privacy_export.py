"""GDPR Art. 15: a DPO exports what one tenant holds about Dee (mail, a call, a meeting; her CRM
record with her phone written ``(415) 555-0100``), never another tenant's Dee; audited without
her identity; after her erasure only the erasure record is left."""

from __future__ import annotations

import getpass
import unicodedata
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from services.gateway.adapters.audit import list_admin_actions
from services.gateway.adapters.privacy import ACTIVITIES_NAMING
from spm.commands.privacy import export_person
from tests.integration.crm_support import (
    ANA_EMAIL,
    ANA_PHONE,
    ana_on_team_a,
    buyer_account,
    buyer_deal,
    email_from_ana,
)
from tests.integration.polling import eventually, poll_rows, references_landed

DEE_EMAIL = "dee@buyer.example"
DEE_PHONE = "+14155550100"
EXPORT = "/v1/privacy/subjects/export"

pytestmark = pytest.mark.usefixtures("fast_erasure_caches")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _crm() -> dict[str, Any]:
    dee = {
        "entity_type": "contact",
        "id": "con-dee",
        "name": "Dee Person",
        "emails": ["Dee@Buyer.example"],
        "phones": ["(415) 555-0100"],
        "account_id": "acc-1",
        "updated_at": "2026-11-02T15:00:00Z",
    }
    cy = {**dee, "id": "con-cy", "name": "Cy Other", "emails": ["cy@buyer.example"], "phones": []}
    entities = [
        *ana_on_team_a(),
        buyer_account(),
        dee,
        cy,
        buyer_deal([{"contact_id": "con-dee", "role": "champion"}]),
    ]
    return {"source": "test", "entities": entities}


def _mail(external_id: str, day: int, to: str) -> dict[str, Any]:
    return email_from_ana(
        external_id,
        occurred_at=f"2026-11-{day:02d}T16:00:00Z",
        subject="Pricing",
        participants=[{"email": ANA_EMAIL, "role": "from"}, {"email": to, "role": "to", "name": "Dee"}],
    )


def _activities() -> list[dict[str, Any]]:
    return [
        _mail("m-dee", 2, "DEE@buyer.example"),
        _mail("m-cy", 3, "cy@buyer.example"),
        {
            "source": "dialer",
            "external_id": "c-dee",
            "kind": "call",
            "direction": "outbound",
            "outcome": "connected",
            "occurred_at": "2026-11-04T17:00:00Z",
            "duration_seconds": 180,
            "participants": [{"phone": ANA_PHONE, "role": "caller"}, {"phone": DEE_PHONE, "role": "callee"}],
        },
        {
            "source": "calendar",
            "external_id": "mt-dee",
            "kind": "meeting",
            "direction": "outbound",
            "outcome": "held",
            "occurred_at": "2026-11-05T18:00:00Z",
            "duration_seconds": 1800,
            "participants": [
                {"email": ANA_EMAIL, "role": "organizer", "response_status": "accepted"},
                {"email": DEE_EMAIL, "role": "attendee", "response_status": "accepted"},
            ],
        },
    ]


async def test_a_dpo_exports_one_persons_data_in_one_tenant_audited_and_empty_after_erasure(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    database_url: str,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys: dict[str, dict[str, str]] = {}
    async with db_engine.begin() as conn:
        for tenant in ("acme", "initech"):
            keys[tenant] = (await create_tenant(conn, tenant, TEST_SECRET_KEY))["api_keys"]  # type: ignore[assignment]
    admin = bearer(keys["acme"]["admin"])
    async with in_process_stack(kafka_settings, database_settings) as stack:
        loads = {"acme": _activities(), "initech": _activities()[:1]}
        for tenant, activities in loads.items():
            synced = await stack.ingest.post(
                "/v1/crm/sync", json=_crm(), headers=bearer(keys[tenant]["ingest"])
            )
            assert synced.status_code == 202, synced.text
            await references_landed(db_engine, tenant, _crm()["entities"])
            posted = await stack.ingest.post(
                "/v1/events", json={"activities": activities}, headers=bearer(keys[tenant]["ingest"])
            )
            assert posted.status_code == 202, posted.text
        await poll_rows(
            db_engine,
            "SELECT tenant_id, count(*) FROM attributions GROUP BY tenant_id ORDER BY tenant_id",
            {},
            lambda rows: rows == [("acme", 4), ("initech", 1)],
        )

        by_email = await stack.gateway.get(EXPORT, params={"identity": " DEE@Buyer.Example "}, headers=admin)
        by_phone = await stack.gateway.get(EXPORT, params={"identity": "(415) 555-0100"}, headers=admin)
        assert (by_email.status_code, by_phone.status_code) == (200, 200), by_email.text + by_phone.text
        # Never kept by a browser or a proxy: no ETag, no max-age.
        assert [(r.headers["cache-control"], r.headers.get("etag")) for r in (by_email, by_phone)] == [
            ("no-store", None),
            ("no-store", None),
        ]
        assert by_email.json() == {
            "identity": {"kind": "email", "value": DEE_EMAIL},
            "contacts": [DEE_CONTACT],
            "activities": [MAIL, MEETING],
            "erasures": [],
            **NOTHING_HELD,
            "next_cursor": None,
        }
        assert by_phone.json() == {
            "identity": {"kind": "phone", "value": DEE_PHONE},
            "contacts": [DEE_CONTACT],
            "activities": [CALL],
            "erasures": [],
            **NOTHING_HELD,
            "next_cursor": None,
        }
        # Read through migration 0053's participants index (its expression matches the query's).
        async with db_engine.begin() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = await conn.execute(
                text(f"EXPLAIN {ACTIVITIES_NAMING}"),
                {
                    "t": "acme",
                    "keys": [f"acme {DEE_EMAIL}"],
                    "after_at": None,
                    "after_id": None,
                    "limit": 501,
                },
            )
            assert "Index Scan on activities_participants" in "\n".join(plan.scalars())
        # initech's Dee: her own mail alone, never acme's.
        theirs = await stack.gateway.get(
            EXPORT, params={"identity": DEE_EMAIL}, headers=bearer(keys["initech"]["admin"])
        )
        assert theirs.json()["contacts"] == [DEE_CONTACT]
        assert [a["activity_id"] for a in theirs.json()["activities"]] == [
            str(activity_id_for("initech", "mail", "m-dee"))
        ]
        assert [a["activity_id"] for a in by_email.json()["activities"]] == [
            str(activity_id_for("acme", "mail", "m-dee")),
            str(activity_id_for("acme", "calendar", "mt-dee")),
        ]
        # Pages: one activity each, the cursor naming the next.
        first = (
            await stack.gateway.get(EXPORT, params={"identity": DEE_EMAIL, "limit": 1}, headers=admin)
        ).json()
        assert first["activities"] == [MAIL]
        assert first["next_cursor"]
        second = await stack.gateway.get(
            EXPORT, params={"identity": DEE_EMAIL, "limit": 1, "cursor": first["next_cursor"]}, headers=admin
        )
        assert (second.json()["activities"], second.json()["next_cursor"]) == ([MEETING], None)
        refusals: list[tuple[dict[str, str | int], str]] = [
            ({"identity": "12345"}, "identity"),
            ({"identity": "not-an-address"}, "identity"),
            ({"identity": "dee@"}, "identity"),
            ({"identity": DEE_EMAIL, "limit": 5_001}, "limit"),
            ({"identity": DEE_EMAIL, "cursor": "nope"}, "cursor"),
        ]
        for params, field in refusals:
            refused = await stack.gateway.get(EXPORT, params=params, headers=admin)
            assert refused.status_code == 422, (params, refused.text)
            assert refused.json()["errors"][0]["field"] == field, refused.text
        not_admin = await stack.gateway.get(
            EXPORT, params={"identity": DEE_EMAIL}, headers=bearer(keys["acme"]["read"])
        )
        assert not_admin.status_code == 403, not_admin.text

        # The CLI answers the same JSON through the same handler.
        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("SPM_SECRET_KEY", TEST_SECRET_KEY)
        assert orjson.loads(await export_person("acme", "+1 415 555 0100", 500, None)) == by_phone.json()

        async with db_engine.connect() as conn:
            audited, _ = await list_admin_actions(conn, "acme", limit=10, action="privacy.exported")
        api_key_id = audited[-1]["actor"]
        assert [(a["actor"], a["after"]["identity_kind"], a["after"]["activities"]) for a in audited] == [
            (f"cli:{getpass.getuser()}", "phone", 1),
            (api_key_id, "email", 1),
            (api_key_id, "email", 1),
            (api_key_id, "phone", 1),
            (api_key_id, "email", 2),
        ]
        assert audited[-1]["target"] == f"subject:{audited[-1]['after']['identity_hash']}"
        assert "dee" not in orjson.dumps(audited, default=str).decode().lower()
        assert "555" not in orjson.dumps([a["after"] for a in audited]).decode()

        erased = await stack.gateway.post("/v1/privacy/erasures", json={"email": DEE_EMAIL}, headers=admin)
        assert erased.status_code == 202, erased.text
        erasure_id = erased.json()["erasure_id"]

        async def finished() -> Any:
            job = await stack.gateway.get(f"/v1/privacy/erasures/{erasure_id}", headers=admin)
            return job.json() if job.json()["state"] == "done" else None

        job = await eventually(finished, bool, 60, "the erasure job")
        after = await stack.gateway.get(EXPORT, params={"identity": DEE_EMAIL}, headers=admin)
        record = {
            "erasure_id": erasure_id,
            "identity_kind": "email",
            "state": "done",
            "requested_by": api_key_id,
            "requested_at": job["requested_at"],
            "finished_at": job["finished_at"],
            "counts": job["counts"],
        }
        assert after.json() == {
            "identity": {"kind": "email", "value": DEE_EMAIL},
            "contacts": [],
            "activities": [],
            "erasures": [record],
            **NOTHING_HELD,
            "next_cursor": None,
        }
        assert job["counts"]["activities_deleted"] == 3
        # Her CRM record led the job to her phone, listed under the same erasure: the call is gone too.
        after_phone = await stack.gateway.get(EXPORT, params={"identity": DEE_PHONE}, headers=admin)
        assert after_phone.json() == {**after.json(), "identity": {"kind": "phone", "value": DEE_PHONE}}
        # initech's Dee is untouched.
        again = await stack.gateway.get(
            EXPORT, params={"identity": DEE_EMAIL}, headers=bearer(keys["initech"]["admin"])
        )
        assert again.json() == theirs.json()


def _participant(
    role: str, email: str | None = None, phone: str | None = None, **more: Any
) -> dict[str, Any]:
    return {"name": more.pop("name", None), "role": role, "email": email, "phone": phone, **more}


NOTHING_HELD: dict[str, list[Any]] = {"meeting_removals": [], "undated_deletions": [], "webhook_states": []}
DEE_CONTACT = {
    "contact_id": "con-dee",
    "name": "Dee Person",
    "account_id": "acc-1",
    "account_name": "Buyer",
    "emails": [DEE_EMAIL],
    "phones": [DEE_PHONE],
    "raw_phones": ["(415) 555-0100"],
    "deleted": False,
    "deal_roles": [{"deal_id": "deal-1", "role": "champion"}],
    "former_phones": [],
    "former_accounts": [],
}
ATTRIBUTED = {"rep_id": "rep-1", "deal_id": "deal-1", "status": "attributed"}
MAIL = {
    "activity_id": str(activity_id_for("acme", "mail", "m-dee")),
    "source": "mail",
    "kind": "email",
    "direction": "outbound",
    "occurred_at": "2026-11-02T16:00:00Z",
    # The tenant keeps no subjects (``privacy.keep_subjects`` false): none stored, none exported.
    "subject": None,
    "participants": [_participant("from", ANA_EMAIL), _participant("to", DEE_EMAIL, name="Dee")],
    "attribution": ATTRIBUTED,
}
CALL = {
    "activity_id": str(activity_id_for("acme", "dialer", "c-dee")),
    "source": "dialer",
    "kind": "call",
    "direction": "outbound",
    "occurred_at": "2026-11-04T17:00:00Z",
    "subject": None,
    "participants": [_participant("caller", phone=ANA_PHONE), _participant("callee", phone=DEE_PHONE)],
    "attribution": ATTRIBUTED,
}
MEETING = {
    "activity_id": str(activity_id_for("acme", "calendar", "mt-dee")),
    "source": "calendar",
    "kind": "meeting",
    "direction": "outbound",
    "occurred_at": "2026-11-05T18:00:00Z",
    "subject": None,
    "participants": [
        _participant("organizer", ANA_EMAIL, response_status="accepted"),
        _participant("attendee", DEE_EMAIL, response_status="accepted"),
    ],
    "attribution": ATTRIBUTED,
}


JOSE_NFC = unicodedata.normalize("NFC", "josé@buyer.example")
JOSE_NFD = unicodedata.normalize("NFD", "josé@buyer.example")


async def test_an_export_answers_what_erasure_finds_outside_activities_in_either_unicode_form(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """José left a meeting (its removal keeps his address, decomposed), a deletion was read in his
    calendar and a dialer's state names Dee's phone: each is in the export, as erasure finds them;
    his mail is found whichever Unicode form he is asked for in. Then a setting stored by hand
    that does not validate: 409 naming it, nothing audited."""
    assert JOSE_NFC != JOSE_NFD
    tenant = "globex"
    # Recent: the retention purge forgets older ones.
    read_at = datetime.now(UTC).replace(microsecond=0)
    left, read_in_his, read_in_cys = (
        activity_id_for(tenant, "calendar", m) for m in ("mt-1", "mt-2", "mt-3")
    )
    async with db_engine.begin() as conn:
        keys = (await create_tenant(conn, tenant, TEST_SECRET_KEY))["api_keys"]
        await conn.execute(
            text(
                "INSERT INTO meeting_removals (tenant_id, activity_id, address, answer, revision) "
                "VALUES (:t, :a, :jose, 'accepted', 3), (:t, :a, 'cy@buyer.example', 'declined', 4)"
            ),
            {"t": tenant, "a": left, "jose": JOSE_NFD},
        )
        await conn.execute(
            text(
                "INSERT INTO ingest_undated_deletions (tenant_id, activity_id, read_at, calendar) VALUES "
                "(:t, :his, :read_at, :jose), (:t, :cys, :read_at, 'cy@buyer.example'), "
                "(:t, :cys, :read_at, '')"
            ),
            {"t": tenant, "his": read_in_his, "cys": read_in_cys, "jose": JOSE_NFC, "read_at": read_at},
        )
        await conn.execute(
            text(
                "INSERT INTO webhook_state (tenant_id, source, object_key, state) VALUES "
                "(:t, 'twilio', 'CA-dee', CAST(:dee AS jsonb)), (:t, 'twilio', 'CA-cy', CAST(:cy AS jsonb))"
            ),
            {
                "t": tenant,
                "dee": orjson.dumps(
                    {"legs": [{"from": ANA_PHONE, "to": DEE_PHONE}], "status": "completed"}
                ).decode(),
                "cy": orjson.dumps({"legs": [{"from": ANA_PHONE, "to": "+14155550199"}]}).decode(),
            },
        )
    admin = bearer(keys["admin"])  # type: ignore[index]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        entities = ana_on_team_a()
        ingest = bearer(keys["ingest"])  # type: ignore[index]
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "test", "entities": entities}, headers=ingest
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, tenant, entities)
        posted = await stack.ingest.post(
            "/v1/events", json={"activities": [_mail("m-jose", 2, JOSE_NFD)]}, headers=ingest
        )
        assert posted.status_code == 202, posted.text
        await poll_rows(
            db_engine,
            "SELECT count(*) FROM attributions WHERE tenant_id = :t",
            {"t": tenant},
            lambda r: r == [(1,)],
        )

        answers = [
            (await stack.gateway.get(EXPORT, params={"identity": jose}, headers=admin)).json()
            for jose in (JOSE_NFC, JOSE_NFD)
        ]
        assert [[a["activity_id"] for a in answer["activities"]] for answer in answers] == [
            [str(activity_id_for(tenant, "mail", "m-jose"))]
        ] * 2
        assert [{k: answer[k] for k in NOTHING_HELD} for answer in answers] == [
            {
                "meeting_removals": [
                    {"activity_id": str(left), "address": JOSE_NFD, "answer": "accepted", "revision": 3}
                ],
                "undated_deletions": [
                    {
                        "activity_id": str(read_in_his),
                        "calendar": JOSE_NFC,
                        "read_at": read_at.isoformat().replace("+00:00", "Z"),
                    }
                ],
                "webhook_states": [],
            }
        ] * 2
        dee = (await stack.gateway.get(EXPORT, params={"identity": DEE_PHONE}, headers=admin)).json()
        assert {k: dee[k] for k in NOTHING_HELD} == {
            "meeting_removals": [],
            "undated_deletions": [],
            "webhook_states": [
                {
                    "source": "twilio",
                    "object_key": "CA-dee",
                    "state": {"legs": [{"from": ANA_PHONE, "to": DEE_PHONE}], "status": "completed"},
                }
            ],
        }
        async with db_engine.connect() as conn:
            audited, _ = await list_admin_actions(conn, tenant, limit=10, action="privacy.exported")
        assert [
            {
                k: a["after"][k]
                for k in ("activities", "meeting_removals", "undated_deletions", "webhook_states")
            }
            for a in audited
        ] == [
            {"activities": 0, "meeting_removals": 0, "undated_deletions": 0, "webhook_states": 1},
            {"activities": 1, "meeting_removals": 1, "undated_deletions": 1, "webhook_states": 0},
            {"activities": 1, "meeting_removals": 1, "undated_deletions": 1, "webhook_states": 0},
        ]

        # A setting stored by hand that does not validate: 409 naming it (not a 500), nothing audited.
        async with db_engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE tenants SET settings = settings || "
                    """'{"privacy": {"excluded_domain": ["lawfirm.example"]}}'::jsonb WHERE tenant_id = :t"""
                ),
                {"t": tenant},
            )
        broken = await stack.gateway.get(EXPORT, params={"identity": JOSE_NFC}, headers=admin)
        assert broken.status_code == 409, broken.text
        assert broken.json()["errors"] == [
            {
                "in": "stored settings",
                "field": "privacy.excluded_domain",
                "reason": "Extra inputs are not permitted",
            }
        ]
        assert broken.json()["detail"].startswith(
            "tenant 'globex' has invalid settings: privacy.excluded_domain: Extra inputs are not permitted"
        )
        async with db_engine.connect() as conn:
            assert len((await list_admin_actions(conn, tenant, limit=10, action="privacy.exported"))[0]) == 3
