"""Held-out checks of a platform engineer who runs SPM from ``deploy/`` and is on call for it.

Written from the documentation only (README.md "Configuration", docs/operations.md "Layout",
"Prerequisites", "The spm-secrets Secret", "Deploying", "Upgrading with migrations", "Scaling",
"Data protection", "SLOs and alerts") before reading the manifests, then run against the rendered
overlays. Where the code is the truth (the settings classes the services read, the routes they
serve, the metrics they define, the topics and groups they consume) it is read from the code,
never copied here, so a rename on either side fails a check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from libs.common.settings import CommonSettings
from libs.common.topics import REGISTRY
from services.attribution.consumer import CONSUMES as ATTRIBUTION_CONSUMES
from services.attribution.settings import AttributionSettings
from services.connectors.settings import ConnectorsSettings
from services.gateway.settings import GatewaySettings
from services.ingest.settings import IngestSettings
from services.metrics.consumer import CONSUMES as METRICS_CONSUMES
from services.metrics.settings import MetricsServiceSettings

from .k8s_checks import (
    CNPG_EXPORTER_SERIES,
    DEPLOY_DIR,
    REPO_ROOT,
    Manifest,
    labels_of,
    of_kind,
    pod_template,
    selector_matches,
)

OPERATIONS = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
COMPONENT = "app.kubernetes.io/component"

#: docs/operations.md "Layout": process, port, consumer group.
SERVICES = {
    "gateway": (8000, None),
    "ingest": (8001, None),
    "attribution": (8002, "spm-attribution"),
    "metrics": (8003, "spm-metrics"),
    "connectors": (8004, None),
}
SETTINGS: dict[str, type[CommonSettings]] = {
    "gateway": GatewaySettings,
    "ingest": IngestSettings,
    "attribution": AttributionSettings,
    "metrics": MetricsServiceSettings,
    "connectors": ConnectorsSettings,
    "migrate": CommonSettings,
}
CONSUMES = {"attribution": ATTRIBUTION_CONSUMES, "metrics": METRICS_CONSUMES}
#: docs/operations.md "The spm-secrets Secret": the keys of the one Secret created out of band.
SECRET_KEYS = {
    "DATABASE_URL",
    "SPM_SECRET_KEY",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KEDA_KAFKA_SASL",
}
#: Variables the Python interpreter itself reads: not a typo when a manifest sets them.
INTERPRETER_ENV = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "TMPDIR", "HOME"}
#: docs/operations.md "What is stored where": topic retention in days.
RETENTION_DAYS = {
    "webhook-received": 30,
    "activity-ingested": 7,
    "activity-attributed": 7,
    "attribution-overridden": 7,
    "crm-entity-changed": 30,
}
NAMESPACE = {"dev": "spm-dev", "prod": "spm"}
SETTINGS_PREFIXES = (
    "SPM_",
    "KAFKA_",
    "DATABASE_",
    "CONSUMER_",
    "GATEWAY_",
    "INGEST_",
    "ATTRIBUTION_",
    "METRICS_",
    "CONNECTORS_",
)
MS_PER_DAY = 86_400_000


# --- helpers --------------------------------------------------------------------


def workloads(manifests: list[Manifest]) -> Iterator[Manifest]:
    return of_kind(manifests, "Deployment", "StatefulSet", "Job", "CronJob")


def all_containers(workload: Manifest) -> list[Manifest]:
    spec = (pod_template(workload) or {}).get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def service_of(workload: Manifest) -> str:
    return labels_of(workload)[COMPONENT]


def deployment(manifests: list[Manifest], service: str) -> Manifest:
    [found] = [d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"] == f"spm-{service}"]
    return found


def named(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in of_kind(manifests, kind)}


def config_maps(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return {name: dict(m.get("data") or {}) for name, m in named(manifests, "ConfigMap").items()}


def env_of(manifests: list[Manifest], container: Manifest) -> dict[str, Any]:
    """Every variable a container starts with: envFrom ConfigMaps (values), envFrom Secrets (the
    documented keys, as ``secret:<name>``), then ``env`` (values, or ``secret:<name>``)."""
    maps = config_maps(manifests)
    env: dict[str, Any] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]])
        if "secretRef" in source:
            env.update({key: f"secret:{source['secretRef']['name']}" for key in SECRET_KEYS})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = f"secret:{item['valueFrom']['secretKeyRef']['name']}"
        else:
            env[item["name"]] = "field"
    return env


def env_names_read(settings: type[BaseSettings]) -> set[str]:
    """The variables a composed settings class reads: each group's prefix plus its field names."""
    names: set[str] = set()
    for field in settings.model_fields.values():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            prefix = str(group.model_config.get("env_prefix", ""))
            names |= {f"{prefix}{name}".upper() for name in group.model_fields}
    return names


def read_by(service: str) -> set[str]:
    # spm/services.py reads ``<SERVICE>_PORT`` for the port it binds.
    return env_names_read(SETTINGS[service]) | {f"{service.upper()}_PORT"}


def topic_prefix(manifests: list[Manifest], service: str) -> str:
    [container] = deployment(manifests, service)["spec"]["template"]["spec"]["containers"]
    return str(env_of(manifests, container).get("KAFKA_TOPIC_PREFIX", ""))


