"""The share rules of cluster membership, without I/O: given the units, the live nodes, what this
node holds and which units are free (and for how many ticks), what to take and what to let go.

The rules converge on a fair split without any node deciding for the others:
- share = ceil(units / live nodes); a node takes free units while it holds fewer than its share,
  when no live node holds fewer than it does (the poorest first, so a unit let go goes to the
  node that needs it rather than back to the one that let it go);
- a unit free for `grace_ticks` ticks is taken by anyone, share or not (nothing stays unserved);
- a node over its share lets go of one unit a tick; and, when nothing is free, the richest node
  (ties: the smallest node id) lets go of one while a live node holds fewer than
  floor(units / live) (6 units on 4 nodes end 2, 2, 1, 1, never 2, 2, 2, 0);
- a unit that no longer exists is let go at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = ["Plan", "fair_share", "plan_tick"]


@dataclass(frozen=True)
class Plan:
    """One tick's moves: units to take (in order) and units to let go."""

    take: tuple[str, ...] = ()
    let_go: tuple[str, ...] = ()


def fair_share(units: int, live: int) -> int:
    """The most units a node should hold: ceil(units / live) (all of them when alone)."""
    if units <= 0:
        return 0
    return -(-units // max(1, live))


def plan_tick(
    *,
    me: str,
    units: Collection[str],
    live: Collection[str],
    held: Collection[str],
    counts: Mapping[str, int],
    free_ticks: Mapping[str, int],
    grace_ticks: int = 2,
) -> Plan:
    """This tick's moves for node `me`. `live`: the live nodes (with or without `me`);
    `counts`: how many units each other node holds, as the directory says; `free_ticks`: the
    units nobody else holds, each with the number of ticks in a row it was seen free."""
    all_units = set(units)
    nodes = set(live) | {me}
    mine = set(held) & all_units
    gone = sorted(set(held) - all_units)
    share = fair_share(len(all_units), len(nodes))
    floor = len(all_units) // len(nodes)
    others = {node: max(0, counts.get(node, 0)) for node in nodes if node != me}

    free = sorted(
        (u for u, n in free_ticks.items() if u in all_units and u not in mine and n > 0),
        key=lambda u: (-free_ticks[u], u),
    )
    take = [u for u in free if free_ticks[u] >= grace_ticks]
    room = share - len(mine) - len(take)
    poorest = all(len(mine) <= n for n in others.values())
    if room > 0 and poorest:
        take += [u for u in free if u not in take][:room]

    let_go = list(gone)
    if not take and mine:
        if len(mine) > share:
            let_go.append(max(mine))
        elif not free and len(mine) > floor and _richest(me, len(mine), others):
            if any(n < floor for n in others.values()):
                let_go.append(max(mine))
    return Plan(take=tuple(take), let_go=tuple(let_go))


def _richest(me: str, mine: int, others: Mapping[str, int]) -> bool:
    """Whether `me` holds the most units, the smallest node id breaking a tie."""
    return all(mine > n or (mine == n and me < node) for node, n in others.items())
