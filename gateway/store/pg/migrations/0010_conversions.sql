-- PostgreSQL twin of gateway/store/migrations/0010_conversions.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- What each call was sent to the ad platforms as, so that each conversion goes out once: one
-- row per (call, platform). A file conversion is 'sent' once it went in a file asked for as
-- "new only" (batch names the export); a Baidu upload is 'sent' once the endpoint accepted
-- it, 'retry' while the endpoint failed (next_attempt_at), 'rejected' when it refused the
-- data, 'failed' when retries ran out. answer keeps the file name or the endpoint's answer.
CREATE TABLE conversions (
    call_id         TEXT NOT NULL,
    platform        TEXT NOT NULL,      -- google_ads, google_ads_calls, microsoft_ads, baidu_ocpc
    site            TEXT NOT NULL,
    click_id        TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL
                    CHECK (state IN ('sending', 'sent', 'retry', 'rejected', 'failed')),
    batch           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    next_attempt_at TEXT,
    payload         TEXT NOT NULL DEFAULT '',   -- what an upload sends (Baidu: the logidUrl)
    answer          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (call_id, platform)
);
CREATE INDEX conversions_batch ON conversions (batch);
CREATE INDEX conversions_site ON conversions (site, platform, state, next_attempt_at);
