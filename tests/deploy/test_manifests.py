"""The rendered overlays comply with every policy in k8s_checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from libs.common.topics import REGISTRY

from .k8s_checks import (
    COMPONENT,
    OVERLAYS,
    Manifest,
    autoscaling_findings,
    custom_kind_findings,
    image_findings,
    label_findings,
    probe_findings,
    resource_findings,
    secret_findings,
    security_findings,
    topic_findings,
)

SERVICES = ("gateway", "ingest", "attribution", "metrics", "connectors")
SERVICE_PORTS = {"gateway": 8000, "ingest": 8001, "attribution": 8002, "metrics": 8003, "connectors": 8004}
#: (partitions, replicas, min.insync.replicas) of every topic per overlay.
TOPIC_SHAPE = {"dev": (6, 1, 1), "prod": (6, 3, 2)}
LAG_SCALED = {
    "spm-attribution": (
        "spm-attribution",
        frozenset({"activity-ingested", "crm-entity-changed", "attribution-overridden"}),
    ),
    "spm-metrics": ("spm-metrics", frozenset({"activity-attributed"})),
}


def by_ref(manifests: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize(
    "check",
    [
        probe_findings,
        resource_findings,
        security_findings,
        image_findings,
        secret_findings,
        label_findings,
        custom_kind_findings,
    ],
)
def test_overlay_passes_check(
    rendered: dict[str, list[Manifest]], overlay: str, check: Callable[[Sequence[Manifest]], list[str]]
) -> None:
    assert check(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_registry_topic_and_dlq_has_a_kafka_topic(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    partitions, replicas, min_insync = TOPIC_SHAPE[overlay]
    findings = topic_findings(
        rendered[overlay], REGISTRY, partitions=partitions, replicas=replicas, min_insync_replicas=min_insync
    )
    assert findings == []
    expected_count = len(REGISTRY) + sum(topic.has_dlq for topic in REGISTRY)
    assert Counter(m["kind"] for m in rendered[overlay])["KafkaTopic"] == expected_count


def test_prod_autoscales_consumers_on_lag_and_http_services_on_cpu(
    rendered: dict[str, list[Manifest]],
) -> None:
    findings = autoscaling_findings(
        rendered["prod"], lag_scaled=LAG_SCALED, cpu_scaled=frozenset({"spm-gateway", "spm-ingest"})
    )
    assert findings == []


def test_every_service_runs_its_own_process_on_its_port(rendered: dict[str, list[Manifest]]) -> None:
    for overlay in OVERLAYS:
        objects = by_ref(rendered[overlay])
        for service in SERVICES:
            deployment = objects[("Deployment", f"spm-{service}")]
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert container["args"] == ["run", service]
            assert container["ports"] == [
                {"name": "http", "containerPort": SERVICE_PORTS[service], "protocol": "TCP"}
            ]
            assert (
                objects[("Service", f"spm-{service}")]["spec"]["ports"][0]["port"] == SERVICE_PORTS[service]
            )
            assert objects[("ServiceAccount", f"spm-{service}")]["automountServiceAccountToken"] is False
            assert ("PodDisruptionBudget", f"spm-{service}") in objects
        config = objects[("ConfigMap", "spm-config")]["data"]
        assert {config[f"{s.upper()}_PORT"] for s in SERVICES} == {str(p) for p in SERVICE_PORTS.values()}
        # Containers listen on the pod IP; loopback (the code's default) would be unreachable.
        assert config["SPM_HOST"] == "0.0.0.0"  # noqa: S104
        assert config["SPM_MODE"] == "production"


def test_migration_job_runs_spm_migrate_once(rendered: dict[str, list[Manifest]]) -> None:
    for overlay in OVERLAYS:
        job = by_ref(rendered[overlay])[("Job", "spm-migrate")]
        pod_spec = job["spec"]["template"]["spec"]
        assert pod_spec["containers"][0]["args"] == ["migrate"]
        assert pod_spec["restartPolicy"] == "Never"
        assert job["metadata"]["labels"][COMPONENT] == "migrate"


def test_prod_has_network_policies_monitoring_and_a_postgres_cluster(
    rendered: dict[str, list[Manifest]],
) -> None:
    kinds = Counter(m["kind"] for m in rendered["prod"])
    assert kinds["NetworkPolicy"] == 9
    assert kinds["ServiceMonitor"] == 5
    assert kinds["PrometheusRule"] == 1
    assert kinds["ScaledObject"] == 2
    assert kinds["HorizontalPodAutoscaler"] == 2
    cluster = by_ref(rendered["prod"])[("Cluster", "spm-db")]
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["imageName"].rsplit(":", 1)[1] not in ("", "latest")
    assert {m["metadata"].get("namespace") for m in rendered["prod"] if m["kind"] != "Namespace"} == {"spm"}
    # Dev stays installable on a bare cluster: no operator CRDs beyond Strimzi's.
    assert {m["kind"] for m in rendered["dev"]} & {"ServiceMonitor", "ScaledObject", "Cluster"} == set()


def test_prod_default_deny_covers_every_spm_pod(rendered: dict[str, list[Manifest]]) -> None:
    deny = by_ref(rendered["prod"])[("NetworkPolicy", "spm-default-deny")]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]
    assert deny["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "spm"}}


@pytest.mark.parametrize(("overlay", "namespace"), [("dev", "spm-dev"), ("prod", "spm")])
def test_namespace_enforces_restricted_pod_security(
    rendered: dict[str, list[Manifest]], overlay: str, namespace: str
) -> None:
    [namespace_object] = [m for m in rendered[overlay] if m["kind"] == "Namespace"]
    assert namespace_object["metadata"]["name"] == namespace
    assert namespace_object["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    namespaced = {m["metadata"].get("namespace") for m in rendered[overlay] if m["kind"] != "Namespace"}
    assert namespaced == {namespace}
