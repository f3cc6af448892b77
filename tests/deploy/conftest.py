"""Fixtures for the deploy checks: manifests rendered once per overlay."""

from __future__ import annotations

import os

import pytest

from .k8s_checks import DEPLOY_DIR, OVERLAYS, Manifest, kubectl_binary, render


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl for rendering; scripts/k8s-check.sh sets SPM_REQUIRE_K8S_TOOLS=1 so a missing one fails."""
    binary = kubectl_binary()
    if binary is None:
        if os.environ.get("SPM_REQUIRE_K8S_TOOLS") == "1" or os.environ.get("CI") == "true":
            pytest.fail("kubectl not found: run scripts/install-k8s-tools.sh")
        pytest.skip("kubectl not found: run scripts/install-k8s-tools.sh")
    return binary


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[Manifest]]:
    return {overlay: render(DEPLOY_DIR / "overlays" / overlay, kubectl) for overlay in OVERLAYS}
