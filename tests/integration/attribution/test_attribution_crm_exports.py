"""CRM records and activities as another author's export carries them, through ingest, the real
broker, attribution and PostgreSQL: deal dates as CRMs keep them (an open deal's expected close
date, a lost deal without one), calendar resources among a meeting's attendees."""

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
from tests.integration.polling import references_landed


def _to(external_id: str, address: str, at: str = "2026-11-02T16:00:00Z") -> dict[str, Any]:
    return email_from_ana(
        external_id,
        occurred_at=at,
        participants=[{"email": "ana@seller.example", "role": "from"}, {"email": address, "role": "to"}],
    )


async def test_deal_dates_as_crms_keep_them_an_expected_close_and_a_lost_deal_without_a_date(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Every CRM keeps a close date on an open deal: the date it is expected to close, which
    slips. It does not close the deal. A deal reported closed without a close date closed at the
    latest when the CRM reported it so (``updated_at``), not never."""
    auth = await _ingest_auth(db_engine)
    buyer = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    globex = {"entity_type": "account", "id": "acc-2", "domains": ["globex.example"]}
    dana = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["dana@buyer.example"]}
    lee = {"entity_type": "contact", "id": "con-2", "account_id": "acc-2", "emails": ["lee@globex.example"]}
    # Expected to close on 1 September, still open in November.
    slipped = {
        **DEAL,
        "id": "deal-slipped",
        "created_at": "2026-06-01T00:00:00Z",
        "closed_at": "2026-09-01T00:00:00Z",
        "contacts": [{"contact_id": "con-1", "role": "champion"}],
    }
    # Lost in the summer (reported so on 1 August), no close date; Lee had a role on it.
    lost = {
        **DEAL,
        "id": "deal-lost",
        "account_id": "acc-2",
        "created_at": "2026-03-01T00:00:00Z",
        "is_closed": True,
        "updated_at": "2026-08-01T00:00:00Z",
        "contacts": [{"contact_id": "con-2", "role": "buyer"}],
    }
    # Globex's new deal, no role on it yet.
    new = {
        **DEAL,
        "id": "deal-new",
        "account_id": "acc-2",
        "created_at": "2026-10-15T00:00:00Z",
        "contacts": [],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        sent = _crm(REP, buyer, globex, dana, lee, slipped, lost, new)
        crm = await stack.ingest.post("/v1/crm/sync", json=sent, headers=auth)
        assert crm.status_code == 202, crm.text
        assert crm.json() == {"accepted": 8, "warnings": []}
        await references_landed(db_engine, TENANT, sent["entities"])
        mails = [
            _to("m-before", "dana@buyer.example", "2026-08-20T16:00:00Z"),
            _to("m-slipped", "dana@buyer.example"),
            _to("m-lost-then", "lee@globex.example", "2026-07-20T16:00:00Z"),
            _to("m-new", "lee@globex.example"),
        ]
        rows = await _post_mail(
            stack, db_engine, auth, mails, ("m-before", "m-slipped", "m-lost-then", "m-new")
        )
    async with db_engine.connect() as conn:
        stored = {
            r.deal_id: (r.is_closed, r.closed_at.isoformat() if r.closed_at else None)
            for r in await conn.execute(
                text("SELECT deal_id, is_closed, closed_at FROM ref_deals WHERE tenant_id = :t"),
                {"t": TENANT},
            )
        }
    found = {name: (r.status, r.deal_id, r.explanation["rule_path"]) for name, r in rows.items()}
    assert found == {
        "m-before": ("attributed", "deal-slipped", "contact_role"),
        "m-slipped": ("attributed", "deal-slipped", "contact_role"),
        "m-lost-then": ("attributed", "deal-lost", "contact_role"),
        "m-new": ("attributed", "deal-new", "owner_participates"),
    }
    assert stored == {
        "deal-slipped": (False, None),
        "deal-lost": (True, "2026-08-01T00:00:00+00:00"),
        "deal-new": (False, None),
    }


async def test_a_deal_sent_with_a_closing_stage_and_no_flags_is_closed(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """An export that maps the CRM's stage and leaves out ``is_closed``: "Closed Won" and
    "closedlost" are closes (won and lost), dated by ``updated_at`` when the close date is left
    out too; a close date sent as a day is that day's start in UTC. A flag that was sent is the
    CRM's word, whatever the stage says."""
    auth = await _ingest_auth(db_engine)
    globex = {"entity_type": "account", "id": "acc-2", "domains": ["globex.example"]}
    lee = {"entity_type": "contact", "id": "con-2", "account_id": "acc-2", "emails": ["lee@globex.example"]}
    old = {
        **DEAL,
        "account_id": "acc-2",
        "created_at": "2026-03-01T00:00:00Z",
        "updated_at": "2026-08-01T00:00:00Z",
    }
    won = {
        **old,
        "id": "deal-won",
        "stage": "Closed Won",
        "contacts": [{"contact_id": "con-2", "role": "buyer"}],
    }
    # A close date as CRMs keep it: a day.
    lost = {**old, "id": "deal-lost", "stage": "closedlost", "closed_at": "2026-07-01"}
    # Its flag says open: the stage's name is the tenant's business.
    flagged = {**old, "id": "deal-flagged", "stage": "Closed Lost - Revived", "is_closed": False}
    new = {
        **DEAL,
        "id": "deal-new",
        "account_id": "acc-2",
        "created_at": "2026-10-15T00:00:00Z",
        "contacts": [],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, globex, lee, won, lost, flagged, new)
        posted = await stack.ingest.post(
            "/v1/events", json={"activities": [_to("m-new", "lee@globex.example")]}, headers=auth
        )
        assert posted.status_code == 202, posted.text
        row = await _attribution(db_engine, activity_id_for(TENANT, "mail", "m-new"))
    async with db_engine.connect() as conn:
        stored = {
            r.deal_id: (r.is_closed, r.is_won, r.closed_at.date().isoformat() if r.closed_at else None)
            for r in await conn.execute(
                text("SELECT deal_id, is_closed, is_won, closed_at FROM ref_deals WHERE tenant_id = :t"),
                {"t": TENANT},
            )
        }
    assert stored == {
        "deal-won": (True, True, "2026-08-01"),
        "deal-lost": (True, False, "2026-07-01"),
        "deal-flagged": (False, False, None),
        "deal-new": (False, False, None),
    }
    # Lee's role on the won deal no longer pulls the account's later mail into it.
    assert (row.status, row.deal_id, sorted(row.secondary_deal_ids)) == (
        "ambiguous",
        "deal-new",
        ["deal-flagged"],
    )


async def test_each_instance_of_a_recurring_meeting_is_its_own_activity_seen_from_two_sources(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Every instance of a recurring calendar event carries the series' iCalUID (RFC 5545 tells
    instances apart by their RECURRENCE-ID; Google sends the one UID on each). The calendar and
    the CRM that logged the meetings both send the weekly call, the CRM with its modification
    times as revisions and one week the calendar missed: one activity per week, each week's two
    sightings one meeting."""
    auth = await _ingest_auth(db_engine)
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}

    def weekly(source: str, day: str, revision: int = 0) -> dict[str, Any]:
        return {
            "revision": revision,
            "source": source,
            "external_id": f"{source}-{day}",
            "kind": "meeting",
            "direction": "outbound",
            "outcome": "held",
            "occurred_at": f"{day}T15:00:00Z",
            "duration_seconds": 1800,
            "ical_uid": "weekly-sync-7cbh8rpc@google.com",
            "participants": [
                {"email": "ana@seller.example", "role": "organizer"},
                {"email": "dana@buyer.example", "role": "attendee"},
            ],
        }

    days, missed = ("2026-11-02", "2026-11-09", "2026-11-16"), "2026-11-23"
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, account, DEAL)
        calendar = [weekly("calendar", day) for day in days]
        logged = [weekly("crm-log", day, 1795000000000) for day in (*days, missed)]
        for batch in (calendar, logged):
            posted = await stack.ingest.post("/v1/events", json={"activities": batch}, headers=auth)
            assert posted.status_code == 202, posted.text
        await drained(kafka_settings, metrics_runs=False)
    async with db_engine.connect() as conn:
        stored = [
            (r.activity_id, r.occurred_at.date().isoformat(), r.deal_id)
            for r in await conn.execute(
                text(
                    "SELECT a.activity_id, a.occurred_at, t.deal_id FROM activities a "
                    "JOIN attributions t USING (tenant_id, activity_id) WHERE a.tenant_id = :t "
                    "ORDER BY a.occurred_at"
                ),
                {"t": TENANT},
            )
        ]
    assert stored == [
        *((activity_id_for(TENANT, "calendar", f"calendar-{day}"), day, "deal-1") for day in days),
        (activity_id_for(TENANT, "crm-log", f"crm-log-{missed}"), missed, "deal-1"),
    ]


async def test_a_meeting_room_or_a_shared_calendar_among_the_attendees_is_not_a_person(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A calendar export lists the booked room (``...@resource.calendar.google.com``) and shared
    calendars (``...@group.calendar.google.com``) as attendees. They are not people: an internal
    meeting in a room stays internal, and a customer meeting's external people are the customers."""
    auth = await _ingest_auth(db_engine)
    bo = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    dana = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["dana@buyer.example"]}
    room = "c_1889a6b2d3@resource.calendar.google.com"

    def meeting(external_id: str, direction: str, *attendees: str) -> dict[str, Any]:
        return {
            "source": "calendar",
            "external_id": external_id,
            "kind": "meeting",
            "direction": direction,
            "outcome": "held",
            "occurred_at": "2026-11-02T15:00:00Z",
            "duration_seconds": 1800,
            "participants": [
                {"email": "ana@seller.example", "role": "organizer"},
                *({"email": a, "role": "attendee"} for a in attendees),
            ],
        }

    meetings = [
        meeting("standup", "internal", "bo@seller.example", room),
        meeting("team-calendar", "internal", "bo@seller.example", "abc123def@group.calendar.google.com"),
        meeting("customer", "outbound", "dana@buyer.example", room),
    ]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, bo, account, dana, DEAL)
        posted = await stack.ingest.post("/v1/events", json={"activities": meetings}, headers=auth)
        assert posted.status_code == 202, posted.text
        rows = {
            name: await _attribution(db_engine, activity_id_for(TENANT, "calendar", name))
            for name in ("standup", "team-calendar", "customer")
        }
    async with db_engine.connect() as conn:
        attendees = {
            r.external_id: [p["email"] for p in r.payload["participants"]]
            for r in await conn.execute(
                text(
                    "SELECT payload ->> 'external_id' AS external_id, payload FROM activities WHERE tenant_id = :t"
                ),
                {"t": TENANT},
            )
        }
    found = {
        name: (r.status, r.deal_id, r.rep_id, r.explanation["rule_path"], r.confidence)
        for name, r in rows.items()
    }
    assert found == {
        "standup": ("internal", None, "rep-1", "internal", 1.0),
        "team-calendar": ("internal", None, "rep-1", "internal", 1.0),
        "customer": ("attributed", "deal-1", "rep-1", "contact_role", 0.95),
    }
    assert attendees == {
        "standup": ["ana@seller.example", "bo@seller.example"],
        "team-calendar": ["ana@seller.example", "bo@seller.example"],
        "customer": ["ana@seller.example", "dana@buyer.example"],
    }


