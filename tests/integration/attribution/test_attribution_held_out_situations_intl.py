"""Held-out situations of a European sales org wiring the product for the first time, as its RevOps
admin does: the CRM through ``POST /v1/crm/sync``, calls through ``POST /v1/events`` and
Aircall's webhook, mail through ``POST /v1/events``, read back through the gateway (activities,
rep scores by day and week). The real broker, attribution, metrics and PostgreSQL.

Tenants configured only by their time zone (so their phone region is its country) unless said
otherwise: ``acme`` in Europe/London (GB; Aircall is wired there), ``berlin-gmbh`` in
Europe/Berlin (DE), ``paris-sa`` in Europe/Paris (FR) and ``sp-ltda`` in America/Sao_Paulo (BR)
share the first test's stack; the second has ``uk-on-us``, a UK company whose tenant was left in
UTC (so US) and whose admin sets ``default_phone_region`` to GB after the first sync, beside a
US tenant, ``other-us``.

The situations and their answers were written from the docs (README, docs/api.md,
docs/attribution.md, docs/webhooks.md) before the implementation was read; each is labelled by
category (A GB phones, B DE phones, C FR phones, D BR phones, E dialer formats, F region
changed after the sync, G time zones, H names and domains). Before the fixes that came with
this file (rules 2026.12.33), 48 of 55 were right: A 10 of 12, B 7 of 8, E 7 of 8, F 3 of 5,
H 5 of 6, C, D and G all (the table in docs/attribution.md, "Held-out situations: a European
sales org"); now all. Added with the review of that change (59 situations): B9 and B10, a
``Durchwahl`` after the switchboard's ``-0`` (stored as ``+4989123456015``, so the call from the
real line was unmatched), and F4, two UK numbers in one field on the US region (refused as "not a
phone number", so not kept unread nor read after the change to GB); all three wrong before
those fixes. Run with ``-s`` to see the count by category.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from tests.integration.attribution.test_attribution_held_out_situations_calls import _call, _sync
from tests.integration.attribution.test_attribution_held_out_situations_vendors import _aircall, _deliver
from tests.integration.polling import settings_job_done
from tests.integration.quarter.quarter_support import (
    Tenant,
    counted,
    dial,
    get,
    membership,
    new_tenant,
    post,
    settle,
    webhook_tenant,
)

NOV = "2026-11-05T10:00:00Z"
ANA_UK = "+442030000001"  # typed "020 3000 0001" in the London CRM
JUERGEN = "+493090000001"  # typed "030 9000 0001" in the Berlin CRM
CAMILLE = "+33140000001"  # typed "01 40 00 00 01" in the Paris CRM
JOAO = "+551130000001"  # typed "(11) 3000-0001" in the Sao Paulo CRM
UMA = "+442030000002"  # typed "+44 20 3000 0002" in the UTC tenant's CRM

Found = dict[str, tuple[Any, ...]]


def _rep(rep_id: str, name: str, email: str, phone: str) -> dict[str, Any]:
    return {"entity_type": "rep", "id": rep_id, "name": name, "emails": [email], "phones": [phone]}


def _team_of(rep_id: str, team_id: str, start: str = "2026-01-01", end: str | None = None) -> list[Any]:
    return [
        {"entity_type": "team", "id": team_id, "name": team_id},
        membership(f"m-{rep_id}-{team_id}", rep_id, team_id, start, end),
    ]


def _buyers(owner: str, typed: dict[str, str | tuple[str, str]]) -> list[dict[str, Any]]:
    """For each key of ``typed`` an account, a contact listing the phone as typed (with the
    contact's ``country`` when a pair) and the contact's deal, owned by ``owner``."""
    entities: list[dict[str, Any]] = []
    for key, value in typed.items():
        phone, country = value if isinstance(value, tuple) else (value, None)
        contact: dict[str, Any] = {
            "entity_type": "contact",
            "id": f"con-{key}",
            "account_id": f"acc-{key}",
            "phones": [phone],
        }
        if country:
            contact["country"] = country
        entities += [
            {"entity_type": "account", "id": f"acc-{key}", "name": key},
            contact,
            {
                "entity_type": "deal",
                "id": f"deal-{key}",
                "account_id": f"acc-{key}",
                "owner_rep_id": owner,
                "created_at": "2026-10-01T00:00:00Z",
                "contacts": [{"contact_id": f"con-{key}", "role": "champion"}],
            },
        ]
    return entities


def _on(key: str, rep: str, team: str | None) -> tuple[Any, ...]:
    """Attributed to ``key``'s deal and account, credited to ``rep`` on ``team``."""
    return ("attributed", f"deal-{key}", f"acc-{key}", rep, team)


async def _tenant(engine: AsyncEngine, tenant_id: str, zone: str) -> Tenant:
    return await new_tenant(engine, tenant_id, time_zone=zone)


async def _found(stack: Any, tenant: Tenant, named: dict[tuple[str, str], str]) -> Found:
    """Situation -> (status, deal, account, rep, team) of each activity ``named`` by its
    (source, external id), as ``GET /v1/activities`` reads it."""
    ids = {str(activity_id_for(tenant.tenant_id, s, e)): key for (s, e), key in named.items()}
    listed = await get(stack, tenant, "/v1/activities?limit=200")
    return {
        ids[a["activity_id"]]: (a["status"], a["deal_id"], a["account_id"], a["rep_id"], a["team_id"])
        for a in listed["items"]
        if a["activity_id"] in ids
    }


def _tally(truth: Found, found: Found) -> dict[str, tuple[int, int]]:
    """Category (the key's first letter) -> (right, situations)."""
    for k in sorted(truth):
        if found.get(k) != truth[k]:
            print(f"  wrong {k}: {found.get(k)} (truth {truth[k]})")
    right = Counter(k[0] for k in truth if found.get(k) == truth[k])
    total = Counter(k[0] for k in truth)
    return {c: (right[c], total[c]) for c in sorted(total)}


def _dialer(key: str, rep_line: str, callee: str, at: str = NOV) -> dict[str, Any]:
    return _call(key, {"phone": rep_line}, {"phone": callee}, at=at)


def _mail(key: str, sender: str, recipient: str, at: str = NOV) -> dict[str, Any]:
    return {
        "source": "mail",
        "external_id": key,
        "kind": "email",
        "direction": "outbound",
        "outcome": "sent",
        "occurred_at": at,
        "subject": "Angebot",
        "participants": [{"email": sender, "role": "from"}, {"email": recipient, "role": "to"}],
    }


# --- London (acme, GB) --------------------------------------------------------------------------

GB_TYPED: dict[str, str | tuple[str, str]] = {
    "a1-intl-trunk": "+44 (0)20 7946 0951",
    "a2-national": "020 7946 0952",
    "a3-mobile-note": "07700 900123 (mobile)",
    "a4-two-numbers": "020 7946 0954 / 07700 900124",
    "a5-ext-dot": "020 7946 0955 ext. 12",
    "a6-x": "020 7946 0956 x12",
    "a7-rfc-ext": "020 7946 0957;ext=12",
    "a8-france": "+33 1 23 45 67 89",
    "a9-india": "+91 98765 43210",
    "a10-us-contact": ("(415) 555-0199", "United States"),
    "a11-double-zero": "0044 20 7946 0958",
}
GB_CALLS = [
    _dialer("a1-intl-trunk", ANA_UK, "+442079460951"),
    _dialer("a2-national", ANA_UK, "+442079460952"),
    _dialer("a3-mobile-note", ANA_UK, "+447700900123"),
    _dialer("a4-two-numbers-first", ANA_UK, "+442079460954"),
    _dialer("a4-two-numbers-second", ANA_UK, "+447700900124"),
    _dialer("a5-ext-dot", ANA_UK, "+442079460955"),
    _dialer("a6-x-dialled", ANA_UK, "+442079460956;ext=12"),
    _dialer("a7-rfc-ext", ANA_UK, "+442079460957"),
    _dialer("a8-france", ANA_UK, "+33123456789"),
    _dialer("a9-india", ANA_UK, "+919876543210"),
    _dialer("a10-us-contact", ANA_UK, "+14155550199"),
    _dialer("a11-double-zero", ANA_UK, "+442079460958"),
    # The dialer sends national formats (its own setting), not E.164.
    _dialer("e3-national-landline", "020 3000 0001", "020 7946 0952"),
    _dialer("e4-national-mobile", ANA_UK, "07700 900124"),
    # Sunday 25 October 00:30 BST (the night the clocks go back) is Saturday in UTC.
    dial("g5-london-dst-night", ANA_UK, "2026-10-24T23:30:00Z"),
    # Sunday 8 November 23:30 GMT: the week of 2 November.
    dial("g6-london-sunday-late", ANA_UK, "2026-11-08T23:30:00Z"),
]
AIRCALL_USER = {"id": 901, "name": "Ana Smith", "email": "ana@seller.co.uk"}
AIRCALL_LINE = {"id": 1, "name": "London", "digits": "+44 20 3000 0001"}
GB_AIRCALL = {
    # Ana dials A1's contact from Aircall (international format, spaces): answered, 248 s.
    "e1-aircall-connected": _aircall(
        990001, "2026-11-06T10:00:00", "outbound", "+44 20 7946 0951", user=AIRCALL_USER, number=AIRCALL_LINE
    ),
    # Ana dials A3's mobile; nobody answers: a dial on A3's deal, not a connect.
    "e2-aircall-unanswered": _aircall(
        990002,
        "2026-11-06T11:00:00",
        "outbound",
        "+44 7700 900123",
        user=AIRCALL_USER,
        number=AIRCALL_LINE,
        answered_at=None,
        duration=0,
    ),
}


def _gb_truth() -> Found:
    ana = ("rep-ana", "team-uk")
    truth = {key: _on(key, *ana) for key in GB_TYPED}
    truth.pop("a4-two-numbers")
    truth.pop("a6-x")
    truth |= {
        "a4-two-numbers-first": _on("a4-two-numbers", *ana),
        "a4-two-numbers-second": _on("a4-two-numbers", *ana),
        "a6-x-dialled": _on("a6-x", *ana),
        "e1-aircall-connected": _on("a1-intl-trunk", *ana),
        "e2-aircall-unanswered": _on("a3-mobile-note", *ana),
        "e3-national-landline": _on("a2-national", *ana),
        "e4-national-mobile": _on("a4-two-numbers", *ana),
        "g5-london-dst-night": ("unmatched", None, None, *ana),
        "g6-london-sunday-late": ("unmatched", None, None, *ana),
    }
    return truth


# --- Berlin (berlin-gmbh, DE) -------------------------------------------------------------------

DE_TYPED: dict[str, str | tuple[str, str]] = {
    "b1-intl-trunk": "0049 (0)30 1234567",
    "b2-din-slash": "030/2345678",
    "b3-dash-direct": "+49 30 34567-89",
    "b4-paren-trunk": "(0)6151 123456",
    "b5-durchwahl": "+49 89 123456 Durchwahl -12",
    "b6-mobil-note": "0171 2345678 (mobil)",
    "b7-uk-contact": ("020 7946 0960", "GB"),
    # The same buyer as London's A2 (same number), a customer of the Berlin company too.
    "b8-same-buyer": "+44 20 7946 0952",
    # A Durchwahl after the switchboard's "-0" (DIN 5008): the direct dial replaces the 0.
    "b9-durchwahl-after-switchboard": "+49 89 123456-0 Durchwahl -15",
    "b10-zentrale-durchwahl": "Zentrale 089 234567-0, Durchwahl: 16",
}
DE_CALLS = [
    _dialer("b1-intl-trunk", JUERGEN, "+49301234567"),
    _dialer("b2-din-slash", JUERGEN, "+49302345678"),
    _dialer("b3-dash-direct", JUERGEN, "+49303456789"),
    _dialer("b4-paren-trunk", JUERGEN, "+496151123456"),
    _dialer("b5-durchwahl", JUERGEN, "+498912345612"),
    _dialer("b6-mobil-note", JUERGEN, "+491712345678"),
    _dialer("b7-uk-contact", JUERGEN, "+442079460960"),
    _dialer("b8-same-buyer", JUERGEN, "+442079460952"),
    _dialer("b9-durchwahl-after-switchboard", JUERGEN, "+498912345615"),
    _dialer("b10-zentrale-durchwahl", JUERGEN, "+498923456716"),
    _dialer("e5-de-national", "030 9000 0001", "030 1234567"),
    _dialer("e6-de-national-mobile", JUERGEN, "0171 2345678"),
    # Sunday 25 October 00:30 CEST (clocks go back at 03:00): Saturday 22:30 in UTC.
    dial("g1-berlin-dst-night", JUERGEN, "2026-10-24T22:30:00Z"),
    # Sunday 25 October 23:30 CET (after the change; a fixed +02:00 would make it Monday).
    dial("g2-berlin-dst-sunday-late", JUERGEN, "2026-10-25T22:30:00Z"),
    # Sunday 8 November 23:30 CET: week of 2 November, team Nord (Jürgen moves on the 9th).
    dial("g3-berlin-sunday-late", JUERGEN, "2026-11-08T22:30:00Z"),
    # Monday 9 November 00:30 CET (Sunday 23:30 in UTC): week of 9 November, team Süd.
    dial("g4-berlin-monday-early", JUERGEN, "2026-11-08T23:30:00Z"),
]
DE_NAMES = [
    # Jürgen's own address in another case.
    _mail("h1-case", "Juergen.Mueller@Seller-GmbH.example", "anna@bücher.example"),
    # The mail system's other spelling of Jürgen Müller (umlauts dropped), listed nowhere.
    _mail("h2-umlauts-dropped", "jurgen.muller@seller-gmbh.example", "hans@müller.example"),
    # Klaus Weiß's mailbox spelled with ss, listed nowhere (his CRM address is k.weiss@).
    _mail("h3-eszett", "klaus.weiss@seller-gmbh.example", "anna@bücher.example"),
    # The buyer's IDN domain as mail carries it (punycode); the CRM holds bücher.example.
    _mail("h4-punycode-to-unicode", "juergen.mueller@seller-gmbh.example", "anna@xn--bcher-kva.example"),
    # The CRM holds punycode; the mail is written in Unicode, upper case.
    _mail("h5-unicode-to-punycode", "juergen.mueller@seller-gmbh.example", "hans@MÜLLER.example"),
    # The domain decomposed (NFD: u + combining diaeresis), as some clients write it.
    _mail("h6-nfd", "juergen.mueller@seller-gmbh.example", "anna@bu\u0308cher.example"),
]
DE_CRM: list[dict[str, Any]] = [
    _rep("rep-juergen", "Jürgen Müller", "juergen.mueller@seller-gmbh.example", "030 9000 0001"),
    _rep("rep-klaus", "Klaus Weiß", "k.weiss@seller-gmbh.example", "030 9000 0002"),
    *_team_of("rep-juergen", "team-nord", end="2026-11-09"),
    *_team_of("rep-juergen", "team-sued", start="2026-11-09"),
    membership("m-klaus", "rep-klaus", "team-sued", "2026-01-01"),
    {"entity_type": "account", "id": "acc-buecher", "name": "Bücher GmbH", "domains": ["bücher.example"]},
    {
        "entity_type": "account",
        "id": "acc-mueller",
        "name": "Müller AG",
        "domains": ["xn--mller-kva.example"],
    },
    {
        "entity_type": "deal",
        "id": "deal-buecher",
        "account_id": "acc-buecher",
        "owner_rep_id": "rep-juergen",
        "created_at": "2026-10-01T00:00:00Z",
    },
    {
        "entity_type": "deal",
        "id": "deal-mueller",
        "account_id": "acc-mueller",
        "owner_rep_id": "rep-klaus",
        "created_at": "2026-10-01T00:00:00Z",
    },
    *_buyers("rep-juergen", DE_TYPED),
]


def _de_truth() -> Found:
    nord = ("rep-juergen", "team-nord")
    truth = {key: _on(key, *nord) for key in DE_TYPED}
    truth |= {
        "e5-de-national": _on("b1-intl-trunk", *nord),
        "e6-de-national-mobile": _on("b6-mobil-note", *nord),
        "g1-berlin-dst-night": ("unmatched", None, None, *nord),
        "g2-berlin-dst-sunday-late": ("unmatched", None, None, *nord),
        "g3-berlin-sunday-late": ("unmatched", None, None, *nord),
        "g4-berlin-monday-early": ("unmatched", None, None, "rep-juergen", "team-sued"),
        "h1-case": ("attributed", "deal-buecher", "acc-buecher", *nord),
        "h2-umlauts-dropped": ("attributed", "deal-mueller", "acc-mueller", *nord),
        "h3-eszett": ("attributed", "deal-buecher", "acc-buecher", "rep-klaus", "team-sued"),
        "h4-punycode-to-unicode": ("attributed", "deal-buecher", "acc-buecher", *nord),
        "h5-unicode-to-punycode": ("attributed", "deal-mueller", "acc-mueller", *nord),
        "h6-nfd": ("attributed", "deal-buecher", "acc-buecher", *nord),
    }
    return truth


# --- Paris (paris-sa, FR) and Sao Paulo (sp-ltda, BR) -------------------------------------------

FR_TYPED: dict[str, str | tuple[str, str]] = {
    "c1-mobile-spaces": "06 12 34 56 78",
    "c2-dots": "01.23.45.67.88",
    "c3-intl-trunk": "+33 (0)6 12 34 56 79",
}
FR_CALLS = [
    _dialer("c1-mobile-spaces", CAMILLE, "+33612345678"),
    _dialer("c2-dots", CAMILLE, "+33123456788"),
    _dialer("c3-intl-trunk", CAMILLE, "+33612345679"),
    _dialer("e7-fr-national", "01 40 00 00 01", "06 12 34 56 78"),
]
BR_TYPED: dict[str, str | tuple[str, str]] = {
    "d1-area-parens": "(11) 2345-6789",
    "d2-0xx": "0xx11 2345-6790",
    "d3-carrier-code": "0 15 11 2345-6791",
    "d4-mobile-nine": "(11) 98765-4321",
    "d5-intl-rio": "+55 (21) 98765-4322",
    "d6-0xx-rio": "0xx21 3456-7890",
}
BR_CALLS = [
    _dialer("d1-area-parens", JOAO, "+551123456789"),
    _dialer("d2-0xx", JOAO, "+551123456790"),
    _dialer("d3-carrier-code", JOAO, "+551123456791"),
    _dialer("d4-mobile-nine", JOAO, "+5511987654321"),
    _dialer("d5-intl-rio", JOAO, "+5521987654322"),
    _dialer("d6-0xx-rio", JOAO, "+552134567890"),
    _dialer("e8-br-national", "(11) 3000-0001", "(11) 2345-6789"),
    # Sunday 8 November 23:30 in Sao Paulo (UTC-3): Monday in UTC.
    dial("g7-sao-paulo-sunday-late", JOAO, "2026-11-09T02:30:00Z"),
]


async def test_a_european_sales_org_wires_its_crm_dialer_and_mail(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    london = await webhook_tenant(db_engine, {})
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET timezone = 'Europe/London' WHERE tenant_id = :t"),
            {"t": london.tenant_id},
        )
    berlin = await _tenant(db_engine, "berlin-gmbh", "Europe/Berlin")
    paris = await _tenant(db_engine, "paris-sa", "Europe/Paris")
    sao_paulo = await _tenant(db_engine, "sp-ltda", "America/Sao_Paulo")
    gb_crm = [
        _rep("rep-ana", "Ana Smith", "ana@seller.co.uk", "020 3000 0001"),
        *_team_of("rep-ana", "team-uk"),
        *_buyers("rep-ana", GB_TYPED),
    ]
    fr_crm = [
        _rep("rep-camille", "Camille Lefèvre", "camille.lefevre@vendeur.example", "01 40 00 00 01"),
        *_team_of("rep-camille", "team-fr"),
        *_buyers("rep-camille", FR_TYPED),
    ]
    br_crm = [
        _rep("rep-joao", "João Conceição", "joao.conceicao@vendas.example", "(11) 3000-0001"),
        *_team_of("rep-joao", "team-br"),
        *_buyers("rep-joao", BR_TYPED),
    ]
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = {
            t.tenant_id: await _sync(stack, db_engine, t, *crm)
            for t, crm in ((london, gb_crm), (berlin, DE_CRM), (paris, fr_crm), (sao_paulo, br_crm))
        }
        await post(stack, london, *GB_CALLS)
        for body in GB_AIRCALL.values():
            await _deliver(stack, "aircall", body)
        await post(stack, berlin, *DE_CALLS, *DE_NAMES)
        await post(stack, paris, *FR_CALLS)
        await post(stack, sao_paulo, *BR_CALLS)
        await settle(kafka_settings)
        found: Found = {}
        for tenant, posted in (
            (london, GB_CALLS),
            (berlin, DE_CALLS + DE_NAMES),
            (paris, FR_CALLS),
            (sao_paulo, BR_CALLS),
        ):
            named = {(a["source"], a["external_id"]): a["external_id"] for a in posted}
            if tenant is london:
                named |= {("aircall", str(990001)): "e1-aircall-connected"}
                named |= {("aircall", str(990002)): "e2-aircall-unanswered"}
            found |= await _found(stack, tenant, named)
        ana = await get(
            stack, london, "/v1/reps/rep-ana/scores?granularity=month&from=2026-11-01&to=2026-11-30"
        )
        days = {
            "london": await counted(stack, london, "reps", "rep-ana", "day", "2026-10-24", "2026-10-26"),
            "berlin-dst": await counted(
                stack, berlin, "reps", "rep-juergen", "day", "2026-10-24", "2026-10-26"
            ),
            "berlin": await counted(stack, berlin, "reps", "rep-juergen", "day", "2026-11-08", "2026-11-09"),
            "sao-paulo": await counted(
                stack, sao_paulo, "reps", "rep-joao", "day", "2026-11-08", "2026-11-09"
            ),
        }
        weeks = {
            "london": await counted(stack, london, "reps", "rep-ana", "week", "2026-11-02", "2026-11-09"),
            "berlin": await counted(stack, berlin, "reps", "rep-juergen", "week", "2026-10-19", "2026-11-09"),
            "sao-paulo": await counted(
                stack, sao_paulo, "reps", "rep-joao", "week", "2026-11-02", "2026-11-09"
            ),
        }
    camille = ("rep-camille", "team-fr")
    joao = ("rep-joao", "team-br")
    truth = _gb_truth() | _de_truth()
    truth |= {key: _on(key, *camille) for key in FR_TYPED}
    truth |= {"e7-fr-national": _on("c1-mobile-spaces", *camille)}
    truth |= {key: _on(key, *joao) for key in BR_TYPED}
    truth |= {
        "e8-br-national": _on("d1-area-parens", *joao),
        "g7-sao-paulo-sunday-late": ("unmatched", None, None, *joao),
    }
    print("\nright/situations by category:", _tally(truth, found))
    # Ana's November: 15 outbound calls through /v1/events (14 answered, 60 s; the Sunday dial
    # unanswered) and two through Aircall (one answered, 248 s; one not).
    [november] = ana["periods"]
    counts = november["counts"]
    assert (counts["dials"], counts["connects"], counts["talk_seconds"]) == (17, 15, 14 * 60 + 248)
    assert days == {
        "london": {"2026-10-25": 1},
        "berlin-dst": {"2026-10-25": 2},
        "berlin": {"2026-11-08": 1, "2026-11-09": 1},
        "sao-paulo": {"2026-11-08": 1},
    }
    assert weeks == {
        # Every November activity of Ana's is in the week of 2 November.
        "london": {"2026-11-02": 17},
        # The two of 25 October; twelve calls, five mails (Klaus sent the sixth) and the Sunday
        # dial; Monday's dial.
        "berlin": {"2026-10-19": 2, "2026-11-02": 18, "2026-11-09": 1},
        # Seven calls and the Sunday-night dial.
        "sao-paulo": {"2026-11-02": 8},
    }
    assert {t: s["warnings"] for t, s in synced.items()} == {
        "acme": [],
        "berlin-gmbh": [],
        "paris-sa": [],
        "sp-ltda": [],
    }
    assert found == truth


# --- A UK company whose tenant was left in UTC (so phone region US) ----------------------------

US_REGION_TYPED: dict[str, str | tuple[str, str]] = {
    "f1-uk-national-no-country": "020 7946 0961",
    "f2-uk-national-country-gb": ("020 7946 0962", "GB"),
    "f3-us-number": "(415) 555-0142",
    # Two UK numbers in one field, neither readable in the US: kept unread, both read in GB.
    "f4-two-uk-numbers": "020 7946 0964 / 07700 900125",
}


async def test_a_uk_tenant_left_on_the_us_region_then_set_to_gb(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """F: the CRM synced while the tenant's region is US (time zone UTC, no
    ``default_phone_region``): the UK number without a country is unreadable there (a warning
    naming it; its calls unmatched, the rep's), the one with ``country: GB`` is read in GB, the US
    number in the US. The admin then sets ``default_phone_region`` to GB (``PATCH
    /v1/settings/organization``): the unread UK number is now read in GB, so the call already
    made to it is re-decided onto the buyer's deal and a new one is on it too; the US number read
    before stays what it was (nothing accepted is lost). Another tenant's phones are untouched."""
    tenant = await _tenant(db_engine, "uk-on-us", "UTC")
    other = await _tenant(db_engine, "other-us", "America/New_York")
    crm = [
        _rep("rep-uma", "Uma Patel", "uma@seller.example", "+44 20 3000 0002"),
        *_team_of("rep-uma", "team-us"),
        *_buyers("rep-uma", US_REGION_TYPED),
    ]
    other_crm = [
        _rep("rep-ola", "Ola Nordmann", "ola@other.example", "(212) 555-0101"),
        *_buyers("rep-ola", {"f9-other-tenant": "020 7946 0961"}),
    ]
    before_calls = [
        _dialer("f1-before", UMA, "+442079460961"),
        _dialer("f2-uk-national-country-gb", UMA, "+442079460962"),
        _dialer("f3-us-number", UMA, "+14155550142"),
        _dialer("f4-before", UMA, "+442079460964"),
    ]
    after_calls = [
        _dialer("f1-after", UMA, "+442079460961"),
        _dialer("f3-us-number-after", UMA, "+14155550142"),
        _dialer("f4-after-mobile", UMA, "+447700900125"),
    ]
    other_call = _dialer("f9-other-tenant", "+12125550101", "+442079460961")
    named = {("dialer", c["external_id"]): c["external_id"] for c in before_calls + after_calls}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        synced = await _sync(stack, db_engine, tenant, *crm)
        other_synced = await _sync(stack, db_engine, other, *other_crm)
        await post(stack, tenant, *before_calls)
        await post(stack, other, other_call)
        await settle(kafka_settings)
        before = await _found(stack, tenant, named)
        changed = await stack.gateway.patch(
            "/v1/settings/organization", json={"default_phone_region": "GB"}, headers=tenant.admin
        )
        # The change names one job: ingest reads the unread numbers again in GB.
        job = await settings_job_done(stack.gateway, tenant.admin, changed)
        assert (job["kind"], job["state"]) == ("reread_phones", "done"), job
        await settle(kafka_settings)
        await post(stack, tenant, *after_calls)
        await settle(kafka_settings)
        after = await _found(stack, tenant, named)
        contacts = await get(stack, tenant, "/v1/contacts")
        others = await _found(stack, other, {("dialer", "f9-other-tenant"): "f9-other-tenant"})
    uma = ("rep-uma", "team-us")
    f1_index = next(i for i, e in enumerate(crm) if e.get("id") == "con-f1-uk-national-no-country")
    f4_index = next(i for i, e in enumerate(crm) if e.get("id") == "con-f4-two-uk-numbers")
    # Each unreadable UK number named by its field, with why (the region it was read in).
    unreadable = (
        "not a valid number (missing area code, or no such number in region US; an international "
        "number needs its +); the phone was dropped, the contact accepted"
    )
    assert synced["warnings"] == [
        {"index": f1_index, "field": f"entities.{f1_index}.phones.0", "reason": unreadable},
        {"index": f4_index, "field": f"entities.{f4_index}.phones.0", "reason": unreadable},
    ]
    assert other_synced["warnings"] == [{"index": 2, "field": "entities.2.phones.0", "reason": unreadable}]
    truth_before = {
        "f1-before": ("unmatched", None, None, *uma),
        "f2-uk-national-country-gb": _on("f2-uk-national-country-gb", *uma),
        "f3-us-number": _on("f3-us-number", *uma),
        "f4-before": ("unmatched", None, None, *uma),
    }
    truth_after = {
        "f1-before": _on("f1-uk-national-no-country", *uma),
        "f1-after": _on("f1-uk-national-no-country", *uma),
        "f2-uk-national-country-gb": _on("f2-uk-national-country-gb", *uma),
        "f3-us-number": _on("f3-us-number", *uma),
        "f3-us-number-after": _on("f3-us-number", *uma),
        "f4-before": _on("f4-two-uk-numbers", *uma),
        "f4-after-mobile": _on("f4-two-uk-numbers", *uma),
    }
    print("\nF before the change:", _tally(truth_before, before), "after:", _tally(truth_after, after))
    assert before == truth_before
    assert after == truth_after
    assert {c["contact_id"]: c["phones"] for c in contacts["items"]} == {
        "con-f1-uk-national-no-country": ["+442079460961"],
        "con-f2-uk-national-country-gb": ["+442079460962"],
        "con-f3-us-number": ["+14155550142"],
        "con-f4-two-uk-numbers": ["+442079460964", "+447700900125"],
    }
    # The other tenant (US) keeps its own reading: the UK number is unreadable there.
    assert others == {"f9-other-tenant": ("unmatched", None, None, "rep-ola", None)}
