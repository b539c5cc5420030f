"""The Dockerfiles' steps run for real in Debian root filesystems, then served and called.

No Docker engine runs here: tests/image/rootfs_build.py runs each stage's RUN, COPY, ENV, WORKDIR
and USER in a copy of the base image's contents (tests/lab/setup.d/60-image-rootfs.sh builds
them with mmdebstrap), then tests/image/rootfs_serve.py runs the images' commands as their users
with their volumes bound in, in a network namespace of their own, and checks them from outside:
the gateway alone as `docker run` starts it, then the gateway and Asterisk as compose.yaml
wires them, with one call through the dialplan.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.image.dockerfile import Stage, parse_ignore, read
from tests.image.rootfs_build import BuiltStage, build, image_roots, passwd_ids
from tests.image.rootfs_serve import serve_images

# A build takes 20-60 s here: the packages and wheels come from the registries each time.
pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

PROJECT = Path(__file__).resolve().parents[2]
WORK_PARENT = Path("/var/cache/ctgw")
AMI_SECRET = "image-lab-secret"
_COMPOSE_VAR = re.compile(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}")


def _missing(reason: str) -> None:
    """Skip outside CI; under CI=true a missing real part is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: real parts may not be skipped)")
    pytest.skip(reason)


def _remove_stale() -> None:
    """Build folders of runs killed before their cleanup (nothing is mounted on the host)."""
    for old in WORK_PARENT.glob("image-test-*"):
        if time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    if image_roots() is None:
        _missing("no image root filesystems: run tests/lab/setup.sh as root")
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("chroot", "unshare", "ip")):
        _missing("the image steps need root, chroot, unshare and ip")
    _remove_stale()
    folder = WORK_PARENT / f"image-test-{uuid.uuid4().hex[:10]}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _build(dockerfile: str, work: Path) -> tuple[Stage, BuiltStage]:
    """The Dockerfile built stage by stage (context: the repository); its final stage."""
    roots = image_roots()
    assert roots is not None
    stages = read(PROJECT / dockerfile)
    ignore = parse_ignore((PROJECT / ".dockerignore").read_text())
    name = dockerfile.replace("/", "-")
    built = build(stages, roots, work / name, PROJECT, ignore)
    return stages[-1], built[stages[-1].name]


@pytest.fixture(scope="module")
def gateway_image(work: Path) -> tuple[Stage, BuiltStage]:
    return _build("Dockerfile", work)


@pytest.fixture(scope="module")
def asterisk_image(work: Path) -> tuple[Stage, BuiltStage]:
    return _build("docker/asterisk/Dockerfile", work)


def _exec(inst_args: str) -> list[str]:
    words = json.loads(inst_args)
    assert isinstance(words, list)
    return [str(w) for w in words]


def _volume(root: Path, inner: str, dest: Path) -> str:
    """A new named volume: a copy of the image's folder, owners and modes kept."""
    if (root / inner.lstrip("/")).exists():
        subprocess.run(["cp", "-a", str(root / inner.lstrip("/")), str(dest)], check=True)
    else:
        dest.mkdir()
    return str(dest)


def _container(
    image: tuple[Stage, BuiltStage], name: str, env: dict[str, str], volumes: list[str]
) -> dict[str, Any]:
    """How rootfs_serve runs one container of this image: argv, user, env, volumes."""
    stage, built = image
    entry = [_exec(i.args) for i in stage.all("ENTRYPOINT")]
    (cmd,) = stage.all("CMD")
    checks = stage.all("HEALTHCHECK")
    stops = stage.all("STOPSIGNAL")
    uid, gid = passwd_ids(built.root, built.user)
    home = next(
        line.split(":")[5]
        for line in (built.root / "etc/passwd").read_text().splitlines()
        if line.split(":")[2] == str(uid)
    )
    work = built.root.parent
    return {
        "root": str(built.root),
        "cmd": (entry[-1] if entry else []) + _exec(cmd.args),
        "healthcheck": _exec(checks[-1].args.removeprefix("CMD")) if checks else [],
        "stopsignal": stops[-1].args if stops else "SIGTERM",
        "env": {**built.env, **env},
        "workdir": built.workdir,
        "home": home,
        "uid": uid,
        "gid": gid,
        "volumes": {
            _volume(built.root, v, work / f"volume-{name}{i}"): v for i, v in enumerate(volumes)
        },
        "ports": [int(p.split("/")[0]) for e in stage.all("EXPOSE") for p in e.args.split()],
        "log": str(work / f"{name}.log"),
    }


