"""One client address holds at most its share of a pool's numbers at once."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from gateway.appkeys import DESK
from tests.api.test_pool_abuse import config, post
from tests.conftest import FakeClock

OVERFLOW = "+14155550120"


async def numbers_of(client: TestClient, count: int, **headers: str) -> list[str]:
    out = []
    for _ in range(count):
        response = await post(client, headers=headers or None)
        assert response.status == 201
        out.append((await response.json())["numbers"][0]["number"])
    return out


async def test_thirteen_sessions_from_one_address_leave_the_pool_to_others(
    make_client, tmp_path
) -> None:
    """The reproduction: 13 sessions from one address under the rate limit took a 10-number
    pool. Now it holds 3 numbers and gets the overflow number after; others still get numbers."""
    client = await make_client(config(tmp_path))
    mine = await numbers_of(client, 13)
    assert len(set(mine[:3])) == 3 and OVERFLOW not in mine[:3]
    assert mine[3:] == [OVERFLOW] * 10
    metrics = await (await client.get("/metrics")).text()
    assert 'ctgw_sessions_limited_total{limit="live_numbers",site="demo"} 10' in metrics


async def test_other_addresses_still_get_pool_numbers(make_client, tmp_path) -> None:
    """Another client address (behind a trusted proxy) is not held to the first one's share."""
    client = await make_client(config(tmp_path, trusted_proxies=["127.0.0.1"]))
    first = await numbers_of(client, 4, **{"X-Forwarded-For": "198.51.100.7"})
    second = await numbers_of(client, 3, **{"X-Forwarded-For": "198.51.100.8"})
    assert first[3] == OVERFLOW
    assert OVERFLOW not in second and not set(second) & set(first)


async def test_the_share_comes_back_when_its_leases_end(
    make_client, tmp_path, clock: FakeClock
) -> None:
    """Once a client's sessions have ended and been forgotten, it gets pool numbers again."""
    client = await make_client(config(tmp_path))
    assert (await numbers_of(client, 4))[3] == OVERFLOW
    clock.advance(hours=1)
    while client.app[DESK].prune():
        pass
    assert OVERFLOW not in await numbers_of(client, 3)


async def test_no_cap_when_set_to_zero(make_client, tmp_path) -> None:
    """client_live_numbers = 0 lets one address take every pool number (a proxy in front)."""
    client = await make_client(
        config(tmp_path, limits={"client_per_minute": 0, "client_live_numbers": 0})
    )
    assert OVERFLOW not in await numbers_of(client, 10)
