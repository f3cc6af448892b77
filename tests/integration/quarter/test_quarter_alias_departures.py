"""A rep who leaves: the addresses that name her though no source lists them (the tenant's
``rep_aliases`` mapping, her name's mailbox) credit her only in her active spells, as her own do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import rows
from tests.integration.quarter.quarter_support import (
    Tenant,
    configure,
    counted,
    east_and_west,
    email,
    get,
    new_tenant,
    post,
    received,
    rep,
    settle,
    sync,
)

Q_START = "2026-10-01T00:00:00Z"
LEFT = "2026-10-10T09:00:00Z"
BACK = "2026-11-01T09:00:00Z"
ANA = "ana@acme.example"
BEA = "bea@acme.example"
BO = "bo@buyer.example"
#: The tenant maps it to Ana (``rep_aliases``); it follows no convention of her name.
MAPPED = "ana.l@acme.example"
#: Follows the mail system's convention for Ana Lopez's name; nobody lists or maps it.
NAMED = "ana.lopez@acme.example"
QUARTER = ("quarter", "2026-10-01", "2026-10-01")


ANA_REP = rep("rep-ana", ANA, "Ana Lopez")
CRM = east_and_west(ANA_REP, rep("rep-bea", BEA, "Bea Berg"), BO)

#: Hers: an internal recipient she is (the mapping, her name), on Bea's deal of the account.
HERS = ("rep-ana", "team-west", "deal-1", "to")
#: Nobody's address then: the seller's side, the deal's owner (Bea, East), as for mail to a
#: departed rep's own address.
BEAS = ("rep-bea", "team-east", "deal-1", "deal_owner")


def _to(external_id: str, address: str, at: str) -> dict[str, Any]:
    """Bo (the buyer) writing to ``address``."""
    return received(external_id, BO, address, at)


#: The days of Bo's mails to her alias, by the mail's id.
_DAYS = {"oct-5": "2026-10-05", "oct-20": "2026-10-20", "nov-5": "2026-11-05"}


def _mails_to(address: str, *names: str) -> list[dict[str, Any]]:
    """Bo's mails ``names`` (``oct-5``, ``oct-20``, ``nov-5``) to ``address``, at 15:00 UTC of each day."""
    return [_to(name, address, f"{_DAYS[name]}T15:00:00Z") for name in names]


async def _tenant(db_engine: AsyncEngine) -> Tenant:
    tenant = await new_tenant(db_engine)
    await configure(db_engine, tenant, {"rep_aliases": {MAPPED: "rep-ana"}})
    return tenant


async def _seen(stack: Any, tenant: Tenant, *names: str) -> dict[str, tuple[Any, ...]]:
    """Rep, team, deal, how the rep was found (the explanation's ``rep.via``), version."""
    seen: dict[str, tuple[Any, ...]] = {}
    for name in names:
        body = await get(stack, tenant, f"/v1/activities/{activity_id_for(tenant.tenant_id, 'mail', name)}")
        a = body["attribution"]
        seen[name] = (a["rep_id"], a["team_id"], a["deal_id"], a["explanation"]["rep"]["via"], a["version"])
    return seen


@pytest.mark.parametrize("address", [MAPPED, NAMED], ids=["mapped", "name"])
@pytest.mark.parametrize("departure", [{"deleted": True}, {"active": False}], ids=["deleted", "deactivated"])
async def test_mail_to_her_alias_is_hers_before_she_left_and_the_deal_owners_after(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    departure: dict[str, Any],
    address: str,
) -> None:
    """Ana leaves on 10 October (deleted, or deactivated). Bo's mail to her alias (mapped by the
    tenant, or her name's mailbox) of 5 October, arriving after, is hers (West); his mail of
    20 October to it is the deal's and its owner's, Bea's (East), not Ana's."""
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await sync(stack, db_engine, tenant, LEFT, {**ANA_REP, **departure})
        await post(stack, tenant, _to("oct-5", address, "2026-10-05T15:00:00Z"))
        await post(stack, tenant, _to("oct-20", address, "2026-10-20T15:00:00Z"))
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-5", "oct-20") == {
            "oct-5": (*HERS, 1),
            "oct-20": (*BEAS, 1),
        }
        assert await counted(stack, tenant, "reps", "rep-ana", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "teams", "team-west", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "teams", "team-east", *QUARTER) == {"2026-10-01": 1}


@pytest.mark.parametrize("address", [MAPPED, NAMED], ids=["mapped", "name"])
async def test_a_departure_synced_late_takes_back_the_alias_mail_credited_to_her_since(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine, address: str
) -> None:
    """Bo's mails to Ana's alias of 5 and 20 October are credited to her; then the CRM sends her
    deactivation of 10 October (no deal changes with it). The mail of the 20th is re-decided, a
    second version: Bea's, the deal's owner; the 5th stays Ana's, untouched."""
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await post(
            stack,
            tenant,
            *_mails_to(address, "oct-5", "oct-20"),
        )
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-5", "oct-20") == {"oct-5": (*HERS, 1), "oct-20": (*HERS, 1)}
        await sync(stack, db_engine, tenant, LEFT, {**ANA_REP, "active": False})
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-5", "oct-20") == {"oct-5": (*HERS, 1), "oct-20": (*BEAS, 2)}
        assert await counted(stack, tenant, "reps", "rep-ana", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 1}


@pytest.mark.parametrize("address", [MAPPED, NAMED], ids=["mapped", "name"])
async def test_her_alias_is_hers_again_after_her_return_and_not_in_the_gap(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine, address: str
) -> None:
    """Ana leaves on 10 October and comes back on 1 November. Bo's mails to her alias of 5 October,
    20 October and 5 November, arriving after her return: hers, Bea's (the gap), hers."""
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await sync(stack, db_engine, tenant, LEFT, {**ANA_REP, "active": False})
        await sync(stack, db_engine, tenant, BACK, ANA_REP)
        await post(
            stack,
            tenant,
            *_mails_to(address, "oct-5", "oct-20", "nov-5"),
        )
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-5", "oct-20", "nov-5") == {
            "oct-5": (*HERS, 1),
            "oct-20": (*BEAS, 1),
            "nov-5": (*HERS, 1),
        }
        assert await counted(stack, tenant, "reps", "rep-ana", *QUARTER) == {"2026-10-01": 2}
        assert await counted(stack, tenant, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 1}


@pytest.mark.parametrize("address", [MAPPED, NAMED], ids=["mapped", "name"])
async def test_a_return_synced_late_gives_her_back_the_alias_mail_since_her_return(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine, address: str
) -> None:
    """Ana left on 10 October; she is back from 1 November, but the CRM sends it later: Bo's mails
    to her alias of 20 October and 5 November went to Bea meanwhile. The return re-decides the
    5 November one, a second version: Ana's; the 20 October one (her gap) stays Bea's, untouched."""
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await sync(stack, db_engine, tenant, LEFT, {**ANA_REP, "active": False})
        await post(
            stack,
            tenant,
            *_mails_to(address, "oct-20", "nov-5"),
        )
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-20", "nov-5") == {"oct-20": (*BEAS, 1), "nov-5": (*BEAS, 1)}
        await sync(stack, db_engine, tenant, BACK, ANA_REP)
        await settle(kafka_settings)
        assert await _seen(stack, tenant, "oct-20", "nov-5") == {"oct-20": (*BEAS, 1), "nov-5": (*HERS, 2)}
        assert await counted(stack, tenant, "reps", "rep-ana", *QUARTER) == {"2026-10-01": 1}
        assert await counted(stack, tenant, "reps", "rep-bea", *QUARTER) == {"2026-10-01": 1}


def _rematched() -> float:
    return REGISTRY.get_sample_value("spm_rematches_total") or 0.0


async def test_a_return_re_decides_mail_to_her_names_mailbox_at_the_tenants_domains_only(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana left on 10 October and is back from 1 November. Bea's 6 November mail to
    ``ana.lopez@buyer.example`` (someone at the buyer's, whose mailbox follows Ana's name too) is
    no mail to Ana: her return re-decides only Bo's 5 November mail to ``ana.lopez@acme.example``."""
    tenant = await _tenant(db_engine)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM)
        await sync(stack, db_engine, tenant, LEFT, {**ANA_REP, "active": False})
        await post(
            stack,
            tenant,
            _to("nov-5", NAMED, "2026-11-05T15:00:00Z"),
            email("nov-6", BEA, "ana.lopez@buyer.example", "2026-11-06T15:00:00Z"),
        )
        await settle(kafka_settings)
        before = _rematched()
        await sync(stack, db_engine, tenant, BACK, ANA_REP)
        await settle(kafka_settings)
        assert _rematched() - before == 1
        seen = await _seen(stack, tenant, "nov-5", "nov-6")
        assert (seen["nov-5"], seen["nov-6"][-1]) == ((*HERS, 2), 1)


@pytest.mark.parametrize("address", [MAPPED, NAMED], ids=["mapped", "name"])
async def test_a_rep_who_held_no_address_when_she_left_is_not_named_in_her_gap_after_her_return(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine, address: str
) -> None:
    """Ana's CRM record lists no email or phone (her alias names her: the mapping, her name) when
    she leaves on 10 October; she comes back on 1 November with her address. Bo's mails to her
    alias of 5 October, 20 October and 5 November, arriving after her return: hers, Bea's (the
    gap), hers. Before, a rep who held nothing when she left recorded no gap (her absences were
    kept per email and phone), so the 20 October mail was hers."""
    tenant = await _tenant(db_engine)
    bare = {**ANA_REP, "emails": []}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, Q_START, *CRM[:2], bare, *CRM[3:])
        await sync(stack, db_engine, tenant, LEFT, {**bare, "active": False})
        await sync(stack, db_engine, tenant, BACK, ANA_REP)
        await post(
            stack,
            tenant,
            *_mails_to(address, "oct-5", "oct-20", "nov-5"),
            # Her address, given to her on her return: not hers in the gap either.
            _to("oct-21-own", ANA, "2026-10-21T15:00:00Z"),
        )
        await settle(kafka_settings)
        seen = await _seen(stack, tenant, "oct-5", "oct-20", "nov-5", "oct-21-own")
        gaps = await rows(
            db_engine, "SELECT identity, rep_id, left_at, returned_at FROM ref_rep_absences ORDER BY identity"
        )
    assert seen == {
        "oct-5": (*HERS, 1),
        "oct-20": (*BEAS, 1),
        "nov-5": (*HERS, 1),
        "oct-21-own": (*BEAS, 1),
    }
    left, back = datetime(2026, 10, 10, 9, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC)
    assert gaps == [(ANA, "rep-ana", left, back), ("rep:rep-ana", "rep-ana", left, back)]
