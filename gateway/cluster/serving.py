"""A gateway serving as one node of a cluster: its membership (which sites it holds), the peer
link it answers on, and where what it does not hold goes.

Taking a site loads it fresh from the store with its leases, its calls' notes and its live
sessions; letting go of one commits its queued sessions first and then forgets it. The swap is
made in one step for every other request, which meanwhile goes to the site's previous holder or
gets the "nobody holds it" answers (gateway/cluster/forwarding.py).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import AsyncIterator

import structlog

from gateway.cluster.forwarding import Forwarding
from gateway.cluster.leader import LEADER, LeaderDuties
from gateway.cluster.membership import Membership, site_unit
from gateway.cluster.nodes import Peer
from gateway.cluster.peer_answers import OwnerAnswers, site_of_call_elsewhere
from gateway.cluster.peer_link import PeerServer
from gateway.config_cluster import cluster_secret
from gateway.config_error import ConfigError
from gateway.leasing.desk import SessionDesk
from gateway.leasing.restore import let_go_site, take_site
from gateway.settings import Config
from gateway.store.pg.database import PgDatabase
from gateway.telephony.agi import AgiRequest, RouteDecider, RouteDecision
from gateway.telephony.route import CallRouter

__all__ = ["node_id", "serving_cluster"]

log = structlog.get_logger()

_SITE = "site:"


def node_id() -> str:
    """A new id for this gateway's run: its host name and a random part (a restart is a new
    node: its old row ages out of the directory)."""
    return f"{socket.gethostname()[:40]}-{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def serving_cluster(
    config: Config, db: PgDatabase, desk: SessionDesk, router: CallRouter, leader: LeaderDuties
) -> AsyncIterator[RouteDecider]:
    """Join the cluster while the context is open; yields the FastAGI decider that forwards
    calls of sites held elsewhere. The holder of the unit `leader` runs `leader`'s duties."""
    settings = config.cluster
    secret = cluster_secret()
    book = desk.book
    me = Peer(node_id(), settings.dial_host, settings.peer_port)

    async def taken(unit: str) -> None:
        if unit == LEADER:
            await leader.start()
        elif unit.startswith(_SITE):
            key = unit.removeprefix(_SITE)
            await take_site(desk, key)

    async def lost(unit: str) -> None:
        if unit == LEADER:
            await leader.stop()
        elif unit.startswith(_SITE):
            await let_go_site(desk, unit.removeprefix(_SITE))

    membership = Membership(
        db,
        me,
        lambda: [LEADER, *(site_unit(key) for key in book.known)],
        on_taken=taken,
        on_lost=lost,
    )
    forwarding = Forwarding(membership, desk, router, site_unit, secret=secret, node_id=me.node_id)
    deadline_s = config.agi.deadline_ms / 1000
    server = PeerServer(secret, OwnerAnswers(forwarding, deadline_s))
    try:
        await server.start(settings.peer_host, settings.peer_port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen for cluster peers on {settings.peer_host}:{settings.peer_port}:"
            f" {exc.strerror}; set [cluster] peer_port or CTGW_CLUSTER_PEER_PORT"
        ) from None

    async def decide(request: AgiRequest) -> RouteDecision | None:
        site = site_of_call_elsewhere(forwarding, request)
        if site is None:
            return await router.decide(request)
        return await forwarding.route(site, request, deadline_s)

    desk.elsewhere = forwarding
    try:
        await membership.start()
        log.info(
            "cluster_joined",
            node=me.node_id,
            peer=f"{settings.peer_host}:{settings.peer_port}",
            advertised=f"{me.host}:{me.port}",
            held=sorted(book.sites),
        )
        yield decide
    finally:
        await membership.close()
        await server.close()
        await forwarding.close()
