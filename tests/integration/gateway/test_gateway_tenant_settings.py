"""The settings admin API: each group round-trips, invalid values change nothing, every change is versioned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.contracts.tenant_settings import DEFAULT_TENANT_SETTINGS, TenantSettings
from libs.common.jobs import REBUILD_ROLLUPS, Job, JobWorker
from libs.common.tenant_settings_store import TenantSettingsCache
from services.metrics.handlers import MetricsDeps, rebuild_tenant_rollups

from .gateway_support import Keys, bearer

GROUPS: dict[str, dict[str, Any]] = {
    "calendar": {"time_zone": "Europe/Paris", "fiscal_year_start_month": 2},
    "organization": {
        "internal_domains": ["acme.example"],
        "default_phone_region": "GB",
        "salesforce_organization_id": "00D5j00000ABCDEEA2",
        "menu_extensions": ["62944090001", "100"],
        "twilio_sip_domains": ["acme.sip.twilio.com"],
    },
    "privacy": {"excluded_domains": ["lawfirm.example"], "keep_subjects": True},
    "attribution": {"ambiguity_policy": "unique_only", "park_days": 10},
    "metrics": {"conversation_min_seconds": 45},
    "insight_thresholds": {"stale_after_days": 7},
}


def _expected(group: str, body: dict[str, Any]) -> dict[str, Any]:
    document = body if group in ("calendar", "organization") else {group: body}
    return TenantSettings.model_validate(document).group(group)


async def _patch_organization(gateway: httpx.AsyncClient, keys: Keys, body: dict[str, Any]) -> httpx.Response:
    """``PATCH /v1/settings/organization`` as the tenant's admin."""
    return await gateway.patch("/v1/settings/organization", json=body, headers=bearer(keys.admin))


@pytest.mark.parametrize("group", list(GROUPS))
async def test_each_group_round_trips_and_is_versioned(
    gateway: httpx.AsyncClient, keys: Keys, group: str
) -> None:
    saved = await gateway.put(f"/v1/settings/{group}", json=GROUPS[group], headers=bearer(keys.admin))
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    assert saved.json()["settings"] == _expected(group, GROUPS[group])
    assert saved.json()["changed_by"] == "_".join(keys.admin.split("_")[:3])

    read = await gateway.get(f"/v1/settings/{group}", headers=bearer(keys.admin))
    assert read.json()["settings"] == _expected(group, GROUPS[group])
    whole = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()
    assert whole["version"] == 1
    assert whole["errors"] == []
    assert TenantSettings.model_validate(whole["settings"]).group(group) == _expected(group, GROUPS[group])
    history = (await gateway.get("/v1/settings/history", headers=bearer(keys.admin))).json()
    assert [(v["version"], sorted(v["changed"])) for v in history["items"]] == [
        (1, sorted(k for k in GROUPS[group] if group in ("calendar", "organization")) or [group])
    ]
    # Another tenant keeps the defaults.
    theirs = (await gateway.get("/v1/settings", headers=bearer(keys.other_admin))).json()
    assert (theirs["version"], theirs["settings"]) == (0, DEFAULT_TENANT_SETTINGS.model_dump(mode="json"))


