"""The PostgreSQL store (issue 15), so far its leasing part: numbers and leases shared by several
gateways, each lease taken atomically across processes (docs/postgresql.md)."""
