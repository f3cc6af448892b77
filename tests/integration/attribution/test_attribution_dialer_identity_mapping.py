"""A dialer admin wires RingCentral and Twilio first and maps the reps' extensions and softphone
identities afterwards (docs/webhooks.md): with ingest, the real broker, attribution, metrics, the
gateway and PostgreSQL. The calls received before the mapping are nobody's; mapping the
extension or identity through ``PATCH /v1/settings/organization`` re-credits them (the
``recredit_reps`` job, one new version each), and re-mapping it to another rep moves them.

Before calls kept their extension or identity (``crm.owner_identities``), ingest stored only the
rep it found when a call arrived: the job examined nothing, the calls stayed nobody's and Ana's
scorecard read 0 dials.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_held_out_situations_ringcentral import (
    ANA,
    ANA_EXT,
    outbound,
)
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver, _twilio
from tests.integration.ingest.ingest_integration_support import TENANT, setup_tenant
from tests.integration.polling import poll_rows, references_landed, settings_job_done
from tests.integration.quarter.quarter_support import Tenant, get, settle

#: Numbers nobody lists: the reps are known to these calls only by extension or identity.
NOBODY, NOBODY_ELSE = "+14155550911", "+14155550912"
ROSTER: list[dict[str, Any]] = [
    {"entity_type": "rep", "id": "rep-ana", "name": "Ana Seller", "updated_at": "2026-10-01T00:00:00Z"},
    {"entity_type": "rep", "id": "rep-bo", "name": "Bo Closer", "updated_at": "2026-10-01T00:00:00Z"},
]
CURRENT = (
    "SELECT rep_id, version, explanation -> 'rep' ->> 'via' FROM attributions "
    "WHERE tenant_id = :t AND activity_id = ANY(:a) ORDER BY activity_id"
)
#: Two calls of Ana's extension (60 s and 120 s of talk), two of her browser softphone (45 s, 30 s).
RINGCENTRAL = {
    "s-1": outbound("s-1", ANA, NOBODY, ("09:00:00", "09:00:05", "09:01:05")),
    "s-2": outbound("s-2", ANA, NOBODY_ELSE, ("10:00:00", "10:00:10", "10:02:10")),
}
TWILIO = {
    "CA-1": _twilio("CA-1", "completed", 45, Direction="inbound", From="client:ana", To=NOBODY),
    "CA-2": _twilio("CA-2", "completed", 30, Direction="inbound", From="client:ana", To=NOBODY_ELSE),
}


async def _november(stack: Any, tenant: Tenant) -> dict[str, tuple[int, ...]]:
    """Ana's and Bo's November dials, connects and talk seconds, as their scorecards read (a
    scorecard with no period: none)."""
    found = {}
    for rep in ("rep-ana", "rep-bo"):
        url = f"/v1/reps/{rep}/scores?granularity=month&from=2026-11-01&to=2026-11-30"
        periods = (await get(stack, tenant, url))["periods"]
        counts = periods[0]["counts"] if periods else {}
        found[rep] = tuple(counts.get(k, 0) for k in ("dials", "connects", "talk_seconds"))
    return found


async def test_calls_received_before_their_extension_or_identity_was_mapped_follow_the_mapping(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    keys = await setup_tenant(db_engine, {"default_phone_region": "US"})
    acme = Tenant(TENANT, *({"Authorization": f"Bearer {keys[s]}"} for s in ("ingest", "read", "admin")))
    calls = {
        "ringcentral": [activity_id_for(TENANT, "ringcentral", s) for s in RINGCENTRAL],
        "twilio": [activity_id_for(TENANT, "twilio", s) for s in TWILIO],
    }

    async def credited(source: str, rep: str | None, version: int, via: str) -> None:
        await poll_rows(
            db_engine,
            CURRENT,
            {"t": TENANT, "a": calls[source]},
            lambda rows: rows == [(rep, version, via)] * 2,
        )

    async def mapped(aliases: dict[str, str]) -> dict[str, Any]:
        answer = await stack.gateway.patch(
            "/v1/settings/organization", json={"rep_aliases": aliases}, headers=acme.admin
        )
        job: dict[str, Any] = await settings_job_done(stack.gateway, acme.admin, answer)
        return job

    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "hr", "entities": ROSTER}, headers=acme.ingest
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, ROSTER)
        for body in [*RINGCENTRAL["s-1"], *RINGCENTRAL["s-2"]]:
            await _deliver(stack, "ringcentral", body)
        for body in TWILIO.values():
            await _deliver(stack, "twilio", body)
        await settle(kafka_settings)
        # Unmapped: nobody's (nothing on the tenant's side is a rep, no deal to fall back on).
        await credited("ringcentral", None, 1, "none")
        await credited("twilio", None, 1, "none")
        before = await _november(stack, acme)

        job = await mapped({ANA_EXT: "rep-ana", "ana": "rep-ana"})
        assert (job["kind"], job["state"], job["parameters"]) == (
            "recredit_reps",
            "done",
            {"names": [ANA_EXT, "ana", "rep-ana"]},
        )
        assert (job["result"]["examined"], job["result"]["changed"], job["result"]["published"]) == (4, 4, 4)
        await credited("ringcentral", "rep-ana", 2, "crm_owner")
        await credited("twilio", "rep-ana", 2, "crm_owner")
        await settle(kafka_settings)
        mapped_to_ana = await _november(stack, acme)

        # Ana's extension was Bo's desk all along: re-mapped, its calls move; her softphone stays.
        job = await mapped({ANA_EXT: "rep-bo"})
        assert (job["state"], job["parameters"], job["result"]["changed"]) == (
            "done",
            {"names": [ANA_EXT, "rep-ana", "rep-bo"]},
            2,
        )
        await credited("ringcentral", "rep-bo", 3, "crm_owner")
        await credited("twilio", "rep-ana", 2, "crm_owner")
        await settle(kafka_settings)
        remapped = await _november(stack, acme)
    assert before == {"rep-ana": (0, 0, 0), "rep-bo": (0, 0, 0)}
    # 2 extension calls (60 s + 120 s) and 2 softphone calls (45 s + 30 s).
    assert mapped_to_ana == {"rep-ana": (4, 4, 255), "rep-bo": (0, 0, 0)}
    assert remapped == {"rep-ana": (2, 2, 75), "rep-bo": (2, 2, 180)}


async def test_a_softphone_call_stored_with_an_edge_host_follows_the_sip_domains_key(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A Twilio call through an edge location stored while ingest kept the edge host
    (``ana@acme.sip.us1.twilio.com``, as its ``crm.owner_identities`` hold it): the admin maps
    ``ana@acme.sip.twilio.com`` as the docs say, and the ``recredit_reps`` job finds the call and
    credits Ana (rules 2026.12.36; before, the job examined nothing and the call stayed nobody's)."""
    keys = await setup_tenant(db_engine, {"default_phone_region": "US"})
    acme = Tenant(TENANT, *({"Authorization": f"Bearer {keys[s]}"} for s in ("ingest", "read", "admin")))
    stored = {
        "source": "twilio",
        "external_id": "CA-edge",
        "kind": "call",
        "direction": "outbound",
        "outcome": "connected",
        "occurred_at": "2026-11-05T10:00:00Z",
        "duration_seconds": 40,
        "participants": [{"phone": NOBODY, "role": "callee"}],
        "crm": {"owner_identities": ["ana", "ana@acme.sip.us1.twilio.com"]},
    }
    call = activity_id_for(TENANT, "twilio", "CA-edge")
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "hr", "entities": ROSTER}, headers=acme.ingest
        )
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, ROSTER)
        posted = await stack.ingest.post("/v1/events", json={"activities": [stored]}, headers=acme.ingest)
        assert posted.status_code == 202, posted.text
        await poll_rows(
            db_engine, CURRENT, {"t": TENANT, "a": [call]}, lambda rows: rows == [(None, 1, "none")]
        )
        answer = await stack.gateway.patch(
            "/v1/settings/organization",
            json={"rep_aliases": {"ana@acme.sip.twilio.com": "rep-ana"}},
            headers=acme.admin,
        )
        job = await settings_job_done(stack.gateway, acme.admin, answer)
        assert (job["state"], job["result"]["examined"], job["result"]["changed"]) == ("done", 1, 1)
        await poll_rows(
            db_engine, CURRENT, {"t": TENANT, "a": [call]}, lambda rows: rows == [("rep-ana", 2, "crm_owner")]
        )
        await settle(kafka_settings)
        scores = await _november(stack, acme)
    assert scores == {"rep-ana": (1, 1, 40), "rep-bo": (0, 0, 0)}
