"""A rep's addresses over time, as a sales-ops admin lives them through ``POST /v1/crm/sync``,
``POST /v1/events`` and ``PATCH /v1/settings/organization``, read back as a sales manager does
(``GET /v1/activities/{id}``, scorecards, leaderboards): the real broker, attribution, metrics and
PostgreSQL. The gaps left by rules 2026.12.39 (issue #14, one rep per person), each failing
before its fix:

* an address re-issued to another rep (the team inbox ``sales-emea@`` passed from Kim to Bo, a
  renamed rep's old ``jane@`` given to a new hire) stays with whoever held it when the mail was
  sent, also when a re-match or ``spm reattribute`` replays the mail;
* a rep's address typed in another Unicode form (``josé@`` decomposed) is still hers.

Weeks: W45 is 2-8 November 2026, W46 9-15, W47 16-22.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.attribution_support import reattribute_settled, rows
from tests.integration.attribution.test_attribution_held_out_situations_calls import _sync
from tests.integration.attribution.test_attribution_held_out_situations_intl import _found
from tests.integration.attribution.test_attribution_held_out_situations_reps import (
    SETTINGS,
    T0,
    TEAMS,
    _board,
    _hs,
    _landed,
    _mail,
    _on,
    _owner,
    _rep,
    _report,
    _seen,
    _week,
)
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _deliver
from tests.integration.polling import references_landed, settings_job_done
from tests.integration.quarter.quarter_support import (
    Tenant,
    dial,
    email,
    get,
    membership,
    new_tenant,
    post,
    received,
    settle,
    sync,
    webhook_tenant,
)

BUYER = "someone@prospect.example"


async def test_a_reissued_address_stays_with_whoever_held_it_when_the_mail_was_sent(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Kim (West) answers the team inbox ``sales-emea@`` until the 10th, when the admin moves it
    to Bo (East): Kim's record stops listing it and Bo's lists it, in one sync. Jane (West) is
    renamed on the 10th (``jane@`` -> ``jane.doe@``); on the 12th the same roster gives ``jane@``
    to Jan, a new hire (East). Mail of the 3rd and 4th is decided before the changes; mail of the
    5th and 6th is posted after them (a mail system's backlog); W47's after. Then the admin runs
    ``spm reattribute`` over November."""
    tenant = await webhook_tenant(db_engine, SETTINGS)
    found: dict[str, Any] = {}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            T0,
            *_kim_and_bo("sales-emea@acme.example"),
            _rep("jane", "jane@acme.example", name="Jane Doe"),
            _on("jane", "west"),
            _rep("jan", "jan@acme.example", name="Jan Roe"),
            _on("jan", "east"),
        )
        await post(
            stack,
            tenant,
            _mail("emea-03", "sales-emea@acme.example", "03"),
            received("emea-in-03", BUYER, "sales-emea@acme.example", "2026-11-03T16:00:00Z"),
            _mail("jane-04", "jane@acme.example", "04"),
        )
        await settle(kafka_settings)
        await _kim_hands_to_bo(
            kafka_settings,
            stack,
            db_engine,
            tenant,
            ("sales-emea@acme.example",),
            _rep("jane", "jane.doe@acme.example", name="Jane Doe"),
        )
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-12T09:00:00Z",
            _rep("jan", "jan@acme.example", "jane@acme.example", name="Jan Roe"),
        )
        await settle(kafka_settings)
        await post(
            stack,
            tenant,
            _mail("emea-05-late", "sales-emea@acme.example", "05"),
            _mail("jane-06-late", "jane@acme.example", "06"),
            _mail("emea-17", "sales-emea@acme.example", "17"),
            _mail("jane-17", "jane@acme.example", "17"),
        )
        await settle(kafka_settings)
        found["1 reattribute: examined, changed"] = await _reattribute_november(
            kafka_settings, db_engine, tenant
        )
        for label, name in (
            ("2 kim's inbox mail of the 3rd", "emea-03"),
            ("3 a buyer's mail to the inbox on the 3rd", "emea-in-03"),
            ("4 the inbox's mail of the 5th, posted after the move", "emea-05-late"),
            ("5 the inbox's mail of the 17th", "emea-17"),
            ("6 jane's mail of the 4th", "jane-04"),
            ("7 jane@'s mail of the 6th, posted after it went to jan", "jane-06-late"),
            ("8 jane@'s mail of the 17th", "jane-17"),
        ):
            found[label] = await _seen(stack, tenant, "mail", name)
        found["9 board W45"] = await _board(stack, tenant, "03")
        found["10 board W47"] = await _board(stack, tenant, "17")
        found["11 west, east W45"] = [
            (await _week(stack, tenant, "teams", f"team-{t}", "2026-11-02"))["activities"]
            for t in ("west", "east")
        ]

    kims = ("unmatched", "rep-kim", "team-west", 1, ["rep-kim"], False)
    janes = ("unmatched", "rep-jane", "team-west", 1, ["rep-jane"], False)
    expected: dict[str, Any] = {
        "1 reattribute: examined, changed": (7, 0),
        "2 kim's inbox mail of the 3rd": kims,
        "3 a buyer's mail to the inbox on the 3rd": kims,
        "4 the inbox's mail of the 5th, posted after the move": kims,
        "5 the inbox's mail of the 17th": ("unmatched", "rep-bo", "team-east", 1, ["rep-bo"], False),
        "6 jane's mail of the 4th": janes,
        "7 jane@'s mail of the 6th, posted after it went to jan": janes,
        "8 jane@'s mail of the 17th": ("unmatched", "rep-jan", "team-east", 1, ["rep-jan"], False),
        "9 board W45": {"rep-kim": 3.0, "rep-jane": 2.0, "rep-bo": 0.0, "rep-jan": 0.0},
        "10 board W47": {"rep-bo": 1.0, "rep-jan": 1.0, "rep-kim": 0.0, "rep-jane": 0.0},
        "11 west, east W45": [5, 0],
    }
    _report(found, expected)


