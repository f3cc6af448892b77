"""A tenant's own Twilio SIP Domains (``twilio_sip_domains``), through the real broker and
PostgreSQL: a softphone on one of them keeps its SIP user for ``rep_aliases`` mapped later; one
on another company's Twilio SIP Domain does not; one at an edge location (``acme.sip.us1``) is
its domain's, mapped by the ``rep_aliases`` key written with the domain. A tenant naming none keeps the old reading
(every ``*.sip.twilio.com`` host is its own), whatever another tenant names."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings, KafkaSettings

from .ingest_integration_support import (
    SECRETS,
    TENANT,
    TENANT_SETTINGS,
    activities_on_topic,
    ingest_client,
    setup_tenant,
    sign,
    url_for,
)

OTHER = "beta"


def _call(call_sid: str, softphone: str) -> bytes:
    """A rep's softphone calls the buyer; 75 s of talk."""
    return urlencode(
        {
            "AccountSid": "AC0123456789abcdef0123456789abcdef",
            "CallSid": call_sid,
            "CallStatus": "completed",
            "CallDuration": "75",
            "Direction": "outbound-api",
            "From": softphone,
            "To": "+14155552671",
            "Timestamp": "Tue, 24 Nov 2026 15:15:20 +0000",
        }
    ).encode()


async def test_only_the_tenants_own_sip_domains_keep_a_softphones_identity(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    await setup_tenant(
        db_engine,
        {
            **TENANT_SETTINGS,
            "twilio_sip_domains": ["acme.sip.twilio.com"],
            # Written as the docs say, with the SIP Domain as the Twilio console lists it.
            "rep_aliases": {"ana@acme.sip.twilio.com": "rep-ana"},
        },
    )
    await setup_tenant(db_engine, {"internal_domains": ["beta.example"]}, tenant=OTHER)
    deliveries = [
        # acme's own domain, at an edge location.
        (TENANT, _call("CA0000000000000000000000000000a001", "sip:ana@acme.sip.us1.twilio.com")),
        # Another company's Twilio SIP Domain: not acme's.
        (TENANT, _call("CA0000000000000000000000000000a002", "sip:bo@globex.sip.twilio.com")),
        # beta names no domain: every Twilio SIP Domain is its own, as before.
        (OTHER, _call("CA0000000000000000000000000000b001", "sip:bo@globex.sip.twilio.com")),
    ]
    async with ingest_client(kafka_settings, database_settings) as client:
        for tenant, body in deliveries:
            answer = await client.post(
                url_for("twilio", tenant),
                content=body,
                headers=sign("twilio", body, SECRETS["twilio"][0], tenant=tenant),
            )
            assert answer.status_code == 200, answer.text
    published = await activities_on_topic(kafka_settings)
    # The edge location's host is read as its domain: the identity kept is the domain's address,
    # and the tenant's key for it names the rep (before: ana@acme.sip.us1.twilio.com, no rep).
    assert [
        (a["tenant_id"], a["external_id"], a["crm"].get("owner_rep_id"), a["crm"].get("owner_identities", []))
        for a in published
    ] == [
        (TENANT, "CA0000000000000000000000000000a001", "rep-ana", ["ana", "ana@acme.sip.twilio.com"]),
        (TENANT, "CA0000000000000000000000000000a002", None, []),
        (OTHER, "CA0000000000000000000000000000b001", None, ["bo", "bo@globex.sip.twilio.com"]),
    ]
