"""``spm goals``: the same goals the admin API sets, from the command line."""

from __future__ import annotations

import asyncio

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from libs.common.db.engine import make_engine
from libs.common.settings import DatabaseSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY
from spm.commands.goals import register


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def _tenant_with_a_team(database: DatabaseSettings) -> None:
    engine = make_engine(database, "test")
    try:
        async with engine.begin() as conn:
            await create_tenant(conn, "acme", TEST_SECRET_KEY)
            await conn.execute(
                text(
                    "INSERT INTO ref_teams (tenant_id, team_id, updated_at) VALUES ('acme', 'team-east', now())"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO ref_reps (tenant_id, rep_id, role, updated_at) "
                    "VALUES ('acme', 'rep-1', 'Sales Development', now())"
                )
            )
    finally:
        await engine.dispose()


def test_goals_are_set_listed_and_removed(
    database_settings: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_tenant_with_a_team(database_settings))
    monkeypatch.setenv("DATABASE_URL", database_settings.url.get_secret_value())
    cli, runner = _cli(), CliRunner()
    base = ["goals", "set", "--tenant", "acme", "--period", "week", "--metric", "dials", "--target", "60"]

    team = runner.invoke(cli, [*base, "east-dials", "--scope", "team", "--subject", "team-east"])
    everyone = runner.invoke(cli, [*base, "all-dials", "--scope", "tenant", "--target", "50"])
    assert (team.exit_code, everyone.exit_code) == (0, 0), team.output + everyone.output
    assert team.output.strip() == "east-dials: dials 60 per week (team team-east)"

    listed = runner.invoke(cli, ["goals", "list", "--tenant", "acme"])
    assert listed.output.splitlines() == [
        "all-dials: dials 50 per week (tenant)",
        "east-dials: dials 60 per week (team team-east)",
    ]
    unknown = runner.invoke(cli, [*base, "west", "--scope", "team", "--subject", "team-west"])
    assert unknown.exit_code == 1
    assert "no team 'team-west'" in unknown.output
    invalid = runner.invoke(cli, [*base, "x", "--scope", "rep"])
    assert invalid.exit_code == 2
    assert "subject_id is required" in invalid.output

    role = runner.invoke(cli, [*base, "sdr-dials", "--scope", "role", "--role", "Sales Development"])
    assert role.exit_code == 0, role.output
    assert role.output.strip() == "sdr-dials: dials 60 per week (role 'Sales Development')"
    typo = runner.invoke(cli, [*base, "sdr-typo", "--scope", "role", "--role", "SDR"])
    assert typo.exit_code == 1
    assert "role: no rep holds the role 'SDR' (roles held: 'Sales Development')" in typo.output
    no_role = runner.invoke(cli, [*base, "sdr-none", "--scope", "role"])
    assert no_role.exit_code == 2
    assert "role is required for a role goal" in no_role.output
    assert runner.invoke(cli, ["goals", "list", "--tenant", "acme"]).output.splitlines() == [
        "all-dials: dials 50 per week (tenant)",
        "east-dials: dials 60 per week (team team-east)",
        "sdr-dials: dials 60 per week (role 'Sales Development')",
    ]
    assert runner.invoke(cli, ["goals", "remove", "--tenant", "acme", "sdr-dials"]).exit_code == 0

    assert runner.invoke(cli, ["goals", "remove", "--tenant", "acme", "all-dials"]).exit_code == 0
    assert runner.invoke(cli, ["goals", "remove", "--tenant", "acme", "all-dials"]).exit_code == 1
    assert runner.invoke(cli, ["goals", "list", "--tenant", "acme"]).output.splitlines() == [
        "east-dials: dials 60 per week (team team-east)"
    ]
