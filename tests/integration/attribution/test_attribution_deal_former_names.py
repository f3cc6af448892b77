"""A deal renamed in the CRM keeps the name it had for the mail sent before the rename
(rules 2026.12.42): a subject naming it by that name still names it when the rename re-decides the
deal's window; mail naming the new name is the deal's too. The names are those its versions were
seen with (``ref_deal_names``, rules 2026.12.44), so an older version received late adds its name
to the history, and a deal merged into another lends its names to the survivor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.audit import Actor, CredentialKind
from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.attribution.deal_names_backfill import backfill_deal_names
from tests.integration.attribution.attribution_support import reattribute_settled, rows
from tests.integration.quarter.quarter_support import (
    Tenant,
    activity,
    configure,
    contact,
    deal,
    email,
    get,
    new_tenant,
    post,
    rep,
    settle,
    sync,
)

ANA = "ana@seller.example"
CY = "cy@acme.example"
#: The names each deal was seen with, by the ``updated_at`` of its versions (rules 2026.12.44).
SEEN = "SELECT deal_id, seen, name FROM ref_deal_names WHERE tenant_id = :t ORDER BY deal_id, seen"
AUDITED = (
    "SELECT actor, credential, target, after FROM audit_log "
    "WHERE tenant_id = :t AND action = 'deal_names.backfilled'"
)


#: The names seen once the payroll deal, first seen on 1 September, is renamed on 1 November.
RENAMED_SEEN = [
    ("deal-ana", datetime(2026, 9, 1, tzinfo=UTC), "Acme - Analytics"),
    ("deal-pay", datetime(2026, 9, 1, tzinfo=UTC), "Acme - Payroll Rollout"),
    ("deal-pay", datetime(2026, 11, 1, tzinfo=UTC), "Acme - HR Suite"),
]


async def _tenant(db_engine: AsyncEngine) -> Tenant:
    """A tenant that keeps subjects (the rules read deal names in them)."""
    tenant = await new_tenant(db_engine)
    await configure(db_engine, tenant, {"privacy": {"keep_subjects": True}})
    return tenant


async def _sync_acme(stack: Any, db_engine: AsyncEngine, tenant: Tenant, *deals: dict[str, Any]) -> None:
    """Ana, Acme, Cy its contact, and ``deals``, as the CRM had them on 1 September."""
    await sync(
        stack,
        db_engine,
        tenant,
        "2026-09-01T00:00:00Z",
        rep("rep-ana", ANA),
        {"entity_type": "account", "id": "acc-acme", "name": "Acme", "domains": ["acme.example"]},
        contact("con-cy", "acc-acme", CY),
        *deals,
    )


def _deal(deal_id: str, name: str) -> dict[str, Any]:
    """An open deal of Acme owned by Ana, Cy its champion."""
    return deal(deal_id, name, "acc-acme", "rep-ana", "2026-09-01T00:00:00Z", "con-cy")


async def _versions(stack: Any, tenant: Tenant, name: str) -> list[tuple[int, str, str | None]]:
    body = await get(stack, tenant, f"/v1/activities/{activity_id_for(tenant.tenant_id, 'mail', name)}")
    return [(v["version"], v["status"], v["deal_id"]) for v in body["history"]]


async def _decided(stack: Any, tenant: Tenant, external_id: str) -> tuple[str, str | None, str | None]:
    """The mail's (status, deal, rule_path)."""
    seen = await activity(stack, tenant, "mail", external_id)
    return (seen["status"], seen["deal"], seen["rule_path"])


async def _post_kickoff(stack: Any, tenant: Tenant) -> None:
    """Ana's October mail "Payroll Rollout kickoff" to Cy."""
    await post(
        stack, tenant, email("m-1", ANA, CY, "2026-10-10T15:00:00Z", subject="Payroll Rollout kickoff")
    )


