"""Data as another integrator sends it, through ingest, the real broker, attribution and
PostgreSQL: emails with display names, account domains written as websites, a shared inbox's
mail assigned to a rep by the help desk."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_real_crm import (
    DEAL,
    REP,
    TENANT,
    _attribution,
    _crm,
    _ingest_auth,
    _post_mail,
    _sync_crm,
)
from tests.integration.crm_support import email_from_ana
from tests.integration.pipeline_support import drained
from tests.integration.polling import poll_rows, references_landed


def _to(external_id: str, address: str) -> dict[str, Any]:
    return email_from_ana(
        external_id,
        participants=[{"email": "ana@seller.example", "role": "from"}, {"email": address, "role": "to"}],
    )


async def test_a_contact_and_an_account_typed_with_display_names_and_websites_are_matched(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    auth = await _ingest_auth(db_engine)
    account = {
        "entity_type": "account",
        "id": "acc-1",
        "domains": ["https://www.Buyer.example/", "Buyer Inc"],
    }
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["Dana Diaz <Dana@Buyer.example>"],
    }
    # Two open deals of the account: only Dana's role tells them apart.
    deal_a = {**DEAL, "id": "deal-a", "contacts": []}
    deal_b = {**DEAL, "id": "deal-b", "contacts": [{"contact_id": "con-1", "role": "champion"}]}
    other = {"entity_type": "account", "id": "acc-2", "domains": ["globex.example."]}
    deal_g = {**DEAL, "id": "deal-g", "account_id": "acc-2", "contacts": []}
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        sent = _crm(REP, account, contact, deal_a, deal_b, other, deal_g)
        crm = await stack.ingest.post("/v1/crm/sync", json=sent, headers=auth)
        assert crm.status_code == 202, crm.text
        assert crm.json() == {
            "accepted": 7,
            "warnings": [
                {
                    "index": 1,
                    "field": "entities.1.domains.1",
                    "reason": "not a domain; it was dropped, the account accepted",
                }
            ],
        }
        await references_landed(db_engine, TENANT, sent["entities"])
        mails = [
            _to("m-plain", "dana@buyer.example"),
            _to("m-pasted", "Dana Diaz <Dana@Buyer.example>"),
            _to("m-globex", "joe@globex.example"),
        ]
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-plain", "m-pasted", "m-globex"))
    async with db_engine.connect() as conn:
        stored = [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT c.emails, a.domains FROM ref_contacts c JOIN ref_accounts a USING (tenant_id, account_id) "
                    "WHERE c.tenant_id = :t"
                ),
                {"t": TENANT},
            )
        ]
    assert stored == [(["dana@buyer.example"], ["buyer.example"])]
    found = {
        name: (r.status, r.deal_id, r.account_id, r.rep_id, r.explanation["rule_path"])
        for name, r in rows.items()
    }
    assert found == {
        "m-plain": ("attributed", "deal-b", "acc-1", "rep-1", "contact_role"),
        "m-pasted": ("attributed", "deal-b", "acc-1", "rep-1", "contact_role"),
        "m-globex": ("attributed", "deal-g", "acc-2", "rep-1", "owner_participates"),
    }


async def test_a_shared_inbox_email_assigned_to_a_rep_goes_to_that_reps_deal(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Nobody on the seller's side is a participant: the rep the help desk assigned the email to
    (``crm.owner_rep_id``) is credited with it, and takes part in it as the deal owner would."""
    auth = await _ingest_auth(db_engine)
    bo = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["dana@buyer.example"],
    }
    # Two open deals of Dana's account, neither with her role: only their owners differ.
    ana_deal = {**DEAL, "id": "deal-ana", "contacts": []}
    bo_deal = {**DEAL, "id": "deal-bo", "owner_rep_id": "rep-2", "contacts": []}
    inbound = {
        **email_from_ana("m-inbox"),
        "direction": "inbound",
        "outcome": "received",
        "participants": [
            {"email": "dana@buyer.example", "role": "from"},
            {"email": "sales@seller.example", "role": "to"},
        ],
    }
    assigned = {**inbound, "external_id": "m-assigned", "crm": {"owner_rep_id": "rep-2"}}
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, bo, account, contact, ana_deal, bo_deal)
        rows = await _post_mail(stack, db_engine, auth, [inbound, assigned], ("m-inbox", "m-assigned"))
    found = {
        name: (r.status, r.deal_id, list(r.secondary_deal_ids), r.rep_id, r.explanation["rule_path"])
        for name, r in rows.items()
    }
    assert found == {
        # Unassigned: nothing tells the deals apart.
        "m-inbox": ("ambiguous", "deal-ana", ["deal-bo"], "rep-1", "tie_break"),
        "m-assigned": ("attributed", "deal-bo", [], "rep-2", "owner_participates"),
    }


