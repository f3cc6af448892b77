"""Held-out situations from calls and rep identity in a real sales org, as a dialer and CRM admin
sends them: the CRM through ``POST /v1/crm/sync``, the dialer's calls (E.164, extensions as
dialers write them) through ``POST /v1/events``, read back as a manager does through the
gateway (``GET /v1/activities/{id}``, rep scores). The real broker, attribution, metrics and
PostgreSQL; each call's truth is written next to it.

Our evaluation world does not produce these: a phone field listing two numbers, extensions of a
shared main line, a rep's mobile stored on a contact by mistake, calls between reps, a contact on
open deals at a parent and its subsidiary, a seller's main line several reps list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.polling import references_landed, settings_job_done
from tests.integration.quarter.quarter_support import Tenant, configure, get, new_tenant, post, settle

ANA_LINE = "+14155550001"
BO_LINE = "+14155550002"
BO_MOBILE = "+14155550003"
NOV = "2026-11-05T17:00:00Z"


def _call(
    external_id: str,
    caller: dict[str, Any],
    callee: dict[str, Any],
    at: str = NOV,
    direction: str = "outbound",
    outcome: str = "connected",
    duration: int = 60,
) -> dict[str, Any]:
    """A call as the dialer posts it; ``caller`` / ``callee`` a participant's address."""
    return {
        "source": "dialer",
        "external_id": external_id,
        "kind": "call",
        "direction": direction,
        "outcome": outcome,
        "occurred_at": at,
        "duration_seconds": duration,
        "participants": [{**caller, "role": "caller"}, {**callee, "role": "callee"}],
    }


def _from_ana(external_id: str, callee_phone: str, **fields: Any) -> dict[str, Any]:
    return _call(external_id, {"phone": ANA_LINE}, {"phone": callee_phone}, **fields)


def _account(key: str) -> dict[str, Any]:
    return {"entity_type": "account", "id": f"acc-{key}", "domains": [f"{key}.example"]}


def _contact(key: str, account: str, *phones: str, emails: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "entity_type": "contact",
        "id": f"con-{key}",
        "account_id": f"acc-{account}",
        "phones": list(phones),
        "emails": list(emails),
    }


def _deal(key: str, account: str, *contacts: str, owner: str = "rep-ana") -> dict[str, Any]:
    return {
        "entity_type": "deal",
        "id": f"deal-{key}",
        "account_id": f"acc-{account}",
        "owner_rep_id": owner,
        "created_at": "2026-10-01T00:00:00Z",
        "contacts": [{"contact_id": f"con-{c}", "role": "champion"} for c in contacts],
    }


def _rep(rep_id: str, *phones: str) -> dict[str, Any]:
    return {
        "entity_type": "rep",
        "id": rep_id,
        "name": rep_id,
        "emails": [f"{rep_id.removeprefix('rep-')}@seller.example"],
        "phones": list(phones),
    }


def _membership(mid: str, rep: str, team: str, start: str, end: str | None = None) -> dict[str, Any]:
    return {
        "entity_type": "team_membership",
        "id": mid,
        "rep_id": rep,
        "team_id": team,
        "valid_from": start,
        "valid_to": end,
    }


def _ana_and_one_contact_each(typed: dict[str, str]) -> list[dict[str, Any]]:
    """Ana, and for each key of ``typed`` an account, a contact listing its phone and the
    contact's deal (Ana's), all named by the key."""
    entities: list[dict[str, Any]] = [_rep("rep-ana", ANA_LINE)]
    for key, phone in typed.items():
        entities += [_account(key), _contact(key, key, phone), _deal(key, key, key)]
    return entities


async def _setup(engine: AsyncEngine) -> Tenant:
    tenant = await new_tenant(engine)
    await configure(engine, tenant, {"default_phone_region": "US"})
    return tenant


async def _sync(
    stack: Any,
    engine: AsyncEngine,
    tenant: Tenant,
    *entities: dict[str, Any],
    source: str = "crm",
    updated_at: str = "2026-10-01T00:00:00Z",
) -> Any:
    """The batch of ``source`` through ``POST /v1/crm/sync`` (202), held by attribution; its JSON
    answer."""
    sent = [{"updated_at": updated_at, **e} for e in entities]
    response = await stack.ingest.post(
        "/v1/crm/sync", json={"source": source, "entities": sent}, headers=tenant.ingest
    )
    assert response.status_code == 202, response.text
    await references_landed(engine, tenant.tenant_id, sent)
    return response.json()


