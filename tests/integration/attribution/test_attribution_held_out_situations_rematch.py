"""Held-out situations of a CRM that changes all the time, as a Salesforce/HubSpot admin and a
deal-desk analyst wire it: the CRM through ``POST /v1/crm/sync`` (its current state only), HubSpot's
and Salesforce's own deliveries on the webhook routes (docs/webhooks.md), mail through ``POST
/v1/events``, manager overrides through ``PUT /v1/activities/{id}/attribution``, read back through
the gateway (``GET /v1/activities/{id}`` and its history, the deal timeline, rep scores). The real
broker, attribution, metrics and PostgreSQL.

Issue #14, item 3: when a deal is created or reopened, a contact gains or loses a role on a deal, or
a deal changes account or dates, the activities of that account/contact in the deal's life plus
grace are re-decided, attributed ones included, through the versioned path (a new version only when
the decision changes; overrides stay sticky); the confidence reflects the margin; a deal not yet
created at the activity's time never wins on recency; the primary is the top-ranked; ambiguous
activities list ``secondary_deal_ids``.

The situations and their answers were written from README, docs/api.md, docs/attribution.md and
docs/webhooks.md before the implementation was read; each is labelled by category (``new-deal``,
``reopen``, ``dates``, ``account-move``, ``role``, ``idempotent``, ``order``, ``override``,
``tenant``, ``metrics``, ``confidence``, ``delete-restore``, ``merge``, ``bad-input``, ``huge``) next
to its expectation. Grace windows are the defaults (14 days either side); weeks are ISO weeks of
a UTC tenant (W45 is 2-8 November 2026).

First run: 60 of 65 right (one label of ours corrected: Ana, known to HubSpot and Salesforce, is
credited under the smallest id of the CRM feeds, the Salesforce User's). Wrong were a rep-only
override's deal, never re-decided (2), and a deal window past ``ATTRIBUTION_REMATCH_LIMIT`` left
three quarters undone (3). Three checks were added after it (two more triggers on the override,
the pipeline status during the queued re-match). Now all 68 (docs/attribution.md, "Held-out
situations: a CRM that keeps changing"). The last check polled until ``up_to_date`` and then
asserted it, which could not fail: it is three now (70), the ``rematch`` job held by the test while
the status answers ``up_to_date: false`` with one job pending, then the job done.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.activities import activity_id_for
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.testing.stack import in_process_stack
from services.attribution import app as attribution_app
from services.attribution.jobs import run_rematch_job
from tests.integration.attribution.attribution_support import rows
from tests.integration.attribution.test_attribution_held_out_situations_vendors import (
    ANA,
    INITECH,
    SETTINGS,
    SF_ANA,
    _company,
    _contact,
    _deliver,
    _hs_deal,
    _owner,
    _sobject,
)
from tests.integration.attribution.test_attribution_vendor_webhooks import _notification
from tests.integration.ingest.ingest_integration_support import dumps, outbound_message
from tests.integration.polling import poll_json, references_landed
from tests.integration.quarter.quarter_support import (
    Tenant,
    counted,
    email,
    get,
    new_tenant,
    post,
    received,
    settle,
    sync,
    webhook_tenant,
)

SELLER = "seller.example"
JOBS = "SELECT kind, state FROM settings_jobs WHERE tenant_id = :t ORDER BY created_at"


def _rep(key: str) -> dict[str, Any]:
    return {"entity_type": "rep", "id": f"rep-{key}", "name": key.title(), "emails": [f"{key}@{SELLER}"]}


def _account(key: str) -> dict[str, Any]:
    return {"entity_type": "account", "id": f"acc-{key}", "name": key.title(), "domains": [f"{key}.example"]}


def _person(key: str, account: str, **fields: Any) -> dict[str, Any]:
    return {
        "entity_type": "contact",
        "id": f"con-{key}",
        "account_id": f"acc-{account}",
        "emails": [f"{key}@{account}.example"],
        **fields,
    }


def _deal(
    key: str,
    account: str,
    owner: str,
    created: str,
    *contacts: str,
    closed: str | None = None,
    won: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    deal: dict[str, Any] = {
        "entity_type": "deal",
        "id": f"deal-{key}",
        "name": name or f"{account.title()} {key}",
        "account_id": f"acc-{account}",
        "owner_rep_id": f"rep-{owner}",
        "stage": "proposal",
        "created_at": created,
        "contacts": [{"contact_id": f"con-{c}", "role": "champion"} for c in contacts],
    }
    if closed:
        deal |= {"is_closed": True, "is_won": won, "closed_at": closed, "stage": "won" if won else "lost"}
    return deal


def _mail(external_id: str, rep: str, to: str, at: str) -> dict[str, Any]:
    """``rep``'s mail to ``to`` (``key@account.example``) at ``at`` (a day of 2026-MM-DD, 15:00 UTC)."""
    return email(external_id, f"{rep}@{SELLER}", to, f"{at}T15:00:00Z")


