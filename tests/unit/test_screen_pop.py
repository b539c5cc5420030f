"""The screen pop's pure parts: agents' endpoints, which endpoint a dial event rings, what a
pop says; and the hub (bounded queues, site filter, unsubscribing)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gateway.store.agents import check_endpoint, check_endpoints
from gateway.store.staff import UserInputError
from gateway.telephony.ami_protocol import AmiMessage
from gateway.telephony.pop_content import Ring, pop_content, ring_of
from gateway.telephony.pop_hub import PopHub
from numberpool.calls import CallAttribution, CallRecord
from numberpool.visit import VisitContext
from tests.fake_ami import transcript_messages

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def dial(name: str = "DialBegin", **fields: str) -> AmiMessage:
    headers = {
        "Event": name,
        "Channel": "Local/+14155550101@ctgw-inbound-00000000;2",
        "CallerIDNum": "+12025550100",
        "CallerIDName": "Ada",
        "Linkedid": "1795591690.0",
        "ChanVariable": "CTGW_CALL_ID=c-1",
        "DestChannel": "PJSIP/agent1-0000000a",
        "DestContext": "from-internal",
        "Timestamp": "1777896000.250000",
        **fields,
    }
    return AmiMessage(tuple(headers.items()))


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("PJSIP/agent1", "PJSIP/agent1"),
        (" pjsip/agent1 ", "PJSIP/agent1"),
        ("local/nobody@test-ring", "Local/nobody@test-ring"),
        ("SIP/front-desk.2", "SIP/front-desk.2"),
        ("Custom7/x", "Custom7/x"),
    ],
)
def test_endpoints_are_stored_as_ami_names_their_channels(text: str, stored: str) -> None:
    assert check_endpoint(text) == stored


@pytest.mark.parametrize(
    "text",
    [
        "agent1",
        "PJSIP/",
        "/agent1",
        "PJSIP/a,b",
        "PJSIP/a|b",
        "PJSIP/a&PJSIP/b",
        "PJSIP/a b",
        "PJSIP/a\nb",
        "PJSIP/a\x00",
        "PJSIP/a\x1b[31m",
        "PJSIP/a/b",
        "PJ SIP/a",
        "PJSIP/" + "a" * 121,
    ],
)
def test_endpoints_with_separators_or_control_characters_are_refused(text: str) -> None:
    with pytest.raises(UserInputError, match="technology/resource"):
        check_endpoint(text)


def test_a_users_endpoints_are_unique_few_and_for_agents_or_admins() -> None:
    assert check_endpoints(["PJSIP/a", "pjsip/a", "", "PJSIP/b"], "agent") == ("PJSIP/a", "PJSIP/b")
    assert check_endpoints([], "marketer") == ()
    with pytest.raises(UserInputError, match="marketer"):
        check_endpoints(["PJSIP/a"], "marketer")
    with pytest.raises(UserInputError, match="at most 20"):
        check_endpoints([f"PJSIP/a{i}" for i in range(21)], "agent")


def test_a_dialbegin_rings_the_endpoint_of_its_destination_channel() -> None:
    ring = ring_of(dial(), NOW)
    assert ring == Ring(
        endpoint="PJSIP/agent1",
        linkedid="1795591690.0",
        caller="+12025550100",
        caller_name="Ada",
        call_id="c-1",
        at=datetime.fromtimestamp(1777896000.25, UTC),
    )
    ended = ring_of(dial("DialEnd", DialStatus="ANSWER"), NOW)
    assert ended is not None and ended.ended == "ANSWER" and ended.endpoint == "PJSIP/agent1"
    local = ring_of(dial(DestChannel="Local/nobody@test-ring-00000003;1"), NOW)
    assert local is not None and local.endpoint == "Local/nobody@test-ring"


def test_lookup_legs_originate_legs_and_other_events_ring_nobody() -> None:
    assert ring_of(dial(DestContext="ctgw-lookup"), NOW) is None
    assert ring_of(dial(DestChannel="Local/+1415@ctgw-lookup-00000001;1"), NOW) is None
    assert ring_of(dial(Channel=""), NOW) is None  # Originate's own first leg
    assert ring_of(dial(Linkedid=""), NOW) is None
    assert ring_of(dial("Hangup"), NOW) is None
    # The recorded transcript: the Originate leg and the lookup leg ring nobody; the inbound
    # Local leg's ring of agent1 (a Local destination here) is one.
    rings = [
        r for m in transcript_messages("answered-then-unanswered.txt") if (r := ring_of(m, NOW))
    ]
    assert rings and all("ctgw-lookup" not in r.endpoint for r in rings)


def test_unknown_caller_ids_and_bad_timestamps_are_blank_or_ours() -> None:
    ring = ring_of(dial(CallerIDNum="<unknown>", CallerIDName="x\x07y", Timestamp="soon"), NOW)
    assert ring is not None
    assert (ring.caller, ring.caller_name, ring.at) == ("", "xy", NOW)


def _record(**att: object) -> CallRecord:
    attribution = CallAttribution(
        kind="active",
        session_id="s1",
        source="google",
        medium="cpc",
        campaign="spring",
        term="leaky tap",
        landing_page="https://x.example/taps",
        **att,  # type: ignore[arg-type]
    )
    return CallRecord(
        call_id="c-1",
        site="demo",
        dialed="+14155550101",
        started_at="2026-05-04T12:00:00.000000Z",
        state="ringing",
        attribution=attribution,
        caller="+12025550100",
        caller_name="Ada L",
        contact_id="k1",
        first_time=False,
    )


def test_the_pop_shows_caller_visit_pages_and_contact() -> None:
    ring = ring_of(dial(), NOW)
    assert ring is not None
    visit = VisitContext(url="https://x.example/prices", landing_page="https://x.example/taps")
    contact = {"contact_id": "k1", "calls": 3}
    pop = pop_content(ring, _record(), contact, visit)
    assert pop["call_id"] == "c-1" and pop["site"] == "demo"
    assert (pop["caller"], pop["caller_name"], pop["first_time"]) == (
        "+12025550100",
        "Ada L",
        False,
    )
    assert pop["visit"] == {
        "kind": "active",
        "source": "google",
        "medium": "cpc",
        "campaign": "spring",
        "keyword": "leaky tap",
        "landing_page": "https://x.example/taps",
        "referrer": "",
        "pages": ["https://x.example/taps", "https://x.example/prices"],
    }
    assert pop["contact"] == contact
    assert pop["rang_at"] == "2026-05-04T12:00:00.250000Z"


def test_a_page_seen_is_listed_once_whatever_its_query() -> None:
    """The landing page (stored without its query) and the same page with its UTM are one."""
    ring = ring_of(dial(), NOW)
    assert ring is not None
    url = "https://x.example/taps?utm_source=google&utm_campaign=spring#top"
    visit = VisitContext(url=url, landing_page="https://x.example/taps")
    assert pop_content(ring, _record(), None, visit)["visit"]["pages"] == [url]
    # A URL urlsplit refuses (a broken IPv6 host) is listed, not a crash.
    broken = VisitContext(url="http://[::1/taps?x=1", landing_page="http://[::1/taps")
    pages = pop_content(ring, _record(), None, broken)["visit"]["pages"]
    assert pages == ["https://x.example/taps", "http://[::1/taps?x=1"]


def test_a_call_without_a_record_pops_with_what_ami_said() -> None:
    ring = ring_of(dial(), NOW)
    assert ring is not None
    pop = pop_content(ring, None, None, None)
    assert (pop["caller"], pop["call_id"], pop["site"], pop["visit"]) == (
        "+12025550100",
        "c-1",
        None,
        None,
    )


async def test_the_hub_sends_a_pop_only_to_pages_of_its_endpoint_and_site() -> None:
    hub = PopHub()
    one = hub.subscribe(frozenset({"PJSIP/agent1"}), frozenset({"demo"}))
    other_site = hub.subscribe(frozenset({"PJSIP/agent1"}), frozenset({"other"}))
    admin = hub.subscribe(frozenset({"PJSIP/agent1", "PJSIP/agent2"}), None)
    two = hub.subscribe(frozenset({"PJSIP/agent2"}), frozenset({"demo"}))
    assert hub.wants("PJSIP/agent1") and not hub.wants("PJSIP/agent9")
    assert hub.publish("PJSIP/agent1", "demo", "pop", {"n": 1}) == 2
    assert one.queue.qsize() == 1 and admin.queue.qsize() == 1
    assert other_site.queue.empty() and two.queue.empty()
    # No record, so no site's data: every page of the endpoint gets the caller.
    assert hub.publish("PJSIP/agent1", None, "pop", {"n": 2}) == 3
    assert hub.subscriptions == 4


async def test_a_page_that_does_not_read_loses_its_oldest_pops_counted() -> None:
    hub = PopHub(max_queue=3)
    slow = hub.subscribe(frozenset({"PJSIP/a"}), None)
    quick = hub.subscribe(frozenset({"PJSIP/a"}), None)
    for n in range(10):
        hub.publish("PJSIP/a", "demo", "pop", {"n": n})
        quick.queue.get_nowait()
    assert slow.queue.qsize() == 3 and slow.dropped == 7 and quick.dropped == 0
    assert [slow.queue.get_nowait().data["n"] for _ in range(3)] == [7, 8, 9]
    assert hub.dropped == 7 and hub.published == 10


async def test_an_unsubscribed_page_costs_nothing_and_gets_nothing() -> None:
    hub = PopHub(replay_seconds=0.05)
    sub = hub.subscribe(frozenset({"PJSIP/a", "PJSIP/b"}), None)
    hub.unsubscribe(sub)
    hub.unsubscribe(sub)  # twice is harmless (a stream ending two ways)
    assert hub.subscriptions == 0
    assert hub.publish("PJSIP/a", "demo", "pop", {}) == 0 and sub.queue.empty()
    await asyncio.sleep(0.1)  # past the replay period: nobody is reconnecting any more
    assert not hub.wants("PJSIP/a") and not hub.wants("PJSIP/b")


async def test_a_left_endpoint_is_wanted_for_the_replay_period_so_a_reconnect_gets_its_ring() -> (
    None
):
    hub = PopHub(replay_seconds=30)
    page = hub.subscribe(frozenset({"PJSIP/a"}), None)
    hub.unsubscribe(page)  # the stream was cut; the browser comes back in a few seconds
    assert hub.wants("PJSIP/a") and not hub.wants("PJSIP/b")
    assert hub.publish("PJSIP/a", "demo", "pop", {"n": 1}) == 0
    back = hub.subscribe(frozenset({"PJSIP/a"}), None, after_seq=0)
    assert back.queue.get_nowait().data == {"n": 1}
    hub.unsubscribe(back)
    assert hub.wants("PJSIP/a")


async def test_left_endpoints_kept_are_bounded_oldest_forgotten_first() -> None:
    hub = PopHub(replay_seconds=30, max_departed=3)
    for n in range(5):
        hub.unsubscribe(hub.subscribe(frozenset({f"PJSIP/a{n}"}), None))
    assert [hub.wants(f"PJSIP/a{n}") for n in range(5)] == [False, False, True, True, True]
    # A page coming back and leaving again counts as the newest departure.
    hub.unsubscribe(hub.subscribe(frozenset({"PJSIP/a2"}), None))
    hub.unsubscribe(hub.subscribe(frozenset({"PJSIP/a5"}), None))
    assert [hub.wants(f"PJSIP/a{n}") for n in range(6)] == [False, False, True, False, True, True]


async def test_a_page_opened_while_its_phone_rings_gets_the_recent_pops_it_missed() -> None:
    hub = PopHub(replay_seconds=30)
    hub.publish("PJSIP/a", "demo", "pop", {"n": 1})
    hub.publish("PJSIP/b", "demo", "pop", {"n": 2})
    hub.publish("PJSIP/a", "other", "pop", {"n": 3})
    last = hub.publish("PJSIP/a", "demo", "end", {"n": 4})
    assert last == 0
    fresh = hub.subscribe(frozenset({"PJSIP/a"}), frozenset({"demo"}))
    assert [fresh.queue.get_nowait().data["n"] for _ in range(2)] == [1, 4]
    # A reconnecting page says what it saw last (Last-Event-ID): only newer pops come again.
    again = hub.subscribe(frozenset({"PJSIP/a"}), frozenset({"demo"}), after_seq=1)
    assert [p.data["n"] for p in [again.queue.get_nowait()]] == [4] and again.queue.empty()
    stale = PopHub(replay_seconds=0.05)
    stale.publish("PJSIP/a", "demo", "pop", {})
    await asyncio.sleep(0.1)
    assert stale.subscribe(frozenset({"PJSIP/a"}), None).queue.empty()