async def _decided(
    stack: Any, kafka: KafkaSettings, tenant: Tenant, *calls: dict[str, Any], post_them: bool = True
) -> dict[str, tuple[Any, ...]]:
    """``calls`` posted (unless ``post_them`` is false: read again), then each one's attribution as
    ``GET /v1/activities`` gives it once everything is decided and counted: external id ->
    (status, deal, secondaries, account, rep, team)."""
    if post_them:
        await post(stack, tenant, *calls)
    await settle(kafka)
    listed = await get(stack, tenant, "/v1/activities?kind=call&limit=100")
    names = {
        str(activity_id_for(tenant.tenant_id, "dialer", c["external_id"])): c["external_id"] for c in calls
    }
    found = {
        names[a["activity_id"]]: (
            a["status"],
            a["deal_id"],
            tuple(a["secondary_deal_ids"]),
            a["account_id"],
            a["rep_id"],
            a["team_id"],
        )
        for a in listed["items"]
    }
    assert len(found) == len(calls), found
    return found


#: Phones as people type them in a CRM, one contact (own account, own deal) each.
TYPED = {
    "plus-parens": "+1 (415) 555-0101",
    "dots": "415.555.0102",
    "leading-one": "1-415-555-0103",
    "extension": "(415) 555-0104 ext. 12",
    "uk-trunk-zero": "+44 (0)20 7946 0958",
    "label": "Mobile: 415 555 0106",
    "two-slash": "415-555-0107 / 415-555-0108",
    "two-comma": "415-555-0109, 415-555-0110",
}


