"""The live side of number leasing: the site book (the sites as served, with their pools), the
session desk that opens sessions and renews their leases, the live sessions it keeps, and the
limits on how many sessions each client may open."""