async def _reattribute_november(
    kafka_settings: KafkaSettings, db_engine: AsyncEngine, tenant: Tenant
) -> tuple[int, int]:
    """``spm reattribute`` over November for ``tenant``, settled: (examined, changed)."""
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    report = await reattribute_settled(kafka_settings, db_engine, tenant.tenant_id, since, until)
    return (report.examined, report.changed)


def _kim_and_bo(*kim_also: str) -> list[dict[str, Any]]:
    """The teams; Kim (West) holding ``kim_also`` besides her own address; Bo (East)."""
    return [
        *TEAMS,
        _rep("kim", "kim@acme.example", *kim_also),
        _on("kim", "west"),
        _rep("bo"),
        _on("bo", "east"),
    ]


async def _kim_hands_to_bo(
    kafka_settings: KafkaSettings,
    stack: Any,
    db_engine: AsyncEngine,
    tenant: Tenant,
    addresses: tuple[str, ...],
    *also: dict[str, Any],
) -> None:
    """On the 10th Kim keeps only her own address and Bo holds ``addresses`` besides his, in one
    sync with ``also``; settled."""
    await sync(
        stack,
        db_engine,
        tenant,
        "2026-11-10T09:00:00Z",
        _rep("kim", "kim@acme.example"),
        _rep("bo", "bo@acme.example", *addresses),
        *also,
    )
    await settle(kafka_settings)


def _held(rep: str, team: str) -> tuple[Any, ...]:
    """What ``_seen`` shows of mail only ever the rep's, on her team: no deal, one version, no override."""
    return ("unmatched", f"rep-{rep}", f"team-{team}", 1, [f"rep-{rep}"], False)


def _nfd(address: str) -> str:
    return unicodedata.normalize("NFD", address)


def _nfc(address: str) -> str:
    return unicodedata.normalize("NFC", address)


def _deal(deal_id: str, account_id: str, contact_id: str) -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": deal_id,
        "name": f"{account_id} renewal",
        "account_id": account_id,
        "owner_rep_id": "rep-owner",
        "stage": "proposal",
        "created_at": "2026-09-01T00:00:00Z",
        "contacts": [{"contact_id": contact_id, "role": "champion"}],
    }


