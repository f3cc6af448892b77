"""Gateway integration fixtures: a migrated database with two seeded tenants and a gateway client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.settings import DatabaseSettings
from libs.common.testing.stack import TEST_SECRET_KEY
from services.gateway.app import create_app
from services.gateway.settings import GatewayOptions

from .gateway_support import HS256_SECRET, Keys, gateway_settings, seed_acme, seed_globex, seed_tenant


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def gateway_options(rsa_key: rsa.RSAPrivateKey) -> GatewayOptions:
    public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return GatewayOptions(
        jwt_hs256_secret=HS256_SECRET,
        jwt_rs256_public_key=public.decode(),
        jwt_issuer="https://idp.example",
        jwt_audience="spm",
        max_page_size=100,
        max_range_days=120,
    )


@pytest.fixture
async def keys(db_engine: AsyncEngine) -> Keys:
    async with db_engine.begin() as conn:
        acme = await seed_tenant(conn, "acme", TEST_SECRET_KEY)
        globex = await seed_tenant(conn, "globex", TEST_SECRET_KEY)
        await seed_acme(conn)
        await seed_globex(conn)
    return Keys(acme["read"], acme["admin"], acme["ingest"], globex["read"], globex["admin"])


@pytest.fixture
async def gateway(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway over the seeded database (no broker: overrides answer 503)."""
    app = create_app(gateway_settings(database_settings, gateway_options))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
