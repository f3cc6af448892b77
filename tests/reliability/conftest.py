"""Each reliability module owns its engines (its tests kill and stop them); a table ends the run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import SUMMARY, FaultEngines, fault_engines, summary_table


@pytest.fixture(scope="module")
def engines_under_fault() -> Iterator[FaultEngines]:
    # Not under pytest's tmp: PostgreSQL runs as its own user and must traverse to its data.
    base = Path(tempfile.mkdtemp(prefix="spm-reliability-"))
    try:
        with fault_engines(base) as engines:
            yield engines
    finally:
        # SPM_RELIABILITY_KEEP=1 keeps the service logs and data for a post-mortem.
        if not os.environ.get("SPM_RELIABILITY_KEEP"):
            shutil.rmtree(base, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.write_sep("=", "reliability: activities per fault")
        terminalreporter.write_line(summary_table(SUMMARY))
