"""The Dockerfile, the image's config and compose.yaml, checked without a Docker engine.

Each check in tests/image/image_checks.py runs on the repository; each is then run on a copy
with one property broken, and must fail there (a check that cannot fail proves nothing).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.image import image_checks
from tests.image.dockerfile import ignored, parse_dockerfile, parse_ignore, stages

PROJECT = Path(__file__).resolve().parents[2]
# What the checks read; the packages are linked, not copied (only their presence matters).
_COPIED = ("Dockerfile", ".dockerignore", "compose.yaml", "pyproject.toml", "README.md")
_COPIED_DIRS = ("docker", "dialplans")
_LINKED = ("gateway", "numberpool", "reports")


@pytest.mark.parametrize("name", sorted(image_checks.CHECKS))
def test_check_holds_on_the_repository(name: str) -> None:
    image_checks.CHECKS[name](PROJECT)


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


def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(project: Path) -> None:
        target = project / path
        text = target.read_text()
        assert old in text, f"{path} no longer holds {old!r}: update this mutation"
        target.write_text(text.replace(old, new, 1))

    return apply


def _remove(path: str) -> Callable[[Path], None]:
    def apply(project: Path) -> None:
        target = project / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

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
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_check_fails_when_its_property_is_broken(broken: str, tmp_path: Path) -> None:
    name, breaks = BROKEN[broken]
    project = _project_copy(tmp_path)
    image_checks.CHECKS[name](project)  # holds on the intact copy
    breaks(project)
    with pytest.raises(AssertionError):
        image_checks.CHECKS[name](project)


def test_every_check_is_proven_to_fail() -> None:
    assert {name for name, _ in BROKEN.values()} == set(image_checks.CHECKS)


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
