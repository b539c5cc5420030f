"""The Dockerfiles' steps run for real in copies of Debian root filesystems (no Docker here).

Each stage starts as a copy of its base image's cached root filesystem (tests/lab/setup.d/
60-image-rootfs.sh builds them with mmdebstrap: Debian trixie and sid, minbase, as Docker's
debian:*-slim images are). ARG, ENV, WORKDIR, USER and COPY are applied as Docker applies them;
each RUN runs as `/bin/sh -c` in a chroot inside mount and PID namespaces of its own (its /proc,
the host's resolv.conf and pip's CA bundle bound in, as a build's network would give them), so
nothing stays mounted or running on the host.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.image.dockerfile import Instruction, Stage, ignored

__all__ = ["BASES", "BuiltStage", "build", "image_roots", "passwd_ids", "run_in_root"]

# The base images the Dockerfiles use, each as the Debian suite its root filesystem is built from.
BASES = {"debian:trixie-slim": "trixie", "debian:sid-slim": "sid"}
DEFAULT_CACHE = Path("/var/cache/ctgw")
# What Docker's RUN starts with before any ENV.
DOCKER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Registry settings of the host that a build here needs to reach the same registries.
_PASSED_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT")
_HOST_CA = "/run/ctgw-host-ca.crt"
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def image_roots() -> dict[str, Path] | None:
    """Each base image's cached root filesystem, if all were built completely, else None."""
    cache = Path(os.environ.get("CTGW_IMAGE_ROOTS", DEFAULT_CACHE))
    roots = {image: cache / f"image-rootfs-{suite}" for image, suite in BASES.items()}
    return roots if all((r / ".ctgw-complete").exists() for r in roots.values()) else None


@dataclass
class BuiltStage:
    """A stage's root filesystem and the image settings its instructions left."""

    root: Path
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DOCKER_PATH})
    # ARG values: in the environment of the stage's RUN steps only, not in the image's.
    args: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    log: list[str] = field(default_factory=list)


def passwd_ids(root: Path, user: str) -> tuple[int, int]:
    """uid and gid of `user` (a name or uid) in the root filesystem's /etc/passwd."""
    for line in (root / "etc/passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        if user in (name, uid):
            return int(uid), int(gid)
    raise KeyError(f"no user {user!r} in {root}/etc/passwd")


def run_in_root(
    stage: BuiltStage, command: str, timeout: float, *, user: str = "root"
) -> subprocess.CompletedProcess[str]:
    """`/bin/sh -c command` in the stage's root, in a private mount namespace."""
    root = stage.root
    env = {"HOME": "/root" if user == "root" else "/nonexistent", **stage.args, **stage.env}
    binds = [("/etc/resolv.conf", "/etc/resolv.conf")]
    pip_cert = os.environ.get("PIP_CERT") or _pip_conf_cert()
    if pip_cert and Path(pip_cert).is_file():
        binds.append((pip_cert, _HOST_CA))
        env["PIP_CERT"] = _HOST_CA
    env |= {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
    uid, gid = passwd_ids(root, user)
    mounts = [
        f"mount -t proc proc {shlex.quote(str(root / 'proc'))}",
        f"mount -t devpts -o newinstance devpts {shlex.quote(str(root / 'dev/pts'))}",
    ]
    for host, inner in binds:
        target = root / inner.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)
        mounts.append(f"mount --bind {shlex.quote(host)} {shlex.quote(str(target))}")
    inner_cmd = f"cd {shlex.quote(stage.workdir)} && {command}"
    chroot = ["chroot", f"--userspec={uid}:{gid}", str(root), "/bin/sh", "-c", inner_cmd]
    script = " && ".join([*mounts, "exec env -i " + shlex.join(_env_words(env) + chroot)])
    return subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--kill-child", "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _env_words(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]


def _pip_conf_cert() -> str | None:
    conf = Path("/etc/pip.conf")
    if conf.is_file():
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cert":
                return value.strip()
    return None


def _expand(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def _apply_env(stage: BuiltStage, inst: Instruction) -> None:
    for word in shlex.split(inst.args):
        key, _, value = word.partition("=")
        stage.env[key] = _expand(value, stage.env)


@dataclass(frozen=True)
class _Context:
    path: Path
    ignore: list[str]

    def skip(self, folder: str, names: list[str]) -> list[str]:
        """copytree's ignore: what .dockerignore leaves out of the build context."""
        rel = Path(folder).relative_to(self.path)
        return [n for n in names if ignored(self.ignore, str(rel / n))]


def _copy(
    stage: BuiltStage, inst: Instruction, context: _Context, built: dict[str, BuiltStage]
) -> None:
    words = inst.exec_form() or inst.args.split()
    *sources, dest = words
    from_stage = "from" in inst.flags
    origin = built[inst.flags["from"]].root if from_stage else context.path
    inner = dest if dest.startswith("/") else f"{stage.workdir.rstrip('/')}/{dest}"
    target = stage.root / inner.lstrip("/")
    for source in sources:
        src = origin / source.lstrip("/")
        # A folder's contents go into dest; a file into dest/ (dest ends with "/") or as dest.
        if src.is_dir():
            skip = None if from_stage else context.skip
            shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True, ignore=skip)
            placed = [target]
        else:
            into = target / src.name if dest.endswith("/") or len(sources) > 1 else target
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, into, follow_symlinks=False)
            placed = [into]
        for path in placed:
            _own(stage, inst, path)


