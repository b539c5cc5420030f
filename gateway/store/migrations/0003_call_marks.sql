-- Reports leave out calls a person marked as spam (test calls already have test_call); a mark
-- never deletes the call. Campaign costs are what a marketer paid for a campaign over inclusive
-- days 'YYYY-MM-DD' in the site's time zone; a cost is spread evenly over its days.
ALTER TABLE calls ADD COLUMN spam INTEGER NOT NULL DEFAULT 0;

CREATE TABLE campaign_costs (
    site      TEXT NOT NULL,
    source    TEXT NOT NULL DEFAULT '',
    campaign  TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day  TEXT NOT NULL,
    amount    REAL NOT NULL,
    currency  TEXT NOT NULL DEFAULT 'USD',
    PRIMARY KEY (site, source, campaign, first_day)
);
