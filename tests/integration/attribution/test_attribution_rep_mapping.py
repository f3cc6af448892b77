"""The tenant's rep mapping set by an admin through the API, with ingest, the real broker,
attribution, the gateway and PostgreSQL: an alias address no source lists and a source's rep id
mapped to a rep re-credit history as new versions (a ``recredit_reps`` job the change starts);
unmapping gives it back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.attribution.test_attribution_real_crm import DEAL, REP, TENANT, _crm
from tests.integration.crm_support import email_from_ana
from tests.integration.polling import poll_rows, references_landed, settings_job_done

CURRENT = (
    "SELECT rep_id, team_id, version, explanation -> 'rep' ->> 'via' FROM attributions "
    "WHERE tenant_id = :t AND activity_id = :a"
)


def _from(external_id: str, sender: str) -> dict[str, Any]:
    return email_from_ana(
        external_id,
        participants=[{"email": sender, "role": "from"}, {"email": "dana@buyer.example", "role": "to"}],
    )


async def test_an_admin_maps_an_alias_address_and_a_source_id_to_a_rep_and_history_moves(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, TENANT, TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    bo = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
    # A dialer's user for Ana under another address: nothing links it to her but the tenant.
    dialer_user = {"entity_type": "rep", "id": "u-9", "emails": ["ana.dialer@seller.example"]}
    team = {"entity_type": "team", "id": "team-a"}
    membership = {
        "entity_type": "team_membership",
        "id": "m-a",
        "rep_id": "rep-1",
        "team_id": "team-a",
        "valid_from": "2026-01-01",
    }
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["dana@buyer.example"],
    }
    deal = {**DEAL, "owner_rep_id": "rep-2"}
    ids = {name: activity_id_for(TENANT, "mail", name) for name in ("m-alias", "m-dialer", "m-new")}

    async def now(name: str, expected: tuple[Any, ...]) -> None:
        await poll_rows(db_engine, CURRENT, {"t": TENANT, "a": ids[name]}, lambda rows: rows == [expected])

    services = ("ingest", "attribution", "gateway")
    async with in_process_stack(kafka_settings, database_settings, services) as stack:
        crm = _crm(REP, bo, dialer_user, team, membership, account, contact, deal)
        assert (await stack.ingest.post("/v1/crm/sync", json=crm, headers=ingest)).status_code == 202
        await references_landed(db_engine, TENANT, crm["entities"])
        mails = [_from("m-alias", "ana-emea@seller.example"), _from("m-dialer", "ana.dialer@seller.example")]
        posted = await stack.ingest.post("/v1/events", json={"activities": mails}, headers=ingest)
        assert posted.status_code == 202, posted.text
        # The alias names nobody: the deal's owner is credited; the dialer user is its own rep.
        await now("m-alias", ("rep-2", None, 1, "deal_owner"))
        await now("m-dialer", ("u-9", None, 1, "from"))

        mapped = await stack.gateway.patch(
            "/v1/settings/organization",
            json={"rep_aliases": {"ana-emea@seller.example": "rep-1", "u-9": "rep-1"}},
            headers=admin,
        )
        job = await settings_job_done(stack.gateway, admin, mapped)
        assert (job["kind"], job["state"], job["parameters"]) == (
            "recredit_reps",
            "done",
            {"names": ["ana-emea@seller.example", "rep-1", "u-9"]},
        )
        assert (job["result"]["examined"], job["result"]["changed"], job["result"]["published"]) == (2, 2, 2)
        await now("m-alias", ("rep-1", "team-a", 2, "from"))
        await now("m-dialer", ("rep-1", "team-a", 2, "from"))
        # New mail from the alias is Ana's at once.
        new = await stack.ingest.post(
            "/v1/events", json={"activities": [_from("m-new", "ana-emea@seller.example")]}, headers=ingest
        )
        assert new.status_code == 202, new.text
        await now("m-new", ("rep-1", "team-a", 1, "from"))

        # Both were mapped by mistake: removing the entries gives their history back.
        unmapped = await stack.gateway.patch(
            "/v1/settings/organization",
            json={"rep_aliases": {"ana-emea@seller.example": None, "u-9": None}},
            headers=admin,
        )
        job = await settings_job_done(stack.gateway, admin, unmapped)
        assert (job["state"], job["parameters"], job["result"]["changed"]) == (
            "done",
            {"names": ["ana-emea@seller.example", "rep-1", "u-9"]},
            3,
        )
        await now("m-alias", ("rep-2", None, 3, "deal_owner"))
        await now("m-new", ("rep-2", None, 2, "deal_owner"))
        await now("m-dialer", ("u-9", None, 3, "from"))
    async with db_engine.connect() as conn:
        people = [
            tuple(r)
            for r in await conn.execute(
                text("SELECT rep_id, alias_of FROM ref_reps WHERE tenant_id = :t ORDER BY rep_id"),
                {"t": TENANT},
            )
        ]
    assert people == [("rep-1", None), ("rep-2", None), ("u-9", None)]
