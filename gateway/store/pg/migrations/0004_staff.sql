-- PostgreSQL twin of gateway/store/migrations/0004_staff.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- Staff accounts for the dashboard: an admin, a marketer or an agent, each seeing the sites
-- listed (an admin with none sees every site). Passwords are scrypt hashes in a self-describing
-- text form; a browser session is kept only as the SHA-256 of its cookie token.
CREATE TABLE staff_users (
    user_id       TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,          -- lower case
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL CHECK (role IN ('admin', 'marketer', 'agent')),
    sites         TEXT NOT NULL DEFAULT '[]',    -- JSON list of site keys
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES staff_users(user_id),
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL
);
-- Logins prune a user's expired sessions.
CREATE INDEX staff_sessions_user ON staff_sessions (user_id);
