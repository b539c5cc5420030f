"""Checks of the image files that need no Docker engine: each takes the project folder and
raises AssertionError naming what is wrong (tests/image/test_dockerfile.py runs them on the
repository, and on broken copies to prove each one can fail)."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from gateway.config import load_config
from gateway.config_error import ConfigError
from gateway.settings import Config
from tests.image.dockerfile import Instruction, Stage, ignored, parse_ignore, read

__all__ = [
    "CHECKS",
    "COMPOSE_FILES",
    "agi_hosts_written",
    "apt_lists_cleaned",
    "as_list",
    "bases_pinned",
    "builds",
    "compose_file",
    "compose_files_exist",
    "compose_gateway_wired",
    "copy_sources_in_context",
    "dockerfile_of",
    "dockerignore_leaves_out_local_state",
    "final_stage",
    "gateway_packages_copied",
    "healthcheck_hits_healthz",
    "image_config",
    "image_config_source",
    "image_config_suits_container",
    "interpolate",
    "non_root_before_cmd",
    "ports_match_config",
    "volumes_hold_config_and_store",
]

GATEWAY_SERVICE = "gateway"
ASTERISK_DOCKERFILE = "docker/asterisk/Dockerfile"
# The one-gateway layout (SQLite) and the cluster (two gateways on PostgreSQL).
COMPOSE_FILES = ("compose.yaml", "compose.cluster.yaml")
_CONFIG_FLAG = re.compile(r"--config\s+(\S+)")


def final_stage(project: Path) -> Stage:
    return read(project / "Dockerfile")[-1]


def _dockerfiles(project: Path) -> list[Path]:
    return [project / "Dockerfile", *sorted((project / "docker").rglob("Dockerfile"))]


def compose_file(project: Path, name: str = "compose.yaml") -> dict[str, Any]:
    """A compose file of the project, as YAML (merge keys resolved)."""
    data = yaml.safe_load((project / name).read_text())
    assert isinstance(data, dict), f"{name} is not a mapping"
    return data


def _image_config_path(project: Path) -> str:
    """The config file the image's CMD serves (`--config PATH`)."""
    (cmd,) = final_stage(project).all("CMD")
    words = cmd.exec_form()
    assert words is not None, "CMD must be in exec form (a JSON list), so SIGTERM reaches ctgw"
    match = _CONFIG_FLAG.search(" ".join(words))
    assert match, f"CMD {words} names no --config"
    return match.group(1)


def image_config_source(project: Path) -> Path:
    """The repository file the final stage copies to the CMD's config path."""
    target = _image_config_path(project)
    for inst in final_stage(project).all("COPY"):
        *sources, dest = inst.exec_form() or inst.args.split()
        if dest == target and "from" not in inst.flags:
            return project / sources[0]
    raise AssertionError(f"no COPY puts the image's config at {target}")


def image_config(project: Path) -> Config:
    """The image's config as the gateway reads it (defaults filled in), without the environment."""
    try:
        return load_config(image_config_source(project), environ={})
    except ConfigError as exc:
        raise AssertionError(f"the image's config does not load: {exc}") from None


def non_root_before_cmd(project: Path) -> None:
    """The final stage switches to a user that is not root before its CMD."""
    stage = final_stage(project)
    users = [i for i in stage.instructions if i.keyword == "USER"]
    cmds = stage.all("CMD")
    assert users, "the final stage has no USER: the gateway would run as root"
    assert cmds, "the final stage has no CMD"
    assert users[-1].line < cmds[-1].line, "USER must come before CMD"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), f"USER {user} is root"


def healthcheck_hits_healthz(project: Path) -> None:
    """HEALTHCHECK asks /healthz on the config's HTTP port with what the image has (no curl)."""
    checks = final_stage(project).all("HEALTHCHECK")
    assert len(checks) == 1, "the final stage needs exactly one HEALTHCHECK"
    args = checks[0].args
    assert args.startswith("CMD ["), f"HEALTHCHECK must be CMD in exec form: {args}"
    words = json.loads(args.removeprefix("CMD"))
    text = " ".join(words)
    port = image_config(project).http.port
    assert "/healthz" in text, f"HEALTHCHECK does not ask /healthz: {text}"
    assert str(port) in text, f"HEALTHCHECK does not use the config's HTTP port {port}: {text}"
    assert words[0] not in ("curl", "wget"), f"{words[0]} is not installed in the image"