async def test_insight_thresholds_saved_here_are_the_ones_insights_read(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    await gateway.patch(
        "/v1/settings", json={"insight_thresholds": {"stale_after_days": 9}}, headers=bearer(keys.admin)
    )
    thresholds = (await gateway.get("/v1/insight-thresholds", headers=bearer(keys.read))).json()
    assert (thresholds["version"], thresholds["thresholds"]["stale_after_days"]) == (1, 9)


@pytest.mark.parametrize(
    ("route", "body", "field", "reason"),
    [
        (
            "/v1/settings/calendar",
            {"time_zone": "Mars/Olympus"},
            "time_zone",
            "Value error, 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            "/v1/settings/calendar",
            {"fiscal_year_start_month": 13},
            "fiscal_year_start_month",
            "Input should be less than or equal to 12",
        ),
        (
            "/v1/settings/privacy",
            {"excluded_domain": ["x.example"]},
            "privacy.excluded_domain",
            "Extra inputs are not permitted",
        ),
        (
            "/v1/settings/attribution",
            {"ambiguity_policy": "newest"},
            "attribution.ambiguity_policy",
            "Input should be 'primary_with_secondaries' or 'unique_only'",
        ),
        (
            "/v1/settings/metrics",
            {"conversation_min_seconds": "30"},
            "metrics.conversation_min_seconds",
            "Input should be a valid integer",
        ),
        (
            "/v1/settings/insight_thresholds",
            {"min_team_size": 1},
            "insight_thresholds.min_team_size",
            "Input should be greater than or equal to 2",
        ),
        (
            "/v1/settings/organization",
            {"privacy": {}},
            "privacy",
            "is not a setting of the organization group",
        ),
        ("/v1/settings", {"timezone": "UTC"}, "timezone", "Extra inputs are not permitted"),
        # A NUL reached jsonb, which refuses it: these were 500s.
        (
            "/v1/settings/privacy",
            {"excluded_addresses": ["ceo\u0000@acme.example"]},
            "privacy.excluded_addresses.0",
            "must not contain a control character (U+0000 at position 3)",
        ),
        # A typo was saved and excluded nobody (before 2026-12).
        (
            "/v1/settings/privacy",
            {"excluded_addresses": ["ceo@acme.example", "+14155550100", "ana@"]},
            "privacy.excluded_addresses.2",
            "'ana@' is neither an email address nor a phone number (numbers without + are read in "
            "the tenant's phone region, US)",
        ),
        (
            "/v1/settings/privacy",
            {"excluded_addresses": ["415-55"]},
            "privacy.excluded_addresses.0",
            "'415-55' is neither an email address nor a phone number (numbers without + are read in "
            "the tenant's phone region, US)",
        ),
        (
            "/v1/settings/privacy",
            {"excluded_addresses": ["@lawfirm.example"]},
            "privacy.excluded_addresses.0",
            "'@lawfirm.example' is neither an email address nor a phone number (numbers without + are "
            "read in the tenant's phone region, US) (a domain goes in privacy.excluded_domains)",
        ),
        (
            "/v1/settings/privacy",
            {"excluded_subject_keywords": ["salary\u0000"]},
            "privacy.excluded_subject_keywords.0",
            "must not contain a control character (U+0000 at position 6)",
        ),
        (
            "/v1/settings/organization",
            {"rep_aliases": {"7701": "rep\u0000a"}},
            "rep_aliases.7701",
            "must not contain a control character (U+0000 at position 3)",
        ),
        (
            "/v1/settings/organization",
            {"menu_extensions": ["+1 650 555 0100"]},
            "menu_extensions",
            "Value error, '+1 650 555 0100' is not an extension id or number: 1 to 20 digits (a "
            "phone number with + or spaces is not an extension)",
        ),
        (
            "/v1/settings/organization",
            {"twilio_sip_domains": ["acme.sip.twilio.com", "acme.example"]},
            "twilio_sip_domains",
            "Value error, 'acme.example' is not a Twilio SIP domain: write it as the Twilio console "
            "lists it, <name>.sip.twilio.com",
        ),
        (
            "/v1/settings",
            {"scoring_model_version": 4},
            "scoring_model_version",
            "is read-only here: it follows /v1/scoring-model",
        ),
    ],
)
async def test_an_invalid_value_is_refused_by_name_and_changes_nothing(
    gateway: httpx.AsyncClient, keys: Keys, route: str, body: dict[str, Any], field: str, reason: str
) -> None:
    await gateway.patch("/v1/settings", json={"privacy": {"keep_subjects": True}}, headers=bearer(keys.admin))
    before = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()
    for method in ("PUT", "PATCH"):
        refused = await gateway.request(method, route, json=body, headers=bearer(keys.admin))
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [{"in": "body", "field": field, "reason": reason}]
    assert (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json() == before
    history = (await gateway.get("/v1/settings/history", headers=bearer(keys.admin))).json()
    assert [v["version"] for v in history["items"]] == [1]


@pytest.mark.parametrize(
    "first",
    [{"menu_extensions": ["62944090001"]}, {"rep_aliases": {"62944090001": "rep-a"}}],
    ids=["menus-then-alias", "alias-then-menus"],
)
async def test_an_extension_both_a_menu_and_a_rep_names_both_fields(
    gateway: httpx.AsyncClient, keys: Keys, first: dict[str, Any]
) -> None:
    """Whichever of the two the admin changes last, the 422 names both: the alias she wrote and
    the menu already listed (before, only ``menu_extensions``, which she may not have touched)."""
    saved = await _patch_organization(gateway, keys, first)
    assert saved.status_code == 200, saved.text
    second = {"rep_aliases": {"62944090001": "rep-a"}, "menu_extensions": ["62944090001"]}
    for key in first:
        second.pop(key)
    refused = await _patch_organization(gateway, keys, second)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "in": "body",
            "field": "menu_extensions",
            "reason": "Value error, '62944090001' is mapped to a rep in rep_aliases ('rep-a'): a menu "
            "answers for nobody, so list it in one of the two",
        },
        {
            "in": "body",
            "field": "rep_aliases.62944090001",
            "reason": "'62944090001' is listed in menu_extensions too: a menu answers for nobody, so "
            "list it in one of the two",
        },
    ]


