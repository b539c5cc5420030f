"""The house keeps its shape: imports run one way, processes load only what they run, modules
and the functions of the call and session paths stay small (README "Where things are")."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "numberpool", "reports")
MAX_MODULE_LINES = 350
MAX_PATH_FUNCTION_LINES = 60
# The call path (FastAGI route, AMI -> call records) and the session path (POST /v1/sessions).
PATH_MODULES = (
    "gateway/telephony/route.py",
    "gateway/telephony/agi.py",
    "gateway/telephony/call_ledger.py",
    "gateway/telephony/call_lifecycle.py",
    "gateway/telephony/screen_pop.py",
    "gateway/http/public.py",
    "gateway/http/session_request.py",
    "gateway/http/lease_owner.py",
    "gateway/leasing/desk.py",
    "gateway/leasing/site_book.py",
    "gateway/leasing/live_sessions.py",
    "gateway/store/database.py",
    "gateway/store/calls.py",
    "gateway/store/sessions.py",
    "numberpool/site.py",
    "numberpool/pool.py",
)


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _loaded_by(*modules: str) -> list[str]:
    """The modules a fresh interpreter holds after importing `modules`."""
    probe = f"import json, sys; import {', '.join(modules)}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(result.stdout))


def _within(loaded: list[str], roots: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == r or m.startswith(r + ".") for r in roots)]


@pytest.mark.parametrize("package", ["numberpool", "reports"])
def test_the_pure_packages_import_nothing_from_the_gateway(package: str) -> None:
    """numberpool/ and reports/ import no gateway module, and reports/ nothing of I/O."""
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _imported(path)
        if name.split(".")[0] in ("gateway", "aiohttp", "aiosqlite", "sqlite3", "structlog")
    }
    assert found == set()


def test_the_store_imports_no_room_above_it() -> None:
    """gateway/store/ imports nothing of http/, telephony/, leasing/ or webhooks/."""
    above = (
        "gateway.http",
        "gateway.telephony",
        "gateway.leasing",
        "gateway.webhooks",
        "gateway.app",
    )
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "gateway" / "store").rglob("*.py")
        for name in _imported(path)
        if _within([name], above)
    }
    assert found == set()


def test_the_webhooks_room_imports_no_room_beside_or_above_it() -> None:
    """gateway/webhooks/ sends from the store: it imports nothing of http/, telephony/, leasing/."""
    above = ("gateway.http", "gateway.telephony", "gateway.leasing", "gateway.app")
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "gateway" / "webhooks").rglob("*.py")
        for name in _imported(path)
        if _within([name], above)
    }
    assert found == set()


def test_an_http_front_loads_no_leasing_store_or_telephony_module() -> None:
    """The front process (`python -m gateway.http.front`) loads only the HTTP code it runs."""
    loaded = _loaded_by("gateway.http.front", "gateway.http.lease_channel")
    assert "gateway.http.front" in loaded
    unwanted = ("gateway.leasing", "gateway.store", "gateway.telephony", "aiosqlite")
    assert _within(loaded, unwanted) == []


def test_the_call_path_loads_no_leasing_or_http_module() -> None:
    """The route and the AMI -> store glue run on the store and the domain alone."""
    loaded = _loaded_by("gateway.telephony.route", "gateway.telephony.call_ledger")
    assert "gateway.telephony.route" in loaded
    unwanted = ("gateway.leasing", "gateway.http", "gateway.webhooks", "reports")
    assert _within(loaded, unwanted) == []


def test_no_module_is_over_the_size_a_newcomer_reads_at_once() -> None:
    """Every module of the packages is at most 350 lines."""
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for p in _modules()
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_call_and_session_paths_are_made_of_short_functions() -> None:
    """No function in the call path or the session path is over 60 lines."""
    long: dict[str, int] = {}
    for name in PATH_MODULES:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_PATH_FUNCTION_LINES:
                    long[f"{name}:{node.name}"] = lines
    assert long == {}