def volumes_hold_config_and_store(project: Path) -> None:
    """VOLUME covers the config's folder and the SQLite store's folder, and nothing copied in
    after the VOLUME would be lost (Docker discards changes to a volume path after it)."""
    stage = final_stage(project)
    volumes = [v for inst in stage.all("VOLUME") for v in (inst.exec_form() or inst.args.split())]
    config_dir = str(Path(_image_config_path(project)).parent)
    store = image_config(project).store.url.removeprefix("sqlite:///")
    assert store.startswith("/"), f"the image's store {store} must be an absolute path"
    for needed, what in ((config_dir, "config"), (str(Path(store).parent), "store")):
        assert needed in volumes, f"no VOLUME for the {what} folder {needed}: {volumes}"
    volume_line = min(i.line for i in stage.all("VOLUME"))
    for inst in stage.instructions:
        if inst.keyword in ("COPY", "RUN") and inst.line > volume_line:
            raise AssertionError(f"line {inst.line}: {inst.keyword} after VOLUME is discarded")


def bases_pinned(project: Path) -> None:
    """Every base image and compose image has a tag, and no tag is `latest`."""
    for path in _dockerfiles(project):
        stage_names: set[str] = set()
        for stage in read(path):
            if stage.base not in stage_names:
                _tagged(stage.base, f"{path.relative_to(project)}: FROM")
            stage_names.add(stage.name)
    for file in COMPOSE_FILES:
        for name, service in compose_file(project, file)["services"].items():
            if "image" in service:
                _tagged(service["image"], f"{file}: {name}.image")


def _tagged(image: str, where: str) -> None:
    if "@sha256:" in image:
        return
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{where} {image} has no tag"
    assert tag != "latest", f"{where} {image} uses the latest tag"


def apt_lists_cleaned(project: Path) -> None:
    """Each RUN that installs packages updates, installs without recommends and cleans up."""
    for path in _dockerfiles(project):
        for stage in read(path):
            for run in stage.all("RUN"):
                if "apt-get install" not in run.args:
                    continue
                where = f"{path.relative_to(project)}:{run.line}"
                assert "apt-get update" in run.args, f"{where}: install without update"
                assert "--no-install-recommends" in run.args, f"{where}: recommends installed"
                assert "rm -rf /var/lib/apt/lists/*" in run.args, f"{where}: apt lists kept"


def _copy_sources(inst: Instruction) -> list[str]:
    *sources, _dest = inst.exec_form() or inst.args.split()
    return sources


def copy_sources_in_context(project: Path) -> None:
    """Every COPY source exists in its build context and .dockerignore keeps it there."""
    ignore = parse_ignore((project / ".dockerignore").read_text())
    for path in _dockerfiles(project):
        for stage in read(path):
            for inst in stage.all("COPY") + stage.all("ADD"):
                if "from" in inst.flags:
                    continue
                for source in _copy_sources(inst):
                    where = f"{path.relative_to(project)}:{inst.line}: {source}"
                    assert (project / source).exists(), f"{where} does not exist"
                    assert not ignored(ignore, source), f"{where} is left out by .dockerignore"
                    if (project / source).is_dir():
                        kept = [
                            f
                            for f in (project / source).rglob("*")
                            if f.is_file() and not ignored(ignore, str(f.relative_to(project)))
                        ]
                        assert kept, f"{where}: .dockerignore leaves none of its files"


# What a working copy holds that must never reach the build context (secrets and stores in var/,
# a venv built for another Python, caches).
LOCAL_STATE = (
    ".git/config",
    ".venv/bin/python",
    "var/ctgw.db",
    "var/demo-login.txt",
    "test-artifacts/x.txt",
    ".pytest_cache/v",
    ".mypy_cache/x",
    ".ruff_cache/x",
    ".hypothesis/x",
    "gateway/__pycache__/app.cpython-313.pyc",
    "ctgw.db",
)


def dockerignore_leaves_out_local_state(project: Path) -> None:
    """.dockerignore leaves the venv, var/, test artifacts, caches and stores out."""
    ignore = parse_ignore((project / ".dockerignore").read_text())
    kept = [path for path in LOCAL_STATE if not ignored(ignore, path)]
    assert not kept, f".dockerignore lets these into the build context: {kept}"


