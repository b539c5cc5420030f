"""The cluster's share rules alone: fair share, what a node takes and lets go, and a simulated
cluster of nodes ticking in random order that converges on a fair split."""

from __future__ import annotations

import random

import pytest

from gateway.cluster.membership import site_unit, unit_site
from gateway.cluster.ownership import Plan, fair_share, plan_tick

UNITS = [f"site:{c}" for c in "abcdef"]


def _plan(
    me: str = "n1",
    *,
    live: tuple[str, ...] = ("n1", "n2"),
    held: tuple[str, ...] = (),
    counts: dict[str, int] | None = None,
    free: dict[str, int] | None = None,
    units: list[str] = UNITS,
) -> Plan:
    return plan_tick(
        me=me,
        units=units,
        live=live,
        held=held,
        counts=counts or {},
        free_ticks=free or {},
        grace_ticks=2,
    )


@pytest.mark.parametrize(
    ("units", "live", "share"),
    [(6, 1, 6), (6, 2, 3), (6, 3, 2), (6, 4, 2), (7, 3, 3), (0, 3, 0), (5, 0, 5), (1, 9, 1)],
)
def test_the_fair_share_is_the_units_over_the_live_nodes_rounded_up(
    units: int, live: int, share: int
) -> None:
    """fair_share is ceil(units / live), and all of them for a node alone."""
    assert fair_share(units, live) == share


def test_a_node_alone_takes_every_free_unit() -> None:
    """A node with no live peer takes every free unit at once."""
    plan = _plan(live=("n1",), free=dict.fromkeys(UNITS, 1))
    assert sorted(plan.take) == UNITS
    assert plan.let_go == ()


def test_a_node_takes_free_units_up_to_its_share() -> None:
    """Of six free units and two live nodes, a node takes three."""
    plan = _plan(free=dict.fromkeys(UNITS, 1))
    assert plan.take == ("site:a", "site:b", "site:c")


def test_a_node_at_its_share_takes_nothing_free_for_one_tick() -> None:
    """A node holding its share leaves a unit seen free once to the others."""
    plan = _plan(held=("site:a", "site:b", "site:c"), counts={"n2": 2}, free={"site:d": 1})
    assert plan == Plan()


def test_a_unit_free_for_the_grace_ticks_is_taken_over_share() -> None:
    """A unit free for two ticks is taken even by a node at its share: none stays unserved."""
    plan = _plan(held=("site:a", "site:b", "site:c"), counts={"n2": 2}, free={"site:d": 2})
    assert plan.take == ("site:d",)
    assert plan.let_go == ()


def test_a_node_leaves_a_free_unit_to_a_poorer_node() -> None:
    """Under its share but richer than a live peer, a node waits for the grace ticks."""
    plan = _plan(
        live=("n1", "n2", "n3"),
        held=("site:a",),
        counts={"n2": 0, "n3": 2},
        free={"site:f": 1},
    )
    assert plan.take == ()


def test_a_node_over_its_share_lets_go_of_one_unit_a_tick() -> None:
    """A node holding all six units when a second node is live lets go of one."""
    plan = _plan(held=tuple(UNITS))
    assert plan.take == ()
    assert plan.let_go == ("site:f",)


def test_a_unit_that_no_longer_exists_is_let_go_at_once() -> None:
    """Units gone from the list are let go, all in one tick."""
    plan = _plan(held=("site:a", "site:old", "site:older"), counts={"n2": 3})
    assert plan.let_go == ("site:old", "site:older")


def test_the_richest_node_lets_go_when_a_live_node_is_starved() -> None:
    """Six units on four nodes held 2, 2, 2, 0: the richest (smallest id) lets go of one."""
    counts = {"n1": 2, "n2": 2, "n3": 2, "n4": 0}
    live = ("n1", "n2", "n3", "n4")
    held = {"n1": ("site:a", "site:b"), "n2": ("site:c", "site:d"), "n3": ("site:e", "site:f")}
    plans = {
        me: _plan(me, live=live, held=units, counts={n: c for n, c in counts.items() if n != me})
        for me, units in held.items()
    }
    assert plans["n1"].let_go == ("site:b",)
    assert plans["n2"] == Plan()
    assert plans["n3"] == Plan()


def test_no_node_lets_go_while_a_unit_is_free() -> None:
    """The starved node has a free unit to take: nobody else lets go meanwhile."""
    plan = _plan(
        live=("n1", "n2", "n3", "n4"),
        held=("site:a", "site:b"),
        counts={"n2": 2, "n3": 1, "n4": 0},
        free={"site:f": 1},
    )
    assert plan == Plan()


def _simulate(rng: random.Random, nodes: list[str], owner: dict[str, str], steps: int) -> int:
    """Nodes tick in random order on a shared lock table (unit -> node); the step at which the
    split became fair and stayed so for 50 steps, or -1."""
    free_ticks: dict[str, dict[str, int]] = {n: {} for n in nodes}
    fair_since = -1
    for step in range(steps):
        me = rng.choice(nodes)
        held = tuple(u for u, n in owner.items() if n == me)
        counts = {n: sum(1 for o in owner.values() if o == n) for n in nodes if n != me}
        free = [u for u in UNITS if u not in owner]
        free_ticks[me] = {u: free_ticks[me].get(u, 0) + 1 for u in free}
        plan = _plan(me, live=tuple(nodes), held=held, counts=counts, free=free_ticks[me])
        for unit in plan.let_go:
            assert owner.pop(unit) == me
        for unit in plan.take:
            assert owner.setdefault(unit, me) == me  # the lock: never two holders
        sizes = sorted(sum(1 for o in owner.values() if o == n) for n in nodes)
        fair = len(owner) == len(UNITS) and sizes[-1] - sizes[0] <= 1
        fair_since = (step if fair_since < 0 else fair_since) if fair else -1
        if fair_since >= 0 and step - fair_since >= 50:
            return fair_since
    return -1


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 7])
def test_a_simulated_cluster_converges_on_a_fair_split(count: int) -> None:
    """From one node holding everything, `count` nodes end holding shares a unit apart at most."""
    rng = random.Random(42)
    nodes = [f"n{i}" for i in range(1, count + 1)]
    for _ in range(20):
        owner = dict.fromkeys(UNITS, "n1")
        assert _simulate(rng, nodes, owner, 2000) >= 0


def test_a_simulated_cluster_serves_every_unit_after_a_node_dies() -> None:
    """Three nodes split fairly; one dies (its units free): the two left share all six."""
    rng = random.Random(42)
    nodes = ["n1", "n2", "n3"]
    owner: dict[str, str] = {}
    assert _simulate(rng, nodes, owner, 2000) >= 0
    owner = {u: n for u, n in owner.items() if n != "n3"}
    assert _simulate(rng, ["n1", "n2"], owner, 2000) >= 0
    assert sorted(owner.values()) == ["n1"] * 3 + ["n2"] * 3


def test_a_site_unit_names_its_site_and_back() -> None:
    """site_unit and unit_site are inverses; a unit of no site gives None."""
    assert site_unit("shop") == "site:shop"
    assert unit_site(site_unit("shop:eu")) == "shop:eu"
    assert unit_site("leader") is None
