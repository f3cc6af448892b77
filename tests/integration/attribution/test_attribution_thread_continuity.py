"""A reply from a buying-group member on two deals continues its thread's deal, through the
whole in-process stack (ingest -> attribution -> metrics) with the real broker and PostgreSQL:
the thread's earlier attribution is read back from the database by the batch loader."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.polling import poll_rows, references_landed

from .test_attribution_pipeline import REP_AND_ACCOUNT, T0, _deal, _post

#: Amy is on deal-1 only; Pat (procurement) on both deals; neither deal is Ana's, so nothing
#: but a contact's role or the thread tells them apart.
BUYING_GROUP: list[dict[str, Any]] = [
    *REP_AND_ACCOUNT,
    {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"], "updated_at": T0},
    {"entity_type": "contact", "id": "con-amy", "emails": ["amy@buyer.example"], "account_id": "acc-1", "updated_at": T0},
    {"entity_type": "contact", "id": "con-pat", "emails": ["pat@buyer.example"], "account_id": "acc-1", "updated_at": T0},
    _deal("deal-1", "2026-10-01T00:00:00Z", ["con-amy", "con-pat"], owner_rep_id="rep-2"),
    _deal("deal-2", "2026-10-05T00:00:00Z", ["con-pat"], owner_rep_id="rep-2"),
]  # fmt: skip


def _mail(external_id: str, sender: str, to: str, at: str, thread_id: str | None) -> dict[str, Any]:
    outbound = sender.endswith("@seller.example")
    return {
        "source": "mail",
        "external_id": external_id,
        "kind": "email",
        "direction": "outbound" if outbound else "inbound",
        "outcome": "sent" if outbound else "received",
        "occurred_at": at,
        "participants": [{"email": sender, "role": "from"}, {"email": to, "role": "to"}],
        **({"thread_id": thread_id} if thread_id else {}),
    }


async def test_a_tied_reply_continues_the_deal_its_thread_was_attributed_to(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        tenant = await create_tenant(conn, "acme", TEST_SECRET_KEY)
    keys: dict[str, str] = tenant["api_keys"]  # type: ignore[assignment]
    current = (
        "SELECT a.external_id, t.version, t.status, t.deal_id, t.secondary_deal_ids, t.rep_id, "
        "t.explanation->>'rule_path' AS rule_path FROM attributions t "
        "JOIN activities a ON a.tenant_id = t.tenant_id AND a.activity_id = t.activity_id "
        "WHERE t.tenant_id = 'acme' ORDER BY t.occurred_at"
    )
    contributions = (
        "SELECT deal_id, count(*) FROM metric_contributions WHERE tenant_id = 'acme' "
        "GROUP BY deal_id ORDER BY deal_id NULLS LAST"
    )
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _post(
            stack.ingest, "/v1/crm/sync", keys["ingest"], {"source": "test", "entities": BUYING_GROUP}
        )
        await references_landed(db_engine, "acme", BUYING_GROUP)
        opening = _mail("m-open", "ana@seller.example", "amy@buyer.example", "2026-11-02T10:00:00Z", "t-1")
        await _post(stack.ingest, "/v1/events", keys["ingest"], {"activities": [opening]})
        [first] = await poll_rows(db_engine, current, {}, lambda rows: len(rows) == 1)
        assert tuple(first) == ("m-open", 1, "attributed", "deal-1", [], "rep-1", "contact_role")

        # A later batch: the thread's attribution comes back from PostgreSQL, not from memory.
        replies = [
            _mail("m-reply", "pat@buyer.example", "ana@seller.example", "2026-11-03T09:00:00Z", "t-1"),
            _mail("m-alone", "pat@buyer.example", "ana@seller.example", "2026-11-03T09:30:00Z", None),
        ]
        await _post(stack.ingest, "/v1/events", keys["ingest"], {"activities": replies})
        rows = await poll_rows(db_engine, current, {}, lambda rows: len(rows) == 3)
        credited = await poll_rows(db_engine, contributions, {}, lambda rows: sum(r[1] for r in rows) == 3)

    assert [tuple(r) for r in rows] == [
        ("m-open", 1, "attributed", "deal-1", [], "rep-1", "contact_role"),
        ("m-reply", 1, "attributed", "deal-1", [], "rep-1", "thread"),
        # The same message outside the thread is a close call: recency puts the newer deal first.
        ("m-alone", 1, "ambiguous", "deal-2", ["deal-1"], "rep-1", "recency"),
    ]
    # Metrics credits deal-1 with the opening and the reply; the close call feeds no deal.
    assert [tuple(r) for r in credited] == [("deal-1", 2), (None, 1)]