def gateway_packages_copied(project: Path) -> None:
    """The build stage copies what `pip wheel .` needs: pyproject, its readme, every package."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    copied = {
        src.strip("./")
        for inst in read(project / "Dockerfile")[0].all("COPY")
        for src in _copy_sources(inst)
    }
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {p.split(".")[0] for p in pyproject["tool"]["setuptools"]["packages"]}
    missing = needed - copied
    assert not missing, f"the build stage does not copy {sorted(missing)}"


def ports_match_config(project: Path) -> None:
    """EXPOSE names exactly the HTTP and FastAGI ports of the image's config."""
    config = image_config(project)
    exposed = {
        int(p.split("/")[0])
        for inst in final_stage(project).all("EXPOSE")
        for p in inst.args.split()
    }
    wanted = {config.http.port, config.agi.port}
    assert exposed == wanted, f"EXPOSE {sorted(exposed)} but the config uses {sorted(wanted)}"


def image_config_suits_container(project: Path) -> None:
    """The image's config loads, listens beyond the container's loopback, stores in a volume."""
    config = image_config(project)
    assert config.http.host == "0.0.0.0", "HTTP must listen on the container's network"
    assert config.agi.host == "0.0.0.0", "FastAGI must listen on the container's network"
    assert config.store.url.startswith("sqlite:////"), "the store must be an absolute path"


def compose_files_exist(project: Path) -> None:
    """Every build context, Dockerfile, env file and bind mount of each compose file exists,
    and every named volume is declared."""
    for file in COMPOSE_FILES:
        _compose_files_exist(project, file)


def _compose_files_exist(project: Path, file: str) -> None:
    compose = compose_file(project, file)
    declared = set(compose.get("volumes") or {})
    for service_name, service in compose["services"].items():
        name = f"{file}: {service_name}"
        build = service.get("build")
        if build is not None:
            build = {"context": build} if isinstance(build, str) else build
            context = project / build.get("context", ".")
            assert context.is_dir(), f"{name}: build context {context} missing"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        for env_file in as_list(service.get("env_file")):
            assert (project / env_file).is_file(), f"{name}: env_file {env_file} missing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (project / source).exists(), f"{name}: bind mount {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def compose_gateway_wired(project: Path) -> None:
    """The gateway service: built from the top Dockerfile, health check kept, volumes on the
    image's VOLUMEs, HTTP published, FastAGI reached by Asterisk at the service's name and port."""
    compose = compose_file(project)
    services = compose["services"]
    gateway = services.get(GATEWAY_SERVICE)
    assert gateway is not None, f"compose.yaml has no {GATEWAY_SERVICE} service"
    build = gateway.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context == ".", "the gateway service must build the top-level Dockerfile"
    health = gateway.get("healthcheck", {})
    assert not health.get("disable"), "the gateway's health check is disabled"
    if "test" in health:
        assert "/healthz" in " ".join(as_list(health["test"])), "health check misses /healthz"
    config = image_config(project)
    targets = {str(v).split(":")[1] for v in gateway.get("volumes", [])}
    image_volumes = {
        v for inst in final_stage(project).all("VOLUME") for v in (inst.exec_form() or [])
    }
    assert image_volumes <= targets, f"gateway volumes {targets} miss {image_volumes - targets}"
    published = {str(p).split(":")[-1].split("/")[0] for p in gateway.get("ports", [])}
    assert str(config.http.port) in published, "the gateway's HTTP port is not published"
    env = gateway.get("environment", {})
    assert env.get("CTGW_AMI_HOST") in services, "CTGW_AMI_HOST names no compose service"
    _asterisk_reaches_gateway(project, config.agi.port)
    asterisk = next(s for s in services.values() if builds(project, s, ASTERISK_DOCKERFILE))
    hosts = agi_hosts_written(project, asterisk.get("environment", {}))
    assert hosts.get("CTGW_AGI_HOST") == GATEWAY_SERVICE, f"the dialplan asks {hosts}"
    assert not hosts.get("CTGW_AGI_HOST2"), f"one gateway, but the dialplan asks {hosts}"


def _asterisk_reaches_gateway(project: Path, agi_port: int) -> None:
    """The Asterisk image's ctgw-globals.conf names the gateway service at the config's port."""
    globals_text = (project / "dialplans/ctgw-globals.conf").read_text()
    match = re.search(r"^CTGW_AGI_PORT=(\d+)", globals_text, re.MULTILINE)
    assert match and int(match.group(1)) == agi_port, "the dialplan's AGI port is not the config's"
    runs = " ".join(r.args for s in read(project / ASTERISK_DOCKERFILE) for r in s.all("RUN"))
    sed = re.search(r"s/\^CTGW_AGI_HOST=\.\*/CTGW_AGI_HOST=([\w.-]+)/", runs)
    assert sed, f"{ASTERISK_DOCKERFILE} does not set CTGW_AGI_HOST"
    assert sed.group(1) == GATEWAY_SERVICE, f"CTGW_AGI_HOST={sed.group(1)}, not the gateway"


def dockerfile_of(project: Path, service: dict[str, Any]) -> Path | None:
    """The Dockerfile a compose service builds, or None for a service of a ready image."""
    build = service.get("build")
    if build is None:
        return None
    spec: dict[str, Any] = {"context": build} if isinstance(build, str) else build
    context = project / str(spec.get("context", "."))
    return context / str(spec.get("dockerfile", "Dockerfile"))


def builds(project: Path, service: dict[str, Any], dockerfile: str) -> bool:
    """Whether a compose service builds `dockerfile` (a path from the project folder)."""
    path = dockerfile_of(project, service)
    return path is not None and path.resolve() == (project / dockerfile).resolve()


_ASTERISK_ETC = "/etc/asterisk/"
_HOSTS_FILE = "ctgw-agi-hosts.conf"
# Placeholders for compose's ${VAR:?…} in a service's environment (never real secrets).
_COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::?([?-])([^}]*))?\}")


