-- PostgreSQL twin of gateway/store/migrations/0005_report_indexes.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- Reports count a period's visits of a site (calls per 100 visits, by campaign and the rest):
-- without this index each count reads every session ever stored. It costs each new session
-- one more index entry, at the end of the index (created_at grows): measured with
-- bench/sessions.py in docs/decisions.md.
CREATE INDEX sessions_site_created ON sessions (site, created_at);
