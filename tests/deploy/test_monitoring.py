"""Alert rules, ServiceMonitors and the Grafana dashboard speak the services' metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .k8s_checks import CNPG_EXPORTER_SERIES, DEPLOY_DIR, REPO_ROOT, Manifest

MONITORING = DEPLOY_DIR / "components" / "monitoring"

#: The series the services expose (names without the histogram/counter suffixes Prometheus adds).
EXPOSED_SERIES = {
    "spm_http_requests_total": {"service", "method", "route", "status"},
    "spm_http_request_duration_seconds": {"service", "route"},
    "spm_consumer_messages_total": {"service", "topic", "outcome"},
    "spm_consumer_lag_messages": {"service", "topic", "partition"},
    "spm_consumer_oldest_unprocessed_age_seconds": {"service", "topic", "partition"},
    "spm_consumer_retrying_seconds": {"service"},
    "spm_consumer_batch_seconds": {"service"},
    "spm_dlq_messages_total": {"service", "topic"},
    "spm_pipeline_freshness_seconds": set(),
    "spm_ingest_events_total": {"source", "outcome"},
    "spm_ready": {"service"},
    "spm_connector_fetched_total": {"provider"},
    "spm_connector_errors_total": {"provider"},
    "spm_connector_lag_seconds": {"provider"},
    "spm_meetings_held_by_sweep_total": set(),
    "spm_held_sweep_failures_total": set(),
    "spm_metrics_deferred_versions": {"tenant"},
    "spm_metrics_deferred_oldest_age_seconds": set(),
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
ALERTS = {
    "SpmConsumerLagHigh",
    "SpmConsumerStuck",
    "SpmConsumerRetrying",
    "SpmDeadLettersWritten",
    "SpmDeadLetterRateHigh",
    "SpmHttp5xxRateHigh",
    "SpmPipelineFreshnessSlow",
    "SpmServiceNotReady",
    "SpmScrapeTargetDown",
    "SpmConnectorMailboxesBehind",
    "SpmHeldSweepFailures",
    "SpmMetricsVersionsSetAsideLong",
    "SpmDatabaseWalArchivingFailing",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def series_in(expression: str) -> set[str]:
    """The spm_* and cnpg_* metric names an expression reads, histogram suffixes folded away."""
    names = set()
    for name in re.findall(r"\b(?:spm|cnpg)_[a-z_]+", expression):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in EXPOSED_SERIES:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def rules() -> list[dict[str, Any]]:
    groups = load_yaml(MONITORING / "rules" / "spm-rules.yaml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_rule_carries_exactly_the_plain_rule_file() -> None:
    plain = load_yaml(MONITORING / "rules" / "spm-rules.yaml")
    custom_resource = load_yaml(MONITORING / "prometheusrule.yaml")
    assert custom_resource["spec"] == plain


def test_rendered_prod_carries_the_rules(rendered: dict[str, list[Manifest]]) -> None:
    [rule] = [m for m in rendered["prod"] if m["kind"] == "PrometheusRule"]
    assert rule["spec"] == load_yaml(MONITORING / "rules" / "spm-rules.yaml")


def test_alerts_cover_the_slos_and_read_only_exposed_series() -> None:
    assert {rule["alert"] for rule in rules()} == ALERTS
    for rule in rules():
        assert series_in(rule["expr"]) <= EXPOSED_SERIES.keys() | CNPG_EXPORTER_SERIES.keys(), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_every_runbook_anchor_exists_in_the_operations_guide() -> None:
    guide = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", guide, flags=re.MULTILINE)
    }
    for rule in rules():
        path, anchor = rule["annotations"]["runbook"].split("#")
        assert path == "docs/operations.md"
        assert anchor in anchors, rule["alert"]


def test_only_the_database_alert_reads_cloudnative_pgs_exporter() -> None:
    """cnpg_* series come from the PodMonitor spm-db, not from the services: a rule reading one
    reads only those listed, and an unknown cnpg_ name fails like an unknown spm_ name."""
    readers = {rule["alert"]: series_in(rule["expr"]) - EXPOSED_SERIES.keys() for rule in rules()}
    assert {alert: names for alert, names in readers.items() if names} == {
        "SpmDatabaseWalArchivingFailing": {"cnpg_pg_stat_archiver_failed_count"}
    }
    assert series_in("increase(cnpg_pg_stat_archiver_typo_count[5m])") - CNPG_EXPORTER_SERIES.keys()


def test_the_database_is_scraped_where_its_exporter_listens(rendered: dict[str, list[Manifest]]) -> None:
    [monitor] = [m for m in rendered["prod"] if m["kind"] == "PodMonitor"]
    assert monitor["spec"]["selector"] == {"matchLabels": {"cnpg.io/cluster": "spm-db"}}
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]


def test_dashboard_queries_only_exposed_series_and_every_one_is_shown() -> None:
    dashboard = json.loads((MONITORING / "dashboards" / "spm-overview.json").read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    shown = set().union(*(series_in(expression) for expression in expressions))
    assert shown == EXPOSED_SERIES.keys()
    assert dashboard["uid"] == "spm-overview"
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_ships_in_a_configmap_for_the_grafana_sidecar(rendered: dict[str, list[Manifest]]) -> None:
    [config_map] = [
        m
        for m in rendered["prod"]
        if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "spm-grafana-dashboard"
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    embedded = json.loads(config_map["data"]["spm-overview.json"])
    assert embedded["title"] == "SPM overview"


def test_each_service_is_scraped_on_its_http_port(rendered: dict[str, list[Manifest]]) -> None:
    monitors = {m["metadata"]["name"]: m for m in rendered["prod"] if m["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"spm-gateway", "spm-ingest", "spm-attribution", "spm-metrics", "spm-connectors"}
    for monitor in monitors.values():
        assert monitor["spec"]["endpoints"] == [
            {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
        ]


def test_promtool_tests_make_every_alert_fire_at_least_once() -> None:
    unit_tests = load_yaml(MONITORING / "rules" / "spm-rules.test.yaml")
    fired = {
        case["alertname"]
        for test in unit_tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == ALERTS
