-- PostgreSQL twin of gateway/store/migrations/0003_call_marks.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- Reports leave out calls a person marked as spam (test calls already have test_call); a mark
-- never deletes the call. Campaign costs are what a marketer paid for a campaign over inclusive
-- days 'YYYY-MM-DD' in the site's time zone; a cost is spread evenly over its days.
ALTER TABLE calls ADD COLUMN spam BIGINT NOT NULL DEFAULT 0;

CREATE TABLE campaign_costs (
    site      TEXT NOT NULL,
    source    TEXT NOT NULL DEFAULT '',
    campaign  TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day  TEXT NOT NULL,
    amount    DOUBLE PRECISION NOT NULL,
    currency  TEXT NOT NULL DEFAULT 'USD',
    PRIMARY KEY (site, source, campaign, first_day)
);
