"""Statements built once.

``text(sql)`` parses the statement's binds with a regex and builds a ``BindParameter`` per name,
and SQLAlchemy derives each new clause's cache key again before finding its compiled form: about
2,500 instructions a bind, on every execution of a statement written inline. :func:`statement`
builds the clause the first time a statement's text is seen and hands the same clause after (a
``TextClause`` is not changed by executing it). For statements whose text is a literal or comes
from a finite set (table and column names): a text carrying values would grow the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

#: SQLSTATE of a unique (or primary key) violation.
UNIQUE_VIOLATION = "23505"


@cache
def statement(sql: str) -> TextClause:
    """``text(sql)``, built once per distinct ``sql``."""
    return text(sql)


async def insert_unless_duplicate(
    conn: AsyncConnection, clause: TextClause, params: Mapping[str, Any]
) -> bool:
    """Run a plain ``INSERT`` under a savepoint; ``False``, with nothing of it left, when it met a
    row already there (a unique violation), so that the caller writes its rows another way.

    For rows the caller expects to be new: a plain insert writes no speculative insertion and no
    confirmation record (``INSERT ... ON CONFLICT``), nor looks each key up first (``NOT EXISTS``);
    the unique index's own check stands guard. Any other error is raised."""
    try:
        async with conn.begin_nested():
            await conn.execute(clause, params)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
        return False
    return True
