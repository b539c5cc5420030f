"""Several gateways on one PostgreSQL: which node serves which unit (a site), held by advisory
locks, with a directory of nodes and owners so peers find each other (docs/postgresql.md)."""
