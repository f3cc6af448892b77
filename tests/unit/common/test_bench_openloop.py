"""The open-loop load generator's accounting (``bench/openloop.py``) against a local server that
closes each connection after answering on it: a request sent on such an idle keep-alive
connection is sent again on a new one and counted as resent; when the new connection is refused
too, the request is counted as failed (with its reason) and its connection slot released."""

from __future__ import annotations

import asyncio

from bench.openloop import open_loop, raw_post

REQUEST = raw_post("127.0.0.1", 0, "/", b"{}", {"Content-Type": "application/json"})


async def _run(stop_listening_after_first: bool) -> dict[str, float]:
    async def answer_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if stop_listening_after_first:
            server.close()  # the next connection is refused
        writer.close()  # the keep-alive connection closed once idle (a server's keep-alive timeout)

    server = await asyncio.start_server(answer_and_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        # Two requests 0.25 s apart: the second finds the first's connection idle and closed.
        return await open_loop("127.0.0.1", port, [REQUEST, REQUEST], rate=4, seconds=0.5)
    finally:
        server.close()


def test_a_request_on_a_closed_idle_connection_is_resent_on_a_new_one_and_counted() -> None:
    result = asyncio.run(_run(stop_listening_after_first=False))
    assert (result["ok"], result["failed"], result["resent_on_closed_idle_connection"]) == (2, 0, 1)


def test_a_resend_whose_connection_is_refused_is_a_failure_and_frees_its_slot() -> None:
    result = asyncio.run(_run(stop_listening_after_first=True))
    assert (result["ok"], result["failed"], result["resent_on_closed_idle_connection"]) == (1, 1, 1)
    assert result["failed_ConnectionRefusedError"] == 1
    assert result["connections"] == 0  # the refused request's slot released, nothing open