def _own(stage: BuiltStage, inst: Instruction, path: Path) -> None:
    """--chown/--chmod as Docker applies them (to everything copied), else root as owner."""
    if "from" in inst.flags and "chown" not in inst.flags:
        return  # a copy from another stage keeps its owners
    uid, gid = 0, 0
    if "chown" in inst.flags:
        user, _, group = inst.flags["chown"].partition(":")
        uid = passwd_ids(stage.root, user)[0]
        gid = _group_id(stage.root, group) if group else passwd_ids(stage.root, user)[1]
    for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.lchown(item, uid, gid)
        if "chmod" in inst.flags and not item.is_symlink():
            item.chmod(int(inst.flags["chmod"], 8))


def _group_id(root: Path, group: str) -> int:
    for line in (root / "etc/group").read_text().splitlines():
        name, _, gid, *_ = line.split(":")
        if group in (name, gid):
            return int(gid)
    raise KeyError(f"no group {group!r} in {root}/etc/group")


def _build_stage(
    stage: Stage,
    bases: dict[str, Path],
    work: Path,
    context: _Context,
    built: dict[str, BuiltStage],
) -> BuiltStage:
    if stage.base not in bases:
        raise ValueError(f"stage {stage.name} is FROM {stage.base}: the lab has {sorted(bases)}")
    root = work / f"stage-{stage.name}"
    subprocess.run(["cp", "-a", "--reflink=auto", str(bases[stage.base]), str(root)], check=True)
    out = BuiltStage(root)
    for inst in stage.instructions:
        if inst.keyword == "ENV":
            _apply_env(out, inst)
        elif inst.keyword == "ARG":
            name, _, default = inst.args.partition("=")
            out.args[name] = _expand(default, out.env)
        elif inst.keyword == "WORKDIR":
            out.workdir = _expand(inst.args, out.env)
            (root / out.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif inst.keyword == "USER":
            out.user = inst.args
        elif inst.keyword == "COPY":
            _copy(out, inst, context, built)
        elif inst.keyword == "RUN":
            done = run_in_root(out, inst.args, timeout=600, user=out.user)
            out.log.append(f"$ RUN {inst.args}\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
            if done.returncode != 0:
                raise RuntimeError(f"line {inst.line}: exit {done.returncode}\n{out.log[-1]}")
    return out


def build(
    stages: list[Stage], bases: dict[str, Path], work: Path, context: Path, ignore: list[str]
) -> dict[str, BuiltStage]:
    """Every stage built in order under `work` (a new folder); the last is the image."""
    work.mkdir(parents=True)
    built: dict[str, BuiltStage] = {}
    for stage in stages:
        built[stage.name] = _build_stage(stage, bases, work, _Context(context, ignore), built)
    return built
