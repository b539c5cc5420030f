"""The route's `call.started` on both backends: queued only when an endpoint of the call's site
asks for it (the condition runs in the commit, as SQL both dialects read alike)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.store import calls, outbox, webhooks
from tests.unit.test_webhook_idle import T0, a_call

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


async def _started(store: Any) -> list[str]:
    rows = await store.fetchall("SELECT payload FROM outbox WHERE topic = 'call.started'")
    return [str(r["payload"]) for r in rows]


async def test_call_started_only_for_an_endpoint_that_wants_it(store: Any) -> None:
    first, second = a_call("c1"), a_call("c2")
    await store.write([calls.call_write(first), outbox.call_started_write(first)])
    assert await _started(store) == []
    assert not await outbox.endpoints_exist(store)
    await webhooks.create_endpoint(
        store, "demo", "https://hooks.example/", ["call.started"], "whsec_x", T0
    )
    assert await outbox.endpoints_exist(store)
    await store.write([calls.call_write(second), outbox.call_started_write(second)])
    [payload] = await _started(store)
    assert '"key": "c2"' in payload
