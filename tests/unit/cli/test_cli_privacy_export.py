"""``spm privacy export`` writes the handler's JSON to --out or stdout; a bad identity names --identity."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from spm.commands import privacy


def _app() -> typer.Typer:
    app = typer.Typer()
    privacy.register(app)
    return app


DOCUMENT = '{\n  "identity": {\n    "kind": "phone",\n    "value": "+14155550100"\n  }\n}'


def _exporting(calls: list[tuple[str, str, int, str | None]], outcome: str | Exception) -> object:
    async def export_person(tenant: str, identity: str, limit: int, cursor: str | None) -> str:
        calls.append((tenant, identity, limit, cursor))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return export_person


def test_the_export_goes_to_the_file_named_or_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str, int, str | None]] = []
    monkeypatch.setattr(privacy, "export_person", _exporting(calls, DOCUMENT))
    out = tmp_path / "dee.json"
    written = CliRunner().invoke(
        _app(), ["privacy", "export", "--tenant", "acme", "--identity", "(415) 555-0100", "--out", str(out)]
    )
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == DOCUMENT + "\n"
    shown = CliRunner().invoke(
        _app(), ["privacy", "export", "--tenant", "acme", "--identity", "dee@buyer.example", "--limit", "2"]
    )
    assert (shown.exit_code, shown.stdout) == (0, DOCUMENT + "\n")
    assert calls == [("acme", "(415) 555-0100", 500, None), ("acme", "dee@buyer.example", 2, None)]


def test_a_bad_identity_names_the_option_and_an_unknown_tenant_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, str, int, str | None]] = []
    reason = "must be an email address or a phone number (e.g. +14155550100)"
    monkeypatch.setattr(privacy, "export_person", _exporting(calls, ValueError(reason)))
    refused = CliRunner().invoke(_app(), ["privacy", "export", "--tenant", "acme", "--identity", "12345"])
    assert refused.exit_code == 2
    assert "--identity" in refused.output
    assert "must be an email address or a phone number" in refused.output
    monkeypatch.setattr(privacy, "export_person", _exporting(calls, LookupError("no tenant 'nobody'")))
    unknown = CliRunner().invoke(_app(), ["privacy", "export", "--tenant", "nobody", "--identity", "12345"])
    assert unknown.exit_code == 1
    assert "no tenant 'nobody'" in unknown.output
    too_many = CliRunner().invoke(
        _app(), ["privacy", "export", "--tenant", "acme", "--identity", "x@y.z", "--limit", "5001"]
    )
    assert too_many.exit_code == 2
