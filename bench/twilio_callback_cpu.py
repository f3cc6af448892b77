"""Ingest CPU per Twilio callback, in process: ``python -m bench.twilio_callback_cpu [--rounds 3]``.

The ingest app runs in this process (the same app ``spm run ingest`` serves) against the
embedded broker and PostgreSQL; each round posts 2,000 callbacks of new calls at 8 in flight and
divides this process's CPU time (``time.process_time``: ingest and its producer, not the
broker's or PostgreSQL's) by the callbacks. Each request is handed to the app as an ASGI call
(``_AsgiClient``: the scope, one ``http.request`` message, the answer's messages collected), as
the server hands it over, without an HTTP client in the process: ``httpx.ASGITransport`` built
and parsed each request and answer (URL parsing, header models) and tried ``import sniffio`` on
every request (five failed path lookups), about half of what was counted per callback. What is
counted is ingest's work from the ASGI call on (uvicorn's HTTP parsing and writing are not
in it). Two kinds, alternated round by round:

* ``completed``: the final callback of a call between two numbers, which ingest also keeps for
  the call's ``<Dial>`` legs (the parent store);
* ``plain``: an ``in-progress`` callback of such a call, published without any state.

Also counts the statements ingest sends PostgreSQL per callback (each a round trip; requests in
flight together share the duplicate ledger's). Prints one JSON line per round and the medians. Compare two code versions by running this in
each checkout, alternating the runs (the machine's load drifts).

``--callgrind-lib`` counts each measured round's instructions in this process alone, one dump per
round in the order printed (the library and the valgrind command line are in
``bench.attribution_cpu``'s docstring; ``--callbacks 500`` keeps a round under valgrind short).

For counts that repeat to the thousandth (the seventeenth round's), ``--quiet`` leaves the
settings listener's consumer and the job worker unstarted (under valgrind they polled the broker
and PostgreSQL many times a round: counts of one code moved by 2-4 %), ``--no-broker`` hands the
messages to a publisher that builds their headers and acknowledges at once (the Kafka client's
share left out), ``--no-ledger`` answers the duplicate ledger at once (PostgreSQL's round trips
left out), ``--in-flight 1`` sends one callback at a time (no statement shared between callbacks,
whose sharing moves with timing), and ``--uvloop`` runs the loop ``spm run ingest`` serves on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import statistics
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvloop
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.common import engines
from bench.cpu_harness import callgrind_lib
from bench.ingest_throughput import (
    IN_FLIGHT,
    SECRET_KEY,
    TENANT,
    TWILIO_TOKEN,
    prepare_tenant,
    twilio_callback,
)

CALLBACKS = 2_000
#: Statements ingest sent to PostgreSQL (each a round trip), every engine of the process.
_statements = [0]


@event.listens_for(Engine, "before_cursor_execute")
def _count_statement(*_: object) -> None:
    _statements[0] += 1


class _AsgiClient:
    """POSTs to an ASGI app in this process as uvicorn hands a request over: a scope for
    ``http://127.0.0.1`` (what the callbacks are signed for), the body in one message."""

    base_url = "http://127.0.0.1"

    def __init__(self, app: Any) -> None:
        self._app = app

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        raw_headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}  # not asked for: the body came in one message
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        return status, b"".join(chunks)


def _callback(base_url: str, n: int, status: str) -> tuple[bytes, dict[str, str]]:
    """The bench's signed ``completed`` callback of call ``n``, or the same call ``in-progress``."""
    body, headers = twilio_callback(base_url, n)
    if status == "completed":
        return body, headers
    params = dict(parse_qsl(body.decode()))
    params.update({"CallStatus": status, "CallDuration": "0", "SequenceNumber": "2"})
    url = f"{base_url}/v1/webhooks/twilio/{TENANT}"
    signed = url + "".join(k + v for k, v in sorted(params.items()))
    signature = base64.b64encode(hmac.new(TWILIO_TOKEN.encode(), signed.encode(), hashlib.sha1).digest())
    return urlencode(params).encode(), {**headers, "x-twilio-signature": signature.decode()}


