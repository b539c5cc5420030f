"""The gateway Asterisk asked, when the site's holder it forwarded a call to answers too late:
the call gets no route (the dialplan's fallback), logged and counted as the holder's lateness
(`holder_late`), not as a site nobody holds."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from gateway.cluster.nodes import Peer
from gateway.cluster.peer_link import PeerServer
from gateway.leasing.desk import SessionDesk
from gateway.telephony.route import CallRouter
from tests.postgres.test_peer_link import (  # noqa: F401 - the fixtures asker and owner
    FakeDirectory,
    FakeOwner,
    asker,
    call,
    forwarding,
    owner,
)

pytestmark = pytest.mark.timeout(30)


async def test_a_holder_answering_after_the_deadline_is_counted_late_not_unheld(
    asker: tuple[SessionDesk, CallRouter],  # noqa: F811 - the fixture
    owner: tuple[FakeOwner, PeerServer],  # noqa: F811 - the fixture
) -> None:
    fake, server = owner
    ahead = forwarding(asker, FakeDirectory(Peer("node-a", "127.0.0.1", server.port)))
    _, router = asker
    try:
        with capture_logs() as logs:
            assert await ahead.route("demo", call("slow"), 0.3) is None
    finally:
        fake.slow.set()
        await ahead.close()
    assert fake.withins, "the holder was reached"
    assert router.metrics.value("ctgw_calls_unrouted_total", reason="holder_late") == 1
    assert router.metrics.value("ctgw_calls_unrouted_total", reason="site_unheld") == 0
    events = [e["event"] for e in logs if e["event"].startswith("call_")]
    assert events == ["call_holder_late"]
