"""Policy checks over rendered Kubernetes manifests (``kubectl kustomize`` output).

Every check is a pure function from a list of manifests to a list of findings, one
human-readable string per violation; an empty list means the manifests comply.
scripts/k8s-check.sh runs them through tests/deploy, and the broken-manifest tests
prove each one reports what it guards.

``kubernetes-validate`` knows only the built-in kinds, so the custom resources this
project renders (Strimzi, KEDA, Prometheus Operator, CloudNativePG) are checked here
instead: ``custom_kind_findings`` refuses any custom kind no check here looks at.

Run as a script, ``python tests/deploy/k8s_checks.py builtin < rendered.yaml`` prints
only the built-in kinds, for ``kubernetes-validate --strict``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from shutil import which
from typing import Any

import yaml

Manifest = dict[str, Any]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
OVERLAYS = ("dev", "prod")

#: API groups served by Kubernetes itself ("" is the core group); anything else is a CRD.
BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}
)
#: Custom kinds that the checks below inspect, by apiVersion.
CHECKED_CUSTOM_KINDS: Mapping[str, frozenset[str]] = {
    "kafka.strimzi.io/v1beta2": frozenset({"KafkaTopic"}),
    "keda.sh/v1alpha1": frozenset({"ScaledObject", "TriggerAuthentication"}),
    "monitoring.coreos.com/v1": frozenset({"ServiceMonitor", "PodMonitor", "PrometheusRule"}),
    "postgresql.cnpg.io/v1": frozenset({"Cluster", "ScheduledBackup"}),
}

#: Series of CloudNativePG's instance exporter (its default queries, prefix cnpg_) that the
#: alert rules may read besides the services' own, with their labels after the PodMonitor
#: spm-db scrapes them. Nothing in this repository defines them: add one only with the
#: CloudNativePG documentation ("Monitoring", default metrics) at hand.
CNPG_EXPORTER_SERIES: Mapping[str, frozenset[str]] = {
    # pg_stat_archiver.failed_count: failed attempts of the WAL archiver (a counter).
    "cnpg_pg_stat_archiver_failed_count": frozenset({"namespace", "pod"}),
}

LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
WORKLOAD_KINDS = LONG_RUNNING_KINDS | {"Job", "CronJob"}

PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"

MS_PER_DAY = 86_400_000
STRIMZI_CLUSTER = "spm-kafka"


# --- rendering ------------------------------------------------------------------


def kubectl_binary() -> str | None:
    """The kubectl to render with: the one on PATH, else the tools venv's."""
    found = which("kubectl")
    if found:
        return found
    bundled = REPO_ROOT / ".venv-k8s" / "bin" / "kubectl"
    return str(bundled) if bundled.exists() else None


