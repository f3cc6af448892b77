"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, whatever the answers.

A closed loop (N clients each waiting for its answer) slows down with the server and so hides
queueing; here request ``i`` is due at ``start + i / rate`` and its latency is measured from
that due time, so a server that falls behind shows it in the tail (no coordinated omission).
The client is raw asyncio streams over keep-alive connections (a new one is opened when all
are busy, up to a cap), cheap enough to leave most of the two cores to the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import median, percentile


def raw_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 keep-alive POST, ready to write."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole answer; returns the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    seconds: float,
    max_connections: int = 512,
) -> dict[str, float]:
    """Offer ``rate`` requests/s for ``seconds`` (at most ``len(requests)``); 2xx rate and latency."""
    count = min(len(requests), int(rate * seconds))
    idle: list[_Connection] = []
    opened = 0
    released = asyncio.Condition()
    latencies: list[float] = []
    failures = 0
    #: Why requests failed: an HTTP status, or the connection error's name.
    reasons: dict[str, int] = {}

    async def connection() -> _Connection:
        nonlocal opened
        async with released:
            while not idle and opened >= max_connections:
                await released.wait()
            if idle:
                return idle.pop()
            opened += 1
        reader, writer = await asyncio.open_connection(host, port)
        return _Connection(reader, writer)

    async def one(request: bytes, due: float) -> None:
        nonlocal failures, opened
        conn = await connection()
        try:
            status = await conn.exchange(request)
        except (OSError, asyncio.IncompleteReadError) as exc:
            failures += 1
            reasons[type(exc).__name__] = reasons.get(type(exc).__name__, 0) + 1
            conn.writer.close()
            async with released:
                opened -= 1
                released.notify()
            return
        if 200 <= status < 300:
            latencies.append(time.perf_counter() - due)
        else:
            failures += 1
            reasons[str(status)] = reasons.get(str(status), 0) + 1
        async with released:
            idle.append(conn)
            released.notify()

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[i], due)))
    if not tasks:
        raise ValueError("no request to send: raise the rate or the duration")
    _, pending = await asyncio.wait(tasks, timeout=seconds + 30)
    for task in pending:
        task.cancel()
    finished = time.perf_counter()
    for conn in idle:
        conn.writer.close()
    return {
        "offered_per_s": rate,
        "sent": count,
        "ok": len(latencies),
        "failed": failures + len(pending),
        # "failed_503", "failed_ConnectionResetError", "failed_unanswered": why they failed.
        **{f"failed_{reason}": float(n) for reason, n in reasons.items()},
        **({"failed_unanswered": float(len(pending))} if pending else {}),
        "ok_per_s": len(latencies) / (finished - start),
        "p50_ms": median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": percentile(latencies, 99) * 1000,
        "connections": opened,
    }