async def _seen(stack: Any, tenant: Tenant, external_id: str, source: str = "mail") -> dict[str, Any]:
    """What ``GET /v1/activities/{id}`` shows of one activity's attribution and its history."""
    body = await get(
        stack, tenant, f"/v1/activities/{activity_id_for(tenant.tenant_id, source, external_id)}"
    )
    a = body["attribution"]
    versions = sorted(body["history"], key=lambda v: v["version"])
    return {
        "status": a["status"],
        "deal": a["deal_id"],
        "secondaries": tuple(a["secondary_deal_ids"]),
        "account": a["account_id"],
        "rep": a["rep_id"],
        "version": a["version"],
        "history": [v["deal_id"] for v in versions],
        "override": a["is_override"],
        "confidence": a["confidence"],
        "deal_score": a.get("deal_score"),
        "runners_up": a["runners_up"],
    }


def _head(seen: dict[str, Any]) -> tuple[Any, ...]:
    """(status, deal, secondaries, account, rep, version, deals of every version)."""
    return tuple(seen[k] for k in ("status", "deal", "secondaries", "account", "rep", "version", "history"))


async def _timeline(stack: Any, tenant: Tenant, deal_id: str) -> int:
    """How many activities engage the deal (its timeline's summary)."""
    return int((await get(stack, tenant, f"/v1/deals/{deal_id}/activities"))["summary"]["activities"])


async def _week(stack: Any, tenant: Tenant, rep_id: str, monday: str) -> int:
    weeks = await counted(stack, tenant, "reps", rep_id, "week", monday, monday)
    return weeks.get(monday, 0)


def _top_ranked(seen: dict[str, Any]) -> bool:
    """The primary deal scores at least as much as every runner-up, and an ambiguous one names its
    close runners-up as secondaries."""
    scores = [r["score"] for r in seen["runners_up"]]
    top = seen["deal_score"] is None or all(seen["deal_score"] >= s for s in scores)
    return top and (seen["status"] != "ambiguous" or bool(seen["secondaries"]))


