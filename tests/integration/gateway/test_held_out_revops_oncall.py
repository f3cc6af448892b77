"""Held-out situations of two outsiders: a RevOps admin configuring tenants without SQL, and a
platform engineer on call following docs/operations.md.

Written from README, docs/api.md, docs/metrics.md, docs/operations.md and ``spm --help`` (with each
subcommand's ``--help``) before any code under ``services/``, ``libs/`` or ``spm/`` was read. Each
situation is one test; its docstring says what the docs promise (``EXPECTED``).

The admin works on the gateway's seeded tenants (``acme``: teams ``team-a``, ``team-b``, reps
``rep-1``..``rep-4``, roles ``SDR`` and ``Account Executive``; ``globex``: ``team-z``, ``rep-9``, a
``BDR``), through the admin routes and the ``spm`` CLI (against the same database and broker).
The on-call engineer runs the runbook's commands against a database and broker, and reads the
consumers' ``/metrics`` on an in-process stack.

Record. First run, 17 situations (O7 and O8 added after, each written before it ran): 13 of 17.
R1 was this test's reading (a time zone change also answers the dry-run re-attribution a few
paragraphs on; docs/api.md now says "two" where it said one job); R10 was the product (goals, set
or removed from the API or the CLI, were not in the audit log README promises for every change of
a tenant's setup: now ``goal.set``, ``goal.removed``); O3 was this test's world (the seeded
gateway tenants hold made-up activity payloads: re-attribution runs on O5's real pipeline instead);
O5 was the product twice (``spm_consumer_retrying_seconds`` was absent until a consumer's first
progress tick, 5 s; now 0 from its start) and the docs once (the gateway's ``/readyz`` checks
PostgreSQL only, as it should: docs/operations.md said Kafka too). O7's first run showed the DLQ
inspection without the ``ce_tenant`` the runbook says to read there (now a ``tenant`` column, checked
since) and, 1 run in 4, replayed letters sent back to the DLQ by an attribution that had not
heard of the fix yet (O8, now deterministic: a broken tenant's settings are read afresh before its messages are parked).
Added after (four more, each written before it ran): R12 and R13 were the product (an alert
webhook, an outbound destination of the tenant's data, was added and removed without an audit entry;
the first saved scoring model's audit entry had no ``before``, though the default, version 1, was in
force); O9 (now in O1) and R14 were right at their first run. Against the product as it was: 15
of 23 situations (17 of 23 with R1's and O3's readings corrected); now 23 of 23 (22 tests).
R7's check of the misspelled kind, made exact after it passed, showed the field as
``activity_weights.call.dailled.[key]``: a refused mapping key is now named by itself.
"""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import TopicPartition
from prometheus_client import generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db.migrate import head_revision
from libs.common.kafka.clients import end_offsets
from libs.common.kafka.failures import TenantSettingsInvalid
from libs.common.settings import DatabaseSettings, KafkaSettings
from libs.common.tenant_settings_store import TenantSettingsCache, settings_of_tenant
from libs.common.testing.stack import in_process_stack
from libs.common.topics import ACTIVITY_INGESTED, CRM_ENTITY_CHANGED
from tests.integration.attribution.attribution_support import rows
from tests.integration.cli.test_cli_tenant_settings import _spm
from tests.integration.common.poison_messages import call_message, crm_for_one_rep, produce
from tests.integration.polling import eventually, poll_json
from tests.integration.quarter.quarter_support import configure, dial, new_tenant, post, rep, settle, sync

from .gateway_support import Keys, bearer

REPO = Path(__file__).resolve().parents[3]


def _key_id(key: str) -> str:
    return "_".join(key.split("_")[:3])


def _fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


async def _version(gateway: httpx.AsyncClient, key: str) -> int:
    return int((await gateway.get("/v1/settings", headers=bearer(key))).json()["version"])