def kafka_topics(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {
        (t["spec"].get("topicName") or t["metadata"]["name"]): t for t in of_kind(manifests, "KafkaTopic")
    }


def max_replicas(manifests: list[Manifest], service: str) -> int:
    target = f"spm-{service}"
    for hpa in of_kind(manifests, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == target:
            return int(hpa["spec"]["maxReplicas"])
    for scaled in of_kind(manifests, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == target:
            return int(scaled["spec"]["maxReplicaCount"])
    return int(deployment(manifests, service)["spec"].get("replicas", 1))


def min_replicas(manifests: list[Manifest], service: str) -> int:
    target = f"spm-{service}"
    for hpa in of_kind(manifests, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == target:
            return int(hpa["spec"].get("minReplicas", 1))
    for scaled in of_kind(manifests, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == target:
            return int(scaled["spec"].get("minReplicaCount", 0))
    return int(deployment(manifests, service)["spec"].get("replicas", 1))


def _paths(routes: list[Any], prefix: str = "") -> set[str]:
    """Route paths, through routers FastAPI keeps as included routers."""
    paths: set[str] = set()
    for route in routes:
        if isinstance(getattr(route, "path", None), str):
            paths.add(prefix + route.path)
        included = getattr(route, "original_router", None)
        if included is not None:
            paths |= _paths(included.routes, prefix + route.include_context.prefix)
    return paths


def served_paths(service: str) -> set[str]:
    from spm.services import build_app

    return _paths(list(build_app(service).routes))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def doc_sections() -> dict[str, str]:
    """docs/operations.md's sections by anchor, each with its subsections (code blocks, whose
    ``# comment`` lines are no headings, left out)."""
    text = re.sub(r"^```.*?^```", "", OPERATIONS, flags=re.MULTILINE | re.DOTALL)
    headings = [(m.start(), len(m[1]), m[2]) for m in re.finditer(r"^(#+) (.+)$", text, flags=re.MULTILINE)]
    sections = {}
    for index, (start, level, heading) in enumerate(headings):
        end = next((s for s, lv, _ in headings[index + 1 :] if lv <= level), len(text))
        sections[slug(heading)] = text[start:end]
    return sections


def code_metrics() -> set[str]:
    """Every series the code defines, with the suffixes Prometheus exposes."""
    names: set[str] = set()
    pattern = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"(spm_\w+)\"", re.S)
    for path in list((REPO_ROOT / "libs").rglob("*.py")) + list((REPO_ROOT / "services").rglob("*.py")):
        for kind, name in pattern.findall(path.read_text(encoding="utf-8")):
            if kind == "Counter":
                base = name.removesuffix("_total")
                names |= {base + "_total", base + "_created"}
            elif kind in ("Histogram", "Summary"):
                names |= {name, name + "_bucket", name + "_sum", name + "_count"}
            else:
                names.add(name)
    return names


def alert_rules(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return [
        rule
        for prometheus_rule in of_kind(manifests, "PrometheusRule")
        for group in prometheus_rule["spec"]["groups"]
        for rule in group["rules"]
    ]


def policies_selecting(manifests: list[Manifest], labels: dict[str, str], kind: str) -> list[Manifest]:
    return [
        policy
        for policy in of_kind(manifests, "NetworkPolicy")
        if selector_matches(policy["spec"].get("podSelector") or {}, labels)
        and kind in (policy["spec"].get("policyTypes") or ["Ingress"])
    ]


def pod_labels(manifests: list[Manifest], service: str) -> dict[str, str]:
    return dict(deployment(manifests, service)["spec"]["template"]["metadata"]["labels"])


def ingress_peers(manifests: list[Manifest], labels: dict[str, str]) -> list[tuple[dict[str, Any], set[Any]]]:
    """(peer, ports) for every ingress rule that admits traffic to pods with these labels."""
    peers = []
    for policy in policies_selecting(manifests, labels, "Ingress"):
        for rule in policy["spec"].get("ingress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []} or {"any"}
            for peer in rule.get("from") or [{"everywhere": True}]:
                peers.append((peer, ports))
    return peers


def egress_peers(manifests: list[Manifest], labels: dict[str, str]) -> list[tuple[dict[str, Any], set[Any]]]:
    peers = []
    for policy in policies_selecting(manifests, labels, "Egress"):
        for rule in policy["spec"].get("egress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []} or {"any"}
            for peer in rule.get("to") or [{"everywhere": True}]:
                peers.append((peer, ports))
    return peers


def from_namespace(peer: dict[str, Any], namespace: str) -> bool:
    labels = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
    return labels.get("kubernetes.io/metadata.name") == namespace


def from_pods(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    return (
        "namespaceSelector" not in peer
        and "podSelector" in peer
        and selector_matches(peer["podSelector"], labels)
    )


# --- workloads: resources, probes, hardening ---------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p01_every_container_requests_and_limits_cpu_and_memory(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    missing = []
    for workload in workloads(rendered[overlay]):
        for container in all_containers(workload):
            resources = container.get("resources") or {}
            for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
                missing += [
                    f"{workload['metadata']['name']}/{container['name']}: {part}.{key}"
                    for key in keys
                    if key not in (resources.get(part) or {})
                ]
    assert missing == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p02_probes_point_at_paths_the_service_serves_on_its_port(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """Liveness /healthz (never a dependency), readiness /readyz, a startup probe; each on the
    port the process binds (its ``<SERVICE>_PORT``), and each path a route of the service's app."""
    wrong = []
    for service, (port, _) in SERVICES.items():
        [container] = deployment(rendered[overlay], service)["spec"]["template"]["spec"]["containers"]
        bound = int(env_of(rendered[overlay], container).get(f"{service.upper()}_PORT", port))
        named_ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        routes = served_paths(service)
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ):
            get = (container.get(probe) or {}).get("httpGet")
            if get is None:
                wrong.append(f"{service}: no {probe} httpGet")
                continue
            probe_port = named_ports.get(get["port"], get["port"])
            if get["path"] != path or get["path"] not in routes or probe_port != bound:
                wrong.append(f"{service}: {probe} {get['path']}:{probe_port}, serves {path}:{bound}")
    assert wrong == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p03_every_container_is_non_root_read_only_unprivileged_and_drops_all(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    weak = []
    for workload in workloads(rendered[overlay]):
        pod = (pod_template(workload) or {}).get("spec") or {}
        pod_context = pod.get("securityContext") or {}
        for container in all_containers(workload):
            context = container.get("securityContext") or {}
            where = f"{workload['metadata']['name']}/{container['name']}"
            if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
                weak.append(f"{where}: runAsNonRoot")
            if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
                weak.append(f"{where}: runAsUser 0")
            if context.get("readOnlyRootFilesystem") is not True:
                weak.append(f"{where}: readOnlyRootFilesystem")
            if context.get("allowPrivilegeEscalation") is not False:
                weak.append(f"{where}: allowPrivilegeEscalation")
            if context.get("privileged"):
                weak.append(f"{where}: privileged")
            capabilities = context.get("capabilities") or {}
            if "ALL" not in (capabilities.get("drop") or []) or capabilities.get("add"):
                weak.append(f"{where}: capabilities {capabilities}")
            seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                weak.append(f"{where}: seccompProfile {seccomp}")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            weak.append(f"{workload['metadata']['name']}: host namespaces")
    assert weak == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p04_a_read_only_root_still_has_a_writable_tmp(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """Python and the libraries write temporary files to /tmp: with a read-only root it must be a volume."""
    without = []
    for workload in workloads(rendered[overlay]):
        for container in all_containers(workload):
            mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
            if "/tmp" not in mounts:
                without.append(f"{workload['metadata']['name']}/{container['name']}")
    assert without == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p05_service_accounts_exist_and_mount_no_api_token(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """No process talks to the Kubernetes API: no token is mounted."""
    accounts = named(rendered[overlay], "ServiceAccount")
    wrong = []
    for workload in workloads(rendered[overlay]):
        pod = (pod_template(workload) or {}).get("spec") or {}
        account = pod.get("serviceAccountName")
        if account not in accounts:
            wrong.append(f"{workload['metadata']['name']}: service account {account!r} not rendered")
            continue
        automount = pod.get(
            "automountServiceAccountToken", accounts[account].get("automountServiceAccountToken")
        )
        if automount is not False:
            wrong.append(f"{workload['metadata']['name']}: API token mounted")
    assert wrong == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p06_one_pinned_image_runs_every_process(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """docs/operations.md "Layout": one image for every process; "Deploying": pinned in the overlay."""
    images = {c["image"] for w in workloads(rendered[overlay]) for c in all_containers(w)}
    assert len(images) == 1, images
    [image] = images
    repository, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
    assert repository, image
    assert tag not in ("", "latest"), image


# --- configuration: secrets and environment ------------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p07_every_secret_referenced_is_documented_and_none_is_committed(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """Each Secret a manifest names is documented in docs/operations.md as created out of band
    (``spm-secrets`` with its documented keys) or by an operator; no Secret object is rendered."""
    manifests = rendered[overlay]
    assert list(of_kind(manifests, "Secret")) == []
    undocumented = []
    for workload in workloads(manifests):
        for container in all_containers(workload):
            for source in container.get("envFrom") or []:
                if "secretRef" in source and source["secretRef"]["name"] != "spm-secrets":
                    undocumented.append(source["secretRef"]["name"])
            for item in container.get("env") or []:
                secret = item.get("valueFrom", {}).get("secretKeyRef")
                if secret and (secret["name"] != "spm-secrets" or secret["key"] not in SECRET_KEYS):
                    undocumented.append(f"{secret['name']}/{secret['key']}")
    for auth in of_kind(manifests, "TriggerAuthentication"):
        for target in auth["spec"].get("secretTargetRef") or []:
            if target["name"] != "spm-secrets" or target["key"] not in SECRET_KEYS:
                undocumented.append(f"{target['name']}/{target['key']}")
    for cluster in of_kind(manifests, "Cluster"):
        for secret in re.findall(r"'name': '([^']+)'", str(cluster["spec"].get("backup") or {})):
            if f"`{secret}`" not in OPERATIONS:
                undocumented.append(secret)
    assert undocumented == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p08_no_manifest_sets_a_variable_its_process_does_not_read(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """A misspelt variable is silently ignored (``extra="ignore"``): each one a container sets in
    ``env`` is read by that process's settings; each key of a ConfigMap it loads by at least one
    of the processes that load it."""
    manifests = rendered[overlay]
    unread = []
    loaders: dict[str, set[str]] = {}
    for workload in workloads(manifests):
        service = service_of(workload)
        for container in all_containers(workload):
            for item in container.get("env") or []:
                if item["name"] not in read_by(service) | INTERPRETER_ENV:
                    unread.append(f"{service}: {item['name']}")
            for source in container.get("envFrom") or []:
                if "configMapRef" in source:
                    loaders.setdefault(source["configMapRef"]["name"], set()).add(service)
    maps = config_maps(manifests)
    for name, services in loaders.items():
        readable = set().union(*(read_by(s) for s in services)) | INTERPRETER_ENV
        unread += [f"ConfigMap {name}: {key}" for key in maps[name] if key not in readable]
    assert unread == []


def _fake(value: Any, name: str) -> str:
    if isinstance(value, str) and value.startswith("secret:"):
        return {
            "DATABASE_URL": "postgresql+asyncpg://spm:pw@spm-db-rw:5432/spm",
            "SPM_SECRET_KEY": "k" * 48,
            "KAFKA_SASL_USERNAME": "spm",
            "KAFKA_SASL_PASSWORD": "pw",
        }.get(name, "secret")
    return str(value)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p09_each_process_loads_its_settings_from_the_rendered_environment(
    rendered: dict[str, list[Manifest]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings validate (a bad value fails at start, not in a cluster) and say what the docs
    promise: production mode, bound on all interfaces, the Strimzi bootstrap, SCRAM in prod, the
    PostgreSQL URL from spm-secrets, connectors posting to ingest's Service."""
    manifests = rendered[overlay]
    for workload in workloads(manifests):
        service = service_of(workload)
        [container] = (pod_template(workload) or {})["spec"]["containers"]
        env = env_of(manifests, container)
        for key in list(os.environ):
            if key.startswith(SETTINGS_PREFIXES):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, _fake(value, key))
        settings: Any = SETTINGS[service]()
        assert settings.runtime.mode.value == "production", service
        assert settings.database.url.get_secret_value().startswith("postgresql+asyncpg://spm:"), service
        assert env["DATABASE_URL"] == "secret:spm-secrets", service
        assert env["SPM_SECRET_KEY"] == "secret:spm-secrets", service
        # Strimzi's bootstrap Service of the cluster spm-kafka in the namespace kafka, port 9092.
        assert re.fullmatch(
            r"spm-kafka-kafka-bootstrap\.kafka(\.svc(\.cluster\.local)?)?:9092",
            settings.kafka.bootstrap_servers,
        ), service
        if workload["kind"] == "Deployment":
            assert settings.runtime.host == "0.0.0.0", service  # noqa: S104 - a pod serves its Service
        if overlay == "prod" and service in ("gateway", "ingest", "attribution", "metrics"):
            # The processes that use the broker (not the connectors, nor the migration).
            assert (settings.kafka.security_protocol, settings.kafka.sasl_mechanism) == (
                "SASL_PLAINTEXT",
                "SCRAM-SHA-512",
            ), service
            assert settings.kafka.sasl_username, service
            assert settings.kafka.sasl_password, service
        if service == "connectors":
            assert str(settings.connectors.ingest_url).rstrip("/") == "http://spm-ingest:8001", (
                settings.connectors
            )


# --- scaling ------------------------------------------------------------------------


def test_p10_keda_watches_the_groups_and_topics_the_consumers_really_use(
    rendered: dict[str, list[Manifest]],
) -> None:
    """Group names from the settings' defaults (or the variable the Deployment sets), topics from
    the consumer's CONSUMES behind the Deployment's KAFKA_TOPIC_PREFIX; lag thresholds as documented."""
    manifests = rendered["prod"]
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(manifests, "ScaledObject")}
    for service, threshold in (("attribution", "1000"), ("metrics", "2000")):
        [container] = deployment(manifests, service)["spec"]["template"]["spec"]["containers"]
        env = env_of(manifests, container)
        group = env.get(f"{service.upper()}_GROUP_ID", SERVICES[service][1])
        prefix = topic_prefix(manifests, service)
        triggers = scaled[f"spm-{service}"]["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {group}
        assert sorted(t["metadata"]["topic"] for t in triggers) == sorted(
            prefix + t.name for t in CONSUMES[service]
        )
        assert {t["metadata"]["lagThreshold"] for t in triggers} == {threshold}
        assert {t["metadata"]["bootstrapServers"] for t in triggers} == {env["KAFKA_BOOTSTRAP_SERVERS"]}


def test_p11_no_consumer_scales_past_its_topics_partitions(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["prod"]
    topics = kafka_topics(manifests)
    for scaled in of_kind(manifests, "ScaledObject"):
        maximum = int(scaled["spec"]["maxReplicaCount"])
        for trigger in scaled["spec"]["triggers"]:
            partitions = int(topics[trigger["metadata"]["topic"]]["spec"]["partitions"])
            assert maximum <= partitions, (scaled["metadata"]["name"], trigger["metadata"]["topic"])
        assert maximum == 6
        # "Scale-down waits 5 minutes".
        assert int(scaled["spec"].get("cooldownPeriod", 0)) >= 300 or (
            scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
                "stabilizationWindowSeconds"
            ]
            >= 300
        )


def test_p12_http_services_scale_on_cpu_between_2_and_10(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["prod"]
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(manifests, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"spm-gateway", "spm-ingest"}
    for hpa in hpas.values():
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_p13_postgres_connections_fit_at_every_autoscalers_maximum(
    rendered: dict[str, list[Manifest]],
) -> None:
    """docs "Scaling": each process holds up to pool + overflow; at the maxima the sum must stay
    below the cluster's max_connections less PostgreSQL's reserved superuser slots (3)."""
    manifests = rendered["prod"]
    total = 0
    for workload in workloads(manifests):
        service = service_of(workload)
        [container] = (pod_template(workload) or {})["spec"]["containers"]
        env = env_of(manifests, container)
        per_process = int(env.get("DATABASE_POOL_SIZE", 10)) + int(env.get("DATABASE_MAX_OVERFLOW", 5))
        processes = 1 if workload["kind"] == "Job" else max_replicas(manifests, service)
        total += per_process * processes
    [cluster] = of_kind(manifests, "Cluster")
    allowed = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    assert total <= allowed - 3, (total, allowed)
    documented = re.search(r"processes, (\d+); the prod cluster allows (\d+)", OPERATIONS)
    assert documented is not None
    assert (int(documented[1]), int(documented[2])) == (total, allowed)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p14_every_deployment_has_a_pdb_that_lets_a_node_drain(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """A PDB per Deployment selecting its pods, which still allows one eviction at the minimum
    replica count (a PDB of minAvailable 1 on a single replica blocks every drain)."""
    manifests = rendered[overlay]
    pdbs = list(of_kind(manifests, "PodDisruptionBudget"))
    wrong = []
    for service in SERVICES:
        labels = pod_labels(manifests, service)
        matching = [p for p in pdbs if selector_matches(p["spec"]["selector"], labels)]
        if len(matching) != 1:
            wrong.append(f"{service}: {len(matching)} PDBs")
            continue
        spec = matching[0]["spec"]
        replicas = max(min_replicas(manifests, service), 1)
        if "maxUnavailable" in spec:
            if spec["maxUnavailable"] in (0, "0%"):
                wrong.append(f"{service}: maxUnavailable 0")
        elif isinstance(spec.get("minAvailable"), int) and spec["minAvailable"] >= replicas:
            wrong.append(f"{service}: minAvailable {spec['minAvailable']} of {replicas}")
    assert wrong == []


# --- network ------------------------------------------------------------------------


def test_p15_prod_denies_all_traffic_to_and_from_every_spm_pod_by_default(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["prod"]
    deny = [
        p
        for p in of_kind(manifests, "NetworkPolicy")
        if set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1
    for workload in workloads(manifests):
        labels = (pod_template(workload) or {})["metadata"]["labels"]
        assert selector_matches(deny[0]["spec"]["podSelector"], labels), workload["metadata"]["name"]


def test_p16_prod_ingress_is_only_what_each_service_needs(rendered: dict[str, list[Manifest]]) -> None:
    """gateway and ingest from the ingress controller on their port; ingest also from the
    connectors (they post to it); every service from Prometheus on its port; nothing from everywhere."""
    manifests = rendered["prod"]
    wrong = []
    for service, (port, _) in SERVICES.items():
        labels = pod_labels(manifests, service)
        peers = ingress_peers(manifests, labels)
        for peer, ports in peers:
            if "everywhere" in peer or peer == {}:
                wrong.append(f"{service}: ingress from everywhere")
            elif ports - {port, "http"}:
                wrong.append(f"{service}: ingress on {ports}")
            elif not (
                from_namespace(peer, "monitoring")
                or (service in ("gateway", "ingest") and from_namespace(peer, "ingress-nginx"))
                or (service == "ingest" and from_pods(peer, pod_labels(manifests, "connectors")))
            ):
                wrong.append(f"{service}: ingress from {peer}")
        if not any(from_namespace(peer, "monitoring") for peer, _ in peers):
            wrong.append(f"{service}: Prometheus cannot scrape it")
        if service in ("gateway", "ingest") and not any(from_namespace(p, "ingress-nginx") for p, _ in peers):
            wrong.append(f"{service}: unreachable from the ingress controller")
    ingest_from_connectors = any(
        from_pods(peer, pod_labels(manifests, "connectors"))
        for peer, _ in ingress_peers(manifests, pod_labels(manifests, "ingest"))
    )
    if not ingest_from_connectors:
        wrong.append("ingest: connectors cannot post to it")
    assert wrong == []


def test_p17_prod_egress_reaches_dns_kafka_postgres_and_only_the_connectors_reach_out(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["prod"]
    wrong = []
    for service in [*SERVICES, "migrate"]:
        labels = (
            pod_labels(manifests, service)
            if service != "migrate"
            else dict(named(manifests, "Job")["spm-migrate"]["spec"]["template"]["metadata"]["labels"])
        )
        peers = egress_peers(manifests, labels)
        if not any(53 in ports for _, ports in peers):
            wrong.append(f"{service}: no DNS")
        if not any(5432 in ports for _, ports in peers):
            wrong.append(f"{service}: no PostgreSQL")
        if service in ("ingest", "attribution", "metrics", "gateway") and not any(
            from_namespace(p, "kafka") and 9092 in ports for p, ports in peers
        ):
            wrong.append(f"{service}: no Kafka")
        outside = [p for p, ports in peers if "ipBlock" in p or "everywhere" in p]
        if service == "connectors":
            if not any(443 in ports for p, ports in peers if "ipBlock" in p or "everywhere" in p):
                wrong.append("connectors: no HTTPS to the providers")
            if not any(from_pods(p, pod_labels(manifests, "ingest")) and 8001 in ports for p, ports in peers):
                wrong.append("connectors: cannot post to ingest")
        elif outside:
            wrong.append(f"{service}: egress to {outside}")
    assert wrong == []


def test_p18_prod_database_accepts_only_the_app_its_instances_and_its_operator(
    rendered: dict[str, list[Manifest]],
) -> None:
    """The CloudNativePG instances run in the application namespace: PostgreSQL must not be open
    to every pod of the cluster. The app reaches 5432, the instances each other (replication),
    the operator their status port 8000; nothing else."""
    manifests = rendered["prod"]
    inherited = named(manifests, "Cluster")["spm-db"]["spec"]["inheritedMetadata"]["labels"]
    db_labels = {**inherited, "cnpg.io/cluster": "spm-db", "cnpg.io/podRole": "instance", "role": "primary"}
    peers = ingress_peers(manifests, db_labels)
    assert peers, "PostgreSQL is open to every pod of the cluster"
    app = pod_labels(manifests, "gateway")
    assert any(from_pods(p, app) and 5432 in ports for p, ports in peers), peers
    assert any(from_pods(p, db_labels) and 5432 in ports for p, ports in peers), peers
    assert any(from_namespace(p, "cnpg-system") and 8000 in ports for p, ports in peers), peers
    assert all("everywhere" not in p and p != {} for p, _ in peers), peers


def test_p18b_a_cluster_restored_as_documented_is_reached_by_the_app_and_closed_to_the_rest(
    rendered: dict[str, list[Manifest]],
) -> None:
    """docs/operations.md's restore recipe creates spm-db-restored next to spm-db: with the
    documented inheritedMetadata the app's egress reaches it and spm-allow-database closes it."""
    manifests = rendered["prod"]
    blocks = re.findall(r"^```yaml\n(.*?)^```", OPERATIONS, flags=re.MULTILINE | re.DOTALL)
    [restored] = [doc for doc in map(yaml.safe_load, blocks) if doc["metadata"]["name"] == "spm-db-restored"]
    assert restored["spec"]["bootstrap"]["recovery"]["source"] == "spm-db"
    labels = {
        **restored["spec"]["inheritedMetadata"]["labels"],
        "cnpg.io/cluster": "spm-db-restored",
        "cnpg.io/podRole": "instance",
        "role": "primary",
    }
    peers = ingress_peers(manifests, labels)
    assert peers, "the restored cluster is open to every pod of the cluster"
    assert all("everywhere" not in p and p != {} for p, _ in peers), peers
    assert any(from_pods(p, pod_labels(manifests, "gateway")) and 5432 in ports for p, ports in peers), peers
    assert any(from_pods(p, labels) and 5432 in ports for p, ports in peers), peers
    for service in ("gateway", "ingest", "attribution", "metrics", "connectors"):
        egress = egress_peers(manifests, pod_labels(manifests, service))
        assert any(from_pods(p, labels) and 5432 in ports for p, ports in egress), service
    # Without the labels, neither policy covers it: the check above is not vacuous.
    bare = {"cnpg.io/cluster": "spm-db-restored", "cnpg.io/podRole": "instance"}
    assert ingress_peers(manifests, bare) == []


# --- monitoring -----------------------------------------------------------------------


def test_p19_alert_rules_read_only_series_the_code_defines(rendered: dict[str, list[Manifest]]) -> None:
    # CloudNativePG's exporter series (k8s_checks.CNPG_EXPORTER_SERIES) are defined by the
    # operator, not by this code: only those listed by name pass.
    defined = code_metrics() | {"up"} | set(CNPG_EXPORTER_SERIES)
    recorded = {r["record"] for r in alert_rules(rendered["prod"]) if "record" in r}
    unknown = {}
    for rule in alert_rules(rendered["prod"]):
        names = set(re.findall(r"\b(?:spm|cnpg)_[a-z_]+\b", rule["expr"])) - defined - recorded
        if names:
            unknown[rule.get("alert") or rule.get("record")] = names
    assert unknown == {}


def test_p20_every_alert_links_a_runbook_section_that_names_it(rendered: dict[str, list[Manifest]]) -> None:
    sections = doc_sections()
    wrong = []
    alerts = [r for r in alert_rules(rendered["prod"]) if "alert" in r]
    assert alerts
    for rule in alerts:
        annotations = rule.get("annotations") or {}
        url = annotations.get("runbook_url") or annotations.get("runbook", "")
        anchor = url.partition("#")[2]
        if "docs/operations.md" not in url or anchor not in sections:
            wrong.append(f"{rule['alert']}: runbook_url {url!r}")
            continue
        if rule["alert"] not in sections[anchor]:
            wrong.append(f"{rule['alert']}: section #{anchor} does not name it")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
            wrong.append(f"{rule['alert']}: severity")
    assert wrong == []


def test_p21_the_slo_table_and_the_rules_name_the_same_alerts_and_severities(
    rendered: dict[str, list[Manifest]],
) -> None:
    table = OPERATIONS.split("## SLOs and alerts", 1)[1].split("\n\n", 3)[2]
    documented: dict[str, str] = {}
    for row in table.splitlines()[2:]:
        cells = row.split("|")
        severity = re.findall(r"\((critical|warning)\)", cells[3])
        for index, name in enumerate(re.findall(r"`(Spm\w+)`", cells[3])):
            documented[name] = severity[min(index, len(severity) - 1)]
    rules = {r["alert"]: r["labels"]["severity"] for r in alert_rules(rendered["prod"]) if "alert" in r}
    assert {n: rules.get(n) for n in documented} == documented
    undocumented = [n for n in rules if f"`{n}`" not in OPERATIONS]
    assert undocumented == []


def test_p22_every_service_is_scraped_at_its_metrics_path(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["prod"]
    services = named(manifests, "Service")
    scraped = set()
    for monitor in of_kind(manifests, "ServiceMonitor"):
        for service in services.values():
            if selector_matches(monitor["spec"]["selector"], labels_of(service)):
                ports = {p.get("name") for p in service["spec"]["ports"]}
                for endpoint in monitor["spec"]["endpoints"]:
                    if endpoint.get("port") in ports and endpoint.get("path", "/metrics") == "/metrics":
                        scraped.add(labels_of(service)[COMPONENT])
    assert scraped == set(SERVICES)
    assert all("/metrics" in served_paths(s) for s in SERVICES)


# --- data: topics, database, migrations ---------------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_p23_topics_have_the_documented_partitions_replicas_and_retention(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    manifests = rendered[overlay]
    topics = kafka_topics(manifests)
    prefix = topic_prefix(manifests, "ingest")
    replicas = 3 if overlay == "prod" else 1
    wrong = []
    expected = {}
    for topic in REGISTRY:
        expected[prefix + topic.name] = (6, RETENTION_DAYS.get(topic.name))
        if topic.has_dlq:
            # "Replaying the DLQ": 6 partitions like its topic in deploy/, kept 30 days.
            expected[prefix + topic.dlq] = (6, 30)
    assert set(topics) == set(expected)
    for name, (partitions, days) in expected.items():
        spec = topics[name]["spec"]
        labels = labels_of(topics[name])
        if labels.get("strimzi.io/cluster") != "spm-kafka":
            wrong.append(f"{name}: cluster {labels.get('strimzi.io/cluster')}")
        if (spec["partitions"], spec["replicas"]) != (partitions, replicas):
            wrong.append(f"{name}: {spec['partitions']} partitions x {spec['replicas']}")
        retention = int((spec.get("config") or {}).get("retention.ms", 7 * MS_PER_DAY))
        if days is not None and retention != days * MS_PER_DAY:
            wrong.append(f"{name}: retention {retention / MS_PER_DAY} days, documented {days}")
        if overlay == "prod" and int((spec.get("config") or {}).get("min.insync.replicas", 1)) < 2:
            wrong.append(f"{name}: min.insync.replicas below 2 on 3 replicas")
        if topics[name]["metadata"].get("namespace") != NAMESPACE[overlay]:
            wrong.append(f"{name}: namespace {topics[name]['metadata'].get('namespace')}")
    assert wrong == []


def test_p24_prod_database_is_replicated_and_backed_up(rendered: dict[str, list[Manifest]]) -> None:
    """A platform team will not run a database without backups: CloudNativePG archives WAL and
    takes scheduled base backups with a retention policy, and the runbook says how to restore."""
    manifests = rendered["prod"]
    [cluster] = of_kind(manifests, "Cluster")
    assert cluster["metadata"]["name"] == "spm-db"
    assert cluster["spec"]["instances"] >= 2
    backup = cluster["spec"].get("backup") or {}
    store = backup.get("barmanObjectStore") or {}
    assert store.get("destinationPath"), backup
    assert backup.get("retentionPolicy"), backup
    scheduled = [s for s in of_kind(manifests, "ScheduledBackup") if s["spec"]["cluster"]["name"] == "spm-db"]
    assert scheduled
    assert "### Backups and restore" in OPERATIONS
    assert "spm-db-nightly" in OPERATIONS


def test_p25_the_documented_apply_selectors_pick_what_each_step_needs(
    rendered: dict[str, list[Manifest]],
) -> None:
    """docs "Deploying" and "Upgrading": the first install applies component in (namespace,
    database), then the migration alone with -l component=migrate and waits for job/spm-migrate
    before the services roll; the readers-first roll applies component=<service>."""
    manifests = rendered["prod"]

    def selected(*components: str) -> set[str]:
        return {
            f"{m['kind']}/{m['metadata']['name']}"
            for m in manifests
            if labels_of(m).get(COMPONENT) in components
        }

    assert {"Namespace/spm", "Cluster/spm-db"} <= selected("namespace", "database")
    # Every selector the runbook applies with picks something (a typo applies nothing, silently).
    for selector in re.findall(r"kubectl apply -k deploy/overlays/prod -l (\S+|'[^']+')", OPERATIONS):
        selector = selector.strip("'")
        if " in (" in selector:
            components = selector.split(" in (")[1].rstrip(")").split(",")
        else:
            components = [selector.split("=")[1].replace("$c", "metrics")]
        assert all(selected(c.strip()) for c in components), selector
    migrate = selected("migrate")
    assert {"Job/spm-migrate", "ServiceAccount/spm-migrate"} <= migrate
    assert not any(k.startswith(("Deployment/", "ScaledObject/")) for k in migrate), migrate
    for service in ("metrics", "attribution"):
        assert f"Deployment/spm-{service}" in selected(service)
    job = named(manifests, "Job")["spm-migrate"]
    assert (pod_template(job) or {})["spec"]["containers"][0]["args"][-1:] == ["migrate"] or "migrate" in (
        (pod_template(job) or {})["spec"]["containers"][0].get("command", [])
        + (pod_template(job) or {})["spec"]["containers"][0].get("args", [])
    )
    assert (pod_template(job) or {})["spec"]["restartPolicy"] in ("Never", "OnFailure")
    # `kubectl wait --for=condition=complete` must find the Job after it finished.
    assert job["spec"].get("ttlSecondsAfterFinished") is None or job["spec"]["ttlSecondsAfterFinished"] >= 900


def test_p26_deployments_carry_the_labels_the_runbook_selects_by(rendered: dict[str, list[Manifest]]) -> None:
    """`rollout restart deploy -l app.kubernetes.io/name=spm` restarts every process;
    `get pods -l app.kubernetes.io/component=attribution` finds the consumer's pods."""
    manifests = rendered["prod"]
    deployments = {d["metadata"]["name"] for d in of_kind(manifests, "Deployment")}
    restarted = {
        d["metadata"]["name"]
        for d in of_kind(manifests, "Deployment")
        if labels_of(d).get("app.kubernetes.io/name") == "spm"
    }
    assert restarted == deployments == {f"spm-{s}" for s in SERVICES}
    for service in SERVICES:
        assert pod_labels(manifests, service)[COMPONENT] == service
    for overlay, namespace in NAMESPACE.items():
        misplaced = [
            f"{m['kind']}/{m['metadata']['name']}"
            for m in rendered[overlay]
            if m["kind"] != "Namespace" and m["metadata"].get("namespace") != namespace
        ]
        assert misplaced == [], overlay


def test_p27_http_services_drain_before_they_stop(rendered: dict[str, list[Manifest]]) -> None:
    """docs "Prerequisites": the HTTP services use the native preStop sleep, shorter than the grace period."""
    manifests = rendered["prod"]
    for service in ("gateway", "ingest"):
        pod = deployment(manifests, service)["spec"]["template"]["spec"]
        [container] = pod["containers"]
        sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert 0 < sleep < pod.get("terminationGracePeriodSeconds", 30), service


def test_p28_dev_runs_one_replica_each_and_no_operators_beyond_strimzi(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["dev"]
    assert {d["spec"].get("replicas", 1) for d in of_kind(manifests, "Deployment")} == {1}
    custom = {
        m["kind"]
        for m in manifests
        if "." in m["apiVersion"].split("/")[0] and "strimzi" not in m["apiVersion"]
    }
    assert custom == set()


def test_p29_deploy_docs_name_files_that_exist() -> None:
    for path in re.findall(r"`(deploy/[\w/.\-]+)`", OPERATIONS):
        assert (REPO_ROOT / path).exists() or Path(DEPLOY_DIR.parent / path).exists(), path


def test_p30_autoscaled_deployments_leave_replicas_to_the_autoscaler_and_consumers_never_idle_to_zero(
    rendered: dict[str, list[Manifest]],
) -> None:
    """The runbook re-applies the whole overlay at each upgrade: a Deployment that sets
    ``replicas`` under an autoscaler is scaled back to it each time. The consumer processes also
    run the held sweep, settings jobs, erasures, the retention purge and the drainer ("Scaling",
    "Retention"): KEDA must never scale them to zero when lag is nil."""
    manifests = rendered["prod"]
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(manifests, "ScaledObject")}
    autoscaled = set(scaled) | {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    assert autoscaled == {"spm-gateway", "spm-ingest", "spm-attribution", "spm-metrics"}
    for name in autoscaled:
        assert "replicas" not in deployment(manifests, name.removeprefix("spm-"))["spec"], name
    for name, scaled_object in scaled.items():
        assert int(scaled_object["spec"].get("minReplicaCount", 0)) >= 1, name
        assert scaled_object["spec"].get("idleReplicaCount") is None, name


def test_p31_the_dev_secret_the_docs_describe_holds_every_key_a_dev_pod_requires(
    rendered: dict[str, list[Manifest]],
) -> None:
    """A key a pod references without ``optional: true`` keeps it in CreateContainerConfigError
    until the Secret has it: the dev recipe in "Deploying" must name each one."""
    [recipe] = re.findall(r"create `spm-secrets` in `spm-dev` with ([^\n]+\n[^\n]+)", OPERATIONS)
    documented = set(re.findall(r"`([A-Z_]+)`", recipe))
    required = {
        ref["key"]
        for workload in workloads(rendered["dev"])
        for container in all_containers(workload)
        for item in container.get("env") or []
        if (ref := item.get("valueFrom", {}).get("secretKeyRef")) and not ref.get("optional")
    }
    assert required <= documented, required - documented