def _verdict(found: dict[str, Any], expected: dict[str, Any]) -> None:
    """Fails listing every situation found otherwise than expected, with the tally by category
    (the label's first word)."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for label, want in expected.items():
        category = label.split()[0]
        total[category] += 1
        right[category] += found.get(label) == want
    tally = ", ".join(f"{c} {right[c]}/{total[c]}" for c in sorted(total))
    wrong = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
    assert not wrong, (
        tally + "\n" + "\n".join(f"{k}: found {f!r}, expected {e!r}" for k, (f, e) in wrong.items())
    )


def _att(deal: str, account: str, rep: str, version: int, history: list[str | None]) -> tuple[Any, ...]:
    return ("attributed", f"deal-{deal}", (), f"acc-{account}", f"rep-{rep}", version, history)


def _acc_only(account: str, rep: str, version: int, history: list[str | None]) -> tuple[Any, ...]:
    return ("account_only", None, (), f"acc-{account}", f"rep-{rep}", version, history)


# --- 1. New deals, a reopened deal, dates and an account corrected, a role removed -------------

GLOBEX_PLAT = _deal("plat", "globex", "ana", "2026-09-01", "gus")
EXPANSION = _deal("exp", "globex", "bo", "2026-11-12", "cara", name="Globex Expansion")


async def test_deal_changes_re_decide_the_activities_of_their_window(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Ana and Bo sell. Globex: Gus is champion of Ana's Platform deal (open since 1 September);
    Cara writes about an expansion Bo opens on 12 November with her as champion, a week after her
    mail. Initech: Ivan's 2025 deal closed in December 2025; a renewal opens on 15 November 2026.
    Hooli: Hana's deal was lost on 15 September and is reopened. Umbrella: Uma's deal won "on 20
    November" was in fact won on 1 October (the CRM corrects it). Soylent: Sol's deal "created 1
    October" was created on 1 November. Old Co's deal (no contact roles) moves to New Co, which
    acquired Old Co. Then the same Expansion is sent twice, an older version of it arrives late,
    and Cara's role on it is removed."""
    tenant = await new_tenant(db_engine)
    crm = [
        _rep("ana"),
        _rep("bo"),
        *(_account(k) for k in ("globex", "initech", "hooli", "umbrella", "soylent", "oldco", "newco")),
        _person("gus", "globex"),
        _person("cara", "globex"),
        _person("ivan", "initech"),
        _person("hana", "hooli"),
        _person("uma", "umbrella"),
        _person("sol", "soylent"),
        GLOBEX_PLAT,
        _deal("ini25", "initech", "ana", "2025-06-01", "ivan", closed="2025-12-01", won=True),
        _deal("hooli", "hooli", "ana", "2026-06-01", "hana", closed="2026-09-15"),
        _deal("umb", "umbrella", "ana", "2026-09-01", "uma", closed="2026-11-20", won=True),
        _deal("soy", "soylent", "ana", "2026-10-01", "sol"),
        _deal("oc", "oldco", "ana", "2026-09-01"),
    ]
    mails = [
        _mail("cara-oct10", "ana", "cara@globex.example", "2026-10-10"),
        _mail("cara-nov3", "ana", "cara@globex.example", "2026-11-03"),
        received("cara-nov5-in", "cara@globex.example", f"sales@{SELLER}", "2026-11-05T16:00:00Z"),
        _mail("gus-nov4", "ana", "gus@globex.example", "2026-11-04"),
        _mail("ivan-2025", "ana", "ivan@initech.example", "2025-11-10"),
        _mail("ivan-oct20", "ana", "ivan@initech.example", "2026-10-20"),
        _mail("ivan-nov5", "ana", "ivan@initech.example", "2026-11-05"),
        _mail("hana-sep10", "ana", "hana@hooli.example", "2026-09-10"),
        _mail("hana-nov6", "ana", "hana@hooli.example", "2026-11-06"),
        _mail("uma-sep20", "ana", "uma@umbrella.example", "2026-09-20"),
        _mail("uma-nov5", "ana", "uma@umbrella.example", "2026-11-05"),
        _mail("sol-oct5", "ana", "sol@soylent.example", "2026-10-05"),
        _mail("sol-oct25", "ana", "sol@soylent.example", "2026-10-25"),
        _mail("pat-nov5", "ana", "pat@oldco.example", "2026-11-05"),
        _mail("ned-nov6", "ana", "ned@newco.example", "2026-11-06"),
    ]
    changes = [
        EXPANSION,
        _deal("ini26", "initech", "ana", "2026-11-15", "ivan"),
        {**_deal("hooli", "hooli", "ana", "2026-06-01", "hana"), "stage": "negotiation", "is_closed": False},
        _deal("umb", "umbrella", "ana", "2026-09-01", "uma", closed="2026-10-01", won=True),
        _deal("soy", "soylent", "ana", "2026-11-01", "sol"),
        {**_deal("oc", "oldco", "ana", "2026-09-01"), "account_id": "acc-newco"},
        # A stage change alone: re-decides nothing.
        {**GLOBEX_PLAT, "stage": "negotiation"},
    ]
    found: dict[str, Any] = {}
    seen: dict[str, dict[str, Any]] = {}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-11-21T00:00:00Z", *crm)
        await post(stack, tenant, *mails)
        await settle(kafka_settings)
        found["metrics ana W45 before"] = await _week(stack, tenant, "rep-ana", "2026-11-02")
        found["metrics plat timeline before"] = await _timeline(stack, tenant, "deal-plat")
        before = {m["external_id"]: await _seen(stack, tenant, m["external_id"]) for m in mails}
        await sync(stack, db_engine, tenant, "2026-11-22T00:00:00Z", *changes)
        await settle(kafka_settings)
        for m in mails:
            seen[m["external_id"]] = await _seen(stack, tenant, m["external_id"])
        after = {k: _head(v) for k, v in seen.items()}
        found["metrics ana W45 after"] = await _week(stack, tenant, "rep-ana", "2026-11-02")
        found["metrics bo W45 after"] = await _week(stack, tenant, "rep-bo", "2026-11-02")
        found["metrics timelines after"] = {
            d: await _timeline(stack, tenant, f"deal-{d}")
            for d in ("plat", "exp", "ini26", "hooli", "umb", "soy", "oc")
        }
        # The same Expansion again, then an older version of it (no role yet) delivered late.
        await sync(stack, db_engine, tenant, "2026-11-22T00:00:00Z", EXPANSION)
        await sync(stack, db_engine, tenant, "2026-11-21T12:00:00Z", {**EXPANSION, "contacts": []})
        await settle(kafka_settings)
        found["idempotent cara-nov3 same expansion twice"] = _head(await _seen(stack, tenant, "cara-nov3"))
        found["order older expansion after newer"] = _head(await _seen(stack, tenant, "cara-nov5-in"))
        # Cara's role on the Expansion removed.
        await sync(stack, db_engine, tenant, "2026-11-24T00:00:00Z", {**EXPANSION, "contacts": []})
        await settle(kafka_settings)
        lost = {k: await _seen(stack, tenant, k) for k in ("cara-nov3", "cara-nov5-in", "gus-nov4")}
        found["metrics ana W45 role lost"] = await _week(stack, tenant, "rep-ana", "2026-11-02")
        found["metrics bo W45 role lost"] = await _week(stack, tenant, "rep-bo", "2026-11-02")
        found["metrics timelines role lost"] = {
            d: await _timeline(stack, tenant, f"deal-{d}") for d in ("plat", "exp")
        }

    found["metrics before"] = (found.pop("metrics ana W45 before"), found.pop("metrics plat timeline before"))
    found["new-deal initial decisions"] = {k: _head(v)[:3] for k, v in before.items()}
    found["new-deal cara-nov3 moves to the expansion"] = after["cara-nov3"]
    found["new-deal cara-nov5 shared inbox moves with its owner"] = after["cara-nov5-in"]
    found["new-deal cara-oct10 outside the grace stays"] = after["cara-oct10"]
    found["new-deal gus-nov4 champion of plat stays"] = after["gus-nov4"]
    found["new-deal ivan-2025 a year before stays"] = after["ivan-2025"]
    found["new-deal ivan-oct20 26 days before stays"] = after["ivan-oct20"]
    found["new-deal ivan-nov5 inside the grace"] = after["ivan-nov5"]
    found["reopen hana-nov6 after the loss"] = after["hana-nov6"]
    found["reopen hana-sep10 unchanged"] = after["hana-sep10"]
    found["dates uma-nov5 close moved back"] = after["uma-nov5"]
    found["dates uma-sep20 still inside"] = after["uma-sep20"]
    found["dates sol-oct5 creation moved later"] = after["sol-oct5"]
    found["dates sol-oct25 still inside, same decision"] = after["sol-oct25"]
    found["account-move pat-nov5 old company loses the deal"] = after["pat-nov5"]
    found["account-move ned-nov6 new company gains it"] = after["ned-nov6"]
    found["role cara-nov3 role lost: back"] = _head(lost["cara-nov3"])
    found["role cara-nov5 role lost: a close call"] = _head(lost["cara-nov5-in"])
    found["role gus-nov4 untouched"] = _head(lost["gus-nov4"])
    found["confidence cara-nov3 margin 0.25 with a role"] = 0.85 <= seen["cara-nov3"]["confidence"] < 0.95
    found["confidence ivan-nov5 lone candidate with a role"] = seen["ivan-nov5"]["confidence"]
    found["confidence cara-nov5 close call without deal signal"] = (
        0.35 <= lost["cara-nov5-in"]["confidence"] < 0.4
    )
    found["confidence primary top-ranked everywhere"] = all(
        _top_ranked(v) for v in [*seen.values(), *lost.values()]
    )

    plat, exp = "deal-plat", "deal-exp"
    expected: dict[str, Any] = {
        "metrics before": (8, 4),
        "new-deal initial decisions": {
            "cara-oct10": ("attributed", plat, ()),
            "cara-nov3": ("attributed", plat, ()),
            "cara-nov5-in": ("attributed", plat, ()),
            "gus-nov4": ("attributed", plat, ()),
            "ivan-2025": ("attributed", "deal-ini25", ()),
            "ivan-oct20": ("account_only", None, ()),
            "ivan-nov5": ("account_only", None, ()),
            "hana-sep10": ("attributed", "deal-hooli", ()),
            "hana-nov6": ("account_only", None, ()),
            "uma-sep20": ("attributed", "deal-umb", ()),
            "uma-nov5": ("attributed", "deal-umb", ()),
            "sol-oct5": ("attributed", "deal-soy", ()),
            "sol-oct25": ("attributed", "deal-soy", ()),
            "pat-nov5": ("attributed", "deal-oc", ()),
            "ned-nov6": ("account_only", None, ()),
        },
        "new-deal cara-nov3 moves to the expansion": _att("exp", "globex", "ana", 2, [plat, exp]),
        "new-deal cara-nov5 shared inbox moves with its owner": _att("exp", "globex", "bo", 2, [plat, exp]),
        "new-deal cara-oct10 outside the grace stays": _att("plat", "globex", "ana", 1, [plat]),
        "new-deal gus-nov4 champion of plat stays": _att("plat", "globex", "ana", 1, [plat]),
        "new-deal ivan-2025 a year before stays": _att("ini25", "initech", "ana", 1, ["deal-ini25"]),
        "new-deal ivan-oct20 26 days before stays": _acc_only("initech", "ana", 1, [None]),
        "new-deal ivan-nov5 inside the grace": _att("ini26", "initech", "ana", 2, [None, "deal-ini26"]),
        "reopen hana-nov6 after the loss": _att("hooli", "hooli", "ana", 2, [None, "deal-hooli"]),
        "reopen hana-sep10 unchanged": _att("hooli", "hooli", "ana", 1, ["deal-hooli"]),
        "dates uma-nov5 close moved back": _acc_only("umbrella", "ana", 2, ["deal-umb", None]),
        "dates uma-sep20 still inside": _att("umb", "umbrella", "ana", 1, ["deal-umb"]),
        "dates sol-oct5 creation moved later": _acc_only("soylent", "ana", 2, ["deal-soy", None]),
        "dates sol-oct25 still inside, same decision": _att("soy", "soylent", "ana", 1, ["deal-soy"]),
        "account-move pat-nov5 old company loses the deal": _acc_only("oldco", "ana", 2, ["deal-oc", None]),
        "account-move ned-nov6 new company gains it": _att("oc", "newco", "ana", 2, [None, "deal-oc"]),
        "metrics ana W45 after": 7,
        "metrics bo W45 after": 1,
        "metrics timelines after": {"plat": 2, "exp": 2, "ini26": 1, "hooli": 2, "umb": 1, "soy": 1, "oc": 1},
        "idempotent cara-nov3 same expansion twice": _att("exp", "globex", "ana", 2, [plat, exp]),
        "order older expansion after newer": _att("exp", "globex", "bo", 2, [plat, exp]),
        "role cara-nov3 role lost: back": _att("plat", "globex", "ana", 3, [plat, exp, plat]),
        "role cara-nov5 role lost: a close call": (
            "ambiguous",
            plat,
            (exp,),
            "acc-globex",
            "rep-ana",
            3,
            [plat, exp, plat],
        ),
        "role gus-nov4 untouched": _att("plat", "globex", "ana", 1, [plat]),
        "metrics ana W45 role lost": 8,
        "metrics bo W45 role lost": 0,
        "metrics timelines role lost": {"plat": 4, "exp": 1},
        "confidence cara-nov3 margin 0.25 with a role": True,
        "confidence ivan-nov5 lone candidate with a role": 0.95,
        "confidence cara-nov5 close call without deal signal": True,
        "confidence primary top-ranked everywhere": True,
    }
    _verdict(found, expected)


