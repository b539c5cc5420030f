-- PostgreSQL twin of gateway/store/migrations/0011_webhook_retention.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- Retention of the webhook outbox: the prune finds (and deletes) an event's deliveries by
-- its event id, a batch of events at a time.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id, state);
