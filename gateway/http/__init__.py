"""The HTTP edge: the public session API and AMP numbers, the admin API, the HTTP fronts and the
lease channel they talk over, swap.js and the demo pages, and every check on what a client sent."""
