"""A real company's CRM export and activity feed through the canonical API only (``POST
/v1/crm/sync``, ``POST /v1/events``), the real broker, attribution and PostgreSQL: empty columns
and placeholders, stage names in another language, one address on contacts of two accounts, a
deal moved to another account, entities arriving before what they point at."""

from __future__ import annotations

import asyncio
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
from tests.integration.polling import eventually


def _to(external_id: str, address: str, **fields: Any) -> dict[str, Any]:
    participants = [{"email": "ana@seller.example", "role": "from"}, {"email": address, "role": "to"}]
    return email_from_ana(external_id, participants=participants, **fields)


async def test_an_export_with_empty_columns_placeholders_and_german_stages_is_accepted_and_matched(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Empty columns (``""``, ``null``) are absent, an email column holding ``N/A`` loses that value
    only (with a warning), and a deal sent without flags at "Geschlossen und gewonnen" is won and
    closed: it no longer competes with the account's open deal months later. An activity's blank
    CRM references are none: a shared inbox's mail with ``owner_rep_id: " "`` goes to the deal's
    owner, not to a rep named by a space. Numeric ids (HubSpot's) are their text, one domain value
    listing two is both."""
    auth = await _ingest_auth(db_engine)
    rep = {**REP, "name": None, "manager_id": "", "role": "", "phones": [""]}
    account = {"entity_type": "account", "id": "acc-1", "name": None, "domains": ["buyer.example", "N/A"]}
    dana = {
        "entity_type": "contact",
        "id": "con-1",
        "name": None,
        "account_id": "acc-1",
        "emails": ["N/A", "Dana Diaz <Dana@Buyer.example>"],
        "phones": None,
        "merged_into": "",
    }
    won = {
        **DEAL,
        "id": "deal-won",
        "stage": "Geschlossen und gewonnen",
        "created_at": "2026-01-05",
        "closed_at": "2026-06-01",
        "amount": "48000.00",
        "contacts": [{"contact_id": "con-1", "role": None}],
    }
    current = {
        **DEAL,
        "id": "deal-new",
        "stage": "Verhandlung",
        "amount": "",
        "closed_at": "",
        "is_closed": None,
        "contacts": [{"contact_id": "con-1", "role": ""}],
    }
    inbox = {
        **email_from_ana("m-inbox"),
        "direction": "inbound",
        "outcome": "received",
        "participants": [
            {"email": "dana@buyer.example", "role": "from"},
            {"email": "support@seller.example", "role": "to"},
        ],
        "crm": {"deal_id": "", "account_id": None, "contact_ids": [""], "owner_rep_id": " "},
    }
    # As HubSpot exports them: numeric ids, one value where a list is expected.
    globex = {"entity_type": "account", "id": 77, "domains": "globex.example, globex.co.uk"}
    globex_deal = {**DEAL, "id": 5, "account_id": 77, "contacts": []}
    mails = [_to("m-dana", "dana@buyer.example", crm=None, duration_seconds=None), inbox]
    mails.append({**_to("m-joe", "joe@globex.co.uk"), "external_id": 4242})
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        crm = await stack.ingest.post(
            "/v1/crm/sync", json=_crm(rep, account, dana, won, current, globex, globex_deal), headers=auth
        )
        assert crm.status_code == 202, crm.text
        assert crm.json() == {
            "accepted": 7,
            "warnings": [
                {
                    "index": 0,
                    "field": "entities.0.phones.0",
                    "reason": "empty phone number; the phone was dropped, the rep accepted",
                },
                {
                    "index": 1,
                    "field": "entities.1.domains.1",
                    "reason": "not a domain; it was dropped, the account accepted",
                },
                {
                    "index": 2,
                    "field": "entities.2.emails.0",
                    "reason": "not an email address; it was dropped, the contact accepted",
                },
            ],
        }
        await asyncio.sleep(1.0)
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-dana", "m-inbox", "4242"))
    async with db_engine.connect() as conn:
        deals = [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT deal_id, is_closed, is_won, closed_at::date::text, amount::text FROM ref_deals "
                    "WHERE tenant_id = :t ORDER BY deal_id"
                ),
                {"t": TENANT},
            )
        ]
        contact = (
            await conn.execute(
                text("SELECT emails, phones, account_id, merged_into FROM ref_contacts WHERE tenant_id = :t"),
                {"t": TENANT},
            )
        ).one()
    assert deals == [
        ("5", False, False, None, None),
        ("deal-new", False, False, None, None),
        ("deal-won", True, True, "2026-06-01", "48000.00"),
    ]
    assert tuple(contact) == (["dana@buyer.example"], [], "acc-1", None)
    found = {
        name: (r.status, r.deal_id, list(r.secondary_deal_ids), r.rep_id, r.explanation["rule_path"])
        for name, r in rows.items()
    }
    assert found == {
        "m-dana": ("attributed", "deal-new", [], "rep-1", "contact_role"),
        "m-inbox": ("attributed", "deal-new", [], "rep-1", "contact_role"),
        "4242": ("attributed", "5", [], "rep-1", "owner_participates"),
    }


def _account(account_id: str, *domains: str) -> dict[str, Any]:
    return {"entity_type": "account", "id": account_id, "domains": list(domains)}


def _contact(contact_id: str, account_id: str, email: str) -> dict[str, Any]:
    return {"entity_type": "contact", "id": contact_id, "account_id": account_id, "emails": [email]}


def _deal(deal_id: str, account_id: str, *roles: str) -> dict[str, Any]:
    return {**DEAL, "id": deal_id, "account_id": account_id, "contacts": [{"contact_id": c} for c in roles]}


async def test_shared_addresses_free_mail_domains_moved_deals_and_entities_out_of_order(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Regression, as a CRM holds them: a consultant's address on a contact of each of two
    accounts is a close call between their deals, not a guess; ``gmail.com`` typed as an account's
    domain pulls no Gmail sender onto it; a contact and its deal role sent before their account, and
    a deal role sent before its contact, are matched once what they name arrives (the parked
    activity re-matched as a new version); a deal moved to another account takes that account's
    mail with it."""
    auth = await _ingest_auth(db_engine)
    first = [
        REP,
        _account("acc-c1", "c1.example"),
        _account("acc-c2", "c2.example"),
        _contact("con-c1", "acc-c1", "pat@advisors.example"),
        _contact("con-c2", "acc-c2", "pat@advisors.example"),
        _deal("deal-c1", "acc-c1", "con-c1"),
        _deal("deal-c2", "acc-c2", "con-c2"),
        _account("acc-f", "gmail.com", "free.example"),
        _deal("deal-f", "acc-f"),
        # acc-o is sent later; con-r (holding a role on deal-r) too.
        _contact("con-o", "acc-o", "lee@order.example"),
        _deal("deal-o", "acc-o", "con-o"),
        _account("acc-r", "roles.example"),
        _deal("deal-r", "acc-r", "con-r"),
        _deal("deal-r2", "acc-r"),
        _account("acc-a1", "a1.example"),
        _account("acc-a2", "a2.example"),
        _deal("deal-mv", "acc-a1"),
    ]
    names = ("m-pat", "m-gmail", "m-lee", "m-ron", "m-a2")
    mails = [
        _to("m-pat", "pat@advisors.example"),
        _to("m-gmail", "someone@gmail.com"),
        _to("m-lee", "lee@order.example"),
        _to("m-ron", "ron@roles.example"),
        _to("m-a2", "zoe@a2.example"),
    ]

    def seen(rows: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {
            name: (
                r.version,
                r.status,
                r.deal_id,
                list(r.secondary_deal_ids),
                r.account_id,
                r.explanation["rule_path"],
            )
            for name, r in rows.items()
        }

    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, *first)
        before = seen(await _post_mail(stack, db_engine, auth, mails, names))
        later = [
            _account("acc-o", "order.example"),
            _contact("con-r", "acc-r", "ron@roles.example"),
            {**_deal("deal-mv", "acc-a2"), "updated_at": "2026-11-05T00:00:00Z"},
        ]
        response = await stack.ingest.post("/v1/crm/sync", json=_crm(*later), headers=auth)
        assert response.status_code == 202, response.text

        async def rows() -> dict[str, tuple[Any, ...]]:
            return seen({n: await _attribution(db_engine, activity_id_for(TENANT, "mail", n)) for n in names})

        after = await eventually(rows, lambda r: r["m-ron"][0] == 2 and r["m-a2"][0] == 2, 30, "re-matches")
    assert before == {
        "m-pat": (1, "ambiguous", "deal-c1", ["deal-c2"], "acc-c1", "tie_break"),
        "m-gmail": (1, "unmatched", None, [], None, "none"),
        "m-lee": (1, "attributed", "deal-o", [], "acc-o", "contact_role"),
        "m-ron": (1, "ambiguous", "deal-r", ["deal-r2"], "acc-r", "tie_break"),
        "m-a2": (1, "account_only", None, [], "acc-a2", "domain"),
    }
    assert after == {
        **before,
        "m-ron": (2, "attributed", "deal-r", [], "acc-r", "contact_role"),
        "m-a2": (2, "attributed", "deal-mv", [], "acc-a2", "owner_participates"),
    }


async def test_mail_from_a_subsidiarys_own_subdomain_is_the_subsidiarys_even_when_it_arrives_later(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The parent on parent.example, its EU subsidiary on eu.parent.example (rules 2026.12.5):
    Ana's mail to someone at eu.parent.example the CRM does not know is the subsidiary's deal
    (Bo's), not her own deal with the parent; mail to another subdomain is the parent's. Mail sent
    before the subsidiary was in the CRM moves to it when it arrives with its deal."""
    auth = await _ingest_auth(db_engine)
    bo = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
    parent = [REP, bo, _account("acc-par", "parent.example"), _deal("deal-par", "acc-par")]
    subsidiary = [
        _account("acc-kid", "eu.parent.example"),
        {**_deal("deal-kid", "acc-kid"), "owner_rep_id": "rep-2"},
    ]
    names = ("m-early", "m-kid", "m-deeper", "m-us")

    def seen(rows: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {
            name: (r.version, r.status, r.deal_id, list(r.secondary_deal_ids), r.account_id, r.rep_id)
            for name, r in rows.items()
        }

    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, *parent)
        early = seen(
            await _post_mail(stack, db_engine, auth, [_to("m-early", "kai@eu.parent.example")], names[:1])
        )
        await _sync_crm(stack, db_engine, auth, *subsidiary)
        later = [_to("m-kid", "kim@eu.parent.example"), _to("m-deeper", "kit@mail.eu.parent.example")]
        later.append(_to("m-us", "uma@us.parent.example"))
        await _post_mail(stack, db_engine, auth, later, names[1:])

        async def rows() -> dict[str, tuple[Any, ...]]:
            return seen({n: await _attribution(db_engine, activity_id_for(TENANT, "mail", n)) for n in names})

        after = await eventually(rows, lambda r: r["m-early"][0] == 2, 20, "the early mail re-matched")
    assert early == {"m-early": (1, "attributed", "deal-par", [], "acc-par", "rep-1")}
    assert after == {
        "m-early": (2, "attributed", "deal-kid", [], "acc-kid", "rep-1"),
        "m-kid": (1, "attributed", "deal-kid", [], "acc-kid", "rep-1"),
        "m-deeper": (1, "attributed", "deal-kid", [], "acc-kid", "rep-1"),
        "m-us": (1, "attributed", "deal-par", [], "acc-par", "rep-1"),
    }


async def test_a_gmail_contact_is_found_by_any_spelling_of_its_mailbox_and_when_it_arrives_later(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Gmail ignores dots and answers at googlemail.com: the contact the CRM lists as
    ``jo.doe@gmail.com`` writes as ``jodoe@gmail.com``, ``Jo.Doe@googlemail.com`` or with a tag.
    Mail from ``kimlee@gmail.com`` sent before a contact listing ``Kim.Lee@gmail.com`` was in the
    CRM is re-matched when it arrives (the re-match compares the listed address and its mailbox). Another Gmail user stays nobody's (a free-mail domain)."""
    auth = await _ingest_auth(db_engine)
    jo = {**_contact("con-jo", "acc-1", "Jo.Doe@gmail.com")}
    kim = _contact("con-kim", "acc-2", "Kim.Lee@gmail.com")
    crm = [
        REP,
        _account("acc-1", "buyer.example"),
        _deal("deal-a", "acc-1"),
        _deal("deal-b", "acc-1", "con-jo"),
    ]
    crm += [_account("acc-2", "other.example"), _deal("deal-k", "acc-2", "con-kim")]
    names = ("m-dotless", "m-googlemail", "m-tagged", "m-stranger", "m-early")
    mails = [
        _to("m-dotless", "jodoe@gmail.com"),
        _to("m-googlemail", "Jo.Doe@googlemail.com"),
        _to("m-tagged", "j.o.doe+crm@gmail.com"),
        _to("m-stranger", "jo.doe.2@gmail.com"),
    ]

    def seen(rows: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {name: (r.version, r.status, r.deal_id, r.account_id) for name, r in rows.items()}

    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, *crm)
        await _post_mail(stack, db_engine, auth, [_to("m-early", "kimlee@gmail.com")], ("m-early",))
        await _sync_crm(stack, db_engine, auth, jo, kim)
        await _post_mail(stack, db_engine, auth, mails, names[:4])

        async def rows() -> dict[str, tuple[Any, ...]]:
            return seen({n: await _attribution(db_engine, activity_id_for(TENANT, "mail", n)) for n in names})

        found = await eventually(rows, lambda r: r["m-early"][0] == 2, 20, "the early mail re-matched")
    assert found == {
        "m-dotless": (1, "attributed", "deal-b", "acc-1"),
        "m-googlemail": (1, "attributed", "deal-b", "acc-1"),
        "m-tagged": (1, "attributed", "deal-b", "acc-1"),
        "m-stranger": (1, "unmatched", None, None),
        "m-early": (2, "attributed", "deal-k", "acc-2"),
    }


async def test_an_activity_naming_a_deal_not_synced_yet_gets_its_account_and_owner_when_it_arrives(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A CRM-logged email names its deal (``crm.deal_id``) before the CRM sync has sent the deal:
    it is that deal's at once, but neither the deal's account nor, through a shared inbox, a rep
    is known. When the deal arrives, the activity is re-decided: its account and its owner."""
    auth = await _ingest_auth(db_engine)
    logged = {
        **email_from_ana("m-logged"),
        "direction": "inbound",
        "outcome": "received",
        "participants": [
            {"email": "xavier@x.example", "role": "from"},
            {"email": "support@seller.example", "role": "to"},
        ],
        "crm": {"deal_id": "deal-x"},
    }

    async def row() -> tuple[Any, ...]:
        r = await _attribution(db_engine, activity_id_for(TENANT, "mail", "m-logged"))
        return (r.version, r.status, r.deal_id, r.account_id, r.rep_id, r.explanation["rule_path"])

    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, _account("acc-x", "x.example"))
        await _post_mail(stack, db_engine, auth, [logged], ("m-logged",))
        before = await row()
        await _sync_crm(
            stack, db_engine, auth, {**_deal("deal-x", "acc-x"), "updated_at": "2026-11-05T00:00:00Z"}
        )
        after = await eventually(row, lambda r: r[0] == 2, 20, "the logged email re-decided")
    assert before == (1, "attributed", "deal-x", None, None, "explicit_deal")
    assert after == (2, "attributed", "deal-x", "acc-x", "rep-1", "explicit_deal")
