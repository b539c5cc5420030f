-- Webhooks: endpoints per site, and one delivery row per event and endpoint, sent from the
-- outbox (gateway/webhooks/). The outbox row's delivered_at now means "fanned out to the
-- endpoints"; its body is the event as every endpoint receives it, rendered once.
ALTER TABLE outbox ADD COLUMN body TEXT;
-- Events queued before webhooks existed were never meant for an endpoint made now.
UPDATE outbox SET delivered_at = created_at WHERE delivered_at IS NULL;

CREATE TABLE webhook_endpoints (
    endpoint_id TEXT PRIMARY KEY,
    site        TEXT NOT NULL,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,                  -- JSON array of event types
    secret      TEXT NOT NULL,                  -- signs the deliveries; shown once by the API
    origin      TEXT NOT NULL DEFAULT 'api',    -- 'config' (the file owns it) or 'api'
    created_at  TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_site ON webhook_endpoints (site);

CREATE TABLE webhook_deliveries (
    delivery_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     INTEGER NOT NULL,              -- outbox.event_id
    endpoint_id  TEXT NOT NULL,
    order_key    TEXT NOT NULL,                 -- a call's events go out in order, one at a time
    state        TEXT NOT NULL DEFAULT 'pending',  -- pending, delivered, parked
    attempts     INTEGER NOT NULL DEFAULT 0,
    due_at       TEXT NOT NULL,
    since        TEXT NOT NULL,                 -- the retry window starts here (made or retried)
    delivered_at TEXT,
    last_status  INTEGER,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, due_at);
CREATE INDEX webhook_deliveries_order
    ON webhook_deliveries (endpoint_id, order_key, state, delivery_id);
