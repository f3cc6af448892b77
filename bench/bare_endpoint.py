"""The ingest baseline: an endpoint that only produces the request body to Kafka and answers 202.

``python -m bench.bare_endpoint`` serves it the way ``spm run ingest`` serves ingest (uvicorn,
one process, uvloop + httptools, 127.0.0.1, ``BARE_PORT``) against ``KAFKA_*``. It accepts any
``POST`` under ``/v1/``: the request body becomes one message (acks=all) on ``BARE_TOPIC``, and
the 202 is sent only after the broker acknowledged it. A JSON body with an ``activities`` list
is parsed just enough to answer ``{"accepted": n}``, which the batch load checks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request, Response

from libs.common.kafka.clients import make_producer
from libs.common.serve import serve
from libs.common.settings import KafkaSettings


def create_app(kafka: KafkaSettings, topic: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = make_producer(kafka, "bare")
        await producer.start()
        app.state.producer = producer
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/{path:path}", status_code=202)
    async def accept(request: Request, path: str) -> Response:
        """Produce the body, wait for the broker's acknowledgement, answer 202."""
        body = await request.body()
        await request.app.state.producer.send_and_wait(topic, body, key=path.encode())
        accepted = 1
        if request.headers.get("content-type", "").startswith("application/json"):
            accepted = len(orjson.loads(body).get("activities", ()))
        return Response(orjson.dumps({"accepted": accepted}), 202, media_type="application/json")

    return app


def main() -> None:
    kafka = KafkaSettings()
    app = create_app(kafka, os.environ.get("BARE_TOPIC", "bare-ingested"))
    sys.exit(serve(app, "127.0.0.1", int(os.environ["BARE_PORT"])))


if __name__ == "__main__":
    main()
