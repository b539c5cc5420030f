-- ctgw store, version 1. Timestamps are UTC text 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (sortable);
-- phone numbers are E.164 text.

CREATE TABLE sites (
    key             TEXT PRIMARY KEY,
    name            TEXT NOT NULL DEFAULT '',
    allowed_origins TEXT NOT NULL DEFAULT '[]',   -- JSON list
    destination     TEXT NOT NULL DEFAULT '',
    settings        TEXT NOT NULL DEFAULT '{}',   -- JSON: static numbers, rules, bot list
    from_config     INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);

CREATE TABLE pools (
    pool_id    TEXT PRIMARY KEY,
    site       TEXT NOT NULL REFERENCES sites(key),
    target     TEXT NOT NULL,
    overflow   TEXT NOT NULL DEFAULT '',
    settings   TEXT NOT NULL DEFAULT '{}',         -- JSON: lease rules, require_params
    created_at TEXT NOT NULL,
    UNIQUE (site, target)
);

CREATE TABLE numbers (
    number   TEXT PRIMARY KEY,
    pool_id  TEXT NOT NULL REFERENCES pools(pool_id),
    added_at TEXT NOT NULL
);

CREATE TABLE sessions (
    session_id   TEXT PRIMARY KEY,
    site         TEXT NOT NULL,
    visitor_id   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    url          TEXT NOT NULL DEFAULT '',
    landing_page TEXT NOT NULL DEFAULT '',
    referrer     TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    utm_source   TEXT NOT NULL DEFAULT '',
    utm_medium   TEXT NOT NULL DEFAULT '',
    utm_campaign TEXT NOT NULL DEFAULT '',
    utm_term     TEXT NOT NULL DEFAULT '',
    utm_content  TEXT NOT NULL DEFAULT '',
    gclid        TEXT NOT NULL DEFAULT '',
    gbraid       TEXT NOT NULL DEFAULT '',
    wbraid       TEXT NOT NULL DEFAULT '',
    fbclid       TEXT NOT NULL DEFAULT '',
    msclkid      TEXT NOT NULL DEFAULT '',
    bd_vid       TEXT NOT NULL DEFAULT '',
    numbers      TEXT NOT NULL DEFAULT '[]'       -- JSON: what the page was shown
);

CREATE TABLE leases (
    lease_id   TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL,
    number     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    until      TEXT NOT NULL
);
-- Only the index restore and reports need: every other index costs each session a write.
CREATE INDEX leases_until ON leases (until);

CREATE TABLE pool_events (
    event_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,                      -- 'exhausted'
    at         TEXT NOT NULL,
    session_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX pool_events_at ON pool_events (pool_id, at);

CREATE TABLE contacts (
    contact_id    TEXT PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    first_call_at TEXT,
    last_call_at  TEXT,
    calls         INTEGER NOT NULL DEFAULT 0,
    first_touch   TEXT NOT NULL DEFAULT '{}',      -- JSON attribution of the first call
    last_touch    TEXT NOT NULL DEFAULT '{}',      -- JSON attribution of the latest call
    notes         TEXT NOT NULL DEFAULT ''
);

CREATE TABLE calls (
    call_id          TEXT PRIMARY KEY,
    site             TEXT NOT NULL,
    dialed           TEXT NOT NULL,
    caller           TEXT NOT NULL DEFAULT '',
    caller_name      TEXT NOT NULL DEFAULT '',
    linkedid         TEXT NOT NULL DEFAULT '',
    started_at       TEXT NOT NULL,
    answered_at      TEXT,
    ended_at         TEXT,
    state            TEXT NOT NULL,               -- ringing, answered, missed, abandoned
    agent            TEXT NOT NULL DEFAULT '',
    ring_seconds     REAL,
    talk_seconds     REAL,
    hangup_cause     TEXT NOT NULL DEFAULT '',
    recording        TEXT NOT NULL DEFAULT '',
    first_time       INTEGER NOT NULL DEFAULT 1,
    contact_id       TEXT,
    route            TEXT NOT NULL DEFAULT '',
    attribution_kind TEXT NOT NULL,
    session_id       TEXT NOT NULL DEFAULT '',
    visitor_id       TEXT NOT NULL DEFAULT '',
    attribution      TEXT NOT NULL DEFAULT '{}',  -- JSON snapshot of the visit at call time
    test_call        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_linkedid ON calls (linkedid);
CREATE INDEX calls_site_started ON calls (site, started_at);

CREATE TABLE outbox (
    event_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at    TEXT,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending ON outbox (delivered_at, next_attempt_at);

CREATE TABLE api_keys (
    key_id     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,               -- SHA-256 of the key; the key is shown once
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
