"""JWTs checked against the identity provider's JWKS document, over real HTTP.

A stand-in provider serves its JWKS on 127.0.0.1 and rotates: the gateway follows a new key as
soon as a token names it, drops a retired one at the next scheduled read, keeps what it knew
while the provider is down, and a flood of invented key ids does not become a flood of reads.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from libs.common.settings import DatabaseSettings
from services.gateway.app import create_app
from services.gateway.settings import GatewayOptions

from .gateway_support import Keys, bearer, gateway_settings, served


class Provider:
    """The JWKS document an identity provider publishes, and how often it was read."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.reads = 0
        self.down = False

    def publish(self, kid: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
        if isinstance(key, rsa.RSAPrivateKey):
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
        else:
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())
        self.keys[kid] = {**json.loads(jwk), "kid": kid, "use": "sig"}

    def app(self) -> FastAPI:
        async def jwks(_: Request) -> Response:
            self.reads += 1
            if self.down:
                return Response(status_code=503)
            return JSONResponse({"keys": list(self.keys.values())})

        app = FastAPI()
        app.add_route("/.well-known/jwks.json", jwks)
        return app


def _token(key: Any, kid: str, algorithm: str = "RS256") -> str:
    claims = {
        "sub": "user-7",
        "tenant": "acme",
        "iss": "https://idp.example",
        "aud": "spm",
        "exp": int(time.time()) + 300,
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


#: The rotation test's schedule: the requests between two scheduled reads must take less (a read
#: more would change the counts asserted), so it leaves a loaded machine a wide margin.
REFRESH_SECONDS = 2.0


async def test_the_gateway_follows_the_providers_key_rotation(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    provider = Provider()
    old, new = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec.generate_private_key(ec.SECP256R1()),
    )
    # Made before the reads are counted: the steps between two scheduled reads stay well inside
    # the refresh interval on a loaded machine (an RSA key can take a second to generate there).
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.publish("2026-11", old)
    async with served(provider.app()) as idp:
        options = gateway_options.model_copy(
            update={
                "jwt_jwks_url": f"{idp}/.well-known/jwks.json",
                "jwt_jwks_refresh_seconds": REFRESH_SECONDS,
                "jwt_jwks_min_refetch_seconds": 0.0,
            }
        )
        async with (
            served(create_app(gateway_settings(database_settings, options))) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):

            async def status(token: str) -> int:
                return (await client.get("/v1/reps", headers=bearer(token))).status_code

            assert await status(_token(old, "2026-11")) == 200
            assert provider.reads == 1
            # The provider publishes its next key, then signs with it: read again on the new kid.
            provider.publish("2026-12", new)
            assert await status(_token(new, "2026-12", "ES256")) == 200
            assert provider.reads == 2
            # A token signed by a key the document does not hold, under a known kid, is refused.
            assert await status(_token(foreign, "2026-11")) == 401
            # The old key retires: refused once the document is read again on schedule.
            del provider.keys["2026-11"]
            await asyncio.sleep(REFRESH_SECONDS + 0.1)
            assert await status(_token(old, "2026-11")) == 401
            # The scheduled read, then one more for the kid it no longer holds.
            assert provider.reads == 4
            # The provider is down: the keys known stay in use.
            provider.down = True
            await asyncio.sleep(REFRESH_SECONDS + 0.1)
            assert await status(_token(new, "2026-12", "ES256")) == 200
            assert provider.reads == 5


async def test_invented_key_ids_do_not_become_reads_of_the_provider(
    keys: Keys, database_settings: DatabaseSettings, gateway_options: GatewayOptions
) -> None:
    provider = Provider()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.publish("k1", key)
    async with served(provider.app()) as idp:
        options = gateway_options.model_copy(
            update={"jwt_jwks_url": f"{idp}/.well-known/jwks.json", "jwt_jwks_min_refetch_seconds": 30.0}
        )
        async with (
            served(create_app(gateway_settings(database_settings, options))) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):
            answers = [
                (await client.get("/v1/reps", headers=bearer(_token(key, uuid.uuid4().hex)))).status_code
                for _ in range(25)
            ]
            assert answers == [401] * 25
            assert (await client.get("/v1/reps", headers=bearer(_token(key, "k1")))).status_code == 200
    assert provider.reads == 1
