"""The one rule for who may take a tracking number, and the statements that place numbers."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from gateway.store.database import Write
from gateway.store.migrate import apply_migrations
from gateway.store.numbers import add_writes, numbers_taken, place_writes, remove_write
from numberpool.pool import Pool
from numberpool.site import Site, StaticNumber

AT = datetime(2026, 1, 31, tzinfo=UTC)


def sites() -> list[Site]:
    shop = Site(
        "shop",
        pools=[
            Pool("shop:+14155550100", "+14155550100", ["+14155550101"], overflow="+14155550109")
        ],
        static_numbers=[StaticNumber("+14155550150", "print")],
    )
    blog = Site("blog", pools=[Pool("blog:+14155550200", "+14155550200", ["+14155550201"])])
    return [shop, blog]


@pytest.mark.parametrize(
    ("number", "owner"),
    [
        ("+14155550101", "shop"),  # in a pool
        ("+14155550109", "shop"),  # the pool's overflow number
        ("+14155550100", "shop"),  # the number the pool swaps
        ("+14155550150", "shop"),  # a static number
        ("+14155550201", "blog"),
    ],
)
def test_a_number_a_site_holds_is_taken(number: str, owner: str) -> None:
    """Pool, overflow, target and static numbers all belong to their site."""
    assert numbers_taken([number], sites()) == {number: owner}


def test_free_numbers_are_not_taken_and_order_is_kept() -> None:
    """Only the held numbers are named, once each, in the order asked."""
    asked = ["+14155550201", "+14155550199", "+14155550101", "+14155550201"]
    taken = numbers_taken(asked, sites())
    assert list(taken.items()) == [("+14155550201", "blog"), ("+14155550101", "shop")]


def test_a_site_written_whole_may_keep_its_own_numbers() -> None:
    """`besides` skips the site being rewritten; other sites' numbers stay taken."""
    asked = ["+14155550101", "+14155550109", "+14155550201"]
    assert numbers_taken(asked, sites(), besides="shop") == {"+14155550201": "blog"}


def store() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn)
    for key in ("shop", "blog"):
        conn.execute("INSERT INTO sites (key, created_at) VALUES (?, '')", (key,))
        conn.execute(
            "INSERT INTO pools (pool_id, site, target, settings, created_at)"
            " VALUES (?, ?, '+1', '{}', '')",
            (f"{key}:+1", key),
        )
    return conn


def run(conn: sqlite3.Connection, writes: list[Write]) -> None:
    for write in writes:
        conn.execute(write.sql, write.params)


def pools(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT number, pool_id FROM numbers").fetchall())


def test_added_numbers_never_move_placed_ones_do() -> None:
    """An add of a number the store holds fails; placing a site's numbers moves it."""
    conn = store()
    run(conn, add_writes("shop:+1", ["+14155550101", "+14155550101"], AT))
    assert pools(conn) == {"+14155550101": "shop:+1"}
    with pytest.raises(sqlite3.IntegrityError):
        run(conn, add_writes("blog:+1", ["+14155550101"], AT))
    run(conn, place_writes("blog:+1", ["+14155550101"], AT, rank=12))
    assert pools(conn) == {"+14155550101": "blog:+1"}
    run(conn, [remove_write("+14155550101")])
    assert pools(conn) == {}
