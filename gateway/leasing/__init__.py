"""The live side of number leasing: the sites as served with their pools, the session desk that
opens sessions and renews their leases, and the limits on how many each client may open."""