def _hosts(work: Path, names: list[str]) -> str:
    """Compose's DNS answers service names; here all share one network namespace."""
    hosts = work / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {' '.join(names)}\n::1 localhost\n")
    hosts.chmod(0o644)
    return str(hosts)


def _interpolate(value: str, env: dict[str, str]) -> str:
    """compose's ${VAR}, ${VAR:-default} and ${VAR:?error}."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg if op == ":-" else ""

    return _COMPOSE_VAR.sub(one, value)


def _log_tail(box: dict[str, Any]) -> str:
    return Path(box["log"]).read_text(errors="replace")[-3000:]


def _store_volume(box: dict[str, Any]) -> Path:
    return next(Path(h) for h, inner in box["volumes"].items() if inner == "/var/lib/ctgw")


def test_gateway_image_builds_and_serves_as_its_user_with_both_volumes(
    gateway_image: tuple[Stage, BuiltStage],
) -> None:
    stage, built = gateway_image
    volumes = [v for i in stage.all("VOLUME") for v in _exec(i.args)]
    gateway = _container(gateway_image, "run", {}, volumes)
    spec = {"containers": {"gateway": gateway}, "hosts": _hosts(built.root.parent, ["gateway"])}
    found = serve_images(spec, timeout=180)
    print("image findings:", json.dumps(found))
    log = _log_tail(gateway)
    assert found["health_status"] == 200, (found, log)
    assert '"status": "ok"' in found["health"]
    assert found["uid"] == 10001
    # Both EXPOSEd ports listen on every address of the container's network (0.0.0.0).
    assert found["listening"] == {"8080": ["00000000"], "4573": ["00000000"]}, found
    assert found["session_status"] == 201, (found, log)
    assert found["healthcheck_rc"] == 0, found
    assert found["healthcheck_rc_stopped"] != 0, found
    assert found["gateway_exit_code"] == 0, (found, log)
    # The store landed in the store volume, owned by the image's user and private to it.
    store = _store_volume(gateway) / "ctgw.db"
    assert store.stat().st_uid == 10001
    assert store.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
    config = next(Path(h) for h, inner in gateway["volumes"].items() if inner == "/etc/ctgw")
    assert (config / "gateway.toml").exists()
    assert not list(config.glob("*.db*")), "the store must not land in the config volume"


def _service(
    compose: dict[str, Any],
    name: str,
    image: tuple[Stage, BuiltStage],
    env: dict[str, str],
    box: str = "",
) -> dict[str, Any]:
    """A compose service as a container; `box` names its volumes and log (default: `name`)."""
    service = compose["services"][name]
    service_env = {k: _interpolate(str(v), env) for k, v in service.get("environment", {}).items()}
    volumes = [str(v).split(":")[1] for v in service.get("volumes", [])]
    return _container(image, box or name, service_env, volumes)


def test_compose_pair_routes_a_call_through_the_gateway_service(
    gateway_image: tuple[Stage, BuiltStage], asterisk_image: tuple[Stage, BuiltStage]
) -> None:
    compose = yaml.safe_load((PROJECT / "compose.yaml").read_text())
    # The shell's variables as an operator sets them; here every container connects from
    # loopback, so that is the network Asterisk lets log in to AMI.
    env = {"CTGW_AMI_SECRET": AMI_SECRET, "CTGW_SUBNET": "127.0.0.0/8"}
    gateway = _service(compose, "gateway", gateway_image, env)
    asterisk = _service(compose, "asterisk", asterisk_image, env)
    work = gateway_image[1].root.parent
    spec = {
        "containers": {"gateway": gateway, "asterisk": asterisk},
        "hosts": _hosts(work, list(compose["services"])),
        "store": str(_store_volume(gateway) / "ctgw.db"),
    }
    found = serve_images(spec, timeout=300)
    print("compose findings:", json.dumps(found, default=str)[:3000])
    logs = f"gateway:\n{_log_tail(gateway)}\nasterisk:\n{_log_tail(asterisk)}"
    assert found["health_status"] == 200, (found, logs)
    pbx = found["asterisk"]
    assert "ctgw" in pbx["ami_connected"], (pbx, logs)
    assert len(pbx["calls"]) == 1, (pbx, logs)  # the dialplan reached the gateway service
    call = pbx["calls"][0]
    assert call["dialed"] == "+14155550101", call
    assert call["route"] == "PJSIP/agent1", (call, logs)  # the gateway's route, not the fallback
    assert call["state"] != "ringing", (call, logs)  # AMI followed the call to its end
    # The entrypoint wrote the AGI hosts from the environment: one gateway, the service.
    assert pbx["globals"].get("CTGW_AGI_HOST") == "gateway", pbx["globals"]
    assert pbx["globals"].get("CTGW_AGI_HOST2") == "", pbx["globals"]
    assert found["asterisk_exit_code"] == 0, (found, logs)
    assert found["gateway_exit_code"] == 0, (found, logs)


def test_cluster_asterisk_asks_the_second_gateway_when_the_first_refuses(
    gateway_image: tuple[Stage, BuiltStage], asterisk_image: tuple[Stage, BuiltStage]
) -> None:
    """compose.cluster.yaml's Asterisk service (its environment as that file sets it) with
    its first gateway down: gateway-a's name leads to an address where nothing listens, and a
    gateway answers as gateway-b. The call is routed by gateway-b, not the fallback. (Both
    gateways on PostgreSQL need a network namespace each: not run here; tests/postgres runs
    the cluster itself.)"""
    cluster = yaml.safe_load((PROJECT / "compose.cluster.yaml").read_text())
    single = yaml.safe_load((PROJECT / "compose.yaml").read_text())
    env = {"CTGW_AMI_SECRET": AMI_SECRET, "CTGW_SUBNET": "127.0.0.0/8"}
    # The one-gateway service (SQLite), its FastAGI on 127.0.0.1 only, so 127.0.0.2 refuses.
    gateway = _service(single, "gateway", gateway_image, env, box="cluster-gateway")
    gateway["env"]["CTGW_AGI_HOST"] = "127.0.0.1"
    asterisk = _service(cluster, "asterisk", asterisk_image, env, box="cluster-asterisk")
    work = gateway_image[1].root.parent
    hosts = work / "hosts-cluster"
    hosts.write_text(
        "127.0.0.1 localhost gateway gateway-b asterisk postgres\n127.0.0.2 gateway-a\n"
    )
    hosts.chmod(0o644)
    spec = {
        "containers": {"gateway": gateway, "asterisk": asterisk},
        "hosts": str(hosts),
        "store": str(_store_volume(gateway) / "ctgw.db"),
    }
    found = serve_images(spec, timeout=300)
    print("cluster dialplan findings:", json.dumps(found, default=str)[:3000])
    logs = f"gateway:\n{_log_tail(gateway)}\nasterisk:\n{_log_tail(asterisk)}"
    assert found["health_status"] == 200, (found, logs)
    pbx = found["asterisk"]
    assert len(pbx["calls"]) == 1, (pbx, logs)  # a gateway was reached: gateway-b
    call = pbx["calls"][0]
    assert call["route"] == "PJSIP/agent1", (call, logs)  # gateway-b's route, not the fallback
    assert pbx["globals"].get("CTGW_AGI_HOST") == "gateway-a", pbx["globals"]
    assert pbx["globals"].get("CTGW_AGI_HOST2") == "gateway-b", pbx["globals"]
    assert found["asterisk_exit_code"] == 0, (found, logs)
