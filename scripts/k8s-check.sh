#!/usr/bin/env bash
# Offline checks of the container image and the Kubernetes manifests; no cluster needed.
#
#   1. kubectl kustomize every overlay (deploy/overlays/*)
#   2. kubernetes-validate --strict on the built-in kinds of each rendering; the custom
#      resources (KafkaTopic, ScaledObject, ServiceMonitor, ...) have no bundled schema
#      and are checked by the pytest checks in tests/deploy instead
#   3. checkov on the renderings and the Dockerfile (skips are annotated in place)
#   4. yamllint, 5. hadolint, 6. promtool check + test rules
#   7. pytest tests/deploy: probes, limits, restricted securityContext, a KafkaTopic per
#      registry topic, pinned images, consistent labels, and the broken-manifest cases
#
# Every step runs even when an earlier one fails; the exit status is non-zero if any failed.
# Install the tools first: bash scripts/install-k8s-tools.sh
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
tools_venv="${K8S_TOOLS_VENV:-${repo_root}/.venv-k8s}"
app_python="${SPM_PYTHON:-${repo_root}/.venv/bin/python}"
kubernetes_version="${K8S_VERSION:-1.32.0}"
export PATH="${tools_venv}/bin:${PATH}"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

failed=()
started=${SECONDS}

step() {
    local name=$1
    shift
    echo "::: ${name}"
    local begun=${SECONDS}
    if "$@"; then
        echo "::: ${name}: ok ($((SECONDS - begun))s)"
    else
        echo "::: ${name}: FAILED ($((SECONDS - begun))s)"
        failed+=("${name}")
    fi
}

render_overlays() {
    local overlay status=0
    mkdir -p "${work}/rendered"
    for overlay in deploy/overlays/*/; do
        overlay="$(basename "${overlay}")"
        kubectl kustomize "deploy/overlays/${overlay}" >"${work}/rendered/${overlay}.yaml" || status=1
        echo "    ${overlay}: $(grep -c '^kind:' "${work}/rendered/${overlay}.yaml") objects"
    done
    return "${status}"
}

validate_builtin_kinds() {
    local rendering name output status=0
    for rendering in "${work}"/rendered/*.yaml; do
        name="$(basename "${rendering}" .yaml)"
        "${app_python}" tests/deploy/k8s_checks.py builtin <"${rendering}" >"${work}/${name}.builtin.yaml" || return 1
        output="$(kubernetes-validate --strict --kubernetes-version "${kubernetes_version}" \
            "${work}/${name}.builtin.yaml" 2>&1)" || status=1
        # A built-in kind without a schema would pass silently as a warning: refuse it.
        if grep -q "^WARN" <<<"${output}"; then
            status=1
        fi
        grep -v "^INFO" <<<"${output}" | sed 's/^/    /'
        echo "    ${name}: $(grep -c "^INFO" <<<"${output}") built-in objects valid against Kubernetes ${kubernetes_version}"
    done
    return "${status}"
}

run_checkov() {
    checkov --quiet --compact --skip-download --framework kubernetes -d "${work}/rendered" &&
        checkov --quiet --compact --skip-download --framework dockerfile -f Dockerfile
}

run_yamllint() {
    yamllint --strict deploy .yamllint.yaml .hadolint.yaml
}

run_hadolint() {
    hadolint --config .hadolint.yaml Dockerfile
}

run_promtool() {
    promtool check rules deploy/components/monitoring/rules/spm-rules.yaml &&
        promtool test rules deploy/components/monitoring/rules/spm-rules.test.yaml
}

run_pytest() {
    SPM_REQUIRE_K8S_TOOLS=1 "${app_python}" -m pytest tests/deploy -q -p no:cacheprovider
}

step "render overlays" render_overlays
step "kubernetes-validate (built-in kinds)" validate_builtin_kinds
step "checkov" run_checkov
step "yamllint" run_yamllint
step "hadolint" run_hadolint
step "promtool" run_promtool
step "pytest tests/deploy" run_pytest

echo "k8s-check: $((SECONDS - started))s"
if ((${#failed[@]} > 0)); then
    printf 'k8s-check FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "k8s-check: all checks passed"
