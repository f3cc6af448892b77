"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, whatever the answers.

A closed loop (N clients each waiting for its answer) slows down with the server and so hides
queueing; here request ``i`` is due at ``start + i / rate`` and its latency is measured from
that due time, so a server that falls behind shows it in the tail (no coordinated omission).
The client is raw asyncio streams over keep-alive connections (a new one is opened when all
are busy, up to a cap), cheap enough to leave most of the two cores to the server.

The achieved rate (``ok_per_s``) is counted over the schedule's steady part, from the end of
its first tenth (connections opened, the server's first answers) to the last request's due time:
the requests due in it that were answered 2xx within it, per second of it. A server that keeps
up answers those at the offered rate, short only by its latency at the window's end (10 ms at
2,000/s over 9 s: 0.1 %); one that falls behind answers fewer, and a backlog left from the
first tenth, drained inside the window, is not counted as the window's (answers per second
inside the window would read it as more than the offered rate). The whole run's figure
(``ok_per_s_whole_run``: every 2xx over the time from the first due time to the last answer)
counts the last answers' latency as time without requests, which reads a server that keeps up
as 1-2 % short of the offered rate at 10 s. ``send_lag_p99_ms`` says whether the generator kept
its schedule (latency is counted from the due time either way).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
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
    #: Whether an answer came back on it already (it was idle in between).
    served: bool = False

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


def _closed_unanswered(exc: BaseException) -> bool:
    """The connection was closed before any byte of an answer came back."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return not exc.partial
    return isinstance(exc, ConnectionResetError | BrokenPipeError)


async def _exchange(
    conn: _Connection, request: bytes, host: str, port: int, resent: Callable[[], None]
) -> tuple[int, _Connection]:
    """The request's status, and the connection that answered it: an idle keep-alive connection
    the server closed (its keep-alive timeout) before the request reached it is replaced by a new
    one and the request sent again (``resent`` told), as HTTP clients do. Raises what failed it
    (the resend's connection refused too), each connection it used closed."""
    try:
        return await conn.exchange(request), conn
    except (OSError, asyncio.IncompleteReadError) as exc:
        conn.writer.close()
        if not (conn.served and _closed_unanswered(exc)):
            raise
    resent()
    fresh = _Connection(*await asyncio.open_connection(host, port))
    try:
        return await fresh.exchange(request), fresh
    except (OSError, asyncio.IncompleteReadError):
        fresh.writer.close()
        raise


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
    #: (due, answered) times of each 2xx answer (``time.perf_counter``), and how late each request left.
    answered: list[tuple[float, float]] = []
    send_lags: list[float] = []
    failures = 0
    #: Requests sent again because the server had closed their idle connection.
    stale = 0
    #: Why requests failed: an HTTP status, or the connection error's name.
    reasons: dict[str, int] = {}

    def resent() -> None:
        nonlocal stale
        stale += 1

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
        try:
            # A connection refused takes its slot too (``connection``), released below.
            conn = await connection()
            send_lags.append(time.perf_counter() - due)
            status, conn = await _exchange(conn, request, host, port, resent)
        except (OSError, asyncio.IncompleteReadError) as exc:
            failures += 1
            reasons[type(exc).__name__] = reasons.get(type(exc).__name__, 0) + 1
            async with released:
                opened -= 1
                released.notify()
            return
        conn.served = True
        if 200 <= status < 300:
            now = time.perf_counter()
            latencies.append(now - due)
            answered.append((due, now))
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
    # The schedule's steady part: after its first tenth, up to the last due time.
    window_start, window_end = start + (count - 1) / rate / 10, start + (count - 1) / rate
    in_window = sum(1 for due, at in answered if window_start <= due and at <= window_end)
    return {
        "offered_per_s": rate,
        "sent": count,
        "ok": len(latencies),
        "failed": failures + len(pending),
        # "failed_503", "failed_ConnectionResetError", "failed_unanswered": why they failed.
        **{f"failed_{reason}": float(n) for reason, n in reasons.items()},
        **({"failed_unanswered": float(len(pending))} if pending else {}),
        "ok_per_s": in_window / (window_end - window_start) if window_end > window_start else float("nan"),
        "ok_per_s_whole_run": len(latencies) / (finished - start),
        "send_lag_p99_ms": percentile(send_lags, 99) * 1000 if send_lags else float("nan"),
        "p50_ms": median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": percentile(latencies, 99) * 1000,
        "connections": opened,
        # Not failures, but a server resetting reused connections shows here: report it beside them.
        "resent_on_closed_idle_connection": stale,
    }
