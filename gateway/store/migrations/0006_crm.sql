-- The CRM. A contact stays one row per caller number, shared by every site it called: what
-- phonenumbers knows of the number is kept there, looked up once (facts_at). What a business
-- knows and decides about the caller is its own: the lead (status, tags, notes, spam/test
-- marks, a name a person gave) is per (site, contact), and so are its follow-up tasks and its
-- history. An agent sees only the leads of their sites; one site's notes never reach another.
ALTER TABLE contacts ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN line_type TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN carrier TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN geo TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN facts_at TEXT;          -- NULL: not looked up yet

CREATE TABLE leads (
    site       TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'new'
               CHECK (status IN ('new', 'contacted', 'qualified', 'customer', 'lost')),
    name       TEXT NOT NULL DEFAULT '',                -- '' shows the caller id name
    tags       TEXT NOT NULL DEFAULT '[]',              -- JSON list of text
    notes      TEXT NOT NULL DEFAULT '',
    spam       INTEGER NOT NULL DEFAULT 0,
    test       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, contact_id)
);
-- Every contact that called a site before this migration is a lead of it.
INSERT OR IGNORE INTO leads (site, contact_id)
    SELECT DISTINCT site, contact_id FROM calls WHERE contact_id IS NOT NULL;

-- A follow-up: a missed or abandoned call to return, due after [crm] followup_delay_minutes.
-- An empty assignee means any agent of the site.
CREATE TABLE tasks (
    task_id      TEXT PRIMARY KEY,
    site         TEXT NOT NULL,
    contact_id   TEXT NOT NULL,
    call_id      TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    assignee     TEXT NOT NULL DEFAULT '',
    closed_at    TEXT,
    closed_by    TEXT NOT NULL DEFAULT ''                -- 'system' or a staff user id
);
CREATE INDEX tasks_open ON tasks (site, closed_at, due_at);
CREATE INDEX tasks_contact ON tasks (contact_id, site);

CREATE TABLE contact_history (
    entry_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    site       TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    at         TEXT NOT NULL,
    who        TEXT NOT NULL,                            -- 'system' or a staff user id
    what       TEXT NOT NULL,                            -- status, task, disposition, notes...
    before     TEXT NOT NULL DEFAULT '',
    after      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX contact_history_contact ON contact_history (contact_id, site, entry_id);

-- What the agent said came of a call ([crm] dispositions), and their note.
ALTER TABLE calls ADD COLUMN disposition TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN disposition_note TEXT NOT NULL DEFAULT '';
