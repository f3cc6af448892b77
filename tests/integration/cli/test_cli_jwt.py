"""``spm jwt revoke|list|restore`` against DATABASE_URL: the subject's sessions end, the audit log names the operator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import KafkaSettings
from libs.common.tenancy import create_tenant
from libs.common.testing.stack import TEST_SECRET_KEY

from .test_cli_tenant_settings import _spm


async def test_a_subject_is_revoked_listed_and_restored_from_the_cli(
    database_url: str, kafka_settings: KafkaSettings, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as conn:
        await create_tenant(conn, "acme", TEST_SECRET_KEY)
        await conn.execute(
            text(
                "INSERT INTO gateway_sessions (session_id, tenant_id, token_hash, subject, scopes, expires_at) "
                "VALUES ('0123456789abcdef', 'acme', 'h', 'jwt:auth0|77', ARRAY['read'], :at)"
            ),
            {"at": datetime.now(UTC) + timedelta(hours=1)},
        )
    revoked = _spm(
        ["jwt", "revoke", "auth0|77", "--tenant", "acme", "--reason", "laptop stolen"],
        database_url,
        kafka_settings,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith("revoked auth0|77 in acme: tokens issued before ")
    assert revoked.stdout.rstrip().endswith("are refused; 1 dashboard session(s) ended")

    listed = _spm(["jwt", "list", "--tenant", "acme"], database_url, kafka_settings)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["subject", "not", "before", "by", "reason"]
    assert (row.split()[0], row.split()[2].startswith("cli:"), row.split()[3:]) == (
        "auth0|77",
        True,
        ["laptop", "stolen"],
    )

    assert _spm(["jwt", "restore", "auth0|77", "--tenant", "acme"], database_url, kafka_settings).stdout == (
        "restored auth0|77 in acme\n"
    )
    again = _spm(["jwt", "restore", "auth0|77", "--tenant", "acme"], database_url, kafka_settings)
    assert (again.returncode, again.stderr) == (1, "auth0|77 is not revoked in acme\n")
    unknown = _spm(["jwt", "list", "--tenant", "nobody"], database_url, kafka_settings)
    # Nothing on stdout: no table header for a tenant that does not exist.
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (1, "", "no tenant 'nobody'\n")
    async with db_engine.connect() as conn:
        session = (
            await conn.execute(text("SELECT revoked_at IS NOT NULL FROM gateway_sessions"))
        ).scalar_one()
        actions = (await conn.execute(text("SELECT action FROM audit_log ORDER BY audit_id"))).scalars().all()
    assert session is True
    assert actions[-2:] == ["jwt_subject.revoked", "jwt_subject.restored"]
