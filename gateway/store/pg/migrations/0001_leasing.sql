-- ctgw PostgreSQL store, version 1: the leasing part. Times are timestamptz; numbers E.164 text.
-- The same tables as the SQLite store where they exist there (pools, numbers, leases), plus the
-- state of each number's latest lease on its own row, so choosing a number reads one index.

CREATE TABLE pools (
    pool_id    TEXT PRIMARY KEY,
    site       TEXT NOT NULL DEFAULT '',
    target     TEXT NOT NULL DEFAULT '',
    overflow   TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE numbers (
    number     TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL REFERENCES pools (pool_id),
    position   INTEGER NOT NULL,            -- the order added: never-leased numbers go first in it
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The latest lease on the number (all NULL: never leased). `until` is when it ends or ended.
    lease_id   TEXT,
    visitor_id TEXT,
    until      TIMESTAMPTZ,
    -- The latest holder never heartbeated though its page could (a bounce, a bot): reused first.
    quiet      BOOLEAN NOT NULL DEFAULT false
);
-- Least recently released first (never-leased first, in the order added): one index scan.
CREATE INDEX numbers_by_release ON numbers (pool_id, until NULLS FIRST, position);
-- A returning visitor gets its last number back.
CREATE INDEX numbers_by_visitor ON numbers (visitor_id);

CREATE TABLE leases (
    lease_id   TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL,
    number     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL,
    until      TIMESTAMPTZ NOT NULL
);
CREATE INDEX leases_until ON leases (until);
-- A call on a number finds the leases that can claim it, from any gateway.
CREATE INDEX leases_number ON leases (number, started_at);
