"""An erasure listed before rules 2026.12.40 holds the hash of the address as the admin typed it,
maybe decomposed (``josé@`` with the accent as a separate mark); mail naming her composed, as
attribution now holds addresses, is still hers: masked at ingest, dropped when nobody else
external remains, and never stored."""

from __future__ import annotations

import unicodedata

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.erasures import IdentityKind, erasure_key, identity_hash, request_erasure
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY, in_process_stack
from tests.integration.crm_support import ana_on_team_a
from tests.integration.pipeline_support import drained
from tests.integration.polling import references_landed

from .privacy_support import mails_from_ana, tables_mentioning
from .test_privacy_erasure_mailboxes import _attributed, bearer

TENANT = "acme-nfd"
JOSE_NFD = unicodedata.normalize("NFD", "josé@buyer.example")
JOSE_NFC = unicodedata.normalize("NFC", "josé@buyer.example")
CY = "cy@buyer.example"

pytestmark = pytest.mark.usefixtures("fast_erasure_caches")


async def test_an_erasure_listed_decomposed_before_names_composed_mail(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    assert JOSE_NFD != JOSE_NFC
    async with db_engine.begin() as conn:
        keys = (await create_tenant(conn, TENANT, TEST_SECRET_KEY))["api_keys"]
        # As listed before rules 2026.12.40: the typed (decomposed) form's hash alone.
        listed = identity_hash(erasure_key(TEST_SECRET_KEY), IdentityKind.EMAIL, JOSE_NFD)
        await request_erasure(conn, TENANT, IdentityKind.EMAIL, listed, "admin")
    headers = bearer(keys["ingest"])  # type: ignore[index]
    entities = ana_on_team_a()
    crm = {"source": "test", "entities": entities}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await stack.ingest.post("/v1/crm/sync", json=crm, headers=headers)
        assert synced.status_code == 202, synced.text
        await references_landed(db_engine, TENANT, entities)
        mails = mails_from_ana(
            ("m-jose", "2026-11-02T16:00:00Z", [JOSE_NFC]),
            ("m-jose-cy", "2026-11-03T16:00:00Z", [JOSE_NFC, CY]),
            ("m-cy", "2026-11-04T16:00:00Z", [CY]),
        )
        posted = await stack.ingest.post("/v1/events", json={"activities": mails}, headers=headers)
        assert posted.status_code == 202, posted.text
        await drained(kafka_settings)
        # Cy's two mails are attributed; José's alone is dropped (nobody external remains).
        assert await _attributed(db_engine, TENANT) == 2
        async with db_engine.connect() as conn:
            held = await conn.execute(
                text("SELECT count(*) FROM activities WHERE tenant_id = :t"), {"t": TENANT}
            )
            assert held.scalar_one() == 2
    assert await tables_mentioning(db_engine, (JOSE_NFC, JOSE_NFD)) == []
