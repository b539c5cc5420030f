"""A real gateway app on 127.0.0.1 with a real SQLite file and a fake clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.appkeys import DB
from gateway.config import parse_config
from gateway.store.keys import create_key
from tests.conftest import FakeClock

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
ORIGIN = "https://www.demo-plumbing.example"
POOL = [f"+141555501{i:02d}" for i in range(1, 11)]


def demo_config(tmp_path: Path, **pool: Any) -> dict[str, Any]:
    return {
        "store": {"url": f"sqlite:///{tmp_path / 'ctgw.db'}"},
        "agi": {"port": 0},
        "sites": [
            {
                "key": "demo",
                "allowed_origins": [ORIGIN],
                "destination": "PJSIP/agent1",
                "pools": [
                    {
                        "target": "+14155550100",
                        "numbers": POOL,
                        "overflow": "+14155550120",
                        **pool,
                    }
                ],
                "static_numbers": [
                    {"number": "+14155550150", "source": "billboard", "medium": "offline"}
                ],
                # The tests play many visitors from one address (127.0.0.1), so no limit per
                # client here; tests/api/test_pool_abuse.py checks the limits.
                "limits": {"client_per_minute": 0, "client_live_numbers": 0},
            }
        ],
    }


Client = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client, tmp_path: Path, clock: FakeClock):
    async def make(raw: dict[str, Any] | None = None) -> TestClient:
        config = parse_config(raw or demo_config(tmp_path), source="test")
        return await aiohttp_client(create_app(config, clock=clock))

    return make


@pytest.fixture
async def client(make_client) -> TestClient:
    return await make_client()


@pytest.fixture
async def admin_key(client: TestClient) -> str:
    return await create_key(client.app[DB], "test", datetime.now(UTC))


async def open_session(client: TestClient, **body: Any):
    payload = {"site": "demo", "url": "https://www.demo-plumbing.example/", **body}
    return await client.post("/v1/sessions", json=payload, headers=BROWSER)
