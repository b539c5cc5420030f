"""A large call-tracking history for bench/reports.py, written by SQL alone (no Python per row).

Sessions spread evenly over `days` up to `end`, each from one of a dozen channels (paid search
with gclid, Bing with msclkid, Meta with fbclid, Baidu with bd_vid, organic, direct, e-mail,
referral); one call for every `sessions / calls` sessions, most attributed to their session
(its snapshot copied as the gateway writes it), some to a static "print" number, some to none.
Callers repeat (a pool of numbers a third the size of the calls), 1 % of calls are spam.
Rows come from a recursive CTE with a multiplicative hash for the choices: seeded-free and the
same on every run, and ~10x faster than building tuples in Python.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.store.migrate import apply_migrations

__all__ = ["SITE", "write_history"]

SITE = "bench"
# source, medium, campaign, click id column, referrer, share in %
_CHANNELS = (
    ("google", "cpc", "brand", "gclid", "https://www.google.com/", 14),
    ("google", "cpc", "generic-plumber", "gclid", "https://www.google.com/", 14),
    ("google", "cpc", "emergency", "gbraid", "https://www.google.com/", 4),
    ("bing", "cpc", "bing-brand", "msclkid", "https://www.bing.com/", 6),
    ("facebook", "paid_social", "spring-offer", "fbclid", "https://m.facebook.com/", 8),
    ("baidu", "cpc", "百度-品牌", "bd_vid", "https://www.baidu.com/", 3),
    ("", "", "", "", "https://www.google.com/", 20),
    ("", "", "", "", "https://www.bing.com/", 4),
    ("", "", "", "", "", 17),
    ("newsletter", "email", "monthly", "", "", 4),
    ("", "", "", "", "https://forum.example.org/thread/9", 6),
)
_STATIC_SHARE = 8  # % of calls on the static print number
_UNATTRIBUTED_SHARE = 4  # % of calls no visit claimed


def _hash(expr: str, mod: int) -> str:
    # Knuth's multiplicative hash, kept within 63 bits.
    return f"((({expr}) * 2654435761) % 4294967291 % {mod})"


def _channels(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TEMP TABLE channels (lo INTEGER, hi INTEGER, source TEXT, medium TEXT,"
        " campaign TEXT, click TEXT, referrer TEXT)"
    )
    lo = 0
    for source, medium, campaign, click, referrer, share in _CHANNELS:
        conn.execute(
            "INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?, ?)",
            (lo, lo + share - 1, source, medium, campaign, click, referrer),
        )
        lo += share
    assert lo == 100


def _time_sql(moment: str) -> str:
    """SQL text of the store's timestamp for a unix time in seconds (a REAL)."""
    return (
        f"strftime('%Y-%m-%dT%H:%M:%S', CAST({moment} AS INTEGER), 'unixepoch')"
        f" || printf('.%06dZ', CAST(({moment} - CAST({moment} AS INTEGER)) * 1000000 AS INTEGER))"
    )


def _sessions_sql(site: str, count: int, start: float, span: float) -> str:
    at = f"({start} + i * {span / count})"
    pick = _hash("i", 100)
    return f"""
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {count - 1}),
    v AS (SELECT i, {_time_sql(at)} AS at, '/services/' || {_hash("i + 7", 40)} AS page,
          'kw ' || {_hash("i + 3", 25)} AS term, 'ad' || {_hash("i + 5", 6)} AS content,
          {pick} AS pick FROM n)
    INSERT INTO sessions (session_id, site, visitor_id, created_at, last_seen, expires_at, url,
      landing_page, referrer, user_agent, utm_source, utm_medium, utm_campaign, utm_term,
      utm_content, gclid, gbraid, msclkid, fbclid, bd_vid, numbers)
    SELECT printf('s%010d', i), '{site}', printf('v%09d', {_hash("i + 11", count // 2 + 1)}),
      at, at, at, 'https://shop.example' || page, 'https://shop.example' || page, c.referrer,
      'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', c.source, c.medium, c.campaign,
      CASE WHEN c.campaign != '' THEN term ELSE '' END,
      CASE WHEN c.campaign != '' THEN content ELSE '' END,
      CASE c.click WHEN 'gclid' THEN 'Cj0KCQiA' || i ELSE '' END,
      CASE c.click WHEN 'gbraid' THEN '0AAAAAD' || i ELSE '' END,
      CASE c.click WHEN 'msclkid' THEN printf('%032x', i) ELSE '' END,
      CASE c.click WHEN 'fbclid' THEN 'IwAR' || i ELSE '' END,
      CASE c.click WHEN 'bd_vid' THEN '1' || printf('%019d', i) ELSE '' END,
      '[{{"target": "+14155550100", "number": "+1415555010' || (i % 10) || '"}}]'
    FROM v JOIN channels c ON v.pick BETWEEN c.lo AND c.hi
    """


