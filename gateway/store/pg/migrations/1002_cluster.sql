-- ctgw PostgreSQL only: several gateways on one database (gateway/cluster/). Each unit (a site)
-- is served by the node holding its session-level advisory lock (classid 0x6374, objid the
-- signed crc32 of the unit's name); the lock is the truth. These tables are only a directory:
-- where a node's peers reach it, and which node last said it holds a unit (a row may be stale:
-- a peer that does not hold the unit answers "not here"). Times are the server's clock.

CREATE SCHEMA cluster;

CREATE TABLE cluster.nodes (
    node_id    TEXT PRIMARY KEY,
    peer_host  TEXT NOT NULL,
    peer_port  INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    seen_at    TIMESTAMPTZ NOT NULL DEFAULT now()   -- touched every tick: live while recent
);

-- No foreign key to nodes: a node forgotten (long silent) leaves rows its peers no longer
-- trust, and a node writing its row must never fail because its own node row was forgotten.
CREATE TABLE cluster.owners (
    unit       TEXT PRIMARY KEY,
    node_id    TEXT NOT NULL,
    since      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX owners_by_node ON cluster.owners (node_id);
