"""``spm webhooks set --secret-stdin`` registers a vendor-issued secret; ``spm webhooks list`` shows it masked."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import KafkaSettings
from libs.common.tenancy import create_tenant, webhook_secrets
from libs.common.testing.stack import TEST_SECRET_KEY

from .test_cli_tenant_settings import _spm

TOKEN = "zoom-secret-token-abcdef123456"


async def test_a_vendor_secret_from_stdin_is_registered_and_listed_masked(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
    registered = _spm(
        ["webhooks", "set", "--tenant", "acme", "--source", "zoom", "--secret-stdin", "--grace-hours", "1"],
        database_url,
        kafka_settings,
        stdin=TOKEN + "\n",
    )
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == (
        "zoom secret …3456 registered for acme; 1 older secret(s) stay valid for 1 h, then expire"
    )
    assert TOKEN not in registered.stdout
    async with db_engine.connect() as conn:
        assert (await webhook_secrets(conn, "acme", "zoom", TEST_SECRET_KEY))[0] == TOKEN

    listed = _spm(["webhooks", "list", "--tenant", "acme", "--source", "zoom"], database_url, kafka_settings)
    assert listed.returncode == 0, listed.stderr
    header, newest, older = listed.stdout.splitlines()
    assert header.split() == ["source", "id", "secret", "created", "expires", "valid"]
    assert (newest.split()[2], newest.split()[4:]) == ("…3456", ["never", "yes"])
    assert older.split()[-1] == "yes"
    assert TOKEN not in listed.stdout

    refused = _spm(
        ["webhooks", "set", "--tenant", "acme", "--source", "zoom", "--secret-stdin"],
        database_url,
        kafka_settings,
        stdin="\n",
    )
    assert refused.returncode == 2
    assert "the secret must not be empty" in refused.stderr