def _calls_sql(site: str, calls: int, sessions: int, start: float, span: float) -> str:
    ratio = max(1, sessions // calls)
    n = f"(k * {ratio} + {_hash('k + 13', ratio)})"  # the session the call came from
    at = f"({start} + n * {span / sessions} + 60 + {_hash('k + 17', 900)})"
    kind = _hash("k + 19", 100)
    state = _hash("k + 23", 100)
    return f"""
    WITH RECURSIVE m(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM m WHERE k < {calls - 1}),
    w AS (SELECT k, {n} AS n, {kind} AS kind, {state} AS state FROM m),
    x AS (SELECT w.*, {_time_sql(at)} AS at, {_hash("n", 100)} AS pick,
          '/services/' || {_hash("n + 7", 40)} AS page, 'kw ' || {_hash("n + 3", 25)} AS term,
          'ad' || {_hash("n + 5", 6)} AS content FROM w)
    INSERT INTO calls (call_id, site, dialed, caller, caller_name, linkedid, started_at,
      answered_at, ended_at, state, agent, ring_seconds, talk_seconds, first_time, route,
      attribution_kind, session_id, visitor_id, attribution, spam, test_call)
    SELECT printf('h%09d', k), '{site}',
      CASE WHEN kind < {_STATIC_SHARE} THEN '+14155550150' ELSE '+1415555010' || (n % 10) END,
      printf('+1202%07d', {_hash("k + 29", calls // 3 + 1)}), 'Caller ' || k, 'h' || k, at,
      CASE WHEN state < 70 THEN at END, at,
      CASE WHEN state < 70 THEN 'answered' WHEN state < 90 THEN 'missed' ELSE 'abandoned' END,
      CASE WHEN state < 70 THEN 'agent' || (k % 8) ELSE '' END,
      2 + (k % 25), CASE WHEN state < 70 THEN 10 + (k % 600) END,
      (k % 3 != 0), 'PJSIP/agent',
      CASE WHEN kind < {_STATIC_SHARE} THEN 'static'
           WHEN kind < {_STATIC_SHARE + _UNATTRIBUTED_SHARE} THEN 'unattributed'
           WHEN kind < 90 THEN 'active' ELSE 'probable' END,
      CASE WHEN kind < {_STATIC_SHARE + _UNATTRIBUTED_SHARE} THEN '' ELSE printf('s%010d', n) END,
      '',
      CASE WHEN kind < {_STATIC_SHARE}
           THEN json_object('kind', 'static', 'source', 'print', 'medium', 'offline')
           WHEN kind < {_STATIC_SHARE + _UNATTRIBUTED_SHARE} THEN json_object('kind', 'unattributed')
           ELSE json_object('kind', 'active', 'session_id', printf('s%010d', n),
             'source', c.source, 'medium', c.medium, 'campaign', c.campaign,
             'term', CASE WHEN c.campaign != '' THEN term ELSE '' END,
             'content', CASE WHEN c.campaign != '' THEN content ELSE '' END,
             'gclid', CASE c.click WHEN 'gclid' THEN 'Cj0KCQiA' || n ELSE '' END,
             'landing_page', 'https://shop.example' || page, 'referrer', c.referrer,
             'confidence', 1.0) END,
      (k % 100 = 0), 0
    FROM x JOIN channels c ON x.pick BETWEEN c.lo AND c.hi
    """


def write_history(
    path: Path,
    *,
    calls: int,
    sessions: int,
    days: int,
    end: datetime,
    tz: str = "UTC",
    site: str = SITE,
) -> dict[str, float]:
    """A new store at `path` with the history of `site` (a key of plain letters); seconds
    each part took."""
    assert site.isalnum()
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    took: dict[str, float] = {}
    try:
        apply_migrations(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: the indexes fit while they grow
        start = (end - timedelta(days=days)).astimezone(UTC).timestamp()
        span = days * 86400.0
        now = datetime.now(UTC).isoformat()
        conn.execute(
            "INSERT INTO sites (key, name, settings, created_at) VALUES (?, 'Bench', ?, ?)",
            (site, f'{{"timezone": "{tz}"}}', now),
        )
        _channels(conn)
        for name, sql in (
            ("sessions", _sessions_sql(site, sessions, start, span)),
            ("calls", _calls_sql(site, calls, sessions, start, span)),
        ):
            began = time.perf_counter()
            conn.execute("BEGIN")
            conn.execute(sql)
            conn.execute("COMMIT")
            took[name] = time.perf_counter() - began
        began = time.perf_counter()
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        took["analyze"] = time.perf_counter() - began
    finally:
        conn.close()
    return took
