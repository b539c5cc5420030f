-- PostgreSQL twin of gateway/store/migrations/0008_call_direction.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- Click-to-call records outbound calls in the same table as inbound ones: a call's direction
-- says which, so reports keep counting inbound calls only (an agent's dial-out is no lead).
ALTER TABLE calls ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