async def test_a_rep_who_also_uses_a_gmail_address_does_not_make_gmail_customers_colleagues(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """No internal domains configured: they are read from the reps' addresses, free-mail ones
    excepted (a customer writing from Gmail stays a customer)."""
    auth = await _ingest_auth(db_engine)
    ana = {**REP, "emails": ["ana@seller.example", "ana.seller@gmail.com"]}
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    contact = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["victor@gmail.com"]}
    deal_a = {**DEAL, "id": "deal-a", "contacts": []}
    deal_b = {**DEAL, "id": "deal-b", "contacts": [{"contact_id": "con-1", "role": "champion"}]}
    reply = {
        **_to("m-reply", "ana@seller.example"),
        "direction": "inbound",
        "outcome": "received",
        "participants": [
            {"email": "victor@gmail.com", "role": "from"},
            {"email": "ana@seller.example", "role": "to"},
        ],
    }
    colleague = _to("m-colleague", "cy@seller.example")
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, ana, account, contact, deal_a, deal_b)
        mails = [_to("m-out", "victor@gmail.com"), reply, colleague]
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-out", "m-reply", "m-colleague"))
    found = {name: (r.status, r.deal_id, r.account_id, r.rep_id) for name, r in rows.items()}
    assert found == {
        "m-out": ("attributed", "deal-b", "acc-1", "rep-1"),
        "m-reply": ("attributed", "deal-b", "acc-1", "rep-1"),
        # The company's own domain is still internal.
        "m-colleague": ("internal", None, None, "rep-1"),
    }


async def test_a_plus_tagged_address_is_its_mailboxs_contact_or_rep(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """``lee+deals@`` is delivered to ``lee@``: the contact the CRM knows as ``lee@``; a rep
    writing from ``ana+crm@`` is Ana, not the deal's owner."""
    auth = await _ingest_auth(db_engine)
    bo = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    lee = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["lee@buyer.example"]}
    tagged = {
        "entity_type": "contact",
        "id": "con-2",
        "account_id": "acc-1",
        "emails": ["max+crm@buyer.example"],
    }
    deal_a = {
        **DEAL,
        "id": "deal-a",
        "owner_rep_id": "rep-2",
        "contacts": [{"contact_id": "con-2", "role": "buyer"}],
    }
    deal_b = {
        **DEAL,
        "id": "deal-b",
        "owner_rep_id": "rep-2",
        "contacts": [{"contact_id": "con-1", "role": "champion"}],
    }
    mails = [
        _to("m-lee", "lee+deals@buyer.example"),
        # The CRM holds the tagged address itself: it is that contact's.
        _to("m-max", "max+crm@buyer.example"),
        {
            **_to("m-ana", "lee@buyer.example"),
            "participants": [
                {"email": "ana+crm@seller.example", "role": "from"},
                {"email": "lee@buyer.example", "role": "to"},
            ],
        },
    ]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, bo, account, lee, tagged, deal_a, deal_b)
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-lee", "m-max", "m-ana"))
    found = {
        name: (r.status, r.deal_id, r.rep_id, r.explanation["rep"]["via"], r.explanation["rule_path"])
        for name, r in rows.items()
    }
    assert found == {
        "m-lee": ("attributed", "deal-b", "rep-1", "from", "contact_role"),
        "m-max": ("attributed", "deal-a", "rep-1", "from", "contact_role"),
        "m-ana": ("attributed", "deal-b", "rep-1", "from", "contact_role"),
    }


