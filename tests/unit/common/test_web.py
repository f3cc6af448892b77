"""Which failures are a database outage (503, retry) and which are bugs (500)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from libs.common.web import database_unavailable


class CannotConnectNowError(Exception):
    """Stands in for asyncpg's exception of that name (matched by name, as asyncpg's are)."""


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (DBAPIError("SELECT 1", {}, CannotConnectNowError("the database system is shutting down")), True),
        (DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True), True),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (DBAPIError("SELECT 1", {}, Exception("syntax error at or near")), False),
        (ValueError("a bug"), False),
    ],
)
def test_database_outages_are_told_apart_from_bugs(error: BaseException, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable
