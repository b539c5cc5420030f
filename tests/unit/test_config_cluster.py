"""The `[cluster]` section: off by default, on only with PostgreSQL, a port peers can dial and
the shared secret from the environment (never from the file, never in the Config)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, parse_config
from gateway.config_cluster import cluster_secret

pytestmark = pytest.mark.timeout(10)

PG = {"url": "postgresql://ctgw@db.example/ctgw"}
SECRET = {"CTGW_CLUSTER_SECRET": "s" * 16}


def config(cluster: dict[str, Any], store: dict[str, str] | None = None) -> dict[str, Any]:
    return {"store": store or PG, "cluster": cluster}


def test_the_cluster_is_off_by_default() -> None:
    """No [cluster]: peer_port 0, one gateway per database as before."""
    settings = parse_config({}).cluster
    assert (settings.peer_host, settings.peer_port, settings.advertise_host) == ("127.0.0.1", 0, "")
    assert not settings.enabled


def test_a_cluster_node_reads_its_keys_and_env_overrides() -> None:
    """peer_host, peer_port and advertise_host from the file, each overridable by CTGW_CLUSTER_*;
    the secret is in no field of the Config."""
    env = {**SECRET, "CTGW_CLUSTER_PEER_PORT": "7402", "CTGW_CLUSTER_ADVERTISE_HOST": "10.0.0.5"}
    settings = parse_config(config({"peer_host": "0.0.0.0", "peer_port": 7401}), environ=env)
    assert (settings.cluster.peer_port, settings.cluster.dial_host) == (7402, "10.0.0.5")
    assert settings.cluster.enabled
    assert "s" * 16 not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "env", "message"),
    [
        (config({"peer_port": 7401}, {"url": "sqlite:///x.db"}), SECRET, "store is SQLite"),
        (config({"peer_port": 70000}), SECRET, "'cluster.peer_port' must be 0-65535"),
        (config({"peer_port": -1}), SECRET, "must not be negative"),
        (config({"peer_port": "x"}), SECRET, "must be an integer"),
        (config({"peer_port": 7401}), {}, "set CTGW_CLUSTER_SECRET"),
        (config({"peer_port": 7401}), {"CTGW_CLUSTER_SECRET": "short"}, "too short"),
        (config({"peer_port": 8080}), SECRET, "must differ from 'http.port'"),
        (config({"peer_port": 7401, "peer_host": "0.0.0.0"}), SECRET, "set 'cluster.advertise"),
        (config({"peer_port": 7401, "peer_host": "::"}), SECRET, "peers cannot dial"),
        (config({"peer_port": 7401, "advertise_host": "a b"}), SECRET, "not a host name"),
        (config({"peer_port": 7401, "secret": "s" * 16}), SECRET, "unknown key 'cluster.secret'"),
    ],
)
def test_a_cluster_that_cannot_work_is_a_config_error(
    raw: dict[str, Any], env: dict[str, str], message: str
) -> None:
    """Each unusable [cluster] names the key and what to do."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config(raw, environ=env)


def test_the_secret_is_never_a_config_override() -> None:
    """CTGW_CLUSTER_SECRET is read by the peer link itself; as an env override it would be a
    key, and with the cluster off it is not even required."""
    settings = parse_config({}, environ={"CTGW_CLUSTER_SECRET": "x" * 20})
    assert not settings.cluster.enabled
    assert cluster_secret({"CTGW_CLUSTER_SECRET": "x" * 20}) == b"x" * 20
    with pytest.raises(ConfigError, match="too short"):
        cluster_secret({"CTGW_CLUSTER_SECRET": "x" * 15})
