"""Acceptance: a deliberately broken copy of the manifests makes the checks fail.

Each test renders a throw-away overlay that patches the real base, then asserts the
check names exactly what was broken, and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from libs.common.topics import REGISTRY

from .k8s_checks import (
    DEPLOY_DIR,
    Manifest,
    autoscaling_findings,
    image_findings,
    label_findings,
    probe_findings,
    render,
    resource_findings,
    secret_findings,
    security_findings,
    topic_findings,
)


def render_broken(
    tmp_path: Path, kubectl: str, patches: str, *, base: Path = DEPLOY_DIR / "base"
) -> list[Manifest]:
    """Render a temporary overlay of ``base`` with ``patches`` (a YAML list body)."""
    # Kustomize refuses absolute resource paths, so point at the base relatively.
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(base, tmp_path)}\n"
        f"patches:\n{patches}",
        encoding="utf-8",
    )
    return render(tmp_path, kubectl)


def json_patch(kind: str, name: str, *operations: str) -> str:
    body = "".join(f"      {line}\n" for op in operations for line in op.splitlines())
    return f"  - target:\n      kind: {kind}\n      name: {name}\n    patch: |-\n{body}"


def test_the_unbroken_base_passes(tmp_path: Path, kubectl: str) -> None:
    manifests = render_broken(tmp_path, kubectl, "  []\n")
    assert probe_findings(manifests) == []
    assert security_findings(manifests) == []
    assert topic_findings(manifests, REGISTRY, partitions=6, replicas=3, min_insync_replicas=2) == []


def test_missing_liveness_probe_is_reported(tmp_path: Path, kubectl: str) -> None:
    manifests = render_broken(
        tmp_path,
        kubectl,
        json_patch(
            "Deployment",
            "spm-gateway",
            "- op: remove\n  path: /spec/template/spec/containers/0/livenessProbe",
            "- op: replace\n  path: /spec/template/spec/containers/0/readinessProbe/httpGet/path\n"
            "  value: /healthz",
        ),
    )
    assert probe_findings(manifests) == [
        "Deployment/spm-gateway: container gateway has no livenessProbe",
        "Deployment/spm-gateway: container gateway readinessProbe checks '/healthz', expected '/readyz'",
    ]


def test_privileged_container_is_reported(tmp_path: Path, kubectl: str) -> None:
    manifests = render_broken(
        tmp_path,
        kubectl,
        json_patch(
            "Deployment",
            "spm-attribution",
            "- op: replace\n  path: /spec/template/spec/containers/0/securityContext\n"
            "  value: {privileged: true, allowPrivilegeEscalation: true}",
        ),
    )
    assert security_findings(manifests) == [
        "Deployment/spm-attribution: container attribution is privileged",
        "Deployment/spm-attribution: container attribution does not set allowPrivilegeEscalation: false",
        "Deployment/spm-attribution: container attribution does not drop ALL capabilities",
        "Deployment/spm-attribution: container attribution has a writable root filesystem",
    ]


def test_pod_level_weakening_is_reported(tmp_path: Path, kubectl: str) -> None:
    manifests = render_broken(
        tmp_path,
        kubectl,
        json_patch(
            "Job",
            "spm-migrate",
            "- op: replace\n  path: /spec/template/spec/securityContext\n  value: {runAsUser: 0}",
            "- op: remove\n  path: /spec/template/spec/containers/0/securityContext/runAsNonRoot",
            "- op: remove\n  path: /spec/template/spec/containers/0/securityContext/runAsUser",
            "- op: remove\n  path: /spec/template/spec/containers/0/securityContext/seccompProfile",
            "- op: replace\n  path: /spec/template/spec/automountServiceAccountToken\n  value: true",
            "- op: add\n  path: /spec/template/spec/hostNetwork\n  value: true",
            "- op: remove\n  path: /spec/template/spec/containers/0/volumeMounts",
        ),
    )
    where = "Job/spm-migrate: container migrate"
    assert security_findings(manifests) == [
        f"{where}: pod sets hostNetwork",
        f"{where}: pod mounts a service account token",
        f"{where} does not set runAsNonRoot: true",
        f"{where} runs as UID 0",
        f"{where} has no RuntimeDefault seccomp profile",
        f"{where} has no emptyDir mounted at /tmp",
    ]


def test_topic_without_kafka_topic_is_reported(tmp_path: Path, kubectl: str) -> None:
    patches = (
        "  - patch: |-\n"
        "      apiVersion: kafka.strimzi.io/v1beta2\n"
        "      kind: KafkaTopic\n"
        "      metadata:\n"
        "        name: activity-ingested-dlq\n"
        "      $patch: delete\n"
    ) + json_patch(
        "KafkaTopic",
        "webhook-received",
        "- op: replace\n  path: /spec/config/retention.ms\n  value: 604800000",
        "- op: replace\n  path: /spec/partitions\n  value: 3",
    )
    manifests = render_broken(tmp_path, kubectl, patches)
    assert topic_findings(manifests, REGISTRY, partitions=6, replicas=3, min_insync_replicas=2) == [
        "topic activity-ingested-dlq: no KafkaTopic",
        "KafkaTopic webhook-received: partitions is 3, expected 6",
        "KafkaTopic webhook-received: retention.ms is 604800000, expected 2592000000",
    ]


def test_topic_missing_from_the_registry_is_reported(tmp_path: Path, kubectl: str) -> None:
    manifests = render_broken(tmp_path, kubectl, "  []\n")
    without_crm = [topic for topic in REGISTRY if topic.name != "crm-entity-changed"]
    assert topic_findings(manifests, without_crm, partitions=6, replicas=3, min_insync_replicas=2) == [
        "KafkaTopic crm-entity-changed: not in the topic registry",
        "KafkaTopic crm-entity-changed-dlq: not in the topic registry",
    ]


def test_latest_image_missing_limits_and_inline_secret_are_reported(tmp_path: Path, kubectl: str) -> None:
    manifests = render_broken(
        tmp_path,
        kubectl,
        json_patch(
            "Deployment",
            "spm-ingest",
            "- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: spm:latest",
            "- op: remove\n  path: /spec/template/spec/containers/0/resources/limits",
            "- op: add\n  path: /spec/template/spec/containers/0/envFrom/-\n"
            "  value: {secretRef: {name: other}}",
        ),
    )
    where = "Deployment/spm-ingest: container ingest"
    assert image_findings(manifests) == [f"{where}: image 'spm:latest' uses the latest tag"]
    assert resource_findings(manifests) == [f"{where} has no cpu limit", f"{where} has no memory limit"]
    assert secret_findings(manifests) == [f"{where}: envFrom a whole Secret exposes keys nobody asked for"]


def test_selector_pointing_at_nothing_is_reported(tmp_path: Path, kubectl: str) -> None:
    manifests = render_broken(
        tmp_path,
        kubectl,
        json_patch(
            "Service",
            "spm-metrics",
            "- op: replace\n  path: /spec/selector/app.kubernetes.io~1component\n  value: metrics-typo",
        ),
    )
    assert label_findings(manifests) == ["Service/spm-metrics: selector must match exactly one workload"]


@pytest.mark.parametrize(
    ("operation", "finding"),
    [
        (
            "- op: replace\n  path: /spec/maxReplicaCount\n  value: 12",
            "ScaledObject spm-metrics: maxReplicaCount 12 exceeds 6 partitions",
        ),
        (
            "- op: replace\n  path: /spec/triggers/0/metadata/consumerGroup\n  value: spm-attribution",
            "ScaledObject spm-metrics: trigger uses group 'spm-attribution'",
        ),
    ],
)
def test_broken_scaled_object_is_reported(tmp_path: Path, kubectl: str, operation: str, finding: str) -> None:
    manifests = render_broken(
        tmp_path,
        kubectl,
        json_patch("ScaledObject", "spm-metrics", operation),
        base=DEPLOY_DIR / "overlays" / "prod",
    )
    lag_scaled = {"spm-metrics": ("spm-metrics", frozenset({"activity-attributed"}))}
    assert autoscaling_findings(manifests, lag_scaled=lag_scaled, cpu_scaled=frozenset()) == [finding]
