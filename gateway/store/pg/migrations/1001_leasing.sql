-- ctgw PostgreSQL only: leases taken atomically across gateways (gateway/store/pg/leasing.py).
-- Times are timestamptz; numbers E.164 text. In a schema of its own until the store's pools,
-- numbers and leases (0001_initial.sql) take these columns (docs/postgresql.md, what remains):
-- the state of each number's latest lease on its own row, so choosing a number reads one index.
-- PostgreSQL-only migrations are numbered from 1001; 0001-0999 are twins of SQLite's.

CREATE SCHEMA leasing;

CREATE TABLE leasing.pools (
    pool_id    TEXT PRIMARY KEY,
    site       TEXT NOT NULL DEFAULT '',
    target     TEXT NOT NULL DEFAULT '',
    overflow   TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE leasing.numbers (
    number     TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL REFERENCES leasing.pools (pool_id),
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
CREATE INDEX numbers_by_release ON leasing.numbers (pool_id, until NULLS FIRST, position);
-- A returning visitor gets its last number back.
CREATE INDEX numbers_by_visitor ON leasing.numbers (visitor_id);

CREATE TABLE leasing.leases (
    lease_id   TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL,
    number     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL,
    until      TIMESTAMPTZ NOT NULL
);
CREATE INDEX leases_until ON leasing.leases (until);
-- A call on a number finds the leases that can claim it, from any gateway.
CREATE INDEX leases_number ON leasing.leases (number, started_at);