async def _round(
    client: _AsgiClient,
    first: int,
    status: str,
    callbacks: int = CALLBACKS,
    callgrind: Any = None,
    in_flight: int = IN_FLIGHT,
) -> dict[str, float]:
    requests = [_callback(client.base_url, first + n, status) for n in range(callbacks)]
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(requests):
            body, headers = requests[next_index]
            next_index += 1
            code, answer = await client.post(f"/v1/webhooks/twilio/{TENANT}", body, headers)
            if code != 200:
                raise RuntimeError(f"twilio callback answered {code}: {answer[:300]!r}")

    statements0, cpu0, wall0 = _statements[0], time.process_time(), time.perf_counter()
    if callgrind is not None:
        callgrind.cg_start()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    if callgrind is not None:
        callgrind.cg_stop()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "cpu_us": cpu / callbacks * 1e6,
        "per_s": callbacks / wall,
        "statements_per_callback": (_statements[0] - statements0) / callbacks,
    }


async def _acknowledged_at_once(publisher: Any, messages: Any) -> None:
    for message in messages:
        message.envelope.to_headers()


def _without(*, background: bool, broker: bool, ledger: bool) -> None:
    """Leave out of the process what the options name (see the module's docstring)."""
    from libs.common.jobs import JobWorker
    from libs.common.kafka.publisher import KafkaPublisher
    from libs.common.kafka.settings_events import SettingsChangeListener
    from services.ingest.adapters.repository import SeenLedger

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    async def never_seen(*_: Any, **__: Any) -> tuple[set[Any], bool]:
        return set(), False

    if background:
        for kind in (SettingsChangeListener, JobWorker):
            setattr(kind, "start", lambda self: None)  # noqa: B010 - replaced for the bench's process
            setattr(kind, "stop", nothing)  # noqa: B010
    if broker:
        KafkaPublisher.publish = _acknowledged_at_once  # type: ignore[method-assign,assignment]
        KafkaPublisher.warm_up = nothing  # type: ignore[method-assign]
    if ledger:
        SeenLedger._look_up = never_seen  # type: ignore[method-assign]
        SeenLedger._record = nothing  # type: ignore[method-assign]


def measure(
    rounds: int,
    callbacks: int = CALLBACKS,
    callgrind: Any = None,
    *,
    in_flight: int = IN_FLIGHT,
    use_uvloop: bool = False,
) -> dict[str, list[dict[str, float]]]:
    from libs.common.settings import DatabaseSettings, KafkaSettings, RuntimeSettings
    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    results: dict[str, list[dict[str, float]]] = {"completed": [], "plain": []}
    with engines(partitions=2) as eng:
        url = eng.postgres.url("spm")
        asyncio.run(prepare_tenant(url))
        settings = IngestSettings(
            runtime=RuntimeSettings(secret_key=SECRET_KEY),
            kafka=KafkaSettings(bootstrap_servers=eng.kafka.bootstrap_servers, enable_idempotence=False),
            database=DatabaseSettings(url=url),
        )
        app = create_app(settings)

        async def go() -> None:
            async with app.router.lifespan_context(app):
                client = _AsgiClient(app)
                await _round(
                    client, 10**9, "completed", callbacks
                )  # warm-up: caches, connections, the producer
                await _round(client, 10**9 + callbacks, "in-progress", callbacks)
                for r in range(rounds):
                    for i, (kind, status) in enumerate(
                        (("completed", "completed"), ("plain", "in-progress"))
                    ):
                        first = (2 * r + i + 1) * callbacks
                        row = await _round(client, first, status, callbacks, callgrind, in_flight)
                        results[kind].append(row)
                        print(json.dumps({"round": r + 1, "kind": kind, **row}), flush=True)

        if use_uvloop:
            uvloop.run(go())
        else:
            asyncio.run(go())
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callbacks", type=int, default=CALLBACKS, help="callbacks per round")
    parser.add_argument("--callgrind-lib", default=None, help="see bench.attribution_cpu")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT, help="callbacks sent at once")
    parser.add_argument("--quiet", action="store_true", help="no settings listener, no job worker")
    parser.add_argument("--no-broker", action="store_true", help="messages acknowledged at once")
    parser.add_argument("--no-ledger", action="store_true", help="the duplicate ledger answered at once")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as the server does")
    args = parser.parse_args(argv)
    _without(background=args.quiet, broker=args.no_broker, ledger=args.no_ledger)
    results = measure(
        args.rounds,
        args.callbacks,
        callgrind_lib(args.callgrind_lib),
        in_flight=args.in_flight,
        use_uvloop=args.uvloop,
    )
    summary = {
        kind: {
            "cpu_us_median": statistics.median(r["cpu_us"] for r in rows),
            "cpu_us": [round(r["cpu_us"]) for r in rows],
            "per_s_median": statistics.median(r["per_s"] for r in rows),
            "statements_per_callback_median": statistics.median(r["statements_per_callback"] for r in rows),
        }
        for kind, rows in results.items()
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