async def test_a_switchboard_number_the_reps_list_with_extensions_credits_none_of_them_by_guess(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Each rep lists the company's main line with an extension; the dialer shows the main line as
    the caller. The line is the seller's side, but names none of the reps: the deal's owner is
    credited, not whichever rep sorts first. A departed rep's line now another's is that rep's."""
    auth = await _ingest_auth(db_engine)
    ana = {**REP, "phones": ["+1 415 555 0000 x12"]}
    bo = {
        "entity_type": "rep",
        "id": "rep-2",
        "emails": ["bo@seller.example"],
        "phones": ["+1 415 555 0000 x13"],
    }
    line = {"entity_type": "rep", "phones": ["+14155550009"]}
    gone = {**line, "id": "rep-0", "emails": ["old@seller.example"], "active": False}
    cy = {**line, "id": "rep-3", "emails": ["cy@seller.example"]}
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    contact = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "phones": ["212 555 0100"]}
    deal = {**DEAL, "owner_rep_id": "rep-2", "contacts": [{"contact_id": "con-1", "role": "champion"}]}

    def call(external_id: str, caller: str) -> dict[str, Any]:
        return {
            "source": "dialer",
            "external_id": external_id,
            "kind": "call",
            "direction": "outbound",
            "outcome": "connected",
            "occurred_at": "2026-11-02T17:00:00Z",
            "duration_seconds": 60,
            "participants": [
                {"phone": caller, "role": "caller"},
                {"phone": "+12125550100", "role": "callee"},
            ],
        }

    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, ana, bo, gone, cy, account, contact, deal)
        calls = [call("c-main", "+14155550000"), call("c-reused", "+14155550009")]
        posted = await stack.ingest.post("/v1/events", json={"activities": calls}, headers=auth)
        assert posted.status_code == 202, posted.text
        rows = {
            name: await _attribution(db_engine, activity_id_for(TENANT, "dialer", name))
            for name in ("c-main", "c-reused")
        }
    found = {
        name: (r.status, r.deal_id, r.rep_id, r.explanation["rep"]["via"], r.explanation["rule_path"])
        for name, r in rows.items()
    }
    assert found == {
        "c-main": ("attributed", "deal-1", "rep-2", "deal_owner", "contact_role"),
        "c-reused": ("attributed", "deal-1", "rep-3", "caller", "contact_role"),
    }


async def test_a_record_corrected_under_the_same_updated_at_applies_and_a_resend_or_older_one_does_not(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """An integrator fixes the deal roles without touching ``updated_at``: the correction applies
    (the last received of equals) and re-decides the email. The same correction sent again writes
    nothing and re-matches nothing; a strictly older version is still ignored."""
    auth = await _ingest_auth(db_engine)
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    contact = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["dana@buyer.example"],
    }
    role = [{"contact_id": "con-1", "role": "champion"}]
    deal_a = {**DEAL, "id": "deal-a", "contacts": role}
    deal_b = {**DEAL, "id": "deal-b", "contacts": []}
    corrected = _crm({**deal_a, "contacts": []}, {**deal_b, "contacts": role})
    older = _crm({**deal_a, "updated_at": "2026-10-31T00:00:00Z"})
    mail_id = activity_id_for(TENANT, "mail", "m-1")
    current = "SELECT deal_id, version FROM attributions WHERE tenant_id = :t AND activity_id = :a"
    rows = "SELECT deal_id, xmin::text, contacts FROM ref_deals WHERE tenant_id = :t ORDER BY deal_id"
    async with in_process_stack(
        kafka_settings, database_settings, ("ingest", "attribution", "metrics")
    ) as stack:
        await _sync_crm(stack, db_engine, auth, REP, account, contact, deal_a, deal_b)
        posted = await stack.ingest.post(
            "/v1/events", json={"activities": [_to("m-1", "dana@buyer.example")]}, headers=auth
        )
        assert posted.status_code == 202, posted.text
        await poll_rows(db_engine, current, {"t": TENANT, "a": mail_id}, lambda r: r == [("deal-a", 1)])
        fixed = await stack.ingest.post("/v1/crm/sync", json=corrected, headers=auth)
        assert fixed.status_code == 202, fixed.text
        await poll_rows(db_engine, current, {"t": TENANT, "a": mail_id}, lambda r: r == [("deal-b", 2)])
        await drained(kafka_settings)
        held = await poll_rows(db_engine, rows, {"t": TENANT}, lambda r: len(r) == 2)
        for body in (corrected, older):
            again = await stack.ingest.post("/v1/crm/sync", json=body, headers=auth)
            assert again.status_code == 202, again.text
        await drained(kafka_settings)
        after = await poll_rows(db_engine, rows, {"t": TENANT}, lambda r: len(r) == 2)
    async with db_engine.connect() as conn:
        history = [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT version, status, deal_id FROM attribution_history "
                    "WHERE tenant_id = :t AND activity_id = :a ORDER BY version"
                ),
                {"t": TENANT, "a": mail_id},
            )
        ]
    # Neither row was rewritten (same transaction id), so nothing was re-matched.
    assert after == held
    assert [(deal_id, contacts) for deal_id, _, contacts in after] == [("deal-a", []), ("deal-b", role)]
    assert history == [(1, "attributed", "deal-a"), (2, "attributed", "deal-b")]