async def test_a_rep_s_own_extension_is_refused_as_a_menu(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """Ana's CRM record lists her desk line with extension 101: listing 101 as a menu would read
    every call she answers as not connected. A rep who left (extension 102) holds none."""
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ref_reps (tenant_id, rep_id, name, phone_extensions, active, updated_at) VALUES "
                "('acme', 'rep-ext-ana', 'Ana', ARRAY['+16505550100;ext=101'], true, now()), "
                "('acme', 'rep-ext-old', 'Old', ARRAY['+16505550100;ext=102'], false, now())"
            )
        )
    refused = await _patch_organization(gateway, keys, {"menu_extensions": ["100", "101"]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "in": "body",
            "field": "menu_extensions",
            "reason": "'101' is the extension of rep 'rep-ext-ana' (her CRM record's phone_extensions): "
            "a menu answers for nobody, so the calls she answers would read not connected",
        }
    ]
    saved = await _patch_organization(gateway, keys, {"menu_extensions": ["100", "102"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["settings"]["menu_extensions"] == ["100", "102"]


async def test_patch_merges_and_null_resets_to_the_default(gateway: httpx.AsyncClient, keys: Keys) -> None:
    await gateway.put(
        "/v1/settings",
        json={
            "time_zone": "Europe/Berlin",
            "privacy": {"keep_subjects": True, "excluded_domains": ["a.example"]},
        },
        headers=bearer(keys.admin),
    )
    patched = await gateway.patch(
        "/v1/settings",
        json={"privacy": {"keep_subjects": None}, "fiscal_year_start_month": 4},
        headers=bearer(keys.admin),
    )
    assert patched.status_code == 200, patched.text
    settings = patched.json()["settings"]
    assert (settings["time_zone"], settings["fiscal_year_start_month"]) == ("Europe/Berlin", 4)
    assert settings["privacy"]["excluded_domains"] == ["a.example"]
    assert settings["privacy"]["keep_subjects"] is False
    history = (await gateway.get("/v1/settings/history?limit=1", headers=bearer(keys.admin))).json()
    assert [(v["version"], v["changed"]) for v in history["items"]] == [
        (2, ["fiscal_year_start_month", "privacy"])
    ]
    older = (
        await gateway.get(
            f"/v1/settings/history?limit=1&cursor={history['next_cursor']}", headers=bearer(keys.admin)
        )
    ).json()
    assert [v["version"] for v in older["items"]] == [1]
    assert older["next_cursor"] is None
    assert older["items"][0]["settings"]["fiscal_year_start_month"] == 1


async def test_a_change_that_changes_nothing_saves_no_version_and_no_audit_row(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    first = await gateway.patch(
        "/v1/settings", json={"time_zone": "Europe/Berlin"}, headers=bearer(keys.admin)
    )
    assert first.status_code == 200, first.text
    for method, route, body in (
        ("PATCH", "/v1/settings", {"time_zone": "Europe/Berlin"}),
        ("PATCH", "/v1/settings", {}),
        ("PUT", "/v1/settings/privacy", DEFAULT_TENANT_SETTINGS.group("privacy")),
    ):
        same = await gateway.request(method, route, json=body, headers=bearer(keys.admin))
        assert same.status_code == 200, same.text
        assert same.json()["version"] == 1
        assert same.json()["changed_at"] == first.json()["changed_at"]
    history = (await gateway.get("/v1/settings/history", headers=bearer(keys.admin))).json()
    assert [(v["version"], v["changed"]) for v in history["items"]] == [(1, ["time_zone"])]
    async with db_engine.connect() as conn:
        audited = await conn.scalar(
            text("SELECT count(*) FROM audit_log WHERE tenant_id = 'acme' AND action = 'settings.changed'")
        )
    assert audited == 1


async def test_a_save_stores_no_setting_of_this_release_left_at_its_default(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """The previous release refuses unknown keys in ``tenants.settings``: a save that lists no
    menu stores no ``menu_extensions`` (before: ``[]``, and old ingest answered the tenant's
    webhooks 503); one that lists menus stores them, and clearing them removes the key again."""

    async def stored() -> dict[str, Any]:
        async with db_engine.connect() as conn:
            document: dict[str, Any] = await conn.scalar(
                text("SELECT settings FROM tenants WHERE tenant_id = 'acme'")
            )
        return document

    saved = await gateway.put("/v1/settings/privacy", json=GROUPS["privacy"], headers=bearer(keys.admin))
    assert saved.status_code == 200, saved.text
    assert "menu_extensions" not in await stored()
    assert (await stored())["privacy"]["excluded_domains"] == ["lawfirm.example"]
    listed = await _patch_organization(gateway, keys, {"menu_extensions": ["100"]})
    assert listed.status_code == 200, listed.text
    assert (await stored())["menu_extensions"] == ["100"]
    cleared = await _patch_organization(gateway, keys, {"menu_extensions": []})
    assert (cleared.json()["version"], cleared.json()["settings"]["menu_extensions"]) == (3, [])
    assert "menu_extensions" not in await stored()
    whole = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()
    assert (whole["errors"], whole["settings"]["menu_extensions"]) == ([], [])


async def test_a_document_broken_by_hand_is_shown_with_its_errors_and_fixed_by_a_patch(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                """UPDATE tenants SET settings = '{"privacy": {"excluded_domain": ["x.example"]}}' WHERE tenant_id = 'acme'"""
            )
        )
    shown = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()
    assert shown["errors"] == [
        {
            "in": "stored settings",
            "field": "privacy.excluded_domain",
            "reason": "Extra inputs are not permitted",
        }
    ]
    fixed = await gateway.patch(
        "/v1/settings/privacy",
        json={"excluded_domain": None, "excluded_domains": ["x.example"]},
        headers=bearer(keys.admin),
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["settings"]["excluded_domains"] == ["x.example"]
    assert (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()["errors"] == []


async def test_excluded_addresses_broken_by_hand_are_shown_and_fixed_by_a_patch(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """A mapping among the stored entries (edited by hand) is listed in GET's errors; a PATCH that
    replaces the list answers 200 (it raised a TypeError, a 500, comparing with what was stored)."""
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                """UPDATE tenants SET settings = '{"privacy": {"excluded_addresses": """
                """["ana@seller.example", {"x": 1}]}}' WHERE tenant_id = 'acme'"""
            )
        )
    shown = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()
    assert [e["field"] for e in shown["errors"]] == ["privacy.excluded_addresses.1"]
    fixed = await gateway.patch(
        "/v1/settings/privacy",
        json={"excluded_addresses": ["ana@seller.example", "ceo@acme.example"]},
        headers=bearer(keys.admin),
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["settings"]["excluded_addresses"] == ["ana@seller.example", "ceo@acme.example"]
    assert (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()["errors"] == []


async def test_excluded_addresses_keep_every_documented_form_and_what_was_saved_before(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """An address (any case) and a phone number as people write it (E.164, or national in the
    tenant's phone region: docs/webhooks.md, "Privacy") are saved; an entry an earlier release saved
    is kept when another setting changes (only what a change brings is refused)."""
    forms = ["CEO@Acme.example", "+14155550100", "+1 (415) 555-2671", "(415) 555-2672"]
    saved = await gateway.patch(
        "/v1/settings/privacy", json={"excluded_addresses": forms}, headers=bearer(keys.admin)
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["settings"]["excluded_addresses"] == forms
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                """UPDATE tenants SET settings = jsonb_set(settings, '{privacy,excluded_addresses}', """
                """'["ana@"]') WHERE tenant_id = 'acme'"""
            )
        )
    kept = await gateway.patch(
        "/v1/settings/privacy", json={"keep_subjects": True}, headers=bearer(keys.admin)
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["settings"]["excluded_addresses"] == ["ana@"]
    # A national number is read in the tenant's region: a UK one in a GB tenant, not in a US one.
    uk = {"excluded_addresses": ["ana@", "020 7946 0958"]}
    refused = await gateway.patch("/v1/settings/privacy", json=uk, headers=bearer(keys.admin))
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["privacy.excluded_addresses.1"]
    region = await gateway.patch(
        "/v1/settings", json={"default_phone_region": "GB", "privacy": uk}, headers=bearer(keys.admin)
    )
    assert region.status_code == 200, region.text
    assert region.json()["settings"]["privacy"]["excluded_addresses"] == ["ana@", "020 7946 0958"]


async def test_a_new_phone_region_warns_of_each_saved_national_number_it_reads_anew(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """A number saved without + was read in the tenant's region when saved: a change of region
    reads it anew, silently before (``(415) 555-2671`` saved under US became a German number
    under DE). The change is saved and its answer names each such entry and its new reading."""
    forms = ["+14155550100", "(415) 555-2671", "ceo@acme.example"]
    saved = await gateway.patch(
        "/v1/settings",
        json={"default_phone_region": "US", "privacy": {"excluded_addresses": forms}},
        headers=bearer(keys.admin),
    )
    assert (saved.status_code, saved.json()["warnings"]) == (200, [])
    moved = await _patch_organization(gateway, keys, {"default_phone_region": "DE"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["warnings"] == [
        {
            "field": "privacy.excluded_addresses.1",
            "reason": "'(415) 555-2671' is read in the tenant's phone region, now DE: it now reads as "
            "+494155552671, not +14155552671 as in US; write it in E.164 (with + and the country "
            "code) to keep it",
        }
    ]
    # Where it reads as no number at all, the warning says so; a change keeping the region, none.
    gone = await _patch_organization(gateway, keys, {"default_phone_region": "GB"})
    assert [w["reason"].split(": it ")[1].split(",")[0] for w in gone.json()["warnings"]] == [
        "now reads as no number (it excludes nobody)"
    ]
    same = await gateway.patch(
        "/v1/settings/privacy", json={"keep_subjects": True}, headers=bearer(keys.admin)
    )
    assert (same.status_code, same.json()["warnings"]) == (200, [])


async def test_an_alias_to_a_rep_the_crm_data_does_not_hold_is_saved_with_a_warning(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    """A rep may arrive from the CRM after the mapping naming it, so the entry is saved; the answer
    names each entry the change brings whose rep id no live rep holds (a typo maps nobody). Before
    2026-12 it was saved silently."""
    body = {
        "rep_aliases": {"u-9": "rep-1", "7702": "rep-tyop", "7703": "7702", "ana@seller.example": "rep-2"}
    }
    saved = await _patch_organization(gateway, keys, body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["settings"]["rep_aliases"] == body["rep_aliases"]
    assert saved.json()["warnings"] == [
        {
            "field": "rep_aliases.7702",
            "reason": "maps to 'rep-tyop', which is no rep in the tenant's CRM data (yet): saved, and "
            "applied once the CRM sync brings that rep; if the id is a typo, correct it",
        }
    ]
    # Only what a change brings is named: another entry, and a rep deleted from the CRM since.
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE ref_reps SET deleted = true WHERE tenant_id = 'acme' AND rep_id = 'rep-3'")
        )
    more = await gateway.patch(
        "/v1/settings", json={"rep_aliases": {"u-10": "rep-3", "u-11": "rep-4"}}, headers=bearer(keys.admin)
    )
    assert more.status_code == 200, more.text
    assert [(w["field"], w["reason"].split(",")[0]) for w in more.json()["warnings"]] == [
        ("rep_aliases.u-10", "maps to 'rep-3'")
    ]
    # Corrected: no warning; the whole document and one group answer alike.
    fixed = await _patch_organization(gateway, keys, {"rep_aliases": {"7702": "rep-4"}})
    assert (fixed.status_code, fixed.json()["warnings"]) == (200, [])
    # Another tenant's rep is no rep of this one.
    theirs = await _patch_organization(gateway, keys, {"rep_aliases": {"7704": "rep-9"}})
    assert [w["field"] for w in theirs.json()["warnings"]] == ["rep_aliases.7704"]


async def test_settings_need_the_admin_scope(gateway: httpx.AsyncClient, keys: Keys) -> None:
    assert (await gateway.get("/v1/settings", headers=bearer(keys.read))).status_code == 403
    assert (await gateway.patch("/v1/settings", json={}, headers=bearer(keys.read))).status_code == 403
    assert (await gateway.get("/v1/settings/nothing", headers=bearer(keys.admin))).status_code == 422


async def test_a_calendar_change_starts_a_rollup_rebuild_whose_progress_is_visible(
    gateway: httpx.AsyncClient, keys: Keys, db_engine: AsyncEngine
) -> None:
    unrelated = await gateway.patch(
        "/v1/settings/privacy", json={"keep_subjects": True}, headers=bearer(keys.admin)
    )
    assert unrelated.json()["jobs"] == []
    changed = await gateway.patch(
        "/v1/settings/calendar", json={"fiscal_year_start_month": 11}, headers=bearer(keys.admin)
    )
    [job_id] = changed.json()["jobs"]
    queued = (await gateway.get(f"/v1/settings/jobs/{job_id}", headers=bearer(keys.admin))).json()
    assert (queued["kind"], queued["state"], queued["progress"], queued["settings_version"]) == (
        "rebuild_rollups",
        "queued",
        None,
        2,
    )

    deps = MetricsDeps(db_engine, TenantSettingsCache(db_engine, ttl_seconds=0))

    async def handle(job: Job) -> dict[str, Any]:
        return await rebuild_tenant_rollups(deps, job)

    assert await JobWorker(db_engine, REBUILD_ROLLUPS, handle).run_once()
    done = (await gateway.get(f"/v1/settings/jobs/{job_id}", headers=bearer(keys.admin))).json()
    assert (done["state"], done["done"], done["total"], done["progress"]) == ("done", 6, 6, 1.0)
    assert done["result"]["fiscal_year_start_month"] == 11
    # Another tenant's job is not found.
    assert (
        await gateway.get(f"/v1/settings/jobs/{job_id}", headers=bearer(keys.other_admin))
    ).status_code == 404


async def test_a_reattribution_is_queued_for_attribution(gateway: httpx.AsyncClient, keys: Keys) -> None:
    queued = await gateway.post(
        "/v1/settings/reattribution",
        json={"since": "2026-11-01", "until": "2026-11-06"},
        headers=bearer(keys.admin),
    )
    assert queued.status_code == 202, queued.text
    assert (queued.json()["kind"], queued.json()["state"], queued.json()["parameters"]) == (
        "reattribute",
        "queued",
        {"since": "2026-11-01", "until": "2026-11-06", "dry_run": True},
    )
    backwards = await gateway.post(
        "/v1/settings/reattribution",
        json={"since": "2026-11-06", "until": "2026-11-01"},
        headers=bearer(keys.admin),
    )
    assert backwards.json()["errors"] == [{"in": "body", "field": "until", "reason": "must be after since"}]


async def test_a_policy_change_queues_a_dry_run_of_what_would_move(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    changed = await gateway.patch(
        "/v1/settings", json={"attribution": {"ambiguity_policy": "unique_only"}}, headers=bearer(keys.admin)
    )
    [job_id] = changed.json()["jobs"]
    job = (await gateway.get(f"/v1/settings/jobs/{job_id}", headers=bearer(keys.admin))).json()
    since = (datetime.now(UTC).date() - timedelta(days=90)).isoformat()
    assert (job["kind"], job["state"], job["parameters"], job["settings_version"]) == (
        "reattribute",
        "queued",
        {"since": since, "until": None, "dry_run": True},
        1,
    )
    both = await gateway.patch(
        "/v1/settings",
        json={"internal_domains": ["seller.example"], "time_zone": "Europe/Paris"},
        headers=bearer(keys.admin),
    )
    kinds = [
        (await gateway.get(f"/v1/settings/jobs/{j}", headers=bearer(keys.admin))).json()["kind"]
        for j in both.json()["jobs"]
    ]
    assert kinds == ["rebuild_rollups", "reattribute"]


LAX_VALUES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (method, route, body, field, reason): coercion would hide each of these mistakes.
    ("PUT", "/v1/insight-thresholds", {"stale_after_days": True}, "stale_after_days", "integer"),
    ("PUT", "/v1/insight-thresholds", {"stale_after_days": "10"}, "stale_after_days", "integer"),
    ("PUT", "/v1/insight-thresholds", {"stale_after_days": 10.0}, "stale_after_days", "integer"),
    ("PUT", "/v1/insight-thresholds", {"min_team_size": False}, "min_team_size", "integer"),
    (
        "PUT",
        "/v1/insight-thresholds",
        {"at_risk_share_of_team_median": "0.5"},
        "at_risk_share_of_team_median",
        "number",
    ),
    (
        "PATCH",
        "/v1/settings",
        {"insight_thresholds": {"stale_after_days": True}},
        "insight_thresholds.stale_after_days",
        "integer",
    ),
    (
        "PATCH",
        "/v1/settings",
        {"insight_thresholds": {"stale_after_days": 10.0}},
        "insight_thresholds.stale_after_days",
        "integer",
    ),
    ("PATCH", "/v1/settings", {"fiscal_year_start_month": "4"}, "fiscal_year_start_month", "integer"),
    ("PATCH", "/v1/settings", {"privacy": {"keep_subjects": "true"}}, "privacy.keep_subjects", "boolean"),
    (
        "PATCH",
        "/v1/settings",
        {"privacy": {"drop_internal_only": 1}},
        "privacy.drop_internal_only",
        "boolean",
    ),
    (
        "PATCH",
        "/v1/settings",
        {"retention": {"activities_days": 30.0}},
        "retention.activities_days",
        "integer",
    ),
    (
        "PATCH",
        "/v1/settings",
        {"metrics": {"conversation_min_seconds": "45"}},
        "metrics.conversation_min_seconds",
        "integer",
    ),
]


@pytest.mark.parametrize(("method", "route", "body", "field", "kind"), LAX_VALUES)
async def test_a_lax_value_is_refused_by_name_not_coerced(
    gateway: httpx.AsyncClient,
    keys: Keys,
    method: str,
    route: str,
    body: dict[str, Any],
    field: str,
    kind: str,
) -> None:
    refused = await gateway.request(method, route, json=body, headers=bearer(keys.admin))
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {"in": "body", "field": field, "reason": f"Input should be a valid {kind}"}
    ]
    whole = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()
    assert (whole["version"], whole["settings"]) == (0, DEFAULT_TENANT_SETTINGS.model_dump(mode="json"))


async def test_whole_numbers_and_booleans_written_as_json_are_kept(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    saved = await gateway.patch(
        "/v1/settings",
        json={
            "insight_thresholds": {"stale_after_days": 10, "at_risk_share_of_team_median": 1},
            "privacy": {"keep_subjects": True},
        },
        headers=bearer(keys.admin),
    )
    assert saved.status_code == 200, saved.text
    settings = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()["settings"]
    assert settings["insight_thresholds"]["stale_after_days"] == 10
    assert settings["insight_thresholds"]["at_risk_share_of_team_median"] == 1.0
    assert settings["privacy"]["keep_subjects"] is True


async def test_aliases_grown_patch_by_patch_past_the_limit_are_refused_and_change_nothing(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """Each request fits the body limit; the saved document may not grow past 5,000 aliases."""
    first = {f"dialer-{n}": "rep-a" for n in range(2_500)}
    saved = await gateway.patch(
        "/v1/settings/organization", json={"rep_aliases": first}, headers=bearer(keys.admin)
    )
    assert saved.status_code == 200, saved.text
    second = {f"softphone-{n}": "rep-b" for n in range(2_500)}
    saved = await gateway.patch(
        "/v1/settings/organization", json={"rep_aliases": second}, headers=bearer(keys.admin)
    )
    assert saved.status_code == 200, saved.text
    before = (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()
    assert len(before["settings"]["rep_aliases"]) == 5_000
    refused = await gateway.patch(
        "/v1/settings/organization", json={"rep_aliases": {"one-more": "rep-c"}}, headers=bearer(keys.admin)
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {"in": "body", "field": "rep_aliases", "reason": "holds 5001 aliases; at most 5000 may be saved"}
    ]
    assert (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json() == before
    history = (await gateway.get("/v1/settings/history", headers=bearer(keys.admin))).json()
    assert [v["version"] for v in history["items"]] == [2, 1]


@pytest.mark.parametrize("zone", ["right/UTC", "posix/Europe/Paris", "posixrules", "localtime"])
async def test_a_time_zone_file_the_database_does_not_know_is_refused_by_name(
    gateway: httpx.AsyncClient, keys: Keys, zone: str
) -> None:
    """Python's zoneinfo opens any file of the zone directory (a leap-second ``right/`` copy, the
    machine's ``localtime``); PostgreSQL, which buckets the funnel and rebuilds rollups in the
    tenant's zone, knows none of them. Saved, they made the tenant's funnel a 500 and its rollup
    rebuild fail."""
    refused = await gateway.patch(
        "/v1/settings/calendar", json={"time_zone": zone}, headers=bearer(keys.admin)
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "in": "body",
            "field": "time_zone",
            "reason": f"{zone!r} is not a time zone the database knows: write an IANA zone, Europe/Paris",
        }
    ]
    assert (await gateway.get("/v1/settings", headers=bearer(keys.admin))).json()["version"] == 0
    funnel = await gateway.get(
        "/v1/funnel",
        params={"rep_id": "rep-1", "from": "2026-11-01", "to": "2026-11-30"},
        headers=bearer(keys.read),
    )
    assert funnel.status_code == 200, funnel.text


async def test_calendar_flips_while_a_rebuild_waits_queue_no_other(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """A rollup rebuild holds the tenant's rollup lock for its whole transaction (19 s for 300,000
    contributions on a loaded 2-core machine), and every metrics batch holding one of the tenant's
    messages waits for it, other tenants' messages in it too. A rebuild reads the calendar when it
    runs, so one still queued does what another would: 10 flips queued 10 rebuilds, now 1."""
    answered = []
    for month in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11):
        changed = await gateway.patch(
            "/v1/settings/calendar", json={"fiscal_year_start_month": month}, headers=bearer(keys.admin)
        )
        assert changed.status_code == 200, changed.text
        answered += changed.json()["jobs"]
    assert len(answered) == 10
    assert len(set(answered)) == 1
