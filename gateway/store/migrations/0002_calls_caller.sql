-- The route asks which visitors a caller's latest calls were attributed to (a returning
-- caller's visit wins when two could claim a call): on every call, newest first, so by
-- caller and start.
CREATE INDEX calls_caller ON calls (caller, started_at);