def render(kustomization_dir: Path, kubectl: str) -> list[Manifest]:
    """``kubectl kustomize`` a directory and parse the stream into manifests."""
    completed = subprocess.run(
        [kubectl, "kustomize", str(kustomization_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return parse_stream(completed.stdout)


def parse_stream(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


# --- small accessors ------------------------------------------------------------


def ref(manifest: Manifest) -> str:
    return f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"


def api_group(manifest: Manifest) -> str:
    api_version = str(manifest.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def is_builtin(manifest: Manifest) -> bool:
    return api_group(manifest) in BUILTIN_GROUPS


def of_kind(manifests: Iterable[Manifest], *kinds: str) -> Iterator[Manifest]:
    return (m for m in manifests if m.get("kind") in kinds)


def labels_of(manifest: Manifest) -> dict[str, str]:
    return dict(manifest.get("metadata", {}).get("labels") or {})


def pod_template(manifest: Manifest) -> Manifest | None:
    """The pod template of a workload, or None for anything that runs no pods."""
    kind = manifest.get("kind")
    spec: Manifest = manifest.get("spec") or {}
    if kind == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    elif kind not in WORKLOAD_KINDS:
        return None
    template: Manifest | None = spec.get("template")
    return template


@dataclass(frozen=True, slots=True)
class Container:
    owner: str
    pod_spec: Manifest
    spec: Manifest
    long_running: bool

    @property
    def where(self) -> str:
        return f"{self.owner}: container {self.spec.get('name')}"


def containers(manifests: Iterable[Manifest]) -> Iterator[Container]:
    for manifest in manifests:
        template = pod_template(manifest)
        if template is None:
            continue
        pod_spec = template.get("spec") or {}
        long_running = manifest.get("kind") in LONG_RUNNING_KINDS
        for container in pod_spec.get("initContainers") or []:
            yield Container(ref(manifest), pod_spec, container, long_running=False)
        for container in pod_spec.get("containers") or []:
            yield Container(ref(manifest), pod_spec, container, long_running)


def selector_matches(selector: Manifest, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# --- checks ---------------------------------------------------------------------


def probe_findings(manifests: Sequence[Manifest]) -> list[str]:
    """Long-running containers have startup, liveness (/healthz) and readiness (/readyz) probes."""
    expected_paths = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    findings: list[str] = []
    for container in containers(manifests):
        if not container.long_running:
            continue
        for probe_name, path in expected_paths.items():
            probe = container.spec.get(probe_name)
            if not probe:
                findings.append(f"{container.where} has no {probe_name}")
                continue
            actual = (probe.get("httpGet") or {}).get("path")
            if actual != path:
                findings.append(f"{container.where} {probe_name} checks {actual!r}, expected {path!r}")
    return findings


def resource_findings(manifests: Sequence[Manifest]) -> list[str]:
    """Every container requests and limits both CPU and memory."""
    findings: list[str] = []
    for container in containers(manifests):
        resources = container.spec.get("resources") or {}
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(bound) or {}):
                    findings.append(f"{container.where} has no {resource} {bound[:-1]}")
    return findings


def security_findings(manifests: Sequence[Manifest]) -> list[str]:
    """Pod Security Standard "restricted", plus a read-only root with an emptyDir /tmp."""
    findings: list[str] = []
    for container in containers(manifests):
        pod, spec, where = container.pod_spec, container.spec, container.where
        pod_security = pod.get("securityContext") or {}
        security = spec.get("securityContext") or {}

        for host_field in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(host_field):
                findings.append(f"{where}: pod sets {host_field}")
        if pod.get("automountServiceAccountToken") is not False:
            findings.append(f"{where}: pod mounts a service account token")
        if any("hostPath" in volume for volume in pod.get("volumes") or []):
            findings.append(f"{where}: pod mounts a hostPath volume")

        if security.get("privileged"):
            findings.append(f"{where} is privileged")
        if security.get("allowPrivilegeEscalation") is not False:
            findings.append(f"{where} does not set allowPrivilegeEscalation: false")
        capabilities = security.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            findings.append(f"{where} does not drop ALL capabilities")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            findings.append(f"{where} adds capabilities {sorted(capabilities['add'])}")
        if security.get("readOnlyRootFilesystem") is not True:
            findings.append(f"{where} has a writable root filesystem")

        run_as_non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        if run_as_non_root is not True:
            findings.append(f"{where} does not set runAsNonRoot: true")
        if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
            findings.append(f"{where} runs as UID 0")
        seccomp = security.get("seccompProfile") or pod_security.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            findings.append(f"{where} has no RuntimeDefault seccomp profile")

        empty_dirs = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
        tmp_mounts = [m for m in spec.get("volumeMounts") or [] if m.get("mountPath") == "/tmp"]
        if not any(m.get("name") in empty_dirs for m in tmp_mounts):
            findings.append(f"{where} has no emptyDir mounted at /tmp")
    return findings


def image_findings(manifests: Sequence[Manifest]) -> list[str]:
    """Images are pinned by a tag other than latest, or by digest."""
    findings: list[str] = []
    for container in containers(manifests):
        image = str(container.spec.get("image", ""))
        if "@sha256:" in image:
            continue
        last_segment = image.rsplit("/", 1)[-1]
        tag = last_segment.split(":", 1)[1] if ":" in last_segment else ""
        if not tag:
            findings.append(f"{container.where}: image {image!r} has no tag or digest")
        elif tag == "latest":
            findings.append(f"{container.where}: image {image!r} uses the latest tag")
    return findings


def secret_findings(manifests: Sequence[Manifest]) -> list[str]:
    """No Secret is rendered, and containers read secrets only from spm-secrets."""
    findings = [
        f"{ref(m)}: secrets are created out of band, never committed" for m in of_kind(manifests, "Secret")
    ]
    for container in containers(manifests):
        for env in container.spec.get("env") or []:
            secret_ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if secret_ref and secret_ref.get("name") != "spm-secrets":
                findings.append(f"{container.where}: {env['name']} reads Secret {secret_ref.get('name')!r}")
        for source in container.spec.get("envFrom") or []:
            if "secretRef" in source:
                findings.append(f"{container.where}: envFrom a whole Secret exposes keys nobody asked for")
    return findings


def topic_findings(
    manifests: Sequence[Manifest],
    registry: Iterable[Any],
    *,
    partitions: int,
    replicas: int,
    min_insync_replicas: int,
) -> list[str]:
    """Every registry topic and its DLQ has a matching Strimzi KafkaTopic, and nothing else does.

    ``registry`` holds ``libs.common.topics.Topic`` objects (name, retention_days, has_dlq, dlq).
    """
    # Imported here: run as a script (``builtin``) this module needs nothing of the application.
    from libs.common.topics import DLQ_RETENTION_DAYS

    expected: dict[str, int] = {}
    for topic in registry:
        expected[topic.name] = topic.retention_days
        if topic.has_dlq:
            expected[topic.dlq] = DLQ_RETENTION_DAYS
    findings: list[str] = []
    declared: dict[str, Manifest] = {}
    for manifest in of_kind(manifests, "KafkaTopic"):
        topic_name = (manifest.get("spec") or {}).get("topicName") or manifest["metadata"]["name"]
        declared[topic_name] = manifest
    for name in sorted(expected.keys() - declared.keys()):
        findings.append(f"topic {name}: no KafkaTopic")
    for name in sorted(declared.keys() - expected.keys()):
        findings.append(f"KafkaTopic {name}: not in the topic registry")
    for name in sorted(expected.keys() & declared.keys()):
        manifest = declared[name]
        spec = manifest.get("spec") or {}
        config = spec.get("config") or {}
        wanted = {
            "partitions": (spec.get("partitions"), partitions),
            "replicas": (spec.get("replicas"), replicas),
            "retention.ms": (config.get("retention.ms"), expected[name] * MS_PER_DAY),
            "min.insync.replicas": (config.get("min.insync.replicas"), min_insync_replicas),
        }
        for field_name, (actual, want) in wanted.items():
            if actual is None or int(actual) != want:
                findings.append(f"KafkaTopic {name}: {field_name} is {actual!r}, expected {want}")
        if labels_of(manifest).get("strimzi.io/cluster") != STRIMZI_CLUSTER:
            findings.append(f"KafkaTopic {name}: not labelled strimzi.io/cluster={STRIMZI_CLUSTER}")
    return findings


def label_findings(manifests: Sequence[Manifest]) -> list[str]:
    """Consistent labels, and every selector or reference lands on something that exists."""
    findings: list[str] = []
    pod_labels: dict[str, dict[str, str]] = {}
    for manifest in manifests:
        findings += _own_label_findings(manifest, pod_labels)
    for cluster in of_kind(manifests, "Cluster"):
        # CloudNativePG makes the instances' pods, labelled with their cluster's name and
        # spec.inheritedMetadata's labels.
        pod_labels[ref(cluster)] = {
            **(((cluster.get("spec") or {}).get("inheritedMetadata") or {}).get("labels") or {}),
            "cnpg.io/cluster": cluster["metadata"]["name"],
            "cnpg.io/podRole": "instance",
        }
    findings += _reference_findings(manifests, pod_labels)
    return findings


def _own_label_findings(manifest: Manifest, pod_labels: dict[str, dict[str, str]]) -> list[str]:
    """One object's labels; records its pod template's labels in ``pod_labels``."""
    findings: list[str] = []
    if labels_of(manifest).get(PART_OF) != "spm":
        findings.append(f"{ref(manifest)}: missing label {PART_OF}=spm")
    template = pod_template(manifest)
    if template is None:
        return findings
    template_labels = labels_of(template)
    pod_labels[ref(manifest)] = template_labels
    for key in (NAME, COMPONENT, PART_OF):
        if not template_labels.get(key):
            findings.append(f"{ref(manifest)}: pod template lacks label {key}")
        elif labels_of(manifest).get(key) != template_labels[key]:
            findings.append(f"{ref(manifest)}: label {key} differs between object and pod template")
    selector = (manifest.get("spec") or {}).get("selector")
    if manifest.get("kind") in LONG_RUNNING_KINDS and not selector_matches(selector or {}, template_labels):
        findings.append(f"{ref(manifest)}: selector does not match its own pod template")
    return findings


def _reference_findings(manifests: Sequence[Manifest], pod_labels: dict[str, dict[str, str]]) -> list[str]:
    """Services, budgets, policies and monitors select what exists."""
    findings: list[str] = []

    def matching_pods(selector: Manifest) -> list[str]:
        return [owner for owner, labels in pod_labels.items() if selector_matches(selector, labels)]

    services = {service["metadata"]["name"]: service for service in of_kind(manifests, "Service")}
    for service in services.values():
        if len(matching_pods({"matchLabels": service["spec"].get("selector") or {}})) != 1:
            findings.append(f"{ref(service)}: selector must match exactly one workload")
    for budget in of_kind(manifests, "PodDisruptionBudget"):
        if len(matching_pods(budget["spec"].get("selector") or {})) != 1:
            findings.append(f"{ref(budget)}: selector must match exactly one workload")
    for policy in of_kind(manifests, "NetworkPolicy"):
        if not matching_pods(policy["spec"].get("podSelector") or {}):
            findings.append(f"{ref(policy)}: podSelector matches no workload")
    for monitor in of_kind(manifests, "ServiceMonitor"):
        findings += _monitor_findings(monitor, services)
    clusters = {cluster["metadata"]["name"] for cluster in of_kind(manifests, "Cluster")}
    for backup in of_kind(manifests, "ScheduledBackup"):
        if ((backup.get("spec") or {}).get("cluster") or {}).get("name") not in clusters:
            findings.append(f"{ref(backup)}: backs up no Cluster rendered here")
    return findings


def _monitor_findings(monitor: Manifest, services: Mapping[str, Manifest]) -> list[str]:
    selected = [
        s for s in services.values() if selector_matches(monitor["spec"].get("selector") or {}, labels_of(s))
    ]
    if len(selected) != 1:
        return [f"{ref(monitor)}: selector must match exactly one Service"]
    port_names = {p.get("name") for p in selected[0]["spec"].get("ports") or []}
    return [
        f"{ref(monitor)}: port {endpoint.get('port')!r} is not on {ref(selected[0])}"
        for endpoint in monitor["spec"].get("endpoints") or []
        if endpoint.get("port") not in port_names
    ]


def autoscaling_findings(
    manifests: Sequence[Manifest],
    *,
    lag_scaled: Mapping[str, tuple[str, frozenset[str]]],
    cpu_scaled: frozenset[str],
) -> list[str]:
    """KEDA scales the consumers on their group's lag, an HPA scales the HTTP services.

    ``lag_scaled`` maps a Deployment name to its consumer group and consumed topics.
    A ScaledObject may not run more replicas than the topics have partitions, and a
    Deployment has exactly one autoscaler (KEDA creates its own HPA).
    """
    findings: list[str] = []
    deployments = {m["metadata"]["name"]: m for m in of_kind(manifests, "Deployment")}
    partitions = {
        (m.get("spec") or {}).get("topicName") or m["metadata"]["name"]: int(m["spec"]["partitions"])
        for m in of_kind(manifests, "KafkaTopic")
    }
    scaled_objects = {m["spec"]["scaleTargetRef"]["name"]: m for m in of_kind(manifests, "ScaledObject")}
    hpas = {m["spec"]["scaleTargetRef"]["name"]: m for m in of_kind(manifests, "HorizontalPodAutoscaler")}
    trigger_auths = {m["metadata"]["name"] for m in of_kind(manifests, "TriggerAuthentication")}

    for target in sorted((scaled_objects.keys() | hpas.keys()) - deployments.keys()):
        findings.append(f"autoscaler targets missing Deployment {target}")
    for target in sorted(scaled_objects.keys() & hpas.keys()):
        findings.append(f"Deployment {target}: has both a ScaledObject and an HPA")
    for name, (group, topics) in sorted(lag_scaled.items()):
        scaled = scaled_objects.get(name)
        if scaled is None:
            findings.append(f"Deployment {name}: no KEDA ScaledObject")
            continue
        triggers = [t for t in scaled["spec"].get("triggers") or [] if t.get("type") == "kafka"]
        covered = {t["metadata"].get("topic") for t in triggers}
        if covered != topics:
            findings.append(
                f"ScaledObject {name}: lag triggers cover {sorted(map(str, covered))},"
                f" expected {sorted(topics)}"
            )
        for trigger in triggers:
            if trigger["metadata"].get("consumerGroup") != group:
                findings.append(
                    f"ScaledObject {name}: trigger uses group {trigger['metadata'].get('consumerGroup')!r}"
                )
            auth = (trigger.get("authenticationRef") or {}).get("name")
            if auth is not None and auth not in trigger_auths:
                findings.append(f"ScaledObject {name}: TriggerAuthentication {auth!r} is not rendered")
        max_replicas = int(scaled["spec"].get("maxReplicaCount", 100))
        fewest = min((partitions.get(topic, 0) for topic in topics), default=0)
        if max_replicas > fewest:
            findings.append(
                f"ScaledObject {name}: maxReplicaCount {max_replicas} exceeds {fewest} partitions"
            )
    for name in sorted(cpu_scaled):
        if name not in hpas:
            findings.append(f"Deployment {name}: no HorizontalPodAutoscaler")
    for name in sorted(set(scaled_objects) | set(hpas)):
        replicas = (deployments.get(name, {}).get("spec") or {}).get("replicas")
        if replicas is not None:
            findings.append(f"Deployment {name}: sets spec.replicas although an autoscaler owns it")
    return findings


def custom_kind_findings(manifests: Sequence[Manifest]) -> list[str]:
    """Every custom resource is one of the kinds these checks inspect."""
    findings: list[str] = []
    for manifest in manifests:
        if is_builtin(manifest):
            continue
        kinds = CHECKED_CUSTOM_KINDS.get(str(manifest.get("apiVersion")), frozenset())
        if manifest.get("kind") not in kinds:
            findings.append(
                f"{ref(manifest)} ({manifest.get('apiVersion')}): a custom kind nothing validates"
            )
    return findings


def builtin_stream(manifests: Sequence[Manifest]) -> str:
    """The built-in kinds only, as one YAML stream for ``kubernetes-validate``."""
    return yaml.safe_dump_all([m for m in manifests if is_builtin(m)], sort_keys=False)


def main(argv: Sequence[str]) -> int:
    if list(argv) != ["builtin"]:
        print("usage: k8s_checks.py builtin < rendered.yaml > builtin.yaml", file=sys.stderr)
        return 2
    sys.stdout.write(builtin_stream(parse_stream(sys.stdin.read())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