async def test_a_contacts_own_account_beats_another_account_on_the_same_domain(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A parent and its subsidiary (or a duplicate account) share a domain. The CRM files Dana
    under the subsidiary: her mail is the subsidiary's; mail from an address the CRM does not
    know at that domain could be either's."""
    auth = await _ingest_auth(db_engine)
    parent = {"entity_type": "account", "id": "acc-p", "domains": ["acme.example"]}
    emea = {"entity_type": "account", "id": "acc-e", "domains": ["acme.example"]}
    dana = {"entity_type": "contact", "id": "con-1", "account_id": "acc-e", "emails": ["dana@acme.example"]}
    deal_p = {**DEAL, "id": "deal-p", "account_id": "acc-p", "contacts": []}
    deal_e = {**DEAL, "id": "deal-e", "account_id": "acc-e", "contacts": []}
    mails = [_to("m-dana", "dana@acme.example"), _to("m-zed", "zed@acme.example")]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, parent, emea, dana, deal_p, deal_e)
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-dana", "m-zed"))
    found = {
        name: (r.status, r.deal_id, list(r.secondary_deal_ids), r.account_id, r.explanation["rule_path"])
        for name, r in rows.items()
    }
    assert found == {
        "m-dana": ("attributed", "deal-e", [], "acc-e", "owner_participates"),
        "m-zed": ("ambiguous", "deal-e", ["deal-p"], "acc-e", "tie_break"),
    }