async def test_an_address_typed_in_another_unicode_form_is_the_same_rep_or_contact(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """José's record lists ``josé@`` decomposed (the accent a separate mark, NFD: a Mac's
    export), René's composed (NFC); Chloé's contact record (Other's champion, on a free-mail
    address) lists ``chloé@yahoo.com`` decomposed, Zoë's (Buyer's champion) composed. Both deals
    are owned by Olu (East). Each mail writes the addresses the other way round."""
    tenant = await webhook_tenant(db_engine, SETTINGS)
    found: dict[str, Any] = {}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            T0,
            *TEAMS,
            _rep("jose", _nfd("josé@acme.example"), name="José Ruiz"),
            _on("jose", "west"),
            _rep("rene", _nfc("rené@acme.example"), name="René Roy"),
            _on("rene", "west"),
            _rep("owner", "olu@acme.example", name="Olu Ade"),
            _on("owner", "east"),
            {"entity_type": "account", "id": "acc-buyer", "name": "Buyer", "domains": ["buyer.example"]},
            {"entity_type": "account", "id": "acc-other", "name": "Other", "domains": ["other.example"]},
            {
                "entity_type": "contact",
                "id": "con-zoe",
                "account_id": "acc-buyer",
                "emails": [_nfc("zoë@buyer.example")],
            },
            {
                "entity_type": "contact",
                "id": "con-chloe",
                "account_id": "acc-other",
                "emails": [_nfd("chloé@yahoo.com")],
            },
            _deal("deal-buyer", "acc-buyer", "con-zoe"),
            _deal("deal-other", "acc-other", "con-chloe"),
        )
        await post(
            stack,
            tenant,
            email(
                "jose-to-chloe", _nfc("josé@acme.example"), _nfc("chloé@yahoo.com"), "2026-11-03T15:00:00Z"
            ),
            email(
                "rene-to-zoe", _nfd("rené@acme.example"), _nfd("zoë@buyer.example"), "2026-11-03T16:00:00Z"
            ),
            received(
                "chloe-to-rene", _nfc("chloé@yahoo.com"), _nfd("rené@acme.example"), "2026-11-04T09:00:00Z"
            ),
        )
        await settle(kafka_settings)
        for name in ("jose-to-chloe", "rene-to-zoe", "chloe-to-rene"):
            a = (
                await get(stack, tenant, f"/v1/activities/{activity_id_for(tenant.tenant_id, 'mail', name)}")
            )["attribution"]
            found[name] = (a["status"], a["deal_id"], a["rep_id"], a["team_id"])
        found["board W45"] = await _board(stack, tenant, "03")

    _report(
        found,
        {
            "jose-to-chloe": ("attributed", "deal-other", "rep-jose", "team-west"),
            "rene-to-zoe": ("attributed", "deal-buyer", "rep-rene", "team-west"),
            "chloe-to-rene": ("attributed", "deal-other", "rep-rene", "team-west"),
            "board W45": {"rep-jose": 1.0, "rep-rene": 2.0, "rep-owner": 0.0},
        },
    )