async def _audit(gateway: httpx.AsyncClient, key: str, action: str | None = None) -> list[dict[str, Any]]:
    query = f"?action={action}" if action else ""
    answer = await gateway.get(f"/v1/audit{query}", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


# --- Persona 1: the RevOps admin ---------------------------------------------------------------------


async def test_r1_time_zone_is_set_read_back_and_queues_a_rebuild(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: ``PATCH /v1/settings/calendar`` with a time zone answers 200, version 1, the group
    as saved, and one ``rebuild_rollups`` job (queued: no metrics here); the group reads back; the
    other tenant keeps version 0 and UTC."""
    saved = await gateway.patch(
        "/v1/settings/calendar", json={"time_zone": "Europe/Paris"}, headers=bearer(keys.admin)
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert (body["version"], body["settings"], body["changed_by"]) == (
        1,
        {"time_zone": "Europe/Paris", "fiscal_year_start_month": 1},
        _key_id(keys.admin),
    )
    jobs = [
        (await gateway.get(f"/v1/settings/jobs/{j}", headers=bearer(keys.admin))).json() for j in body["jobs"]
    ]
    # The rebuild, and (docs/api.md, a few paragraphs on) the dry-run re-attribution of the last 90 days.
    assert sorted(
        (j["kind"], j["state"], j["settings_version"], j["parameters"].get("dry_run")) for j in jobs
    ) == [
        ("reattribute", "queued", 1, True),
        ("rebuild_rollups", "queued", 1, None),
    ]
    read = (await gateway.get("/v1/settings/calendar", headers=bearer(keys.admin))).json()
    assert read["settings"] == {"time_zone": "Europe/Paris", "fiscal_year_start_month": 1}
    theirs = (await gateway.get("/v1/settings", headers=bearer(keys.other_admin))).json()
    assert (theirs["version"], theirs["settings"]["time_zone"]) == (0, "UTC")


async def test_r2_unknown_and_not_iana_time_zones_are_refused_naming_time_zone(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: an unknown zone and ``right/UTC`` are 422 naming ``time_zone`` (the latter with the
    docs' reason); nothing saved (version 0)."""
    unknown = await gateway.patch(
        "/v1/settings/calendar", json={"time_zone": "Mars/Olympus"}, headers=bearer(keys.admin)
    )
    assert (unknown.status_code, unknown.json()["errors"]) == (
        422,
        [
            {
                "in": "body",
                "field": "time_zone",
                "reason": "Value error, 'Mars/Olympus' is not an IANA time zone",
            }
        ],
    )
    right = await gateway.patch("/v1/settings", json={"time_zone": "right/UTC"}, headers=bearer(keys.admin))
    assert (right.status_code, right.json()["errors"]) == (
        422,
        [
            {
                "in": "body",
                "field": "time_zone",
                "reason": "'right/UTC' is not a time zone the database knows: write an IANA zone, Europe/Paris",
            }
        ],
    )
    assert await _version(gateway, keys.admin) == 0


async def test_r3_a_typo_is_the_docs_problem_body(gateway: httpx.AsyncClient, keys: Keys) -> None:
    """EXPECTED: docs/api.md's example, word for word."""
    typo = await gateway.patch(
        "/v1/settings", json={"privacy": {"excluded_domain": ["lawfirm.example"]}}, headers=bearer(keys.admin)
    )
    assert typo.status_code == 422
    problem = typo.json()
    assert (problem["title"], problem["detail"], problem["errors"]) == (
        "Invalid settings",
        "body privacy.excluded_domain: Extra inputs are not permitted",
        [{"in": "body", "field": "privacy.excluded_domain", "reason": "Extra inputs are not permitted"}],
    )
    assert await _version(gateway, keys.admin) == 0


async def test_r4_there_is_no_week_start_setting_sunday_or_sunday(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: weeks are ISO, Monday to Sunday (docs/metrics.md); ``week_start`` is no setting, so
    ``"Sunday"`` and ``"sunday"`` alike are 422 naming ``week_start``, on the document and on the
    calendar group."""
    for value in ("Sunday", "sunday"):
        for route in ("/v1/settings", "/v1/settings/calendar"):
            answer = await gateway.patch(route, json={"week_start": value}, headers=bearer(keys.admin))
            assert (answer.status_code, _fields(answer)) == (422, ["week_start"]), (route, answer.text)
    assert await _version(gateway, keys.admin) == 0


async def test_r5_values_are_not_coerced_and_ranges_hold(gateway: httpx.AsyncClient, keys: Keys) -> None:
    """EXPECTED: ``fiscal_year_start_month`` 13 and 0 are 422 naming it; ``"2"`` is 422
    ``Input should be a valid integer``; a key of another group on a group route is 422 naming it."""
    for month in (13, 0):
        answer = await gateway.patch(
            "/v1/settings/calendar", json={"fiscal_year_start_month": month}, headers=bearer(keys.admin)
        )
        assert (answer.status_code, _fields(answer)) == (422, ["fiscal_year_start_month"])
    text_month = await gateway.patch(
        "/v1/settings/calendar", json={"fiscal_year_start_month": "2"}, headers=bearer(keys.admin)
    )
    assert (text_month.status_code, text_month.json()["errors"][0]["reason"]) == (
        422,
        "Input should be a valid integer",
    )
    other_group = await gateway.patch(
        "/v1/settings/calendar", json={"privacy": {"keep_subjects": True}}, headers=bearer(keys.admin)
    )
    assert (other_group.status_code, _fields(other_group)) == (422, ["privacy"])
    thresholds = await gateway.put(
        "/v1/insight-thresholds", json={"stale_after_days": "10"}, headers=bearer(keys.admin)
    )
    assert (thresholds.status_code, thresholds.json()["errors"]) == (
        422,
        [{"in": "body", "field": "stale_after_days", "reason": "Input should be a valid integer"}],
    )
    assert await _version(gateway, keys.admin) == 0


async def test_r6_the_same_values_again_save_nothing_and_audit_nothing(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: a change is one ``settings.changed`` audit entry naming the actor (the key id,
    ``api_key``), with the changed setting before and after; the same values again answer 200 with
    the same version and no new history or audit entry."""
    body = {"time_zone": "America/New_York"}
    first = await gateway.patch("/v1/settings/calendar", json=body, headers=bearer(keys.admin))
    again = await gateway.patch("/v1/settings/calendar", json=body, headers=bearer(keys.admin))
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["version"], again.json()["version"]) == (1, 1)
    history = (await gateway.get("/v1/settings/history", headers=bearer(keys.admin))).json()
    assert [v["version"] for v in history["items"]] == [1]
    [entry] = await _audit(gateway, keys.admin, "settings.changed")
    assert (entry["actor"], entry["credential"], entry["target"], entry["before"], entry["after"]) == (
        _key_id(keys.admin),
        "api_key",
        "settings",
        {"version": 0, "time_zone": "UTC"},
        {"version": 1, "time_zone": "America/New_York"},
    )
    assert await _audit(gateway, keys.other_admin) == []


async def test_r7_scoring_weights_out_of_range_or_misspelled_are_refused(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: weights between 0 and 1000 (docs/metrics.md): 1001 and -1 are 422 naming
    ``activity_weights.call.dialled``; a kind that is not one of the listed ones (``call.dailled``)
    is 422 naming it; nothing saved (version 1, ``default``)."""
    base = {"call.dialled": 1.0, "call.connected": 2.0, "call.conversation": 3.0}
    for weight, reason in ((1001.0, "less than or equal to 1000"), (-1.0, "greater than or equal to 0")):
        answer = await gateway.put(
            "/v1/scoring-model",
            json={"activity_weights": base | {"call.dialled": weight}},
            headers=bearer(keys.admin),
        )
        assert (answer.status_code, answer.json()["errors"]) == (
            422,
            [{"in": "body", "field": "activity_weights.call.dialled", "reason": f"Input should be {reason}"}],
        )
    typo = await gateway.put(
        "/v1/scoring-model",
        json={"activity_weights": base | {"call.dailled": 2.0}},
        headers=bearer(keys.admin),
    )
    # The field is the key itself (before: "activity_weights.call.dailled.[key]").
    assert (typo.status_code, _fields(typo)) == (422, ["activity_weights.call.dailled"])
    assert typo.json()["errors"][0]["reason"].startswith("Input should be 'call.dialled', 'call.connected'")
    model = (await gateway.get("/v1/scoring-model", headers=bearer(keys.read))).json()
    assert (model["version"], model["created_by"]) == (1, "default")


async def test_r8_a_new_scoring_model_is_versioned_audited_and_stays_in_its_tenant(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: a valid PUT is version 2 by the admin key; the audit log has ``scoring_model.changed``;
    the other tenant still reads version 1; a read key is 403."""
    weights = {"call.dialled": 2.0, "email.sent": 1.0, "meeting.held": 3.0}
    saved = await gateway.put(
        "/v1/scoring-model", json={"activity_weights": weights}, headers=bearer(keys.admin)
    )
    assert saved.status_code == 200, saved.text
    assert (saved.json()["version"], saved.json()["created_by"]) == (2, _key_id(keys.admin))
    [entry] = await _audit(gateway, keys.admin, "scoring_model.changed")
    assert (entry["actor"], entry["target"], entry["after"]["version"]) == (
        _key_id(keys.admin),
        "scoring_model",
        2,
    )
    theirs = (await gateway.get("/v1/scoring-model", headers=bearer(keys.other_read))).json()
    assert theirs["version"] == 1
    refused = await gateway.put(
        "/v1/scoring-model", json={"activity_weights": weights}, headers=bearer(keys.read)
    )
    assert refused.status_code == 403


async def test_r9_goal_mistakes_name_the_field(gateway: httpx.AsyncClient, keys: Keys) -> None:
    """EXPECTED: a negative or zero target, an unknown metric or period, an unknown team, another
    tenant's team, a role nobody holds (``sdr`` for ``SDR``: the reason lists the roles held) are
    each 422 naming the field; nothing saved."""
    good: dict[str, object] = {
        "scope": "team",
        "subject_id": "team-a",
        "period": "week",
        "metric": "dials",
        "target": 60,
    }
    mistakes: list[tuple[dict[str, object], str]] = [
        ({"target": -5}, "target"),
        ({"target": 0}, "target"),
        ({"metric": "dails"}, "metric"),
        ({"period": "fortnight"}, "period"),
        ({"subject_id": "team-nope"}, "subject_id"),
        ({"subject_id": "team-z"}, "subject_id"),
    ]
    for change, field in mistakes:
        answer = await gateway.put("/v1/goals/east-dials", json=good | change, headers=bearer(keys.admin))
        assert (answer.status_code, _fields(answer)) == (422, [field]), (change, answer.text)
    role = await gateway.put(
        "/v1/goals/sdr-dials",
        json={"scope": "role", "role": "sdr", "period": "week", "metric": "dials", "target": 50},
        headers=bearer(keys.admin),
    )
    assert (role.status_code, _fields(role)) == (422, ["role"])
    assert (
        role.json()["errors"][0]["reason"]
        == "no rep holds the role 'sdr' (roles held: 'Account Executive', 'SDR')"
    )
    assert (await gateway.get("/v1/goals", headers=bearer(keys.read))).json()["items"] == []
    # The other tenant's own team is fine there.
    theirs = await gateway.put(
        "/v1/goals/zeta-dials", json=good | {"subject_id": "team-z"}, headers=bearer(keys.other_admin)
    )
    assert theirs.status_code == 200, theirs.text


async def test_r10_a_goal_is_set_listed_removed_and_audited(gateway: httpx.AsyncClient, keys: Keys) -> None:
    """EXPECTED: PUT a role goal is listed with ``role`` and a null ``subject_id``; DELETE is 204,
    again 404; README: "Every command that changes a tenant's setup is in its audit log", so the
    goal's setting and removal are entries naming the goal."""
    body = {"scope": "role", "role": "SDR", "period": "week", "metric": "dials", "target": 50}
    saved = await gateway.put("/v1/goals/sdr-dials", json=body, headers=bearer(keys.admin))
    assert saved.status_code == 200, saved.text
    [goal] = (await gateway.get("/v1/goals", headers=bearer(keys.read))).json()["items"]
    assert (goal["goal_id"], goal["scope"], goal["role"], goal["subject_id"], goal["target"]) == (
        "sdr-dials",
        "role",
        "SDR",
        None,
        50.0,
    )
    assert (await gateway.delete("/v1/goals/sdr-dials", headers=bearer(keys.admin))).status_code == 204
    assert (await gateway.delete("/v1/goals/sdr-dials", headers=bearer(keys.admin))).status_code == 404
    goal_audited: dict[str, object] = {"scope": "role", "subject_id": None, "role": "SDR", "period": "week"}
    goal_audited |= {"metric": "dials", "target": 50.0}
    entries = [
        (e["action"], e["target"], e["actor"], e["before"], e["after"])
        for e in await _audit(gateway, keys.admin)
    ]
    assert entries == [
        ("goal.removed", "goal:sdr-dials", _key_id(keys.admin), goal_audited, None),
        ("goal.set", "goal:sdr-dials", _key_id(keys.admin), None, goal_audited),
    ]


# --- Persona 1 through the CLI ---------------------------------------------------------------------


async def test_r11_cli_mistakes_change_nothing_and_a_change_is_audited_as_cli(
    database_url: str, kafka_settings: KafkaSettings, gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: ``spm tenants settings set`` with an unknown zone or a ``week_start`` exits non-zero
    naming the setting; ``spm goals set`` with a negative target exits non-zero naming ``target``;
    nothing saved; a good change is audited as ``cli:<user>``."""
    zone = _spm(
        ["tenants", "settings", "set", "acme", "time_zone=Mars/Olympus"], database_url, kafka_settings
    )
    assert (zone.returncode, zone.stdout, zone.stderr) == (
        2,
        "",
        "spm: time_zone: Value error, 'Mars/Olympus' is not an IANA time zone\n",
    )
    week = _spm(["tenants", "settings", "set", "acme", "week_start=sunday"], database_url, kafka_settings)
    assert (week.returncode, week.stdout, week.stderr) == (
        2,
        "",
        "spm: week_start: Extra inputs are not permitted\n",
    )
    goal = _spm(
        [
            "goals",
            "set",
            "--tenant",
            "acme",
            "g1",
            "--scope",
            "tenant",
            "--period",
            "week",
            "--metric",
            "dials",
            "--target",
            "-5",
        ],
        database_url,
        kafka_settings,
    )
    assert (goal.returncode, goal.stdout) == (2, "")
    assert "Invalid value: target: Input should be greater than or equal to 0.001" in goal.stderr
    assert await _version(gateway, keys.admin) == 0
    assert (await gateway.get("/v1/goals", headers=bearer(keys.read))).json()["items"] == []
    good = _spm(
        ["tenants", "settings", "set", "acme", "time_zone=Europe/Paris"], database_url, kafka_settings
    )
    assert good.returncode == 0, good.stderr
    [entry] = await _audit(gateway, keys.admin, "settings.changed")
    assert entry["actor"].startswith("cli:")
    assert entry["after"]["time_zone"] == "Europe/Paris"


# --- Persona 2: the platform engineer on call ----------------------------------------------------------


async def test_o1_migrate_status_names_the_head(database_url: str, kafka_settings: KafkaSettings) -> None:
    """EXPECTED: ``spm migrate --status`` on a migrated database names the head the runbook names
    (docs/operations.md, "Upgrading with migrations": "this release's head: ...") as the
    database's revision and as this release's head. (O9, added after: ``spm migrate`` on the head
    changes nothing and exits 0.) The head is read from the runbook, not written here: a release
    that adds a migration without updating the runbook fails this (the lead, after 0054)."""
    [documented] = re.findall(
        r"this release's head: (\w+)\)", (Path(__file__).parents[3] / "docs" / "operations.md").read_text()
    )
    assert documented == head_revision()
    upgrade = _spm(["migrate"], database_url, kafka_settings)
    assert upgrade.returncode == 0, upgrade.stderr
    status = _spm(["migrate", "--status"], database_url, kafka_settings)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count(documented) == 2, status.stdout


async def test_o2_runbook_sql_on_set_aside_versions_runs(db_engine: AsyncEngine) -> None:
    """EXPECTED: the runbook's query of ``metric_deferred_events`` runs (its columns exist) and finds
    nothing on a quiet tenant."""
    deferred = await rows(
        db_engine,
        "SELECT tenant_id, count(*), min(deferred_at) FROM metric_deferred_events GROUP BY tenant_id",
    )
    assert deferred == []


async def test_o3_runbook_commands_run_against_the_database_and_broker(
    database_url: str, kafka_settings: KafkaSettings, gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: the runbook's ``spm dlq inspect --topic activity-ingested --limit 50`` and ``spm dlq
    replay --topic activity-ingested --dry-run`` exit 0 on a quiet stack (re-attribution: O5)."""
    for args in (
        ["dlq", "inspect", "--topic", "activity-ingested", "--limit", "50"],
        ["dlq", "replay", "--topic", "activity-ingested", "--dry-run"],
    ):
        done = _spm(args, database_url, kafka_settings)
        assert done.returncode == 0, (args, done.stdout, done.stderr)


async def test_o4_an_unreachable_database_is_one_line_and_status_69(kafka_settings: KafkaSettings) -> None:
    """EXPECTED (README): a command that cannot reach PostgreSQL prints one line naming the address
    and the variable, and exits 69."""
    done = _spm(
        ["tenants", "settings", "get", "acme"],
        "postgresql+asyncpg://spm:spm@127.0.0.1:9/spm",
        kafka_settings,
    )
    assert done.returncode == 69, (done.stdout, done.stderr)
    assert done.stderr == (
        "spm: cannot reach PostgreSQL at 127.0.0.1:9/spm (connect call failed ('127.0.0.1', 9)); "
        "start the local stack with `spm up` or set DATABASE_URL\n"
    )


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((REPO / "deploy/components/monitoring/rules/spm-rules.yaml").read_text())
    groups = document.get("spec", document)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


RUNBOOK_ALERTS = {
    "SpmHttp5xxRateHigh",
    "SpmPipelineFreshnessSlow",
    "SpmDeadLettersWritten",
    "SpmDeadLetterRateHigh",
    "SpmConsumerLagHigh",
    "SpmConsumerStuck",
    "SpmConsumerRetrying",
    "SpmServiceNotReady",
    "SpmScrapeTargetDown",
    "SpmHeldSweepFailures",
    "SpmMetricsVersionsSetAsideLong",
    "SpmConnectorMailboxesBehind",
}

#: Named in docs/operations.md with the labels it gives (never a tenant but the deferred gauge).
RUNBOOK_SERIES = {
    "spm_consumer_lag_messages": {"service", "topic", "partition"},
    "spm_consumer_oldest_unprocessed_age_seconds": {"service", "topic", "partition"},
    "spm_consumer_retrying_seconds": {"service"},
    "spm_consumer_phase_seconds": {"service", "phase"},
    "spm_pipeline_freshness_seconds": set(),
    "spm_metrics_deferred_oldest_age_seconds": set(),
    "spm_ready": set(),
}


async def test_o5_every_alert_the_runbook_names_exists_and_reads_exported_series(
    database_url: str,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
) -> None:
    """EXPECTED: every alert docs/operations.md names is a rule; the series the runbook names are on
    the metrics service's ``/metrics`` with the labels it gives once a batch went through; and each
    ``spm_*`` series an alert reads is exported by some service of the stack."""
    rules = _rules()
    assert {r["alert"] for r in rules} >= RUNBOOK_ALERTS
    tenant = await new_tenant(db_engine, "ops")
    scores = "/v1/reps/rep-1/scores?granularity=week&from=2026-11-02&to=2026-11-02"
    async with in_process_stack(kafka_settings, database_settings) as stack:
        ana = rep("rep-1", "ana@seller.example", phones=["+14155550001"])
        await sync(stack, db_engine, tenant, "2026-11-01T00:00:00Z", ana)
        await post(stack, tenant, dial("d1", "+14155550001", "2026-11-02T15:00:00Z"))
        await settle(kafka_settings)
        before = await poll_json(stack.gateway, scores, tenant.read, lambda b: b["periods"] != [])
        # R12: a new scoring model rescores the history within the refresh interval (5 s).
        model = {"activity_weights": {"call.dialled": 4.0}}
        saved = await stack.gateway.put("/v1/scoring-model", json=model, headers=tenant.admin)
        assert saved.status_code == 200, saved.text
        after = await poll_json(
            stack.gateway, scores, tenant.read, lambda b: b["periods"][0]["score"] != 1.0, 20
        )
        exported: dict[str, str] = {}
        readiness: dict[str, Any] = {}
        for name, app in stack.apps.items():
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://x"
            ) as client:
                # The kubelet's readiness probe (docs/operations.md: the body names each check).
                ready = await client.get("/readyz")
                readiness[name] = (ready.status_code, ready.json())
                exported[name] = (await client.get("/metrics")).text
    assert (before["periods"][0]["score"], after["periods"][0]["score"]) == (1.0, 4.0)
    assert readiness == {
        "ingest": (200, {"ready": True, "checks": {"kafka": True, "database": True}}),
        "attribution": (200, {"ready": True, "checks": {"kafka": True, "database": True, "consumer": True}}),
        "metrics": (200, {"ready": True, "checks": {"kafka": True, "database": True, "consumer": True}}),
        # docs/operations.md said Kafka too; the read API stays up without the broker (overrides 503).
        "gateway": (200, {"ready": True, "checks": {"database": True}}),
    }
    # The runbook's re-attribution, dry run first: it moves nothing here, and only the real run is audited.
    runs: tuple[tuple[list[str], str], ...] = (
        (
            ["--dry-run"],
            "tenant ops: 1 activities examined, 0 attributions would change, 0 of them in their deal",
        ),
        (
            [],
            "tenant ops: 1 activities examined, 0 attributions changed, 0 of them in their deal; 0 versions published",
        ),
    )
    for dry, said in runs:
        done = _spm(
            ["reattribute", "--tenant", "ops", "--since", "2026-10-01", *dry], database_url, kafka_settings
        )
        assert (done.returncode, done.stdout.splitlines()[-1]) == (0, said), done.stderr
    audited = await rows(
        db_engine,
        "SELECT action, actor FROM audit_log WHERE tenant_id = 'ops' AND action LIKE 'attribution.%'",
    )
    assert [(a, actor.startswith("cli:")) for a, actor in audited] == [("attribution.reattributed", True)]
    for series, labels in RUNBOOK_SERIES.items():
        lines = [
            line
            for line in exported["metrics"].splitlines()
            if re.match(rf"{series}(_bucket|_sum)?[{{ ]", line)
        ]
        assert lines, series
        found = set(re.findall(r"(\w+)=\"", lines[0]))
        assert labels <= found, (series, found)
    read_by_alerts = {s for r in rules for s in re.findall(r"\b(spm_[a-z_]+)", str(r["expr"]))}
    # The connectors are not in the in-process stack: their instruments, once imported, are in the
    # same registry the services' ``/metrics`` serve.
    importlib.import_module("services.connectors.telemetry")
    exported["connectors"] = generate_latest().decode()
    everything = "\n".join(exported.values())
    unexported = sorted(
        s
        for s in read_by_alerts
        if not re.search(rf"^# TYPE ({s}|{re.sub(r'_(bucket|sum|count|total)$', '', s)}) ", everything, re.M)
    )
    assert unexported == []


async def test_o6_health_and_readiness_of_a_gateway_without_its_broker(gateway: httpx.AsyncClient) -> None:
    """EXPECTED: ``/healthz`` is 200 whatever the dependencies (the broker is unreachable here), and
    the gateway's ``/readyz`` checks PostgreSQL only (docs/operations.md, as corrected after O5): its
    reads stay in service without the broker."""
    healthz = await gateway.get("/healthz")
    readyz = await gateway.get("/readyz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok", "service": "gateway"})
    assert (readyz.status_code, readyz.json()) == (200, {"ready": True, "checks": {"database": True}})


async def dead_letters(kafka: KafkaSettings) -> tuple[int, ...]:
    """How many letters the CRM and the activity DLQs hold (one partition each)."""
    topics = [t.physical_dlq(kafka.topic_prefix) for t in (CRM_ENTITY_CHANGED, ACTIVITY_INGESTED)]
    ends = await end_offsets(kafka, [TopicPartition(t, 0) for t in topics])
    return tuple(ends[TopicPartition(t, 0)] for t in topics)


async def test_o7_dead_letters_of_a_tenant_with_broken_settings_are_inspected_fixed_and_replayed(
    database_url: str,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
) -> None:
    """EXPECTED (docs/operations.md, "Messages in a DLQ"): a tenant whose stored settings cannot apply
    has its messages parked with ``tenant <id>: settings invalid at <path>: ...``; ``spm dlq inspect``
    shows the error and the ``ce_tenant``; once ``spm tenants settings set`` fixes the setting,
    ``spm dlq replay --tenant`` applies the letters as if on time: the rep's connected call scores 6
    (dial 1 + connect 2 + conversation 3)."""
    tenant = await new_tenant(db_engine, "ops")
    await configure(db_engine, tenant, {"attribution": {"ambiguity_policy": "newest_deal"}})
    at = "2026-11-01T00:00:00+00:00"
    crm = crm_for_one_rep("ops", "rep-1", "+14155550001", "+12125550100", at)
    call = call_message(
        "ops", "c1", datetime(2026, 11, 2, 15, tzinfo=UTC), caller="+14155550001", callee="+12125550100"
    )
    scores = "/v1/reps/rep-1/scores?granularity=week&from=2026-11-02&to=2026-11-02"
    async with in_process_stack(
        kafka_settings, database_settings, ("attribution", "metrics", "gateway")
    ) as stack:
        await produce(kafka_settings, (CRM_ENTITY_CHANGED, crm))
        await produce(kafka_settings, (ACTIVITY_INGESTED, [call]))
        await eventually(
            lambda: dead_letters(kafka_settings),
            lambda n: n == (3, 1),
            30,
            "the tenant's letters in the DLQs",
        )
        inspected = _spm(
            ["dlq", "inspect", "--topic", "activity-ingested", "--limit", "50"], database_url, kafka_settings
        )
        assert inspected.returncode == 0, inspected.stderr
        [row] = [line.split("│")[1:-1] for line in inspected.stdout.splitlines() if line.startswith("│ 0/0")]
        assert ([c.strip() for c in row[:2]], row[3].strip()) == (["0/0", "ops"], "attribution")
        assert row[-1].strip() == "TenantSettingsInvalid: tenant ops: settings invalid at"
        fixed = _spm(
            ["tenants", "settings", "set", "ops", "attribution.ambiguity_policy=null"],
            database_url,
            kafka_settings,
        )
        assert fixed.returncode == 0, fixed.stderr
        for topic, letters in (("crm-entity-changed", 3), ("activity-ingested", 1)):
            replayed = _spm(
                ["dlq", "replay", "--topic", topic, "--tenant", "ops"], database_url, kafka_settings
            )
            assert replayed.returncode == 0, replayed.stderr
            assert replayed.stdout.splitlines()[-1] == (
                f"replayed {letters} of {letters}; refused 0 over the cap of 3 replays; 0 from another topic; "
                "0 of other tenants left as they were"
            )
        counted = await poll_json(stack.gateway, scores, tenant.read, lambda b: b["periods"] != [], 30)
    assert counted["periods"][0]["score"] == 6.0


async def test_o8_a_replica_that_has_not_heard_the_fix_yet_does_not_park_the_replayed_letters(
    db_engine: AsyncEngine,
) -> None:
    """EXPECTED (the same runbook step): "fix the setting, then replay": a consumer replica still
    holding the broken copy (its ``settings-changed`` event not read yet, the cache's TTL 30 s) must
    not send the replayed letters back to the DLQ. Before: it did, for up to 30 s (seen in O7, 1 run
    in 4), each time spending one of the letters' ``--max-replays``."""
    tenant = await new_tenant(db_engine, "ops")
    await configure(db_engine, tenant, {"attribution": {"ambiguity_policy": "newest_deal"}})
    cache = TenantSettingsCache(db_engine)
    with pytest.raises(TenantSettingsInvalid):
        await settings_of_tenant("ops", cache)
    await configure(db_engine, tenant, {"attribution": {"ambiguity_policy": "unique_only"}})
    settings = await settings_of_tenant("ops", cache)  # no invalidate(): the event not heard yet
    assert settings.attribution.ambiguity_policy == "unique_only"


# --- Added after the first run, each written before it ran ----------------------------------------


async def test_r12_an_alert_webhook_is_in_the_audit_log_without_its_secret(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED (README: every change of a tenant's setup is in its audit log; docs/api.md: no secret
    is ever logged): registering an alert webhook and removing it are two audit entries by the
    admin key naming its host, and neither the ``whsec_`` secret shown once at creation nor the
    token in a Slack-style URL's path appears in any (the lead, after the first run)."""
    made = await gateway.post(
        "/v1/alert-webhooks",
        json={"url": "https://hooks.example.com/services/T01/B02/s3cr3tt0ken"},
        headers=bearer(keys.admin),
    )
    assert made.status_code == 201, made.text
    webhook = made.json()
    removed = await gateway.delete(f"/v1/alert-webhooks/{webhook['webhook_id']}", headers=bearer(keys.admin))
    assert removed.status_code == 204
    entries = await _audit(gateway, keys.admin)
    hook = {"url": "https://hooks.example.com/***", "format": "standard"}
    target = f"alert_webhook:{webhook['webhook_id']}"
    assert [
        (e["action"], e["target"], e["actor"], e["credential"], e["before"], e["after"]) for e in entries
    ] == [
        ("alert_webhook.removed", target, _key_id(keys.admin), "api_key", hook, None),
        ("alert_webhook.added", target, _key_id(keys.admin), "api_key", None, hook),
    ]
    assert webhook["secret"] not in str(entries)
    assert "s3cr3tt0ken" not in str(entries)


async def test_r13_null_resets_a_setting_and_a_new_models_audit_shows_the_old_one(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """EXPECTED: ``PATCH`` with ``null`` resets a setting to its default (RFC 7396): version 2, UTC;
    the scoring model's audit entry has the model before (version 1) and after (version 2)."""
    await gateway.patch("/v1/settings", json={"time_zone": "Asia/Tokyo"}, headers=bearer(keys.admin))
    reset = await gateway.patch("/v1/settings", json={"time_zone": None}, headers=bearer(keys.admin))
    assert (reset.status_code, reset.json()["version"], reset.json()["settings"]["time_zone"]) == (
        200,
        2,
        "UTC",
    )
    saved = await gateway.put(
        "/v1/scoring-model", json={"activity_weights": {"call.dialled": 2.0}}, headers=bearer(keys.admin)
    )
    assert saved.status_code == 200, saved.text
    [entry] = await _audit(gateway, keys.admin, "scoring_model.changed")
    assert (entry["before"]["version"], entry["after"]["version"]) == (1, 2)
    assert entry["after"]["activity_weights"]["call.dialled"] == 2.0


async def test_r14_a_time_zone_change_moves_a_sunday_night_dial_and_a_goal_shows_on_the_board(
    database_url: str,
    kafka_settings: KafkaSettings,
    database_settings: DatabaseSettings,
    db_engine: AsyncEngine,
) -> None:
    """EXPECTED (docs/api.md, Consequences; Activity goals): a dial at 23:30 UTC on Sunday 8 November
    is in the week of 2 November under UTC; once the admin sets Europe/Paris and the rebuild job is
    done, it is in the week of 9 November (00:30 on Monday in Paris), the dry-run re-attribution
    counting 1 examined and 0 changed; ``spm tenants settings job`` shows the rebuild done. A
    tenant-wide goal of 4 dials a week, with one dial this week, shows on this week's dials
    leaderboard entry: target 4, actual 1, attainment 0.25, not complete."""
    tenant = await new_tenant(db_engine, "cal")
    weeks = "/v1/reps/rep-1/scores?granularity=week&from=2026-10-26&to=2026-11-16"
    now = datetime.now(UTC).replace(microsecond=0)
    async with in_process_stack(kafka_settings, database_settings) as stack:
        ana = rep("rep-1", "ana@seller.example", phones=["+14155550001"])
        await sync(stack, db_engine, tenant, "2026-11-01T00:00:00Z", ana)
        sunday = dial("d1", "+14155550001", "2026-11-08T23:30:00Z")
        today = dial("d2", "+14155550001", (now - timedelta(minutes=5)).isoformat())
        await post(stack, tenant, sunday, today)
        await settle(kafka_settings)
        before = await poll_json(stack.gateway, weeks, tenant.read, lambda b: b["periods"] != [])
        changed = await stack.gateway.patch(
            "/v1/settings/calendar", json={"time_zone": "Europe/Paris"}, headers=tenant.admin
        )
        assert changed.status_code == 200, changed.text
        jobs = {}
        for job_id in changed.json()["jobs"]:
            job = await poll_json(
                stack.gateway,
                f"/v1/settings/jobs/{job_id}",
                tenant.admin,
                lambda j: j["state"] in ("done", "failed"),
            )
            jobs[job["kind"]] = job
        after = await poll_json(
            stack.gateway, weeks, tenant.read, lambda b: b["periods"] != before["periods"], 20
        )
        goal = {"scope": "tenant", "period": "week", "metric": "dials", "target": 4}
        assert (
            await stack.gateway.put("/v1/goals/weekly-dials", json=goal, headers=tenant.admin)
        ).status_code == 200
        board = await poll_json(
            stack.gateway,
            "/v1/leaderboard?period=week&metric=dials",
            tenant.read,
            lambda b: b["entries"] and b["entries"][0].get("goal") is not None,
            20,
        )
        shown = _spm(
            ["tenants", "settings", "job", "cal", jobs["rebuild_rollups"]["job_id"]],
            database_url,
            kafka_settings,
        )
    assert [(p["period_start"], p["score"]) for p in before["periods"] if p["score"]] == [("2026-11-02", 1.0)]
    assert [(p["period_start"], p["score"]) for p in after["periods"] if p["score"]] == [("2026-11-09", 1.0)]
    assert (jobs["rebuild_rollups"]["state"], jobs["reattribute"]["state"]) == ("done", "done")
    assert (jobs["reattribute"]["result"]["examined"], jobs["reattribute"]["result"]["changed"]) == (2, 0)
    assert (shown.returncode, shown.stdout.split(":")[0]) == (0, "rebuild_rollups done")
    entry = board["entries"][0]
    assert (entry["rep_id"], entry["value"]) == ("rep-1", 1.0)
    assert {
        k: entry["goal"][k] for k in ("metric", "goal_id", "target", "actual", "attainment", "complete")
    } == {
        "metric": "dials",
        "goal_id": "weekly-dials",
        "target": 4.0,
        "actual": 1.0,
        "attainment": 0.25,
        "complete": False,
    }
