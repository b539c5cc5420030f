"""The `[cluster]` section (several gateways on one PostgreSQL), its checks, and the peer
link's shared secret, which comes from the environment only (CTGW_CLUSTER_SECRET) so that no
Config, log line or config file holds it."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.config_error import ConfigError

__all__ = [
    "CLUSTER_SECRET_ENV",
    "MIN_SECRET_CHARS",
    "ClusterSettings",
    "check_cluster",
    "cluster_secret",
]

CLUSTER_SECRET_ENV = "CTGW_CLUSTER_SECRET"  # noqa: S105 - the variable's name, not a secret
MIN_SECRET_CHARS = 16


@dataclass(frozen=True)
class ClusterSettings:
    peer_host: str = field(
        default="127.0.0.1", metadata={"help": "address this gateway listens on for its peers"}
    )
    peer_port: int = field(
        default=0,
        metadata={
            "help": "peer link port (0: no cluster, one gateway per database); needs a"
            " postgresql:// store and the secret in CTGW_CLUSTER_SECRET"
        },
    )
    advertise_host: str = field(
        default="", metadata={"help": "the address peers dial ('': peer_host)"}
    )

    @property
    def enabled(self) -> bool:
        """Whether this gateway shares its database with peers (sites owned one node at a time)."""
        return self.peer_port != 0

    @property
    def dial_host(self) -> str:
        """The host peers dial to reach this gateway."""
        return self.advertise_host or self.peer_host


def cluster_secret(environ: Mapping[str, str] | None = None) -> bytes:
    """The peer link's shared secret; ConfigError when it is missing or too short."""
    environ = os.environ if environ is None else environ
    secret = environ.get(CLUSTER_SECRET_ENV, "")
    if not secret:
        raise ConfigError(
            f"[cluster] peer_port is set: set {CLUSTER_SECRET_ENV} to a secret shared by every"
            f" gateway of the cluster (at least {MIN_SECRET_CHARS} characters)"
        )
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{CLUSTER_SECRET_ENV} is too short: use at least {MIN_SECRET_CHARS} characters"
            " (e.g. the output of `openssl rand -hex 24`)"
        )
    return secret.encode()


def _wildcard(host: str) -> bool:
    try:
        return host == "" or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False  # a host name


def check_cluster(
    cluster: ClusterSettings,
    src: str,
    store_url: str,
    taken: Mapping[str, int],
    environ: Mapping[str, str],
) -> None:
    """What `[cluster]` needs beyond its types: a PostgreSQL store (`store_url`), a port none
    of the gateway's others (`taken`, by key) use, an address peers can dial, and the shared
    secret in the environment. `src` names the config file in errors."""
    if cluster.peer_port > 65535:
        raise ConfigError(f"{src}: 'cluster.peer_port' must be 0-65535 (0: no cluster)")
    if not cluster.enabled:
        return
    if not store_url.startswith("postgres"):
        raise ConfigError(
            f"{src}: 'cluster.peer_port' is set but the store is SQLite: several gateways share"
            " one postgresql:// store only; set 'cluster.peer_port = 0' or use PostgreSQL"
        )
    for key, port in taken.items():
        if port == cluster.peer_port:
            raise ConfigError(f"{src}: 'cluster.peer_port' must differ from '{key}' ({port})")
    if not cluster.peer_host:
        raise ConfigError(f"{src}: 'cluster.peer_host' must be an address to listen on")
    if _wildcard(cluster.dial_host):
        raise ConfigError(
            f"{src}: 'cluster.peer_host' is {cluster.peer_host!r}, which peers cannot dial: set"
            " 'cluster.advertise_host' to this gateway's address on the peers' network"
        )
    if any(c.isspace() for c in cluster.dial_host) or len(cluster.dial_host) > 253:
        raise ConfigError(f"{src}: 'cluster.advertise_host' is not a host name or address")
    cluster_secret(environ)
