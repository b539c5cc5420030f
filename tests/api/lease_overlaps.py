"""The store's double-lease check, one SQL text for SQLite and PostgreSQL: a number leased to a
second visitor while its lease to another is live is a double lease unless it is a share.

A share (numberpool/slot.py, `share_called_numbers`): the one live lease's visitor had a call on
that number, from a known phone, that started before the new lease began; its later calls are
told apart by caller id. A returning visitor whose own live lease of a shared number was cut
short as its new one began keeps sharing it (Pool.lease), when that visitor had called. Never
three live leases of a number.
"""

from __future__ import annotations

__all__ = ["CALL_ROWS", "DOUBLED", "DOUBLE_LEASES", "LEASE_ROWS", "OVERLAPS", "SHARED", "at"]

# Per pool and number, each lease that began while an earlier one (by start, then lease id)
# was still live, with that earlier lease; zero-length leases (released as they began) lease
# nothing. Times are the store's fixed-width UTC text, so they compare as text.
_OVERLAPPING = """
overlapping AS (
    SELECT l.pool_id, l.number, l.lease_id, l.session_id, l.visitor_id, l.started_at,
           e.lease_id AS earlier_id, e.visitor_id AS earlier_visitor,
           e.started_at AS earlier_started, e.until AS earlier_until
    FROM leases l JOIN leases e
      ON e.pool_id = l.pool_id AND e.number = l.number
     AND (e.started_at < l.started_at OR (e.started_at = l.started_at AND e.lease_id < l.lease_id))
     AND e.until > l.started_at AND e.started_at < e.until
    WHERE l.started_at < l.until
)"""

_ORDER = " ORDER BY pool_id, number, started_at, lease_id, earlier_id"

# Every lease that began while another lease of its number was live, shares included.
OVERLAPS = f"WITH {_OVERLAPPING} SELECT * FROM overlapping{_ORDER}"

# The overlaps that are not shares: a third live lease, or no call from a known phone on the
# number before the new lease began by the earlier lease's visitor (or by the new lease's own
# visitor when it is their return to a number they shared: their lease ended as it began).
DOUBLE_LEASES = f"""
WITH {_OVERLAPPING}
SELECT * FROM overlapping o
WHERE (SELECT count(*) FROM overlapping p WHERE p.lease_id = o.lease_id) > 1
   OR NOT EXISTS (
       SELECT 1 FROM calls c
       WHERE c.dialed = o.number AND c.caller != '' AND c.started_at < o.started_at
         AND (c.visitor_id = o.earlier_visitor
              OR (c.visitor_id = o.visitor_id AND EXISTS (
                  SELECT 1 FROM leases r
                  WHERE r.pool_id = o.pool_id AND r.number = o.number
                    AND r.visitor_id = o.visitor_id AND r.lease_id != o.lease_id
                    AND r.until = o.started_at AND r.started_at < o.started_at
                    AND r.until > o.earlier_started))))
{_ORDER}"""


# --- rows that show what the check finds (tests/api/test_shared_numbers.py and
# tests/postgres/test_four_gateways.py load them into each store) ---------------------------


def at(second: int) -> str:
    """A stored time `second` seconds after 09:00 on the test day."""
    minutes, seconds = divmod(second, 60)
    return f"2026-01-05T09:{minutes:02d}:{seconds:02d}.000000Z"


# (lease_id, pool_id, number, visitor_id, started, until), in seconds after 09:00.
_LEASES = [
    # Back to back, and another pool's lease of the number: not overlaps. a3 is a double lease.
    ("a1", "p1", "+14155550101", "va1", 0, 3),
    ("a2", "p1", "+14155550101", "va2", 3, 6),
    ("b1", "p2", "+14155550101", "vb1", 1, 2),
    ("a3", "p1", "+14155550101", "va3", 5, 9),
    # A share: s1's visitor called at 2, s2 began at 4. s3 would be a third live lease.
    ("s1", "p1", "+14155550102", "vs1", 0, 20),
    ("s2", "p1", "+14155550102", "vs2", 4, 10),
    ("s3", "p1", "+14155550102", "vs3", 5, 8),
    # k1's visitor called only after k2 began: a double lease.
    ("k1", "p1", "+14155550103", "vk1", 0, 20),
    ("k2", "p1", "+14155550103", "vk2", 4, 10),
    # j1's visitor called on another number; another visitor called on this one: a double lease.
    ("j1", "p1", "+14155550104", "vj1", 0, 20),
    ("j2", "p1", "+14155550104", "vj2", 4, 10),
    # h1's visitor called from a hidden number (no phone to tell them apart by): a double lease.
    ("h1", "p1", "+14155550105", "vh1", 0, 20),
    ("h2", "p1", "+14155550105", "vh2", 4, 10),
    # r2 shares with r1 (whose visitor called); r1's visitor returns at 6 (r1 cut short): r3
    # overlaps r2 as their return, allowed.
    ("r1", "p1", "+14155550106", "vr1", 0, 6),
    ("r2", "p1", "+14155550106", "vr2", 3, 20),
    ("r3", "p1", "+14155550106", "vr1", 6, 30),
    # q1's visitor called, q1 ended at 2, then q3 (theirs again) began while q2 was live: not a
    # return to a shared number, a double lease.
    ("q1", "p1", "+14155550107", "vq1", 0, 2),
    ("q2", "p1", "+14155550107", "vq2", 3, 20),
    ("q3", "p1", "+14155550107", "vq1", 5, 30),
    # Another pool's lease of that shared number, at the same time: not an overlap.
    ("x1", "p2", "+14155550102", "vx1", 5, 7),
]

# (call_id, dialed, caller, visitor_id, started), in seconds after 09:00.
_CALLS = [
    ("c-s1", "+14155550102", "+12025550201", "vs1", 2),
    ("c-k1", "+14155550103", "+12025550202", "vk1", 5),
    ("c-j1", "+14155550199", "+12025550203", "vj1", 1),
    ("c-jz", "+14155550104", "+12025550204", "vz", 1),
    ("c-h1", "+14155550105", "", "vh1", 1),
    ("c-r1", "+14155550106", "+12025550206", "vr1", 1),
    ("c-q1", "+14155550107", "+12025550207", "vq1", 1),
]

# Rows as the leases table takes them: (lease_id, pool_id, number, session_id, visitor_id,
# started_at, last_seen, until); a lease's session is named as the lease.
LEASE_ROWS = [
    (lease, pool, number, lease, visitor, at(start), at(start), at(until))
    for lease, pool, number, visitor, start, until in _LEASES
]
# (call_id, site, dialed, caller, started_at, state, attribution_kind, session_id, visitor_id).
CALL_ROWS = [
    (call, "demo", dialed, caller, at(start), "answered", "active", "", visitor)
    for call, dialed, caller, visitor, start in _CALLS
]
# The lease ids OVERLAPS finds in these rows that DOUBLE_LEASES accepts, and those it finds
# (sorted; s3 overlaps two leases).
SHARED = ["r2", "r3", "s2"]
DOUBLED = ["a3", "h2", "j2", "k2", "q3", "s3"]