# --- 2. Manager overrides through every trigger; another tenant with the same ids; bad input ---


def _globex(svc_contacts: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        _rep("ana"),
        _rep("bo"),
        _account("globex"),
        _account("initech"),
        _person("gus", "globex"),
        _person("hal", "globex"),
        GLOBEX_PLAT,
        _deal("svc", "globex", "ana", "2026-09-01", *svc_contacts, name="Globex Services"),
    ]


async def test_overrides_stay_through_every_trigger_and_other_tenants_are_untouched(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """Gus is champion of Ana's Platform deal; Globex also has Ana's Services deal (no roles). A
    manager moves Ana's 5 November mail to Services (the call was about it), and credits Bo with
    her 6 November mail (he wrote it from her laptop: a rep-only override). Then, in turn: a
    renewal opens on 10 November with Gus as champion; Hal gains a role on Services; Services'
    creation date is corrected; Services moves to Initech; Platform is deleted; Services is lost,
    then reopened. Another tenant
    holds the very same ids and the same mail."""
    tenant = await new_tenant(db_engine)
    other = await new_tenant(db_engine, "other-co")
    mails = [_mail(f"gus-nov{d}", "ana", "gus@globex.example", f"2026-11-0{d}") for d in (5, 6, 9)]
    renewal = _deal("new", "globex", "ana", "2026-11-10", "gus", name="Globex Renewal 2027")
    triggers = [
        [renewal],
        [_deal("svc", "globex", "ana", "2026-09-01", "hal", name="Globex Services")],
        [_deal("svc", "globex", "ana", "2026-08-01", "hal", name="Globex Services")],
        [_deal("svc", "initech", "ana", "2026-08-01", "hal", name="Globex Services")],
        [{**GLOBEX_PLAT, "deleted": True}],
        [_deal("svc", "initech", "ana", "2026-08-01", "hal", closed="2026-10-01", name="Globex Services")],
        [{**_deal("svc", "initech", "ana", "2026-08-01", "hal", name="Globex Services"), "is_closed": False}],
    ]
    found: dict[str, Any] = {}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        for t in (tenant, other):
            await sync(stack, db_engine, t, "2026-11-21T00:00:00Z", *_globex())
            await post(stack, t, *mails)
        await settle(kafka_settings)
        ids = {m["external_id"]: activity_id_for(tenant.tenant_id, "mail", m["external_id"]) for m in mails}
        moved = await stack.gateway.put(
            f"/v1/activities/{ids['gus-nov5']}/attribution",
            json={"deal_id": "deal-svc", "reason": "about the services"},
            headers=tenant.admin,
        )
        credited = await stack.gateway.put(
            f"/v1/activities/{ids['gus-nov6']}/attribution", json={"rep_id": "rep-bo"}, headers=tenant.admin
        )
        unknown = await stack.gateway.put(
            f"/v1/activities/{ids['gus-nov5']}/attribution",
            json={"deal_id": "deal-nope"},
            headers=tenant.admin,
        )
        theirs = activity_id_for(other.tenant_id, "mail", "gus-nov5")
        foreign = await stack.gateway.put(
            f"/v1/activities/{theirs}/attribution", json={"deal_id": "deal-svc"}, headers=tenant.admin
        )
        await settle(kafka_settings)
        found["override applied"] = (
            moved.status_code,
            credited.status_code,
            _head(await _seen(stack, tenant, "gus-nov5")),
        )
        found["bad-input unknown deal"] = (
            unknown.status_code,
            [e["field"] for e in unknown.json().get("errors", [])],
        )
        found["bad-input another tenant's activity"] = foreign.status_code
        role_blank = await stack.ingest.post(
            "/v1/crm/sync",
            json={
                "source": "crm",
                "entities": [
                    {
                        **renewal,
                        "updated_at": "2026-11-22T00:00:00Z",
                        "contacts": [{"contact_id": "", "role": "x"}],
                    }
                ],
            },
            headers=tenant.ingest,
        )
        found["bad-input role without contact"] = (
            role_blank.status_code,
            any("contact_id" in e["field"] for e in role_blank.json().get("errors", [])),
        )
        for n, batch in enumerate(triggers, 22):
            await sync(stack, db_engine, tenant, f"2026-11-{n}T00:00:00Z", *batch)
            await settle(kafka_settings)
            o = await _seen(stack, tenant, "gus-nov5")
            found[f"override sticky after trigger {n - 21}"] = (
                o["status"],
                o["deal"],
                o["version"],
                o["override"],
            )
            if n == 22:
                found["new-deal gus-nov9 renewal not created yet: no recency win"] = _head(
                    await _seen(stack, tenant, "gus-nov9")
                )
                found["override rep-only: deal re-decided, rep kept"] = _head(
                    await _seen(stack, tenant, "gus-nov6")
                )
        final = await _seen(stack, tenant, "gus-nov5")
        found["override history"] = (final["history"], final["override"], final["rep"])
        found["delete-restore gus-nov9 after plat deleted"] = _head(await _seen(stack, tenant, "gus-nov9"))
        found["override rep-only after plat deleted"] = _head(await _seen(stack, tenant, "gus-nov6"))
        found["metrics ana, bo W45"] = (
            await _week(stack, tenant, "rep-ana", "2026-11-02"),
            await _week(stack, tenant, "rep-bo", "2026-11-02"),
        )
        found["tenant other's mail untouched"] = [
            _head(await _seen(stack, other, m["external_id"])) for m in mails
        ]
        found["tenant other's metrics untouched"] = (
            await _week(stack, other, "rep-ana", "2026-11-02"),
            await _timeline(stack, other, "deal-plat"),
        )

    plat, svc, new = "deal-plat", "deal-svc", "deal-new"
    sticky = ("attributed", svc, 2, True)
    expected: dict[str, Any] = {
        "override applied": (202, 202, ("attributed", svc, (), "acc-globex", "rep-ana", 2, [plat, svc])),
        "bad-input unknown deal": (422, ["deal_id"]),
        "bad-input another tenant's activity": 404,
        "bad-input role without contact": (422, True),
        **{f"override sticky after trigger {n}": sticky for n in range(1, 8)},
        "override history": ([plat, svc], True, "rep-ana"),
        # The renewal starts a day after the mail: Platform (open, same people, same owner) leads
        # by its proximity and recency, less than the margin: a close call, Platform first.
        "new-deal gus-nov9 renewal not created yet: no recency win": (
            "ambiguous",
            plat,
            (new,),
            "acc-globex",
            "rep-ana",
            2,
            [plat, plat],
        ),
        "override rep-only: deal re-decided, rep kept": (
            "ambiguous",
            plat,
            (new,),
            "acc-globex",
            "rep-bo",
            3,
            [plat, plat, plat],
        ),
        "delete-restore gus-nov9 after plat deleted": _att("new", "globex", "ana", 3, [plat, plat, new]),
        "override rep-only after plat deleted": _att("new", "globex", "bo", 4, [plat, plat, plat, new]),
        "metrics ana, bo W45": (1, 1),
        "tenant other's mail untouched": [
            _att("plat", "globex", "ana", 1, [plat]),
            _att("plat", "globex", "ana", 1, [plat]),
            _att("plat", "globex", "ana", 1, [plat]),
        ],
        "tenant other's metrics untouched": (2, 3),
    }
    _verdict(found, expected)


# --- 3. HubSpot merges, deletes and restores deals; Salesforce deletes and undeletes one --------

HS_MODIFIED = "2026-11-26T09:00:00.000Z"


async def test_deals_merged_deleted_and_restored_in_hubspot_and_salesforce(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, db_engine: AsyncEngine
) -> None:
    """HubSpot: Globex (5501) has Ana's Platform (3301, Dana champion) and Expansion (3302, Eli
    champion); Hooli (5502) has Ana's Pilot (3401, Fay champion). HubSpot merges the Expansion into
    the Platform (``deal.merge``), and the Pilot is deleted (``deal.deletion``) then taken back out
    of the recycle bin (``deal.restore``, then the sync job reads it live again). Salesforce: Ana's
    Initech Renewal (Gil's account) is deleted and undeleted (a sync job's ``queryAll`` posted in
    the Outbound Message shape, ``IsDeleted``). Ana's mail comes through ``POST /v1/events``."""
    tenant = await webhook_tenant(db_engine, SETTINGS)
    # Ana is HubSpot owner 7701 and Salesforce User SF_ANA (one email): one person, credited under
    # the smallest id of the CRM feeds (docs/attribution.md, "One rep per person").
    ana = SF_ANA
    hubspot = [
        _owner("7701", ANA, "Ana", "Seller"),
        _company("5501", "Globex", "globex.example"),
        _company("5502", "Hooli", "hooli.example"),
        _contact("901", "5501", "dana@globex.example"),
        _contact("902", "5501", "eli@globex.example"),
        _contact("903", "5502", "fay@hooli.example"),
        _hs_deal("3301", "Globex Platform", "5501", "7701", "2026-09-01T09:00:00.000Z", "901"),
        _hs_deal("3302", "Globex Expansion", "5501", "7701", "2026-10-15T09:00:00.000Z", "902"),
        _hs_deal("3401", "Hooli Pilot", "5502", "7701", "2026-10-01T09:00:00.000Z", "903"),
    ]
    gil = "0035j00000Hq9RsAAJ"
    renewal = "0065j00000Lm4NpAAJ"

    def opportunity(notification: str, modified: str, stamp: str, deleted: str) -> str:
        return _sobject(
            "Opportunity",
            notification,
            Id=renewal,
            AccountId=INITECH,
            Name="Initech Renewal",
            OwnerId=SF_ANA,
            StageName="Negotiation/Review",
            IsClosed="false",
            IsWon="false",
            IsDeleted=deleted,
            CloseDate="2026-12-20",
            CreatedDate="2026-08-01T09:00:00.000Z",
            LastModifiedDate=modified,
            SystemModstamp=stamp,
        )

    salesforce = outbound_message(
        _sobject(
            "Account",
            "Gx7S0AAA",
            Id=INITECH,
            Name="Initech",
            Website="https://initech.example",
            LastModifiedDate="2026-11-01T09:00:00.000Z",
        ),
        _sobject(
            "User",
            "Gx7S1AAA",
            Id=SF_ANA,
            Email=ANA,
            FirstName="Ana",
            LastName="Seller",
            IsActive="true",
            LastModifiedDate="2026-11-01T09:00:00.000Z",
        ),
        _sobject(
            "Contact",
            "Gx7S2AAA",
            Id=gil,
            AccountId=INITECH,
            Email="gil@initech.example",
            FirstName="Gil",
            LastName="Ortiz",
            LastModifiedDate="2026-11-01T09:00:00.000Z",
        ),
        opportunity("Gx7S3AAA", "2026-11-01T09:00:00.000Z", "2026-11-01T09:00:00.000Z", "false"),
    )
    mails = [
        {
            **email("dana-eli-nov5", ANA, "dana@globex.example", "2026-11-05T15:00:00Z"),
            "participants": [
                {"email": ANA, "role": "from"},
                {"email": "dana@globex.example", "role": "to"},
                {"email": "eli@globex.example", "role": "to"},
            ],
        },
        email("eli-nov6", ANA, "eli@globex.example", "2026-11-06T15:00:00Z"),
        email("fay-nov6", ANA, "fay@hooli.example", "2026-11-06T15:00:00Z"),
        email("gil-nov7", ANA, "gil@initech.example", "2026-11-07T15:00:00Z"),
    ]
    found: dict[str, Any] = {}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await _deliver(stack, "hubspot", dumps(hubspot))
        await _deliver(stack, "salesforce", salesforce)
        await references_landed(
            db_engine,
            tenant.tenant_id,
            [{"entity_type": "deal", "id": i} for i in ("3301", "3302", "3401", renewal)]
            + [{"entity_type": "contact", "id": i} for i in ("901", "902", "903", gil)],
        )
        await post(stack, tenant, *mails)
        await settle(kafka_settings)
        first = {m["external_id"]: await _seen(stack, tenant, m["external_id"]) for m in mails}
        found["merge initial close call between 3301 and 3302"] = (
            first["dana-eli-nov5"]["status"],
            set((first["dana-eli-nov5"]["deal"], *first["dana-eli-nov5"]["secondaries"])),
            _top_ranked(first["dana-eli-nov5"]),
        )
        found["delete-restore initial"] = {k: first[k]["deal"] for k in ("eli-nov6", "fay-nov6", "gil-nov7")}
        await _deliver(
            stack,
            "hubspot",
            dumps(
                [
                    _notification(
                        "deal.merge", 3301, primaryObjectId=3301, mergedObjectIds=[3302], changeFlag="MERGED"
                    ),
                    _notification("deal.deletion", 3401, changeFlag="DELETED"),
                ]
            ),
        )
        await _deliver(
            stack,
            "salesforce",
            outbound_message(
                opportunity("Gx7S4AAA", "2026-11-25T09:00:00.000Z", "2026-11-25T09:00:00.000Z", "true")
            ),
        )
        await settle(kafka_settings)
        gone = {m["external_id"]: _head(await _seen(stack, tenant, m["external_id"])) for m in mails}
        found["merge dana-eli-nov5 now the survivor's"] = gone["dana-eli-nov5"]
        found["merge eli-nov6 follows to the survivor"] = gone["eli-nov6"]
        found["delete-restore fay-nov6 pilot deleted"] = gone["fay-nov6"]
        found["delete-restore gil-nov7 opportunity deleted"] = gone["gil-nov7"]
        # Restored: HubSpot's restore notification (no data), then the sync job reads the deal live.
        pilot = _hs_deal("3401", "Hooli Pilot", "5502", "7701", "2026-10-01T09:00:00.000Z", "903")
        pilot["updatedAt"] = HS_MODIFIED
        pilot["properties"]["hs_lastmodifieddate"] = HS_MODIFIED
        await _deliver(
            stack, "hubspot", dumps([_notification("deal.restore", 3401, changeFlag="RESTORED"), pilot])
        )
        await _deliver(
            stack,
            "salesforce",
            outbound_message(
                opportunity("Gx7S5AAA", "2026-11-25T09:00:00.000Z", "2026-11-26T09:00:00.000Z", "false")
            ),
        )
        await settle(kafka_settings)
        back = {k: _head(await _seen(stack, tenant, k)) for k in ("fay-nov6", "gil-nov7", "dana-eli-nov5")}
        found["delete-restore fay-nov6 pilot restored"] = back["fay-nov6"]
        found["delete-restore gil-nov7 opportunity undeleted"] = back["gil-nov7"]
        found["merge survivor unchanged by restores"] = back["dana-eli-nov5"][5]
        found["metrics timelines"] = {d: await _timeline(stack, tenant, d) for d in ("3301", "3401", renewal)}

    expected: dict[str, Any] = {
        "merge initial close call between 3301 and 3302": ("ambiguous", {"3301", "3302"}, True),
        "delete-restore initial": {"eli-nov6": "3302", "fay-nov6": "3401", "gil-nov7": renewal},
        "merge dana-eli-nov5 now the survivor's": (
            "attributed",
            "3301",
            (),
            "5501",
            ana,
            2,
            [first["dana-eli-nov5"]["deal"], "3301"],
        ),
        "merge eli-nov6 follows to the survivor": (
            "attributed",
            "3301",
            (),
            "5501",
            ana,
            2,
            ["3302", "3301"],
        ),
        "delete-restore fay-nov6 pilot deleted": (
            "account_only",
            None,
            (),
            "5502",
            ana,
            2,
            ["3401", None],
        ),
        "delete-restore gil-nov7 opportunity deleted": (
            "account_only",
            None,
            (),
            INITECH,
            ana,
            2,
            [renewal, None],
        ),
        "delete-restore fay-nov6 pilot restored": (
            "attributed",
            "3401",
            (),
            "5502",
            ana,
            3,
            ["3401", None, "3401"],
        ),
        "delete-restore gil-nov7 opportunity undeleted": (
            "attributed",
            renewal,
            (),
            INITECH,
            ana,
            3,
            [renewal, None, renewal],
        ),
        "merge survivor unchanged by restores": 2,
        "metrics timelines": {"3301": 2, "3401": 1, renewal: 1},
    }
    _verdict(found, expected)


# --- 4. A huge account: a new deal re-decides its window only, all of it, bounded per batch -----


async def test_a_new_deal_in_a_huge_account_re_decides_its_whole_window(
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mega: Max was champion of Ana's deal won on 30 June; Ana writes to him every day from 1
    March to 5 November (250 mails). On 20 October the renewal opens, Max its champion. Only the
    mails of its window (6 October on: 31) change, all of them, although the operator bounds a CRM
    batch's re-matching to 10 activities (``ATTRIBUTION_REMATCH_LIMIT``): the rest is re-decided
    in later rounds, not dropped."""
    monkeypatch.setenv("ATTRIBUTION_REMATCH_LIMIT", "10")
    claimed, release = asyncio.Event(), asyncio.Event()

    async def held(*args: Any) -> dict[str, Any]:
        claimed.set()
        await release.wait()
        return await run_rematch_job(*args)

    monkeypatch.setattr(attribution_app, "run_rematch_job", held)
    tenant = await new_tenant(db_engine)
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(250)]
    mails = [_mail(f"max-{d.isoformat()}", "ana", "max@mega.example", d.isoformat()) for d in days]
    crm = [
        _rep("ana"),
        _account("mega"),
        _person("max", "mega"),
        _deal("mega1", "mega", "ana", "2025-07-01", "max", closed="2026-06-30", won=True),
    ]
    found: dict[str, Any] = {}
    async with in_process_stack(kafka_settings, database_settings) as stack:
        await sync(stack, db_engine, tenant, "2026-11-21T00:00:00Z", *crm)
        await post(stack, tenant, *mails)
        await settle(kafka_settings)
        await sync(
            stack,
            db_engine,
            tenant,
            "2026-11-22T00:00:00Z",
            _deal("mega2", "mega", "ana", "2026-10-20", "max"),
        )
        await settle(kafka_settings)
        # The job is claimed and held: the pipeline says the window is not all visible yet.
        await asyncio.wait_for(claimed.wait(), 60)
        status = await get(stack, tenant, "/v1/pipeline/status")
        found["huge pipeline while the job is held"] = (status["up_to_date"], status["settings_jobs_pending"])
        found["huge jobs while held"] = await rows(db_engine, JOBS, {"t": tenant.tenant_id})
        release.set()
        # As a sync job does: wait until the pipeline says everything sent is visible.
        status = await poll_json(stack.gateway, "/v1/pipeline/status", tenant.read, lambda s: s["up_to_date"])
        await settle(kafka_settings)
        found["huge jobs once up to date"] = await rows(db_engine, JOBS, {"t": tenant.tenant_id})
        listed = await get(stack, tenant, "/v1/activities?account_id=acc-mega&limit=500")
        found["huge decisions by deal"] = dict(Counter((a["status"], a["deal_id"]) for a in listed["items"]))
        found["huge first of the window"] = _head(await _seen(stack, tenant, "max-2026-10-06"))
        found["huge last of the window"] = _head(await _seen(stack, tenant, "max-2026-11-05"))
        found["huge day before the window"] = _head(await _seen(stack, tenant, "max-2026-10-05"))
        found["huge old deal's mail"] = _head(await _seen(stack, tenant, "max-2026-06-01"))
        found["metrics timelines"] = {
            d: await _timeline(stack, tenant, f"deal-{d}") for d in ("mega1", "mega2")
        }

    expected: dict[str, Any] = {
        "huge pipeline while the job is held": (False, 1),
        "huge jobs while held": [("rematch", "running")],
        "huge jobs once up to date": [("rematch", "done")],
        "huge decisions by deal": {
            ("attributed", "deal-mega1"): 135,
            ("account_only", None): 84,
            ("attributed", "deal-mega2"): 31,
        },
        "huge first of the window": _att("mega2", "mega", "ana", 2, [None, "deal-mega2"]),
        "huge last of the window": _att("mega2", "mega", "ana", 2, [None, "deal-mega2"]),
        "huge day before the window": _acc_only("mega", "ana", 1, [None]),
        "huge old deal's mail": _att("mega1", "mega", "ana", 1, ["deal-mega1"]),
        "metrics timelines": {"mega1": 135, "mega2": 31},
    }
    _verdict(found, expected)
