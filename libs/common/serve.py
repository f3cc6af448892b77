"""Run an ASGI app under uvicorn, exiting non-zero when a background worker fails.

Consumers run as a task started in the app's lifespan; when that task dies (retry
deadline, DLQ limit) the process must exit non-zero so the orchestrator restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn
import uvloop
from fastapi import FastAPI

from libs.common.collector import tune_garbage_collector

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM once it has shut down, so a process that drained
    cleanly would still die by the signal (exit -15), which an orchestrator counts as a crash.
    We only record the request to exit; ``serve`` decides the exit code."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            tune_garbage_collector()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def serve(app: FastAPI, host: str, port: int, *, graceful_timeout: int = 25) -> int:
    """Serve ``app`` until SIGTERM/SIGINT or a fatal worker error; returns the exit code."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=graceful_timeout,
        loop="uvloop",
        http="httptools",
    )
    server = _Server(config)
    app.state.fatal = asyncio.Event()

    async def main() -> int:
        async def watch_fatal() -> None:
            await app.state.fatal.wait()
            log.error("a background worker failed; shutting down")
            server.should_exit = True

        watcher = asyncio.create_task(watch_fatal())
        try:
            await server.serve()
        finally:
            watcher.cancel()
        if app.state.fatal.is_set():
            return 1
        return 0 if server.started else 1

    # SIGPIPE stays ignored (Python's default): with SIG_DFL a write to a socket the peer
    # closed (PostgreSQL restarting, say) killed the whole process by signal instead of
    # raising a transient error that the consumer retries.
    # The loop is created here, not by uvicorn (``server.serve`` runs inside it), so uvloop is
    # chosen here too: ``loop="uvloop"`` above only applies when uvicorn starts the loop itself.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())
