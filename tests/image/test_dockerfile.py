"""The Dockerfile, the image's config and compose.yaml, checked without a Docker engine.

Each check in tests/image/image_checks.py runs on the repository; each is then run on a copy
with one property broken, and must fail there (a check that cannot fail proves nothing).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.image import compose_checks, image_checks
from tests.image.dockerfile import ignored, parse_dockerfile, parse_ignore, stages

PROJECT = Path(__file__).resolve().parents[2]
# What the checks read; the packages are linked, not copied (only their presence matters).
_COPIED = (
    "Dockerfile",
    ".dockerignore",
    *image_checks.COMPOSE_FILES,
    "pyproject.toml",
    "README.md",
)
_COPIED_DIRS = ("docker", "dialplans")
_LINKED = ("gateway", "numberpool", "reports")
CHECKS = image_checks.CHECKS | compose_checks.CHECKS
CLUSTER = compose_checks.CLUSTER_FILE


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_holds_on_the_repository(name: str) -> None:
    CHECKS[name](PROJECT)


def _project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in _COPIED:
        shutil.copy2(PROJECT / name, copy / name)
    for name in _COPIED_DIRS:
        shutil.copytree(PROJECT / name, copy / name)
    for name in _LINKED:
        (copy / name).symlink_to(PROJECT / name)
    return copy


Breaker = Callable[[Path], None]


def _edit(path: str, old: str, new: str) -> Breaker:
    def apply(project: Path) -> None:
        target = project / path
        text = target.read_text()
        assert old in text, f"{path} no longer holds {old!r}: update this mutation"
        target.write_text(text.replace(old, new, 1))

    return apply


def _remove(path: str) -> Breaker:
    def apply(project: Path) -> None:
        target = project / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

    return apply


def _service(path: str, service: str, change: Callable[[dict[str, Any]], None]) -> Breaker:
    """A copy with one service of a compose file changed (the file written back as YAML)."""

    def apply(project: Path) -> None:
        target = project / path
        data = yaml.safe_load(target.read_text())
        change(data["services"][service])
        target.write_text(yaml.safe_dump(data, sort_keys=False))

    return apply


def _env(path: str, service: str, key: str, value: str | None) -> Breaker:
    """A copy with one environment variable of a service set (None: removed)."""

    def change(spec: dict[str, Any]) -> None:
        assert key in spec["environment"] or value is not None, f"{service} has no {key}"
        spec["environment"].pop(key, None)
        if value is not None:
            spec["environment"][key] = value

    return _service(path, service, change)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        if value is None:
            assert key in spec, f"no {key} to remove"
            del spec[key]
        else:
            spec[key] = value

    return change


def _swap_lines(path: str, first: str, second: str) -> Breaker:
    def apply(project: Path) -> None:
        target = project / path
        text = target.read_text()
        assert first in text and second in text, f"{path}: update this mutation"
        target.write_text(text.replace(first, "\0").replace(second, first).replace("\0", second))

    return apply


def _move_user_after_cmd(project: Path) -> None:
    target = project / "Dockerfile"
    text = target.read_text().replace("USER ctgw\n", "")
    target.write_text(text + "USER ctgw\n")


# (check, how the copy is broken): every check must fail on its broken copy.
BROKEN = {
    "no USER": ("non_root_before_cmd", _edit("Dockerfile", "USER ctgw\n", "")),
    "USER root": ("non_root_before_cmd", _edit("Dockerfile", "USER ctgw\n", "USER root\n")),
    "USER after CMD": ("non_root_before_cmd", _move_user_after_cmd),
    "no HEALTHCHECK": ("healthcheck_hits_healthz", _edit("Dockerfile", "HEALTHCHECK", "#")),
    "health on /": ("healthcheck_hits_healthz", _edit("Dockerfile", "%s/healthz'", "%s/'")),
    "health by curl": (
        "healthcheck_hits_healthz",
        _edit(
            "Dockerfile", '["python3", "-c",', '["curl", "-fsS", "http://127.0.0.1:8080/healthz", '
        ),
    ),
    "health on another port": (
        "healthcheck_hits_healthz",
        _edit("docker/gateway.toml", "port = 8080", "port = 8081"),
    ),
    "store outside volumes": (
        "volumes_hold_config_and_store",
        _edit("docker/gateway.toml", "sqlite:////var/lib/ctgw/", "sqlite:////srv/"),
    ),
    "no config volume": (
        "volumes_hold_config_and_store",
        _edit("Dockerfile", 'VOLUME ["/etc/ctgw", ', "VOLUME ["),
    ),
    "COPY after VOLUME": (
        "volumes_hold_config_and_store",
        _edit(
            "Dockerfile", "EXPOSE 8080", "COPY docker/gateway.toml /etc/ctgw/x.toml\nEXPOSE 8080"
        ),
    ),
    "latest base": (
        "bases_pinned",
        _edit("Dockerfile", "FROM debian:trixie-slim\n", "FROM debian:latest\n"),
    ),
    "untagged base": (
        "bases_pinned",
        _edit("docker/asterisk/Dockerfile", "FROM debian:sid-slim", "FROM debian"),
    ),
    "latest compose image": ("bases_pinned", _edit("compose.yaml", "ctgw:0.1.0", "ctgw:latest")),
    "apt lists kept": (
        "apt_lists_cleaned",
        _edit("docker/asterisk/Dockerfile", "    && rm -rf /var/lib/apt/lists/*", ""),
    ),
    "recommends installed": (
        "apt_lists_cleaned",
        _edit("Dockerfile", "--no-install-recommends python3 \\", "python3 \\"),
    ),
    "COPY of a missing file": ("copy_sources_in_context", _remove("docker/gateway.toml")),
    "COPY of an ignored file": (
        "copy_sources_in_context",
        _edit(".dockerignore", "\nvar\n", "\nvar\ndocker/asterisk/entrypoint.sh\n"),
    ),
    "COPY of an ignored folder": (
        "copy_sources_in_context",
        _edit(".dockerignore", "\nvar\n", "\nvar\ngateway/**\n"),
    ),
    "venv in the context": (
        "dockerignore_leaves_out_local_state",
        _edit(".dockerignore", "\n.venv\n", "\n"),
    ),
    "var in the context": (
        "dockerignore_leaves_out_local_state",
        _edit(".dockerignore", "\nvar\n", "\n"),
    ),
    "package not copied": (
        "gateway_packages_copied",
        _edit("Dockerfile", "COPY reports ./reports\n", ""),
    ),
    "readme not copied": (
        "gateway_packages_copied",
        _edit("Dockerfile", "COPY pyproject.toml README.md ./", "COPY pyproject.toml ./"),
    ),
    "AGI port not exposed": (
        "ports_match_config",
        _edit("Dockerfile", "EXPOSE 8080 4573", "EXPOSE 8080"),
    ),
    "config on another AGI port": (
        "ports_match_config",
        _edit("docker/gateway.toml", "port = 4573", "port = 4574"),
    ),
    "HTTP on loopback": (
        "image_config_suits_container",
        _edit(
            "docker/gateway.toml",
            'host = "0.0.0.0"\nport = 8080',
            'host = "127.0.0.1"\nport = 8080',
        ),
    ),
    "relative store": (
        "image_config_suits_container",
        _edit("docker/gateway.toml", "sqlite:////var/lib/ctgw/", "sqlite:///var/"),
    ),
    "unknown config key": (
        "image_config_suits_container",
        _edit("docker/gateway.toml", "workers = 0", "workers = 0\nthreads = 4"),
    ),
    "missing Asterisk Dockerfile": ("compose_files_exist", _remove("docker/asterisk/Dockerfile")),
    "undeclared volume": ("compose_files_exist", _edit("compose.yaml", "  ctgw-data:\n", "")),
    "gateway health disabled": (
        "compose_gateway_wired",
        _edit(
            "compose.yaml",
            "    networks: [ctgw]\n",
            "    healthcheck: {disable: true}\n    networks: [ctgw]\n",
        ),
    ),
    "store volume not mounted": (
        "compose_gateway_wired",
        _edit("compose.yaml", "      - ctgw-data:/var/lib/ctgw\n", ""),
    ),
    "HTTP not published": (
        "compose_gateway_wired",
        _edit("compose.yaml", '"8080:8080"', '"9090:9090"'),
    ),
    "AGI host not the gateway": (
        "compose_gateway_wired",
        _edit("docker/asterisk/Dockerfile", "CTGW_AGI_HOST=gateway", "CTGW_AGI_HOST=127.0.0.1"),
    ),
    "AMI host no service": (
        "compose_gateway_wired",
        _edit("compose.yaml", "CTGW_AMI_HOST: asterisk", "CTGW_AMI_HOST: pbx"),
    ),
    "dialplan asks a host from the environment": (
        "compose_gateway_wired",
        _env("compose.yaml", "asterisk", "CTGW_AGI_HOST", "127.0.0.1"),
    ),
    "entrypoint ignores the environment": (
        "compose_gateway_wired",
        _edit(
            "docker/asterisk/entrypoint.sh", 'agi_host="${CTGW_AGI_HOST:-gateway}"', "agi_host=x"
        ),
    ),
    "one-gateway layout asks a second": (
        "compose_gateway_wired",
        _env("compose.yaml", "asterisk", "CTGW_AGI_HOST2", "gateway-b"),
    ),
    # compose.cluster.yaml, and every compose file
    "latest postgres image": (
        "bases_pinned",
        _edit(CLUSTER, "postgres:15-bookworm", "postgres:latest"),
    ),
    "untagged postgres image": ("bases_pinned", _edit(CLUSTER, "postgres:15-bookworm", "postgres")),
    "cluster volume undeclared": (
        "compose_files_exist",
        _edit(CLUSTER, "\n  gateway-b-data:\n", "\n"),
    ),
    "postgres as its image's user": (
        "compose_services_non_root",
        _service(CLUSTER, "postgres", _set("user", None)),
    ),
    "postgres as root": (
        "compose_services_non_root",
        _service(CLUSTER, "postgres", _set("user", "0:0")),
    ),
    "Asterisk image without USER": (
        "compose_services_non_root",
        _edit("docker/asterisk/Dockerfile", "USER asterisk\n", ""),
    ),
    "postgres without a health check": (
        "compose_services_health_checked",
        _service(CLUSTER, "postgres", _set("healthcheck", None)),
    ),
    "cluster gateway health disabled": (
        "compose_services_health_checked",
        _service(CLUSTER, "gateway-b", _set("healthcheck", {"disable": True})),
    ),
    "Asterisk health NONE": (
        "compose_services_health_checked",
        _service("compose.yaml", "asterisk", _set("healthcheck", {"test": ["NONE"]})),
    ),
    "AMI secret in the file": (
        "compose_secrets_from_environment",
        _env("compose.yaml", "gateway", "CTGW_AMI_SECRET", "0123456789abcdef0123"),
    ),
    "store password with a default": (
        "compose_secrets_from_environment",
        _env(CLUSTER, "postgres", "POSTGRES_PASSWORD", "${CTGW_STORE_PASSWORD:-ctgw}"),
    ),
    "cluster secret in the file": (
        "compose_secrets_from_environment",
        _env(CLUSTER, "gateway-a", "CTGW_CLUSTER_SECRET", "0123456789abcdef0123"),
    ),
    "password in the store URL": (
        "compose_secrets_from_environment",
        _env(CLUSTER, "gateway-b", "CTGW_STORE_URL", "postgresql://ctgw:pw@postgres:5432/ctgw"),
    ),
    "FastAGI published": (
        "compose_private_ports_unpublished",
        _service("compose.yaml", "gateway", _set("ports", ["8080:8080", "4573:4573"])),
    ),
    "peer link published": (
        "compose_private_ports_unpublished",
        _service(CLUSTER, "gateway-b", _set("ports", ["8081:8080", "127.0.0.1:7412:7412"])),
    ),
    "PostgreSQL published": (
        "compose_private_ports_unpublished",
        _service(CLUSTER, "postgres", _set("ports", ["5432:5432"])),
    ),
    "one gateway in the cluster": (
        "compose_cluster_wired",
        _service(CLUSTER, "gateway-b", _set("build", "docker/other")),
    ),
    "gateway starts before PostgreSQL is healthy": (
        "compose_cluster_wired",
        _service(
            CLUSTER, "gateway-b", _set("depends_on", {"postgres": {"condition": "service_started"}})
        ),
    ),
    "gateways on different stores": (
        "compose_cluster_wired",
        _env(CLUSTER, "gateway-b", "CTGW_STORE_URL", "postgresql://ctgw@postgres:5432/other"),
    ),
    "gateways with different secrets": (
        "compose_cluster_wired",
        _env(CLUSTER, "gateway-b", "CTGW_CLUSTER_SECRET", "${CTGW_CLUSTER_SECRET_B:?set it}"),
    ),
    "store password not PostgreSQL's": (
        "compose_cluster_wired",
        _env(CLUSTER, "postgres", "POSTGRES_PASSWORD", "${CTGW_PG_PASSWORD:?set it}"),
    ),
    "store not the postgres service": (
        "compose_cluster_wired",
        _edit(CLUSTER, "postgresql://ctgw@postgres:5432", "postgresql://ctgw@db:5432"),
    ),
    "gateway on SQLite": (
        "compose_cluster_wired",
        _env(CLUSTER, "gateway-b", "CTGW_STORE_URL", None),
    ),
    "gateway not in the cluster": (
        "compose_cluster_wired",
        _env(CLUSTER, "gateway-b", "CTGW_CLUSTER_PEER_PORT", None),
    ),
    "gateway advertises its peer's name": (
        "compose_cluster_wired",
        _env(CLUSTER, "gateway-b", "CTGW_CLUSTER_ADVERTISE_HOST", "gateway-a"),
    ),
    "gateways on one peer port": (
        "compose_cluster_wired",
        _env(CLUSTER, "gateway-b", "CTGW_CLUSTER_PEER_PORT", "7411"),
    ),
    "cluster gateway without AMI": (
        "compose_cluster_wired",
        _env(CLUSTER, "gateway-b", "CTGW_AMI_ENABLED", "false"),
    ),
    "cluster gateways on one host port": (
        "compose_cluster_wired",
        _service(CLUSTER, "gateway-b", _set("ports", ["8080:8080"])),
    ),
    "cluster gateway without its data volume": (
        "compose_cluster_wired",
        _service(CLUSTER, "gateway-b", _set("volumes", ["ctgw-conf:/etc/ctgw"])),
    ),
    "postgres data not in a volume": (
        "compose_cluster_wired",
        _service(CLUSTER, "postgres", _set("volumes", None)),
    ),
    "postgres health not pg_isready": (
        "compose_cluster_wired",
        _service(CLUSTER, "postgres", _set("healthcheck", {"test": ["CMD", "true"]})),
    ),
    "dialplan asks one gateway": (
        "compose_cluster_wired",
        _env(CLUSTER, "asterisk", "CTGW_AGI_HOST2", None),
    ),
    "dialplan asks the same gateway twice": (
        "compose_cluster_wired",
        _env(CLUSTER, "asterisk", "CTGW_AGI_HOST2", "gateway-a"),
    ),
    "entrypoint does not write the second host": (
        "compose_cluster_wired",
        _edit("docker/asterisk/entrypoint.sh", "CTGW_AGI_HOST2=%s", "CTGW_AGI_HOSTX=%s"),
    ),
    "hosts file not included": (
        "compose_cluster_wired",
        _edit("docker/asterisk/extensions.conf", "#include ctgw-agi-hosts.conf\n", ""),
    ),
    "hosts file included before the globals": (
        "compose_cluster_wired",
        _swap_lines(
            "docker/asterisk/extensions.conf",
            "#include ctgw-globals.conf\n",
            "#include ctgw-agi-hosts.conf\n",
        ),
    ),
    "AMI permits another network": (
        "compose_cluster_wired",
        _env(CLUSTER, "asterisk", "CTGW_AMI_PERMIT", "${CTGW_SUBNET:-172.28.57.0/24}"),
    ),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_check_fails_when_its_property_is_broken(broken: str, tmp_path: Path) -> None:
    name, breaks = BROKEN[broken]
    project = _project_copy(tmp_path)
    CHECKS[name](project)  # holds on the intact copy
    breaks(project)
    with pytest.raises(AssertionError):
        CHECKS[name](project)


def test_every_check_is_proven_to_fail() -> None:
    assert {name for name, _ in BROKEN.values()} == set(CHECKS)


@pytest.mark.parametrize(
    ("patterns", "path", "left_out"),
    [
        (["var"], "var/ctgw.db", True),  # a folder's match covers its files
        (["*.db"], "ctgw.db", True),
        (["*.db"], "var/ctgw.db", False),  # `*` stays in one segment, from the context root
        (["**/*.pyc"], "gateway/http/x.pyc", True),
        (["**/__pycache__"], "__pycache__/a.pyc", True),  # `**` may match no folder
        (["docs", "!docs/api.md"], "docs/api.md", False),  # `!` takes a path back
        (["gateway/**"], "gateway", False),
        (["/tests"], "tests/unit/test_x.py", True),
    ],
)
def test_dockerignore_matching_follows_docker(
    patterns: list[str], path: str, left_out: bool
) -> None:
    assert ignored(patterns, path) is left_out


def test_dockerfile_reader_joins_continuations_and_reads_flags() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM debian:trixie-slim AS build\n"
        "RUN a \\\n"
        "    # a comment inside is dropped\n"
        "    && b\n"
        "FROM debian:trixie-slim\n"
        "COPY --from=build --chmod=0755 /x /y\n"
        'CMD ["ctgw", "serve"]\n'
    )
    first, final = stages(parse_dockerfile(text))
    assert (first.name, final.name) == ("build", "1")
    assert first.all("RUN")[0].args == "a     && b"
    copy = final.all("COPY")[0]
    assert copy.flags == {"from": "build", "chmod": "0755"} and copy.args == "/x /y"
    assert final.all("CMD")[0].exec_form() == ["ctgw", "serve"]
    assert parse_ignore("# c\n\nvar\n!var/keep\n") == ["var", "!var/keep"]