def _teams(*memberships: dict[str, Any]) -> list[dict[str, Any]]:
    teams = [{"entity_type": "team", "id": team_id} for team_id in ("team-a", "team-b")]
    return teams + [{"entity_type": "team_membership", "rep_id": "rep-1", **m} for m in memberships]


async def _in_time_zone(engine: AsyncEngine, time_zone: str) -> dict[str, str]:
    auth = await _ingest_auth(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET timezone = :z WHERE tenant_id = :t"), {"z": time_zone, "t": TENANT}
        )
    return auth


async def test_a_team_change_counts_from_the_tenants_local_day_not_the_utc_one(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A Los Angeles tenant: Ana moves to team-b on 3 November. Her email at 21:00 on 2 November
    (05:00 UTC on the 3rd) is team-a's; the one the next morning team-b's."""
    auth = await _in_time_zone(db_engine, "America/Los_Angeles")
    teams = _teams(
        {"id": "m-a", "team_id": "team-a", "valid_from": "2026-01-01", "valid_to": "2026-11-03"},
        {"id": "m-b", "team_id": "team-b", "valid_from": "2026-11-03"},
    )
    mails = [
        _to("m-evening", "dana@buyer.example") | {"occurred_at": "2026-11-03T05:00:00Z"},
        _to("m-morning", "dana@buyer.example") | {"occurred_at": "2026-11-03T17:00:00Z"},
    ]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, *teams)
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-evening", "m-morning"))
    found = {name: (r.rep_id, r.team_id, r.explanation["rep"]["team_on"]) for name, r in rows.items()}
    assert found == {
        "m-evening": ("rep-1", "team-a", "2026-11-02"),
        "m-morning": ("rep-1", "team-b", "2026-11-03"),
    }


async def test_a_team_change_re_credits_activities_from_local_midnight_east_of_utc(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A Berlin tenant: Ana's membership of team-b from 3 November arrives after the emails. The one sent
    at 00:30 on the 3rd (23:30 UTC on the 2nd) is re-credited to team-b as version 2; the one an
    hour earlier stays team-a's, untouched."""
    auth = await _in_time_zone(db_engine, "Europe/Berlin")
    mails = [
        _to("m-late", "dana@buyer.example") | {"occurred_at": "2026-11-02T22:30:00Z"},
        _to("m-early", "dana@buyer.example") | {"occurred_at": "2026-11-02T23:30:00Z"},
    ]
    ids = {name: activity_id_for(TENANT, "mail", name) for name in ("m-late", "m-early")}
    current = "SELECT team_id, version FROM attributions WHERE tenant_id = :t AND activity_id = :a"
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        first = _crm(REP, *_teams({"id": "m-a", "team_id": "team-a", "valid_from": "2026-01-01"}))
        assert (await stack.ingest.post("/v1/crm/sync", json=first, headers=auth)).status_code == 202
        await references_landed(db_engine, TENANT, first["entities"])
        posted = await stack.ingest.post("/v1/events", json={"activities": mails}, headers=auth)
        assert posted.status_code == 202, posted.text
        for activity_id in ids.values():
            await poll_rows(
                db_engine, current, {"t": TENANT, "a": activity_id}, lambda r: r == [("team-a", 1)]
            )
        # Only the new membership: from 3 November it overrides the open-ended m-a (the latest
        # start wins), so the re-match starts on the 3rd, at midnight in Berlin.
        moved = {"entity_type": "team_membership", "id": "m-b", "rep_id": "rep-1", "team_id": "team-b"}
        later = _crm({**moved, "valid_from": "2026-11-03", "updated_at": "2026-11-05T00:00:00Z"})
        assert (await stack.ingest.post("/v1/crm/sync", json=later, headers=auth)).status_code == 202
        early = await poll_rows(
            db_engine, current, {"t": TENANT, "a": ids["m-early"]}, lambda r: r == [("team-b", 2)]
        )
        # Decided in the same transaction as the change: m-late was not moved.
        late = await poll_rows(db_engine, current, {"t": TENANT, "a": ids["m-late"]}, lambda r: bool(r))
    assert (early, late) == ([("team-b", 2)], [("team-a", 1)])
