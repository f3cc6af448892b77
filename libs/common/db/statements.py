"""Statements built once.

``text(sql)`` parses the statement's binds with a regex and builds a ``BindParameter`` per name,
and SQLAlchemy derives each new clause's cache key again before finding its compiled form: about
2,500 instructions a bind, on every execution of a statement written inline. :func:`statement`
builds the clause the first time a statement's text is seen and hands the same clause after (a
``TextClause`` is not changed by executing it). For statements whose text is a literal or comes
from a finite set (table and column names): a text carrying values would grow the cache.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, text


@cache
def statement(sql: str) -> TextClause:
    """``text(sql)``, built once per distinct ``sql``."""
    return text(sql)
