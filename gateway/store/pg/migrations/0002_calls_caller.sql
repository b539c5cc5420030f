-- PostgreSQL twin of gateway/store/migrations/0002_calls_caller.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- The route asks which visitors a caller's latest calls were attributed to (a returning
-- caller's visit wins when two could claim a call): on every call, newest first, so by
-- caller and start.
CREATE INDEX calls_caller ON calls (caller, started_at);
