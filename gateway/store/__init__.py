"""The embedded store: the database and its migrations, and every statement on sites, pools,
numbers, sessions, leases, calls, contacts and API keys."""
