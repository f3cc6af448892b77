"""``spm goals set|list|remove`` against DATABASE_URL, and the answer for a tenant or goal that is not there."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY

from .test_cli_tenant_settings import _spm


async def test_a_goal_is_set_listed_and_removed_from_the_cli(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)

    def spm(*args: str) -> tuple[int, str, str]:
        done = _spm(list(args), database_url, kafka_settings)
        return done.returncode, done.stdout, done.stderr

    assert spm(
        "goals",
        "set",
        "--tenant",
        "acme",
        "weekly-dials",
        "--scope",
        "tenant",
        "--period",
        "week",
        "--metric",
        "dials",
        "--target",
        "50",
    ) == (0, "weekly-dials: dials 50 per week (tenant)\n", "")
    assert spm("goals", "list", "--tenant", "acme") == (0, "weekly-dials: dials 50 per week (tenant)\n", "")
    assert spm("goals", "list", "--tenant", "nobody") == (1, "", "no tenant 'nobody'\n")
    assert spm("goals", "remove", "--tenant", "acme", "weekly-dials") == (0, "removed weekly-dials\n", "")
    assert spm("goals", "remove", "--tenant", "acme", "weekly-dials") == (1, "", "no goal 'weekly-dials'\n")