async def test_a_rep_blind_copied_on_a_buyers_mail_took_part_in_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """A mail export lists blind copies (``bcc``): Dana writes to the sales inbox with Ana in
    Bcc. Ana is credited and takes part, so her deal of the account is the one."""
    auth = await _ingest_auth(db_engine)
    bo = {"entity_type": "rep", "id": "rep-2", "emails": ["bo@seller.example"]}
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    dana = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["dana@buyer.example"]}
    ana_deal = {**DEAL, "id": "deal-ana", "contacts": []}
    bo_deal = {**DEAL, "id": "deal-bo", "owner_rep_id": "rep-2", "contacts": []}
    mail = {
        **email_from_ana("m-bcc"),
        "direction": "inbound",
        "outcome": "received",
        "participants": [
            {"email": "dana@buyer.example", "role": "from"},
            {"email": "sales@seller.example", "role": "to"},
            {"email": "ana@seller.example", "role": "bcc"},
        ],
    }
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, bo, account, dana, ana_deal, bo_deal)
        posted = await stack.ingest.post("/v1/events", json={"activities": [mail]}, headers=auth)
        assert posted.status_code == 202, posted.text
        row = await _attribution(db_engine, activity_id_for(TENANT, "mail", "m-bcc"))
    assert (
        row.status,
        row.deal_id,
        row.rep_id,
        row.explanation["rep"]["via"],
        row.explanation["rule_path"],
    ) == (
        "attributed",
        "deal-ana",
        "rep-1",
        "bcc",
        "owner_participates",
    )