async def test_mail_naming_a_deal_by_its_name_before_a_rename_stays_the_deals(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana owns Acme's "Payroll Rollout" and "Analytics" deals, Cy the champion of both. Her
    October mail "Payroll Rollout kickoff" is the payroll deal's by its subject. Renamed "Acme - HR
    Suite" on 1 November, the deal's window is re-decided: the kickoff mail stays attributed to it
    (no second version, no close call), and her November mail "HR Suite demo" is the deal's too."""
    tenant = await _tenant(db_engine)
    payroll = _deal("deal-pay", "Acme - Payroll Rollout")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_acme(stack, db_engine, tenant, payroll, _deal("deal-ana", "Acme - Analytics"))
        await _post_kickoff(stack, tenant)
        await settle(kafka_settings)
        assert await _decided(stack, tenant, "m-1") == ("attributed", "deal-pay", "subject")

        await sync(stack, db_engine, tenant, "2026-11-01T00:00:00Z", {**payroll, "name": "Acme - HR Suite"})
        await post(stack, tenant, email("m-2", ANA, CY, "2026-11-05T15:00:00Z", subject="HR Suite demo"))
        await settle(kafka_settings)
        assert await _versions(stack, tenant, "m-1") == [(1, "attributed", "deal-pay")]
        assert await _decided(stack, tenant, "m-2") == ("attributed", "deal-pay", "subject")
        assert await rows(db_engine, SEEN, {"t": tenant.tenant_id}) == RENAMED_SEEN


async def test_an_older_version_received_late_adds_its_name_to_the_history_not_the_current_one(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A sync replay delivers the payroll deal's 1 November version ("Acme - HR Suite") before
    its 1 October one ("Acme - Payroll Rollout"). Ana's October mail "Payroll Rollout kickoff",
    decided in between, names neither of Acme's two deals: a close call. Once the older version
    is read, the deal was "Payroll Rollout" then: the mail is re-decided and is the payroll
    deal's by its subject (rules 2026.12.44: before, an older version was dropped whole, and its
    name with it). The deal is still "HR Suite": her November mail "HR Suite demo" is its too."""
    tenant = await _tenant(db_engine)
    payroll = _deal("deal-pay", "Acme - HR Suite")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_acme(stack, db_engine, tenant, _deal("deal-ana", "Acme - Analytics"))
        await sync(stack, db_engine, tenant, "2026-11-01T00:00:00Z", payroll)
        await _post_kickoff(stack, tenant)
        await settle(kafka_settings)
        assert (await _decided(stack, tenant, "m-1"))[:2] == ("ambiguous", "deal-ana")

        await sync(
            stack, db_engine, tenant, "2026-10-01T00:00:00Z", {**payroll, "name": "Acme - Payroll Rollout"}
        )
        await settle(kafka_settings)
        await post(stack, tenant, email("m-2", ANA, CY, "2026-11-05T15:00:00Z", subject="HR Suite demo"))
        await settle(kafka_settings)
        assert await _versions(stack, tenant, "m-1") == [
            (1, "ambiguous", "deal-ana"),
            (2, "attributed", "deal-pay"),
        ]
        assert await _decided(stack, tenant, "m-1") == ("attributed", "deal-pay", "subject")
        assert await _decided(stack, tenant, "m-2") == ("attributed", "deal-pay", "subject")
        assert await rows(
            db_engine,
            "SELECT name, updated_at FROM ref_deals WHERE tenant_id = :t AND deal_id = 'deal-pay'",
            {"t": tenant.tenant_id},
        ) == [("Acme - HR Suite", datetime(2026, 11, 1, tzinfo=UTC))]
        assert await rows(db_engine, SEEN, {"t": tenant.tenant_id}) == [
            ("deal-ana", datetime(2026, 9, 1, tzinfo=UTC), "Acme - Analytics"),
            ("deal-pay", datetime(2026, 10, 1, tzinfo=UTC), "Acme - Payroll Rollout"),
            ("deal-pay", datetime(2026, 11, 1, tzinfo=UTC), "Acme - HR Suite"),
        ]


async def test_mail_naming_a_deal_merged_away_goes_to_its_survivor(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Acme's "Payroll Rollout" duplicates its "HR Suite" deal; Ana's October mail "Payroll
    Rollout kickoff" is the payroll deal's by its subject. On 1 November the CRM merges it into
    "HR Suite" (a bare merge: the merged deal's id and survivor only). The mail is re-decided and
    goes to the survivor by the merged deal's name (rules 2026.12.44: before, the survivor kept
    only its own name, and the mail was a close call with Acme's "Analytics" deal). After the
    merge the duplicate's name still names the survivor (rules 2026.12.45: before, her mail of 5
    November naming "Payroll Rollout" was a close call with "Analytics")."""
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_acme(
            stack,
            db_engine,
            tenant,
            _deal("deal-pay", "Acme - Payroll Rollout"),
            _deal("deal-hr", "Acme - HR Suite"),
            _deal("deal-ana", "Acme - Analytics"),
        )
        await _post_kickoff(stack, tenant)
        await settle(kafka_settings)
        assert await _decided(stack, tenant, "m-1") == ("attributed", "deal-pay", "subject")

        merge = {
            "entity_type": "deal",
            "id": "deal-pay",
            "merged_into": "deal-hr",
            "created_at": "2026-09-01T00:00:00Z",
        }
        await sync(stack, db_engine, tenant, "2026-11-01T00:00:00Z", merge)
        await post(
            stack, tenant, email("m-2", ANA, CY, "2026-11-05T15:00:00Z", subject="Payroll Rollout next steps")
        )
        await settle(kafka_settings)
        assert await _versions(stack, tenant, "m-1") == [
            (1, "attributed", "deal-pay"),
            (2, "attributed", "deal-hr"),
        ]
        assert await _decided(stack, tenant, "m-1") == ("attributed", "deal-hr", "subject")
        assert await _decided(stack, tenant, "m-2") == ("attributed", "deal-hr", "subject")


async def _reattribute_autumn(kafka_settings: KafkaSettings, db_engine: AsyncEngine, tenant: Tenant) -> int:
    """``spm reattribute`` over October and November, settled: the attributions changed."""
    since, until = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    report = await reattribute_settled(kafka_settings, db_engine, tenant.tenant_id, since, until)
    return report.changed


async def test_a_rename_before_the_upgrade_is_read_back_from_the_crm_topic(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The payroll deal was renamed "HR Suite" on 1 November before the upgrade: no name of it was
    kept, and ``spm reattribute`` over the autumn makes Ana's October mail "Payroll Rollout
    kickoff" a close call. ``spm backfill-deal-names`` reads the deal's versions back from
    ``crm-entity-changed`` (the tenant's only), and the next ``spm reattribute`` gives the mail
    back to the payroll deal."""
    tenant = await _tenant(db_engine)
    payroll = _deal("deal-pay", "Acme - Payroll Rollout")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync_acme(stack, db_engine, tenant, payroll, _deal("deal-ana", "Acme - Analytics"))
        await _post_kickoff(stack, tenant)
        await sync(stack, db_engine, tenant, "2026-11-01T00:00:00Z", {**payroll, "name": "Acme - HR Suite"})
        await settle(kafka_settings)
        # The database as an upgrade finds it: no name seen of any deal.
        async with db_engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM ref_deal_names WHERE tenant_id = :t"), {"t": tenant.tenant_id}
            )
        assert await _reattribute_autumn(kafka_settings, db_engine, tenant) == 1

        report = await backfill_deal_names(
            db_engine, kafka_settings, tenant.tenant_id, Actor("cli:ops", CredentialKind.CLI)
        )
        assert (report.versions, report.deals, report.unreadable, report.earliest) == (
            3,
            2,
            0,
            datetime(2026, 9, 1, tzinfo=UTC),
        )
        assert await rows(db_engine, SEEN, {"t": tenant.tenant_id}) == RENAMED_SEEN
        # Audited as the operator's, with what it read.
        assert await rows(db_engine, AUDITED, {"t": tenant.tenant_id}) == [
            (
                "cli:ops",
                "cli",
                "deal_names",
                {
                    "records": report.records,
                    "versions": 3,
                    "deals": 2,
                    "unreadable": 0,
                    "earliest": "2026-09-01T00:00:00+00:00",
                    "latest": "2026-11-01T00:00:00+00:00",
                },
            )
        ]
        assert await _reattribute_autumn(kafka_settings, db_engine, tenant) == 1
        assert await _versions(stack, tenant, "m-1") == [
            (1, "attributed", "deal-pay"),
            (2, "ambiguous", "deal-ana"),
            (3, "attributed", "deal-pay"),
        ]
