"""Where the local stack listens, and one clear line when a dependency cannot be reached.

``spm up`` writes the addresses of what it started to ``<data dir>/stack.env`` and removes the
file when it stops. Every other ``spm`` command reads that file (found through
``SPM_STACK_FILE`` or as ``.spm/stack.env`` in the working directory or one of its parents)
and fills in the dependencies the environment leaves unset, so ``spm tenants create`` works in
a second shell with no configuration. A file left by a killed ``spm up`` names a process that
no longer exists and is ignored.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

STACK_FILE_NAME = "stack.env"
#: Exit status of a command whose dependency is unreachable (``EX_UNAVAILABLE`` of sysexits.h).
EXIT_UNAVAILABLE = 69
PID_KEY = "SPM_STACK_PID"

#: Each group is applied only when its first variable is unset in the environment, so a
#: configured broker never gets the embedded broker's producer options, and vice versa.
GROUPS: tuple[tuple[str, ...], ...] = (
    ("DATABASE_URL",),
    ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_ENABLE_IDEMPOTENCE", "KAFKA_PARTITIONS", "KAFKA_TOPIC_PREFIX"),
    ("SPM_GATEWAY_URL",),
    ("SPM_INGEST_URL",),
)


def write_stack_file(path: Path, env: Mapping[str, str], service_urls: Mapping[str, str]) -> None:
    """Record the stack's addresses (owner-readable only: the DSN may carry a password)."""
    values = {key: env[key] for group in GROUPS for key in group if env.get(key)}
    values.update({f"SPM_{name.upper()}_URL": url for name, url in service_urls.items()})
    values[PID_KEY] = str(os.getpid())
    lines = [f"# written by `spm up` (pid {os.getpid()}); removed when it stops"]
    lines += [f"{key}={value}" for key, value in sorted(values.items())]
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.chmod(0o600)
    temporary.replace(path)


def remove_stack_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def read_stack_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def _candidates(cwd: Path) -> Iterator[Path]:
    explicit = os.environ.get("SPM_STACK_FILE")
    if explicit:
        yield Path(explicit)
        return
    for folder in (cwd, *cwd.parents):
        yield folder / ".spm" / STACK_FILE_NAME


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def find_stack_file(cwd: Path | None = None) -> Path | None:
    """The stack file of a running ``spm up``, or None."""
    for path in _candidates(cwd or Path.cwd()):
        if path.is_file() and _alive(read_stack_file(path).get(PID_KEY, "")):
            return path
    return None


def apply_stack_file(environ: MutableMapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """Fill the unset dependency variables of ``environ`` (the process's) from the running stack's file."""
    environ = os.environ if environ is None else environ
    path = find_stack_file(cwd)
    if path is None:
        return None
    values = read_stack_file(path)
    for group in GROUPS:
        if environ.get(group[0]):
            continue
        for key in group:
            if key in values:
                environ[key] = values[key]
    return path


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A dependency that could not be reached, and the variable that names its address."""

    dependency: str
    address: str
    variable: str
    reason: str

    def line(self) -> str:
        return (
            f"spm: cannot reach {self.dependency} at {self.address} ({self.reason}); "
            f"start the local stack with `spm up` or set {self.variable}"
        )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _database_address() -> str:
    from libs.common.settings import DatabaseSettings

    parts = urlsplit(DatabaseSettings().url.get_secret_value())
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def _kafka_address() -> str:
    from libs.common.settings import KafkaSettings

    return KafkaSettings().bootstrap_servers


_NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


def _network_reason(cause: BaseException) -> str | None:
    """Why a connection failed, when ``cause`` is a network error."""
    if isinstance(cause, socket.gaierror):
        return "unknown host"
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, OSError) and (
        cause.errno in _NETWORK_ERRNOS or str(cause).startswith("Multiple exceptions")
    ):
        return (cause.strerror or "connection failed").lower()
    return None


def unreachable(exc: BaseException) -> Unreachable | None:
    """What ``exc`` says about an unreachable PostgreSQL, Kafka or service, or None for another error."""
    import httpx
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
    from asyncpg.exceptions import CannotConnectNowError, InvalidCatalogNameError, UndefinedTableError

    for cause in _chain(exc):
        if isinstance(cause, KafkaConnectionError | KafkaTimeoutError):
            return Unreachable("Kafka", _kafka_address(), "KAFKA_BOOTSTRAP_SERVERS", "no broker answered")
        if isinstance(cause, httpx.TransportError):
            url = str(cause.request.url) if cause._request is not None else "its URL"
            return Unreachable("the service", url, "SPM_INGEST_URL", type(cause).__name__)
        if isinstance(cause, InvalidCatalogNameError):
            return Unreachable("PostgreSQL", _database_address(), "DATABASE_URL", "no such database")
        if isinstance(cause, UndefinedTableError):
            return Unreachable(
                "PostgreSQL", _database_address(), "DATABASE_URL", "schema missing: run `spm migrate`"
            )
        if isinstance(cause, CannotConnectNowError):
            return Unreachable("PostgreSQL", _database_address(), "DATABASE_URL", "starting up")
        reason = _network_reason(cause)
        if reason is not None:
            return Unreachable("PostgreSQL", _database_address(), "DATABASE_URL", reason)
    return None