async def test_a_crm_batch_with_phones_typed_every_way_and_a_dialer_calling_each(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Truth: each call is with the contact whose record lists the number, on that contact's
    deal, Ana's; a field listing two numbers lists two of the contact's numbers. A junk phone is
    dropped with a warning naming its entity, field and reason. Two contacts behind one main line
    with different extensions (``x12``, ``x34``): a call to the line with an extension one of them
    lists (``;ext=12``, ``,34``) is with that contact, on that contact's deal; a call to the bare
    line, or with an extension neither lists, is a close call between their deals, reported
    ``ambiguous`` with both, never a confident pick."""
    tenant = await _setup(db_engine)
    entities = _ana_and_one_contact_each(TYPED)
    entities += [
        _account("junk"),
        _contact("junk", "junk", "ask reception", "415 555 0111"),
        _deal("junk", "junk", "junk"),
        _account("pbx"),
        _contact("x12", "pbx", "(415) 555-0200 ext. 12"),
        _contact("x34", "pbx", "(415) 555-0200 x34"),
        _deal("x12", "pbx", "x12"),
        _deal("x34", "pbx", "x34"),
    ]
    calls = [
        _from_ana("plus-parens", "+14155550101"),
        _from_ana("dots", "+14155550102"),
        _from_ana("leading-one", "+14155550103"),
        _from_ana("extension", "+14155550104"),
        _from_ana("uk-trunk-zero", "+442079460958"),
        _from_ana("label", "+14155550106"),
        _from_ana("two-slash-first", "+14155550107"),
        _from_ana("two-slash-second", "+14155550108"),
        _from_ana("two-comma-second", "+14155550110"),
        _from_ana("junk", "+14155550111"),
        # The dialer's own spellings of a known line: an extension dialled, no +.
        _from_ana("dialled-extension", "+14155550101;ext=5"),
        _from_ana("no-plus", "14155550102"),
        # The shared main line, with each contact's extension and without.
        _from_ana("pbx-ext-12", "+14155550200;ext=12"),
        _from_ana("pbx-ext-34", "+14155550200,34"),
        _from_ana("pbx-main", "+14155550200"),
        _from_ana("pbx-ext-99", "+14155550200 x99"),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await _sync(stack, db_engine, tenant, *entities)
        found = await _decided(stack, kafka_settings, tenant, *calls)
        pbx = await get(stack, tenant, "/v1/contacts?account_id=acc-pbx")
    # The CRM's extensions kept with their line, which is stored bare.
    assert [(c["contact_id"], c["phones"], c["phone_extensions"]) for c in pbx["items"]] == [
        ("con-x12", ["+14155550200"], ["+14155550200;ext=12"]),
        ("con-x34", ["+14155550200"], ["+14155550200;ext=34"]),
    ]
    junk_index = 3 * len(TYPED) + 2
    assert synced == {
        "accepted": len(entities),
        "warnings": [
            {
                "index": junk_index,
                "field": f"entities.{junk_index}.phones.0",
                "reason": "not a phone number; the phone was dropped, the contact accepted",
            }
        ],
    }

    def on(key: str) -> tuple[Any, ...]:
        return ("attributed", f"deal-{key}", (), f"acc-{key}", "rep-ana", None)

    pbx_tie = ("ambiguous", "deal-x12", ("deal-x34",), "acc-pbx", "rep-ana", None)
    assert found == {
        "plus-parens": on("plus-parens"),
        "dots": on("dots"),
        "leading-one": on("leading-one"),
        "extension": on("extension"),
        "uk-trunk-zero": on("uk-trunk-zero"),
        "label": on("label"),
        "two-slash-first": on("two-slash"),
        "two-slash-second": on("two-slash"),
        "two-comma-second": on("two-comma"),
        "junk": on("junk"),
        "dialled-extension": on("plus-parens"),
        "no-plus": on("dots"),
        "pbx-ext-12": ("attributed", "deal-x12", (), "acc-pbx", "rep-ana", None),
        "pbx-ext-34": ("attributed", "deal-x34", (), "acc-pbx", "rep-ana", None),
        "pbx-main": pbx_tie,
        "pbx-ext-99": pbx_tie,
    }


async def test_calls_between_reps_and_buyers_credit_the_right_rep_team_and_deal(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Truths, call by call, as a sales manager reads them:

    * Bo's mobile typed on Mia's contact record by mistake (Mia's own line listed too): Bo calling
      Cal from his mobile is Bo's call with Cal, on Bo's deal; Cal calling Bo's mobile is Bo's
      inbound call; Ana calling Bo's mobile is a call between colleagues (``internal``); Ana
      calling Mia's own line is on Mia's deal.
    * Ana calling Bo's desk line: ``internal``.
    * Jo (a sole trader on ``gmail.com``) called on her mobile: Jo's deal.
    * Ana moves from team A to team B on 10 November: her calls of the 9th are A's, of the 10th B's.
    * A voicemail and a no-answer (0 seconds) to Dee: Dee's deal, and dials of Ana's.
    * Sam, at a subsidiary, holds a role on the parent's deal (Ana's) and on the subsidiary's
      (Bo's): Ana's call is on the parent's deal, Bo's on the subsidiary's.
    * Lou, at another subsidiary, on the parent's and the subsidiary's deals, both Ana's: which
      deal a call is about is not knowable from the call: ``ambiguous``, both deals named, the
      subsidiary's (Lou's own account's) first.
    * Cy and Di list the seller's main line with their extensions: a call from the main line on
      Cy's extension (``;ext=101``) is Cy's; one from the bare line, or an extension nobody lists,
      names neither (the deal's owner, Ana, is credited); one where the dialer names its user by
      email (in any case) is Cy's. Cal ringing the main line, answered by Bo (the dialer names him
      as a second callee), is Bo's.
    * Bo signed in to the dialer on Ana's desk phone (his email, her line): Bo's call.
    * Eve moved from Old Co (Ana's deal) to New Co (Bo's deal); both records keep her mobile. The
      number names neither record (a phone two contacts list), only both accounts: Ana calling it
      is on the deal she owns, as for any shared number (``owner_participates``).
    """
    tenant = await _setup(db_engine)
    entities: list[dict[str, Any]] = [
        _rep("rep-ana", ANA_LINE),
        _rep("rep-bo", BO_LINE, BO_MOBILE),
        _rep("rep-cy", "(415) 555-0900 x101"),
        _rep("rep-di", "(415) 555-0900 x102"),
        {"entity_type": "team", "id": "team-a"},
        {"entity_type": "team", "id": "team-b"},
        _membership("m-ana-a", "rep-ana", "team-a", "2026-01-01", "2026-11-10"),
        _membership("m-ana-b", "rep-ana", "team-b", "2026-11-10"),
        _membership("m-bo-b", "rep-bo", "team-b", "2026-01-01"),
        _membership("m-cy-a", "rep-cy", "team-a", "2026-01-01"),
        _account("mia"),
        _contact("mia", "mia", "415 555 0003", "415 555 0300"),
        _deal("mia", "mia", "mia", owner="rep-bo"),
        _account("cal"),
        _contact("cal", "cal", "415 555 0400"),
        _deal("cal", "cal", "cal", owner="rep-bo"),
        _account("sole"),
        _contact("jo", "sole", "(415) 555-0500", emails=("jo.doe@gmail.com",)),
        _deal("sole", "sole", "jo"),
        _account("dee"),
        _contact("dee", "dee", "415 555 0550"),
        _deal("dee", "dee", "dee"),
        _account("parent"),
        _account("sub"),
        _contact("sam", "sub", "415 555 0600"),
        _deal("parent", "parent", "sam"),
        _deal("sub", "sub", "sam", owner="rep-bo"),
        _account("parent2"),
        _account("sub2"),
        _contact("lou", "sub2", "415 555 0700"),
        _deal("parent2", "parent2", "lou"),
        _deal("sub2", "sub2", "lou"),
        # Eve moved from Old Co to New Co; both records keep her mobile.
        _account("oldco"),
        _account("newco"),
        _contact("eve-old", "oldco", "415 555 0800"),
        _contact("eve-new", "newco", "(415) 555-0800"),
        _deal("oldco", "oldco", "eve-old"),
        _deal("newco", "newco", "eve-new", owner="rep-bo"),
    ]
    calls = [
        _call("bo-mobile-to-cal", {"phone": BO_MOBILE}, {"phone": "+14155550400"}),
        _call("cal-to-bo-mobile", {"phone": "+14155550400"}, {"phone": BO_MOBILE}, direction="inbound"),
        _from_ana("ana-to-bo-mobile", BO_MOBILE),
        _from_ana("ana-to-mia", "+14155550300"),
        _from_ana("ana-to-bo-desk", BO_LINE),
        _from_ana("ana-to-jo-mobile", "+14155550500"),
        _from_ana("team-a-day", "+14155550500", at="2026-11-09T23:30:00Z"),
        _from_ana("team-b-day", "+14155550500", at="2026-11-10T00:30:00Z"),
        _from_ana("voicemail", "+14155550550", outcome="voicemail", duration=0),
        _from_ana("no-answer", "+14155550550", outcome="no_answer", duration=0),
        _from_ana("ana-to-sam", "+14155550600"),
        _call("bo-to-sam", {"phone": BO_LINE}, {"phone": "+14155550600"}),
        _from_ana("ana-to-lou", "+14155550700"),
        _call("cy-ext-to-dee", {"phone": "+14155550900;ext=101"}, {"phone": "+14155550550"}),
        _call("main-line-to-dee", {"phone": "+14155550900"}, {"phone": "+14155550550"}),
        _call("other-ext-to-dee", {"phone": "+14155550900;ext=109"}, {"phone": "+14155550550"}),
        _call("cy-by-email-to-dee", {"email": "CY@Seller.example"}, {"phone": "+14155550550"}),
        _from_ana("ana-to-eve", "+14155550800"),
        # Bo signed in to the dialer on Ana's desk phone.
        _call(
            "bo-on-anas-desk", {"email": "bo@seller.example", "phone": ANA_LINE}, {"phone": "+14155550400"}
        ),
        # Cal rings the main line; Bo answers (the dialer names him as a second callee).
        {
            **_call(
                "cal-to-main-line", {"phone": "+14155550400"}, {"phone": "+14155550900"}, direction="inbound"
            ),
            "participants": [
                {"phone": "+14155550400", "role": "caller"},
                {"phone": "+14155550900", "role": "callee"},
                {"email": "bo@seller.example", "role": "callee"},
            ],
        },
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await _sync(stack, db_engine, tenant, *entities)
        found = await _decided(stack, kafka_settings, tenant, *calls)
        scores = await get(
            stack, tenant, "/v1/reps/rep-ana/scores?granularity=month&from=2026-11-01&to=2026-11-30"
        )
        reps = await get(stack, tenant, "/v1/reps")
        cy = await get(stack, tenant, "/v1/reps/rep-cy")
    assert synced == {"accepted": len(entities), "warnings": []}
    # The reps' lines as matched, and the seller's main line with each rep's own extension.
    assert [(r["rep_id"], r["phones"], r["phone_extensions"]) for r in reps["items"]] == [
        ("rep-ana", [ANA_LINE], []),
        ("rep-bo", [BO_LINE, BO_MOBILE], []),
        ("rep-cy", ["+14155550900"], ["+14155550900;ext=101"]),
        ("rep-di", ["+14155550900"], ["+14155550900;ext=102"]),
    ]
    assert (cy["phones"], cy["phone_extensions"]) == (["+14155550900"], ["+14155550900;ext=101"])
    assert found == {
        "bo-mobile-to-cal": ("attributed", "deal-cal", (), "acc-cal", "rep-bo", "team-b"),
        "cal-to-bo-mobile": ("attributed", "deal-cal", (), "acc-cal", "rep-bo", "team-b"),
        "ana-to-bo-mobile": ("internal", None, (), None, "rep-ana", "team-a"),
        "ana-to-mia": ("attributed", "deal-mia", (), "acc-mia", "rep-ana", "team-a"),
        "ana-to-bo-desk": ("internal", None, (), None, "rep-ana", "team-a"),
        "ana-to-jo-mobile": ("attributed", "deal-sole", (), "acc-sole", "rep-ana", "team-a"),
        "team-a-day": ("attributed", "deal-sole", (), "acc-sole", "rep-ana", "team-a"),
        "team-b-day": ("attributed", "deal-sole", (), "acc-sole", "rep-ana", "team-b"),
        "voicemail": ("attributed", "deal-dee", (), "acc-dee", "rep-ana", "team-a"),
        "no-answer": ("attributed", "deal-dee", (), "acc-dee", "rep-ana", "team-a"),
        "ana-to-sam": ("attributed", "deal-parent", (), "acc-parent", "rep-ana", "team-a"),
        "bo-to-sam": ("attributed", "deal-sub", (), "acc-sub", "rep-bo", "team-b"),
        "ana-to-lou": ("ambiguous", "deal-sub2", ("deal-parent2",), "acc-sub2", "rep-ana", "team-a"),
        "cy-ext-to-dee": ("attributed", "deal-dee", (), "acc-dee", "rep-cy", "team-a"),
        "main-line-to-dee": ("attributed", "deal-dee", (), "acc-dee", "rep-ana", "team-a"),
        "other-ext-to-dee": ("attributed", "deal-dee", (), "acc-dee", "rep-ana", "team-a"),
        "cy-by-email-to-dee": ("attributed", "deal-dee", (), "acc-dee", "rep-cy", "team-a"),
        "ana-to-eve": ("attributed", "deal-oldco", (), "acc-oldco", "rep-ana", "team-a"),
        "bo-on-anas-desk": ("attributed", "deal-cal", (), "acc-cal", "rep-bo", "team-b"),
        "cal-to-main-line": ("attributed", "deal-cal", (), "acc-cal", "rep-bo", "team-b"),
    }
    # Ana's outbound calls of November, every outcome, calls to colleagues included (13: her
    # eleven and the main line's two naming no rep, credited to her as Dee's deal owner; the one
    # on Cy's extension is Cy's); the voicemail and the no-answer are dials, not connects.
    [november] = scores["periods"]
    counts = november["counts"]
    assert (counts["dials"], counts["connects"], counts["talk_seconds"]) == (13, 11, 660)


async def test_a_dialer_user_under_the_sellers_second_domain_is_the_rep_the_tenant_maps_it_to(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana's CRM address is ``ana@seller.example``; the dialer signs her in as ``Ana@Seller.io``
    (the company's second domain, which no source lists). Truth: her call to Cal (Bo's deal) is
    Ana's, on Cal's deal, team A; her call to Bo's desk line is a call between colleagues.

    Nothing links the address to her until the admin maps it (``rep_aliases``): until then the
    call to Cal is credited to the deal's owner (Bo) and the call to Bo is with an outsider, Bo's;
    once mapped, both are re-decided and are Ana's (the call to Bo ``internal``)."""
    tenant = await _setup(db_engine)
    entities = _ana_bo_and_cal()
    calls = [
        _call("io-to-cal", {"email": "Ana@Seller.io"}, {"phone": "+14155550400"}),
        _call("io-to-bo", {"email": "Ana@Seller.io"}, {"phone": BO_LINE}),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync(stack, db_engine, tenant, *entities)
        before = await _decided(stack, kafka_settings, tenant, *calls)
        mapped = await stack.gateway.patch(
            "/v1/settings/organization",
            json={"rep_aliases": {"ana@seller.io": "rep-ana"}},
            headers=tenant.admin,
        )
        job = await settings_job_done(stack.gateway, tenant.admin, mapped)
        assert job["state"] == "done", job
        await settle(kafka_settings)
        after = await _decided(stack, kafka_settings, tenant, *calls, post_them=False)
    assert before == {
        "io-to-cal": ("attributed", "deal-cal", (), "acc-cal", "rep-bo", None),
        "io-to-bo": ("unmatched", None, (), None, "rep-bo", None),
    }
    assert after == {
        "io-to-cal": ("attributed", "deal-cal", (), "acc-cal", "rep-ana", "team-a"),
        "io-to-bo": ("internal", None, (), None, "rep-ana", "team-a"),
    }


async def test_an_address_the_admin_maps_to_a_rep_makes_the_dialer_user_listing_it_that_rep(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The dialer syncs its user for Ana as ``u-9``, known by ``Ana@Seller.io`` and her softphone
    line; the CRM knows her as ``rep-ana`` (``ana@seller.example``, team A). The admin maps the
    address she signs in with: ``{"ana@seller.io": "rep-ana"}``. Truth: the dialer user is Ana,
    so her calls, by line or by address, before or after the mapping, are Ana's and team A's, and
    a second dialer seat listing the address, synced after the mapping, is Ana too. The mapping
    removed, the two seats are one person of their own again (they share the address) and her
    calls go back to it.

    Before: the mapping named Ana only for an address no source lists; ``u-9`` lists it, so it
    stayed a rep of its own: her calls credited to ``u-9``, on no team."""
    tenant = await _setup(db_engine)
    crm = _ana_bo_and_cal()
    softphone = "+14155550901"
    dialer_user = {"entity_type": "rep", "id": "u-9", "emails": ["Ana@Seller.io"], "phones": [softphone]}
    calls = [
        _call("by-line", {"phone": softphone}, {"phone": "+14155550400"}),
        _call("by-address", {"email": "ana@seller.io"}, {"phone": "+14155550400"}),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _sync(stack, db_engine, tenant, *crm)
        await _sync(stack, db_engine, tenant, dialer_user, source="aircall")
        before = await _decided(stack, kafka_settings, tenant, *calls)
        mapped = await stack.gateway.patch(
            "/v1/settings/organization",
            json={"rep_aliases": {"ana@seller.io": "rep-ana"}},
            headers=tenant.admin,
        )
        job = await settings_job_done(stack.gateway, tenant.admin, mapped)
        assert job["state"] == "done", job
        after = await _decided(stack, kafka_settings, tenant, *calls, post_them=False)
        second_seat = {
            "entity_type": "rep",
            "id": "u-11",
            "emails": ["ANA@seller.io"],
            "phones": ["+14155550902"],
        }
        await _sync(
            stack, db_engine, tenant, second_seat, source="aircall", updated_at="2026-10-02T00:00:00Z"
        )
        seat = _call("second-seat", {"phone": "+14155550902"}, {"phone": "+14155550400"})
        last = await _decided(stack, kafka_settings, tenant, *calls, seat)
        # Mapped by mistake: removed, the seats are their own person again (one: they share the
        # address), and her calls go back to it.
        unmapped = await stack.gateway.patch(
            "/v1/settings/organization", json={"rep_aliases": {"ana@seller.io": None}}, headers=tenant.admin
        )
        job = await settings_job_done(stack.gateway, tenant.admin, unmapped)
        assert job["state"] == "done", job
        undone = await _decided(stack, kafka_settings, tenant, *calls, seat, post_them=False)
    async with db_engine.connect() as conn:
        people = [
            tuple(r)
            for r in await conn.execute(
                text("SELECT rep_id, alias_of FROM ref_reps WHERE tenant_id = :t ORDER BY rep_id"),
                {"t": tenant.tenant_id},
            )
        ]
    assert before == {
        "by-line": ("attributed", "deal-cal", (), "acc-cal", "u-9", None),
        "by-address": ("attributed", "deal-cal", (), "acc-cal", "u-9", None),
    }
    anas = ("attributed", "deal-cal", (), "acc-cal", "rep-ana", "team-a")
    assert after == {"by-line": anas, "by-address": anas}
    assert last == {"by-line": anas, "by-address": anas, "second-seat": anas}
    seats = ("attributed", "deal-cal", (), "acc-cal", "u-11", None)
    assert undone == {"by-line": seats, "by-address": seats, "second-seat": seats}
    assert people == [("rep-ana", None), ("rep-bo", None), ("u-11", None), ("u-9", "u-11")]


def _ana_bo_and_cal() -> list[dict[str, Any]]:
    """Ana (team A) and Bo by their desk lines; Cal's account, Cal, and his deal owned by Bo."""
    return [
        _rep("rep-ana", ANA_LINE),
        _rep("rep-bo", BO_LINE),
        {"entity_type": "team", "id": "team-a"},
        _membership("m-ana-a", "rep-ana", "team-a", "2026-01-01"),
        _account("cal"),
        _contact("cal", "cal", "415 555 0400"),
        _deal("cal", "cal", "cal", owner="rep-bo"),
    ]