async def test_a_replaced_address_links_the_person_only_when_it_is_a_rename(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana's record lists Bo's ``bo@`` beside her own, so Bo's HubSpot owner 7702 is taken for
    her; on the 10th the admin replaces it by ``ana.lopez@`` (her name as before), saying
    nothing. Eve's lists Fay's ``fay@`` by mistake (Fay's owner 7705 taken for Eve); on the 10th
    the admin replaces it by ``eve.ro@``, sent as a ``correction``. Cy's record moves from ``cy@``
    to ``cy.diaz@`` the same day, sent as a ``rename``, while his HubSpot owner 7703 still lists
    ``cy@``. A value of ``email_change`` other than the two is refused naming it."""
    tenant = await webhook_tenant(db_engine, SETTINGS)
    found: dict[str, Any] = {}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(
            stack,
            db_engine,
            tenant,
            T0,
            *TEAMS,
            _rep("ana", "ana@acme.example", "bo@acme.example", name="Ana Lopez"),
            _on("ana", "west"),
            _rep("eve", "eve@acme.example", "fay@acme.example", name="Eve Ro"),
            _on("eve", "west"),
            _rep("cy", "cy@acme.example", name="Cy Diaz"),
            _on("cy", "east"),
        )
        owners = [
            _owner("7702", "bo@acme.example", "Bo"),
            _owner("7703", "cy@acme.example", "Cy"),
            _owner("7705", "fay@acme.example", "Fay"),
        ]
        await _deliver(stack, "hubspot", orjson.dumps(owners))
        await references_landed(db_engine, tenant.tenant_id, _landed(*(("rep", o["id"]) for o in owners)))
        calls = [_hs("hs-bo-05", "7702", "05"), _hs("hs-cy-05", "7703", "05"), _hs("hs-fay-05", "7705", "05")]
        await _deliver(stack, "hubspot", orjson.dumps(calls))
        await settle(kafka_settings)
        found["1 before: bo's, cy's, fay's HubSpot calls"] = [
            (await _seen(stack, tenant, "hubspot", n))[1] for n in ("hs-bo-05", "hs-cy-05", "hs-fay-05")
        ]
        typo = {**_rep("cy", "cy.diaz@acme.example"), "email_change": "typo", "updated_at": T0}
        refused = await stack.ingest.post(
            "/v1/crm/sync", json={"source": "crm", "entities": [typo]}, headers=tenant.ingest
        )
        found["2 a typo in email_change"] = (
            refused.status_code,
            [(e["field"], e["reason"]) for e in refused.json()["errors"]],
        )
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-10T09:00:00Z",
            _rep("ana", "ana@acme.example", "ana.lopez@acme.example", name="Ana Lopez"),
            _rep("eve", "eve@acme.example", "eve.ro@acme.example", name="Eve Ro", email_change="correction"),
            _rep("cy", "cy.diaz@acme.example", name="Cy Diaz", email_change="rename"),
        )
        await settle(kafka_settings)
        await _deliver(stack, "hubspot", orjson.dumps([_hs("hs-bo-17", "7702", "17")]))
        await settle(kafka_settings)
        for label, name in (
            ("3 bo's HubSpot call of the 5th", "hs-bo-05"),
            ("4 bo's HubSpot call of the 17th", "hs-bo-17"),
            ("5 fay's HubSpot call of the 5th", "hs-fay-05"),
            ("6 cy's HubSpot call", "hs-cy-05"),
        ):
            found[label] = await _seen(stack, tenant, "hubspot", name)
        found["7 reps listed"] = [
            r["rep_id"] for r in (await get(stack, tenant, "/v1/reps?limit=100"))["items"]
        ]

    _report(
        found,
        {
            "1 before: bo's, cy's, fay's HubSpot calls": ["rep-ana", "rep-cy", "rep-eve"],
            "2 a typo in email_change": (
                422,
                [("entities.0.rep.email_change", "Input should be 'rename' or 'correction'")],
            ),
            # Unsaid and her name unchanged: not a rename. What the address took part in while her
            # record listed it stays hers; it links her to nobody, and is 7702's from then.
            "3 bo's HubSpot call of the 5th": ("unmatched", "rep-ana", "team-west", 1, ["rep-ana"], False),
            "4 bo's HubSpot call of the 17th": ("unmatched", "7702", None, 1, ["7702"], False),
            # Said a correction: never hers, her history with it goes back to Fay's owner id.
            "5 fay's HubSpot call of the 5th": ("unmatched", "7705", None, 2, ["rep-eve", "7705"], False),
            "6 cy's HubSpot call": ("unmatched", "rep-cy", "team-east", 1, ["rep-cy"], False),
            "7 reps listed": ["7702", "7705", "rep-ana", "rep-cy", "rep-eve"],
        },
    )


async def test_a_reps_phone_the_region_could_not_read_comes_back_when_the_region_changes(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A UK team's tenant left on the US region (time zone UTC): Ruth's desk line is typed
    ``020 7946 0970`` on her record, unreadable in the US (a warning names it), so her dialer's
    calls from it are nobody's. The admin sets ``default_phone_region`` to GB: the job reads her
    line again (her record's source kept), and the call made before is hers, on her team, as is
    one made after."""
    tenant = await new_tenant(db_engine, "uk-reps", "UTC")
    ruth = {
        "entity_type": "rep",
        "id": "rep-ruth",
        "name": "Ruth Bell",
        "emails": ["ruth@seller.example"],
        "phones": ["020 7946 0970"],
    }
    team = [
        {"entity_type": "team", "id": "team-uk", "name": "UK"},
        membership("m-ruth", "rep-ruth", "team-uk", "2026-01-01"),
    ]
    named = {("dialer", "before"): "before", ("dialer", "after"): "after"}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await _sync(stack, db_engine, tenant, ruth, *team)
        await post(stack, tenant, dial("before", "+442079460970", "2026-11-03T10:00:00Z"))
        await settle(kafka_settings)
        before = await _found(stack, tenant, named)
        changed = await stack.gateway.patch(
            "/v1/settings/organization", json={"default_phone_region": "GB"}, headers=tenant.admin
        )
        job = await settings_job_done(stack.gateway, tenant.admin, changed)
        await settle(kafka_settings)
        await post(stack, tenant, dial("after", "+442079460970", "2026-11-17T10:00:00Z"))
        await settle(kafka_settings)
        after = await _found(stack, tenant, named)
        held = await get(stack, tenant, "/v1/reps/rep-ruth")
        source = await rows(db_engine, "SELECT source FROM ref_reps WHERE tenant_id = 'uk-reps'")

    _report(
        {
            "1 the sync's warning": [
                (w["field"], w["reason"].rsplit(";", 1)[1].strip()) for w in synced["warnings"]
            ],
            "2 the call before, then": before,
            "3 the job": (
                job["kind"],
                job["state"],
                job["result"]["reps_read"],
                job["result"]["reps_published"],
            ),
            "4 both calls after": after,
            "5 her phones; her record's source": (held["phones"], [tuple(r) for r in source]),
        },
        {
            "1 the sync's warning": [("entities.0.phones.0", "the phone was dropped, the rep accepted")],
            "2 the call before, then": {"before": ("unmatched", None, None, None, None)},
            "3 the job": ("reread_phones", "done", 1, 1),
            "4 both calls after": {
                "before": ("unmatched", None, None, "rep-ruth", "team-uk"),
                "after": ("unmatched", None, None, "rep-ruth", "team-uk"),
            },
            "5 her phones; her record's source": (["+442079460970"], [("crm",)]),
        },
    )


async def test_an_address_passed_along_several_holders_stays_with_each_for_her_spell(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The team inbox ``sales-emea@`` is Kim's (West) until the 10th, Bo's (East) until the 12th,
    then Cy's (East); ``support@`` is Kim's until the 10th, Bo's until the 12th, then Kim's again.
    Mail of each holder's days, decided as it comes, stays hers when ``spm reattribute`` replays
    November (rules 2026.12.43: before, one row per address kept only its latest former holder,
    so Kim's mail of the 3rd went to Bo, and ``support@`` back with Kim forgot her first spell)."""
    tenant = await webhook_tenant(db_engine, SETTINGS)
    found: dict[str, Any] = {}
    inbox, support = "sales-emea@acme.example", "support@acme.example"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, T0, *_kim_and_bo(inbox, support), _rep("cy"), _on("cy", "east"))
        await post(stack, tenant, _mail("emea-03", inbox, "03"), _mail("support-03", support, "03"))
        await settle(kafka_settings)
        await _kim_hands_to_bo(kafka_settings, stack, db_engine, tenant, (inbox, support))
        await post(stack, tenant, _mail("emea-11", inbox, "11"), _mail("support-11", support, "11"))
        await settle(kafka_settings)
        # Kim's version listing support@ again is read before Bo's dropping it (the versions of
        # one sync arrive in any order): Bo still lists it, so her first spell stays hers.
        await sync(stack, db_engine, tenant, "2026-11-12T09:00:00Z", _rep("kim", "kim@acme.example", support))
        await settle(kafka_settings)
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-12T09:00:00Z",
            _rep("bo", "bo@acme.example"),
            _rep("cy", "cy@acme.example", inbox),
        )
        await settle(kafka_settings)
        await post(stack, tenant, _mail("emea-17", inbox, "17"), _mail("support-17", support, "17"))
        await settle(kafka_settings)
        found["1 reattribute: examined, changed"] = await _reattribute_november(
            kafka_settings, db_engine, tenant
        )
        for name in ("emea-03", "emea-11", "emea-17", "support-03", "support-11", "support-17"):
            found[name] = await _seen(stack, tenant, "mail", name)

    expected: dict[str, Any] = {
        "1 reattribute: examined, changed": (6, 0),
        "emea-03": _held("kim", "west"),
        "emea-11": _held("bo", "east"),
        "emea-17": _held("cy", "east"),
        "support-03": _held("kim", "west"),
        # While Kim's version listed support@ and Bo's did not yet drop it, both held it: its
        # mail of the 11th named no one, and is Bo's again once his drop is read.
        "support-11": ("unmatched", "rep-bo", "team-east", 3, ["rep-bo", None, "rep-bo"], False),
        "support-17": _held("kim", "west"),
    }
    _report(found, expected)


async def test_a_deleted_reps_dropped_addresses_end_when_she_dropped_them_if_reissued(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Kim (West) holds the team inbox ``sales-emea@`` and her old ``kim.old@`` until the 10th:
    the inbox goes to Bo (East), ``kim.old@`` to nobody. Kim is deleted on the 20th. Mail of the
    11th from the inbox stays Bo's when ``spm reattribute`` replays November (before, her
    departure stretched her holding of the inbox to the 20th over Bo's, and the mail went to her);
    mail of the 11th from ``kim.old@``, which named her while she was there (late mail from an old
    address), stays hers: that address's holding ends when she left, nobody holding it after her."""
    tenant = await webhook_tenant(db_engine, SETTINGS)
    found: dict[str, Any] = {}
    inbox, old = "sales-emea@acme.example", "kim.old@acme.example"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, T0, *_kim_and_bo(inbox, old))
        await post(stack, tenant, _mail("emea-03", inbox, "03"))
        await settle(kafka_settings)
        await _kim_hands_to_bo(kafka_settings, stack, db_engine, tenant, (inbox,))
        await post(stack, tenant, _mail("emea-11", inbox, "11"), _mail("old-11", old, "11"))
        await settle(kafka_settings)
        await sync(stack, db_engine, tenant, "2026-11-20T09:00:00Z", _rep("kim", deleted=True))
        await settle(kafka_settings)
        found["1 reattribute: examined, changed"] = await _reattribute_november(
            kafka_settings, db_engine, tenant
        )
        for name in ("emea-03", "emea-11", "old-11"):
            found[name] = await _seen(stack, tenant, "mail", name)
        found["kim's holdings"] = await rows(
            db_engine,
            "SELECT identity, until FROM ref_rep_former_identities WHERE tenant_id = :t "
            "AND rep_id = 'rep-kim' ORDER BY identity",
            {"t": tenant.tenant_id},
        )

    expected: dict[str, Any] = {
        "1 reattribute: examined, changed": (3, 0),
        "emea-03": _held("kim", "west"),
        "emea-11": _held("bo", "east"),
        "old-11": _held("kim", "west"),
        "kim's holdings": [
            ("kim.old@acme.example", datetime(2026, 11, 20, 9, tzinfo=UTC)),
            ("kim@acme.example", datetime(2026, 11, 20, 9, tzinfo=UTC)),
            (inbox, datetime(2026, 11, 10, 9, tzinfo=UTC)),
        ],
    }
    _report(found, expected)