async def test_an_activity_the_crm_files_under_an_account_is_not_another_accounts_by_domain(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Mail logged in the CRM against an account (``crm.account_id``): addresses the CRM does not
    know at a domain another account shares, or at a partner's, do not make that account's deals
    a tie with the one the CRM named."""
    auth = await _ingest_auth(db_engine)
    parent = {"entity_type": "account", "id": "acc-p", "domains": ["acme.example"]}
    emea = {"entity_type": "account", "id": "acc-e", "domains": ["acme.example"]}
    partner = {"entity_type": "account", "id": "acc-r", "domains": ["reseller.example"]}
    deals = [
        {**DEAL, "id": f"deal-{account[-1]}", "account_id": account, "contacts": []}
        for account in ("acc-p", "acc-e", "acc-r")
    ]

    def logged(external_id: str, *addresses: str) -> dict[str, Any]:
        return {
            **email_from_ana(external_id),
            "source": "crm-log",
            "crm": {"account_id": "acc-e"},
            "participants": [
                {"email": "ana@seller.example", "role": "from"},
                *({"email": a, "role": "to"} for a in addresses),
            ],
        }

    mails = [
        logged("m-shared", "zed@acme.example"),
        logged("m-partner", "zed@acme.example", "joe@reseller.example"),
    ]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, parent, emea, partner, *deals)
        posted = await stack.ingest.post("/v1/events", json={"activities": mails}, headers=auth)
        assert posted.status_code == 202, posted.text
        rows = {
            name: await _attribution(db_engine, activity_id_for(TENANT, "crm-log", name))
            for name in ("m-shared", "m-partner")
        }
    found = {
        name: (r.status, r.deal_id, list(r.secondary_deal_ids), r.account_id) for name, r in rows.items()
    }
    assert found == {
        "m-shared": ("attributed", "deal-e", [], "acc-e"),
        "m-partner": ("attributed", "deal-e", [], "acc-e"),
    }


async def test_an_internationalised_domain_is_one_domain_written_in_unicode_or_as_mail_carries_it(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """The CRM shows ``bücher.example`` as people type it; mail carries it in IDNA
    (``xn--bcher-kva.example``). Both are Jo's address and the account's domain."""
    auth = await _ingest_auth(db_engine)
    account = {"entity_type": "account", "id": "acc-1", "domains": ["https://www.BÜCHER.example/"]}
    jo = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["Jo <jo@xn--bcher-kva.example>"],
    }
    deal_a = {**DEAL, "id": "deal-a", "contacts": []}
    deal_b = {**DEAL, "id": "deal-b", "contacts": [{"contact_id": "con-1", "role": "champion"}]}
    mails = [
        _to("m-unicode", "jo@bücher.example"),
        _to("m-idna", "Jo@XN--BCHER-KVA.example"),
        _to("m-colleague", "kim@xn--bcher-kva.example"),
    ]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, account, jo, deal_a, deal_b)
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-unicode", "m-idna", "m-colleague"))
    found = {
        name: (r.status, r.deal_id, r.account_id, r.explanation["rule_path"]) for name, r in rows.items()
    }
    assert found == {
        "m-unicode": ("attributed", "deal-b", "acc-1", "contact_role"),
        "m-idna": ("attributed", "deal-b", "acc-1", "contact_role"),
        # Found by the domain: the two deals are a tie.
        "m-colleague": ("ambiguous", "deal-a", "acc-1", "tie_break"),
    }


async def test_an_empty_thread_id_is_no_thread(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """An export writes an empty column as ``""``: mail without a thread is not one thread with
    every other such mail (a stranger's mail continued Dana's deal); nor is a blank iCalUID one
    meeting with every other."""
    auth = await _ingest_auth(db_engine)
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example"]}
    dana = {"entity_type": "contact", "id": "con-1", "account_id": "acc-1", "emails": ["dana@buyer.example"]}
    mails = [
        {**_to("m-dana", "dana@buyer.example"), "thread_id": ""},
        {**_to("m-stranger", "zed@elsewhere.example", "2026-11-02T17:00:00Z"), "thread_id": ""},
    ]

    def meeting(source: str, attendee: str) -> dict[str, Any]:
        return {
            "source": source,
            "external_id": f"{source}-1",
            "kind": "meeting",
            "direction": "outbound",
            "outcome": "held",
            "occurred_at": "2026-11-02T18:00:00Z",
            "ical_uid": " ",
            "participants": [
                {"email": "ana@seller.example", "role": "organizer"},
                {"email": attendee, "role": "attendee"},
            ],
        }

    meetings = [meeting("calendar", "dana@buyer.example"), meeting("crm-log", "zed@elsewhere.example")]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        await _sync_crm(stack, db_engine, auth, REP, account, dana, DEAL)
        for batch in (mails, meetings):
            posted = await stack.ingest.post("/v1/events", json={"activities": batch}, headers=auth)
            assert posted.status_code == 202, posted.text
            assert posted.json()["duplicates"] == 0
        rows = {
            name: await _attribution(db_engine, activity_id_for(TENANT, source, name))
            for source, name in (("mail", "m-dana"), ("mail", "m-stranger"), ("crm-log", "crm-log-1"))
        }
    found = {name: (r.status, r.deal_id, r.explanation["rule_path"]) for name, r in rows.items()}
    assert found == {
        "m-dana": ("attributed", "deal-1", "contact_role"),
        "m-stranger": ("unmatched", None, "none"),
        "crm-log-1": ("unmatched", None, "none"),
    }


async def test_a_name_written_last_first_and_an_accounts_domains_in_one_cell_are_read(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Outlook writes ``Diaz, Dana <dana@...>``; a spreadsheet lists an account's domains in one
    cell, ``buyer.example, buyer.co.uk``. Before, both were dropped with a warning (the account
    kept no domain, the contact no email) and the activity kept the decorated text as its email."""
    auth = await _ingest_auth(db_engine)
    account = {"entity_type": "account", "id": "acc-1", "domains": ["buyer.example, buyer.co.uk"]}
    dana = {
        "entity_type": "contact",
        "id": "con-1",
        "account_id": "acc-1",
        "emails": ["Diaz, Dana <Dana@Buyer.example>"],
    }
    deal_a = {**DEAL, "id": "deal-a", "contacts": []}
    deal_b = {**DEAL, "id": "deal-b", "contacts": [{"contact_id": "con-1", "role": "champion"}]}
    mails = [_to("m-dana", "Diaz, Dana <dana@buyer.example>"), _to("m-uk", "kim@buyer.co.uk")]
    async with in_process_stack(kafka_settings, database_settings, ("ingest", "attribution")) as stack:
        sent = _crm(REP, account, dana, deal_a, deal_b)
        crm = await stack.ingest.post("/v1/crm/sync", json=sent, headers=auth)
        assert crm.status_code == 202, crm.text
        assert crm.json() == {"accepted": 5, "warnings": []}
        await references_landed(db_engine, TENANT, sent["entities"])
        rows = await _post_mail(stack, db_engine, auth, mails, ("m-dana", "m-uk"))
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
    assert stored == [(["dana@buyer.example"], ["buyer.co.uk", "buyer.example"])]
    found = {
        name: (r.status, r.deal_id, r.account_id, r.explanation["rule_path"]) for name, r in rows.items()
    }
    assert found == {
        "m-dana": ("attributed", "deal-b", "acc-1", "contact_role"),
        "m-uk": ("ambiguous", "deal-a", "acc-1", "tie_break"),
    }
