"""Checks of both compose files (compose.yaml: one gateway on SQLite; compose.cluster.yaml: two
gateways on PostgreSQL) that need no Docker engine. Like tests/image/image_checks.py, each takes
the project folder and raises AssertionError naming what is wrong; tests/image/test_dockerfile.py
runs them on the repository and on broken copies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.config import load_config
from gateway.config_error import ConfigError
from gateway.settings import Config
from tests.image.dockerfile import read
from tests.image.image_checks import (
    ASTERISK_DOCKERFILE,
    COMPOSE_FILES,
    agi_hosts_written,
    as_list,
    builds,
    compose_file,
    dockerfile_of,
    final_stage,
    image_config,
    image_config_source,
    interpolate,
)

__all__ = [
    "CHECKS",
    "CLUSTER_FILE",
    "compose_cluster_wired",
    "compose_private_ports_unpublished",
    "compose_secrets_from_environment",
    "compose_services_health_checked",
    "compose_services_non_root",
]

CLUSTER_FILE = "compose.cluster.yaml"
GATEWAY_DOCKERFILE = "Dockerfile"
# PostgreSQL's data folder in the official image up to major 17 (18 moved it).
PG_DATA = "/var/lib/postgresql/data"
PG_PORT = 5432
AMI_PORT = 5038
# Environment names whose values are secrets: they may only come from the operator's shell.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|PRIVATE|API_?KEY")
_REQUIRED_VAR = re.compile(r"\$\{(\w+):\?[^}]+\}")


def _services(project: Path, file: str) -> dict[str, dict[str, Any]]:
    services = compose_file(project, file)["services"]
    assert isinstance(services, dict) and services, f"{file} has no services"
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose also allows a list of NAME=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(str(item).partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def compose_services_non_root(project: Path) -> None:
    """Every service of every compose file runs as a user that is not root: its `user:`, or
    the last USER of the Dockerfile it builds (an image not built here must say `user:`)."""
    for file in COMPOSE_FILES:
        for name, service in _services(project, file).items():
            where = f"{file}: {name}"
            user = service.get("user")
            if user is None:
                dockerfile = dockerfile_of(project, service)
                assert dockerfile is not None, f"{where} runs as its image's user: set user:"
                users = [i.args for i in read(dockerfile)[-1].all("USER")]
                assert users, f"{where}: {dockerfile.name} has no USER"
                user = users[-1]
            assert str(user).split(":")[0] not in ("root", "0"), f"{where} runs as root"


def compose_services_health_checked(project: Path) -> None:
    """Every service has a health check (its own `healthcheck.test` or its Dockerfile's
    HEALTHCHECK) and none is disabled."""
    for file in COMPOSE_FILES:
        for name, service in _services(project, file).items():
            where = f"{file}: {name}"
            health = service.get("healthcheck") or {}
            assert not health.get("disable"), f"{where}: health check disabled"
            test = as_list(health.get("test"))
            assert test[:1] != ["NONE"], f"{where}: health check disabled"
            if test:
                continue
            dockerfile = dockerfile_of(project, service)
            assert dockerfile is not None, f"{where}: no health check (its image has none here)"
            assert read(dockerfile)[-1].all("HEALTHCHECK"), f"{where}: no health check"


def compose_secrets_from_environment(project: Path) -> None:
    """No secret is in a compose file: every secret-named variable is `${VAR:?…}` (from the
    shell, required, no default) and no URL carries a password."""
    for file in COMPOSE_FILES:
        for name, service in _services(project, file).items():
            for key, value in _environment(service).items():
                where = f"{file}: {name}.environment.{key}"
                if _SECRET_NAME.search(key):
                    assert _REQUIRED_VAR.fullmatch(value), f"{where} must be ${{VAR:?message}}"
                if "://" in value:
                    assert urlsplit(value).password is None, f"{where} holds a password"


def compose_private_ports_unpublished(project: Path) -> None:
    """FastAGI (no password), the peer link (not encrypted), AMI and PostgreSQL stay on the
    compose network: no service publishes them."""
    agi = image_config(project).agi.port
    for file in COMPOSE_FILES:
        services = _services(project, file)
        private = {agi: "FastAGI", AMI_PORT: "AMI", PG_PORT: "PostgreSQL"}
        for service in services.values():
            port = _environment(service).get("CTGW_CLUSTER_PEER_PORT", "")
            if port.isdigit():
                private[int(port)] = "the peer link"
        for name, service in services.items():
            for published in as_list(service.get("ports")):
                text = str(published["target"] if isinstance(published, dict) else published)
                inner = int(text.split(":")[-1].split("/")[0].split("-")[0])
                assert inner not in private, f"{file}: {name} publishes {private[inner]} ({inner})"


def _gateway_config(project: Path, env: dict[str, str], where: str) -> Config:
    """The image's config with a service's environment, as the gateway loads it."""
    try:
        return load_config(
            image_config_source(project),
            environ={k: interpolate(v) for k, v in env.items()},
        )
    except ConfigError as exc:
        raise AssertionError(f"{where}: the gateway refuses its config: {exc}") from None


def compose_cluster_wired(project: Path) -> None:
    """compose.cluster.yaml: PostgreSQL with a volume on its data folder and a pg_isready
    health check; two or more gateways of the top Dockerfile, each waiting for PostgreSQL to be
    healthy, on the same store URL and secrets, each in the cluster with its own peer port and
    its own service name advertised, HTTP published on distinct host ports, AMI on to the
    Asterisk service; Asterisk's dialplan asking two of them (as its entrypoint writes it) and
    letting the compose network log in to AMI."""
    compose = compose_file(project, CLUSTER_FILE)
    services = _services(project, CLUSTER_FILE)
    declared = set(compose.get("volumes") or {})
    pg_names = [n for n, s in services.items() if str(s.get("image", "")).startswith("postgres:")]
    assert len(pg_names) == 1, f"{CLUSTER_FILE}: one postgres service wanted, found {pg_names}"
    (pg_name,) = pg_names
    _postgres_wired(services[pg_name], declared)
    gateways = {n: s for n, s in services.items() if builds(project, s, GATEWAY_DOCKERFILE)}
    assert len(gateways) >= 2, f"{CLUSTER_FILE}: two gateways wanted, found {sorted(gateways)}"
    image_volumes = {v for i in final_stage(project).all("VOLUME") for v in i.exec_form() or []}
    http = image_config(project).http.port
    shared: dict[str, set[str]] = {}
    peer_ports: list[int] = []
    host_ports: list[str] = []
    for name, gateway in gateways.items():
        where = f"{CLUSTER_FILE}: {name}"
        waits = (gateway.get("depends_on") or {}).get(pg_name) or {}
        assert waits.get("condition") == "service_healthy", f"{where} must wait for {pg_name}"
        mounted = {str(v).split(":")[1] for v in as_list(gateway.get("volumes"))}
        assert image_volumes <= mounted, f"{where}: volumes miss {image_volumes - mounted}"
        env = _environment(gateway)
        for key in ("CTGW_STORE_URL", "CTGW_STORE_PASSWORD", "CTGW_CLUSTER_SECRET"):
            shared.setdefault(key, set()).add(env.get(key, ""))
        config = _gateway_config(project, env, where)
        store = urlsplit(config.store.url)
        assert store.scheme.startswith("postgres"), f"{where}: the store is not PostgreSQL"
        assert store.hostname == pg_name, f"{where}: the store is not the {pg_name} service"
        assert config.cluster.enabled, f"{where} is not in the cluster ([cluster] peer_port)"
        assert config.cluster.dial_host == name, f"{where} advertises {config.cluster.dial_host}"
        peer_ports.append(config.cluster.peer_port)
        assert config.ami.enabled, f"{where}: AMI is off"
        ami_host = services.get(config.ami.host, {})
        assert builds(project, ami_host, ASTERISK_DOCKERFILE), f"{where}: AMI not to Asterisk"
        published = [str(p).rsplit(":", 1) for p in as_list(gateway.get("ports"))]
        http_hosts = [outer for outer, inner in published if inner.split("/")[0] == str(http)]
        assert http_hosts, f"{where}: HTTP ({http}) is not published"
        host_ports += http_hosts
    for key, values in shared.items():
        assert len(values) == 1, f"{CLUSTER_FILE}: the gateways differ in {key}: {values}"
    pg_password = _environment(services[pg_name]).get("POSTGRES_PASSWORD")
    assert shared["CTGW_STORE_PASSWORD"] == {pg_password}, "the store password is not PostgreSQL's"
    assert len(set(peer_ports)) == len(peer_ports), f"gateways share a peer port: {peer_ports}"
    assert len(set(host_ports)) == len(host_ports), f"gateways share host ports: {host_ports}"
    _asterisk_asks_two(project, compose, services, set(gateways))


def _postgres_wired(service: dict[str, Any], declared: set[str]) -> None:
    data = [str(v).split(":") for v in as_list(service.get("volumes"))]
    assert any(inner == PG_DATA and outer in declared for outer, inner, *_ in data), (
        f"postgres: no named volume on {PG_DATA}"
    )
    test = " ".join(str(w) for w in as_list((service.get("healthcheck") or {}).get("test")))
    assert "pg_isready" in test, f"postgres: the health check does not ask pg_isready: {test}"


def _asterisk_asks_two(
    project: Path, compose: dict[str, Any], services: dict[str, Any], gateways: set[str]
) -> None:
    asterisks = [s for s in services.values() if builds(project, s, ASTERISK_DOCKERFILE)]
    assert len(asterisks) == 1, f"{CLUSTER_FILE}: one Asterisk service wanted"
    env = _environment(asterisks[0])
    hosts = agi_hosts_written(project, env)
    first, second = hosts.get("CTGW_AGI_HOST"), hosts.get("CTGW_AGI_HOST2")
    assert {first, second} <= gateways and first != second, f"the dialplan asks {hosts}"
    globals_text = (project / "dialplans/ctgw-globals.conf").read_text()
    assert re.search(r"^CTGW_AGI_HOST2=", globals_text, re.M), "the dialplan has no second host"
    port2 = re.search(r"^CTGW_AGI_PORT2=(\d*)", globals_text, re.M)
    agi = image_config(project).agi.port
    assert port2 and int(port2.group(1) or 4573) == agi, "CTGW_AGI_PORT2 is not the config's"
    subnets = [
        interpolate(str(c.get("subnet", "")))
        for net in (compose.get("networks") or {}).values()
        for c in ((net or {}).get("ipam") or {}).get("config", [])
    ]
    permit = interpolate(env.get("CTGW_AMI_PERMIT", ""))
    assert permit in subnets, f"AMI permits {permit!r}, not the compose network {subnets}"


CHECKS = {
    f.__name__: f
    for f in (
        compose_services_non_root,
        compose_services_health_checked,
        compose_secrets_from_environment,
        compose_private_ports_unpublished,
        compose_cluster_wired,
    )
}
