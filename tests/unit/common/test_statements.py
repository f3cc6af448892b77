"""``statement`` builds a statement's clause once and hands the same one after."""

from __future__ import annotations

from sqlalchemy import text

from libs.common.db.statements import statement


def test_a_statement_is_built_once_and_is_the_text_clause() -> None:
    sql = "SELECT * FROM activities WHERE tenant_id = :t AND activity_id = ANY(CAST(:ids AS uuid[]))"
    first = statement(sql)
    assert statement(sql) is first
    assert str(first) == str(text(sql))
    assert sorted(first._bindparams) == ["ids", "t"]
    assert statement(sql + " ") is not first
