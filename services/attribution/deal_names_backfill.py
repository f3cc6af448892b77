"""The names a tenant's deals were seen with before ``ref_deal_names`` existed, from the CRM
versions the ``crm-entity-changed`` topic still holds (``spm backfill-deal-names``; rules
2026.12.44).

A CRM sends its current state, and before migration ``0051_deal_names_seen`` (and
``0046_deal_former_names`` before it) nothing kept a deal's earlier names: ``ref_deals`` holds
its latest version, the attributions hold the deals chosen and their signals' values, ingest
keeps no CRM record. The topic does, for its retention (30 days by default): every version
ingest published, renames and the versions of deals merged since included. Each deal version of
the tenant read is recorded as a name seen (``repository.see_deal_names``), in one transaction,
as if received now: the name held stays, a name already seen is seen again. Nothing is
re-decided: the report's ``earliest`` is where ``spm reattribute`` should start. The run is
audited (``deal_names.backfilled``, with its counts) in the same transaction, whoever ran it
(``actor``), even when the topic held no name of the tenant's deals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.audit import Actor, AuditAction, record_admin_action
from libs.common.contracts.crm import CrmEntityChangedV1, DealV1
from libs.common.contracts.envelope import InvalidMessage
from libs.common.kafka.dlq import DeadLetter, read_from_start
from libs.common.settings import KafkaSettings
from libs.common.topics import CRM_ENTITY_CHANGED
from services.attribution.adapters import repository as repo


@dataclass
class DealNamesBackfill:
    """What a backfill read and recorded."""

    tenant_id: str
    #: Records of the topic read (every tenant's), and of them the tenant's deal versions, and
    #: the tenant's records no consumer could read (left out, as the consumer left them).
    records: int = 0
    versions: int = 0
    unreadable: int = 0
    #: Deals with a named version, and the earliest and latest version read.
    deals: int = 0
    earliest: datetime | None = None
    latest: datetime | None = None


async def backfill_deal_names(
    engine: AsyncEngine, kafka: KafkaSettings, tenant_id: str, actor: Actor
) -> DealNamesBackfill:
    """Record the names of ``tenant_id``'s deal versions ``crm-entity-changed`` holds, audited as
    ``actor``'s."""
    report = DealNamesBackfill(tenant_id)
    versions: list[DealV1] = []

    async def take(batch: list[DeadLetter]) -> None:
        report.records += len(batch)
        for record in batch:
            if (
                record.header("ce_tenant") != tenant_id
                or record.header("ce_type") != CRM_ENTITY_CHANGED.event_type
            ):
                continue
            try:
                event = CRM_ENTITY_CHANGED.decode(record.value)
            except InvalidMessage:
                report.unreadable += 1
                continue
            if isinstance(event, CrmEntityChangedV1) and isinstance(event.entity, DealV1):
                versions.append(event.entity)

    await read_from_start(kafka, CRM_ENTITY_CHANGED.physical(kafka.topic_prefix), take)
    named = [v for v in versions if v.name]
    report.versions = len(versions)
    report.deals = len({v.id for v in named})
    if named:
        report.earliest = min(v.updated_at for v in named)
        report.latest = max(v.updated_at for v in named)
    async with engine.begin() as conn:
        if named:
            await repo.see_deal_names(conn, tenant_id, named)
        await record_admin_action(
            conn,
            tenant_id,
            actor,
            AuditAction.DEAL_NAMES_BACKFILLED,
            "deal_names",
            after={
                "records": report.records,
                "versions": report.versions,
                "deals": report.deals,
                "unreadable": report.unreadable,
                "earliest": report.earliest.isoformat() if report.earliest else None,
                "latest": report.latest.isoformat() if report.latest else None,
            },
        )
    return report
