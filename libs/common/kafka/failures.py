"""Which handler failures are worth retrying: the one place that classifies them.

Contract:

* A failure is **transient** only when retrying the same input can succeed: the connection
  to PostgreSQL or Kafka was lost or timed out (``OSError``, ``TimeoutError``, Kafka client
  errors, SQLAlchemy's ``connection_invalidated``, pool timeouts), or PostgreSQL refused for
  a reason that is about the moment, not the data (see :data:`TRANSIENT_SQLSTATES`).
* Everything else is **permanent**: data errors (SQLSTATE class 22), integrity violations
  (23), validation errors, ``ValueError``/``TypeError``/``KeyError`` raised by handler code,
  and :class:`PermanentError`, which handlers raise on purpose (a tenant's invalid settings,
  or a tenant that does not exist). The runner isolates the message(s) behind a permanent failure and dead-letters them.
* The exception chain is followed (``__cause__`` and the DBAPI ``orig``), so a driver error
  wrapped by SQLAlchemy is judged by the driver's SQLSTATE. The first link with a verdict wins.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from libs.common.contracts.envelope import InvalidMessage

#: SQLSTATE codes (or two-character classes) that describe the server's state, not the input:
#: connection exceptions (08), insufficient resources (53), system errors (58), serialization
#: failure, deadlock, lock and statement timeouts, and the server shutting down or starting.
TRANSIENT_SQLSTATES = frozenset(
    {"08", "53", "58", "40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"}
)

#: Kafka errors that repeat for the same message (it is too large to publish), unlike the others.
_PERMANENT_KAFKA_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError)

_MAX_CHAIN = 8


class PermanentError(Exception):
    """Raised by a handler when its input can never be processed as it is (no retry helps).

    ``tenant_id`` is set when the failure concerns every message of that tenant (its
    settings, say): the runner then parks all of that tenant's messages of the batch at once
    instead of splitting the batch to find them one by one.
    """

    tenant_id: str | None = None


class TenantSettingsInvalid(PermanentError):
    """A tenant's stored settings cannot be applied: only that tenant's messages are refused."""

    def __init__(self, tenant_id: str, path: str, reason: str) -> None:
        super().__init__(f"tenant {tenant_id}: settings invalid at {path}: {reason}")
        self.tenant_id = tenant_id
        self.path = path


class TenantUnknown(PermanentError):
    """A message for a tenant that does not exist (a buggy producer): that tenant's messages are refused."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} does not exist")
        self.tenant_id = tenant_id


def is_transient(error: BaseException) -> bool:
    """True when retrying the same input may succeed; False for a permanent failure."""
    for link in _chain(error):
        verdict = _verdict(link)
        if verdict is not None:
            return verdict
    return False


def tenant_scope(error: BaseException) -> str | None:
    """The tenant whose every message fails with ``error``, when the handler said so."""
    for link in _chain(error):
        if isinstance(link, PermanentError) and link.tenant_id:
            return link.tenant_id
    return None


def describe(error: BaseException) -> str:
    """A short reason for the DLQ header: the driver's message, never the SQL or its parameters."""
    # The innermost link with a SQLSTATE is the driver's own error, with the server's message.
    for link in reversed(_chain(error)):
        sqlstate = _sqlstate(link)
        if sqlstate is not None:
            return f"{type(link).__name__} (SQLSTATE {sqlstate}): {_first_line(link)}"
    if isinstance(error, sa_exc.StatementError) and error.orig is not None:
        return f"{type(error.orig).__name__}: {_first_line(error.orig)}"
    if isinstance(error, ValidationError):
        # Its first line only counts the errors: name the fields instead.
        fields = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(root)'}: {e['msg']}" for e in error.errors()[:5]
        )
        return f"ValidationError: {fields}"
    return f"{type(error).__name__}: {_first_line(error)}"


def _verdict(error: BaseException) -> bool | None:
    if isinstance(error, PermanentError | InvalidMessage):
        return False
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    sqlstate = _sqlstate(error)
    if sqlstate is not None:
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATES
    if isinstance(error, _PERMANENT_KAFKA_ERRORS):
        return False
    if isinstance(error, KafkaError | OSError):  # OSError covers TimeoutError and ConnectionError
        return True
    return None


def _sqlstate(error: BaseException) -> str | None:
    # asyncpg's errors and SQLAlchemy's adaptation of them both carry ``sqlstate``.
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) and len(sqlstate) == 5 else None


def _chain(error: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in links and len(links) < _MAX_CHAIN:
        links.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return links


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