def interpolate(value: str, shell: dict[str, str] | None = None) -> str:
    """compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with `shell` as the operator's
    variables; a required one not given becomes a placeholder of 24 characters."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if shell and shell.get(name):
            return shell[name]
        if op == "?":
            return f"placeholder-{name.lower()}"[:24].ljust(24, "x")
        return arg if op == "-" else ""

    return _COMPOSE_VAR.sub(one, value)


def agi_hosts_written(project: Path, environment: dict[str, Any]) -> dict[str, str]:
    """The dialplan globals the Asterisk image's entrypoint writes at start for a service's
    environment (run for real with sh, in a scratch folder), after checking that
    extensions.conf includes that file after ctgw-globals.conf so its lines win."""
    extensions = (project / "docker/asterisk/extensions.conf").read_text()
    includes = re.findall(r"^#include (\S+)", extensions, re.MULTILINE)
    assert _HOSTS_FILE in includes, f"extensions.conf does not include {_HOSTS_FILE}"
    assert "ctgw-globals.conf" in includes, "extensions.conf does not include ctgw-globals.conf"
    first = includes.index("ctgw-globals.conf")
    assert first < includes.index(_HOSTS_FILE), f"{_HOSTS_FILE} must come after ctgw-globals.conf"
    script = (project / "docker/asterisk/entrypoint.sh").read_text()
    assert _ASTERISK_ETC + _HOSTS_FILE in script, f"entrypoint.sh does not write {_HOSTS_FILE}"
    env = {str(k): interpolate(str(v)) for k, v in environment.items()}
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "entrypoint.sh").write_text(script.replace(_ASTERISK_ETC, f"{scratch}/"))
        done = subprocess.run(
            ["sh", f"{scratch}/entrypoint.sh", "true"],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, f"entrypoint.sh failed: {done.stderr.strip()}"
        written = (Path(scratch) / _HOSTS_FILE).read_text()
    return dict(
        line.split("=", 1) for line in written.splitlines() if "=" in line and line[0] != ";"
    )


CHECKS = {
    f.__name__: f
    for f in (
        non_root_before_cmd,
        healthcheck_hits_healthz,
        volumes_hold_config_and_store,
        bases_pinned,
        apt_lists_cleaned,
        copy_sources_in_context,
        dockerignore_leaves_out_local_state,
        gateway_packages_copied,
        ports_match_config,
        image_config_suits_container,
        compose_files_exist,
        compose_gateway_wired,
    )
}
