"""The store's `?` placeholders numbered for PostgreSQL, and never inside text."""

from __future__ import annotations

import pytest

from gateway.store.pg.sql import numbered_placeholders


@pytest.mark.parametrize(
    ("sqlite", "postgresql"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"),
        ("VALUES (?,?,?)", "VALUES ($1,$2,$3)"),
        ("SELECT '?' , ?", "SELECT '?' , $1"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"),
        ("SELECT '', ?", "SELECT '', $1"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = $1'),
        ("SELECT ? -- why? because\n, ?", "SELECT $1 -- why? because\n, $2"),
        ("SELECT ? /* a ? here */ , ?", "SELECT $1 /* a ? here */ , $2"),
        ("SELECT ? -- a comment at the end?", "SELECT $1 -- a comment at the end?"),
        ("SELECT 'not closed ?", "SELECT 'not closed ?"),
        ("SELECT a-b, ? FROM t", "SELECT a-b, $1 FROM t"),
        ("SELECT a/b, ? FROM t", "SELECT a/b, $1 FROM t"),
    ],
)
def test_placeholders_are_numbered_outside_literals_names_and_comments(
    sqlite: str, postgresql: str
) -> None:
    assert numbered_placeholders(sqlite) == postgresql


def test_twelve_placeholders_count_past_nine() -> None:
    sql = "INSERT INTO t VALUES (" + ", ".join(["?"] * 12) + ")"
    assert numbered_placeholders(sql).endswith("$10, $11, $12)")


def test_the_store_statements_keep_their_text_around_the_placeholders() -> None:
    sql = (
        "INSERT INTO numbers (number, pool_id, added_at) VALUES (?, ?, ?)"
        " ON CONFLICT(number) DO UPDATE SET pool_id=excluded.pool_id"
    )
    assert numbered_placeholders(sql) == sql.replace("(?, ?, ?)", "($1, $2, $3)")
