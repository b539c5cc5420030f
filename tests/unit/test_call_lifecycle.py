"""Call lifecycle from AMI events: answered, missed, abandoned, and what goes wrong on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.telephony.ami_protocol import AmiMessage
from gateway.telephony.call_lifecycle import CallTracker, CallUpdate, agent_endpoint
from tests.fake_ami import transcript_messages

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MAIN = "PJSIP/trunk-00000001"
AGENT = "PJSIP/agent1-00000003"
LOOKUP = "Local/+14155550101@ctgw-lookup-00000002;1"


class Clock:
    """A settable clock in seconds after T0."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)


def ev(name: str, **fields: str) -> AmiMessage:
    headers = [("Event", name), *((k.replace("_", "-"), v) for k, v in fields.items())]
    return AmiMessage(tuple(headers))


def main(name: str, **fields: str) -> AmiMessage:
    base = {"Channel": MAIN, "Context": "ctgw-inbound", "Uniqueid": "100.1", "Linkedid": "100.1"}
    return ev(name, **{**base, **fields})


def agent(name: str, **fields: str) -> AmiMessage:
    base = {"Channel": AGENT, "Context": "agents", "Uniqueid": "100.3", "Linkedid": "100.1"}
    return ev(name, **{**base, **fields})


def dial(name: str, dest: str = AGENT, dest_id: str = "100.3", **fields: str) -> AmiMessage:
    return main(
        name, **{"DestChannel": dest, "DestUniqueid": dest_id, "DestContext": "agents", **fields}
    )


def run(tracker: CallTracker, clock: Clock, script: list[tuple[float, AmiMessage]]):
    updates: list[CallUpdate] = []
    for at, event in script:
        clock.seconds = at
        updates += tracker.handle(event)
    return updates


def answered_script() -> list[tuple[float, AmiMessage]]:
    return [
        (0, main("Newchannel")),
        (0.1, dial("DialBegin", LOOKUP, "100.2", DestContext="ctgw-lookup")),
        (
            0.1,
            ev(
                "Newchannel",
                Channel=LOOKUP,
                Context="ctgw-lookup",
                Uniqueid="100.2",
                Linkedid="100.1",
            ),
        ),
        (
            0.3,
            ev("Hangup", Channel=LOOKUP, Context="ctgw-lookup", Uniqueid="100.2", Linkedid="100.1"),
        ),
        (0.3, dial("DialEnd", LOOKUP, "100.2", DestContext="ctgw-lookup", DialStatus="NOANSWER")),
        (0.5, main("MixMonitorStart", ChanVariable="MIXMONITOR_FILENAME=/rec/100.1.wav")),
        (1, agent("Newchannel")),
        (1, dial("DialBegin")),
        (4, dial("DialEnd", DialStatus="ANSWER")),
        (4, agent("BridgeEnter")),
        (4, main("BridgeEnter")),
        (64, agent("Hangup", Cause="16", Cause_txt="Normal Clearing")),
        (64, main("Hangup", Cause="16", Cause_txt="Normal Clearing")),
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock: Clock) -> CallTracker:
    return CallTracker(clock)


def test_answered_call_has_agent_ring_talk_and_recording(tracker, clock):
    """An answered call ends `answered` with agent, ring and talk seconds, recording and cause."""
    final = run(tracker, clock, answered_script())[-1]
    assert final.final and final.state == "answered"
    assert final.agent == "PJSIP/agent1"
    assert final.ring_seconds == 3.0 and final.talk_seconds == 60.0
    assert final.recording == "/rec/100.1.wav"
    assert (final.hangup_cause, final.hangup_cause_txt) == (16, "Normal Clearing")
    assert final.started_at == T0 and final.ended_at == T0 + timedelta(seconds=64)


def test_updates_say_ringing_then_answered_before_the_end(tracker, clock):
    """Snapshots go ringing, then answered (still open), then the final one."""
    updates = run(tracker, clock, answered_script())
    states = [(u.state, u.final) for u in updates]
    assert states[0] == ("ringing", False)
    assert ("answered", False) in states and states[-1] == ("answered", True)
    assert sum(u.final for u in updates) == 1


def test_unanswered_call_longer_than_15_s_is_missed(tracker, clock):
    """Nobody answers for 20 s: `missed`, with the dial status and how long it rang."""
    final = run(
        tracker,
        clock,
        [
            (0, main("Newchannel")),
            (1, dial("DialBegin")),
            (20, dial("DialEnd", DialStatus="NOANSWER")),
            (20, agent("Hangup", Cause="0")),
            (21, main("Hangup", Cause="16", Cause_txt="Normal Clearing")),
        ],
    )[-1]
    assert (final.state, final.final, final.agent) == ("missed", True, None)
    assert final.dial_status == "NOANSWER" and final.ring_seconds == 20.0
    assert final.answered_at is None and final.talk_seconds is None


def test_unanswered_call_under_15_s_is_abandoned(tracker, clock):
    """The caller gives up after 8 s of ringing: `abandoned`."""
    final = run(
        tracker,
        clock,
        [
            (0, main("Newchannel")),
            (1, dial("DialBegin")),
            (8, main("Hangup", Cause="16")),
            (8, dial("DialEnd", DialStatus="CANCEL")),
            (8, agent("Hangup", Cause="0")),
        ],
    )[-1]
    assert (final.state, final.final, final.dial_status) == ("abandoned", True, None)
    assert final.hangup_cause == 16  # the caller's channel, not the agent leg's cause 0


def test_duplicate_events_change_nothing(tracker, clock):
    """Every event delivered twice gives the same final record, finalised once."""
    script = answered_script()
    doubled = [step for step in script for _ in (0, 1)]
    once = run(CallTracker(clock), clock, script)
    twice = run(tracker, clock, doubled)
    assert twice[-1] == once[-1]
    assert sum(u.final for u in twice) == 1


def test_events_after_the_end_are_ignored(tracker, clock):
    """A straggler Hangup or BridgeEnter after the call ended neither reopens nor alters it."""
    run(tracker, clock, answered_script())
    late = run(tracker, clock, [(90, agent("BridgeEnter")), (91, main("Hangup", Cause="17"))])
    assert late == [] and tracker.live_linkedids == frozenset()


def test_missing_bridge_enter_still_answers_from_dial_end(tracker, clock):
    """Without BridgeEnter, `DialEnd: ANSWER` marks the call answered with its agent."""
    script = [s for s in answered_script() if s[1].event != "BridgeEnter"]
    final = run(tracker, clock, script)[-1]
    assert (final.state, final.agent, final.ring_seconds) == ("answered", "PJSIP/agent1", 3.0)


def test_missing_dial_end_still_answers_from_bridge_enter(tracker, clock):
    """Without DialEnd, BridgeEnter of the dialled leg answers and names the agent."""
    script = [s for s in answered_script() if s[1].get("DialStatus") != "ANSWER"]
    final = run(tracker, clock, script)[-1]
    assert (final.state, final.agent, final.talk_seconds) == ("answered", "PJSIP/agent1", 60.0)


def test_hangup_before_any_dial_is_abandoned_without_agent(tracker, clock):
    """A caller who hangs up during the lookup leaves an abandoned call with no ring or agent."""
    final = run(
        tracker,
        clock,
        [
            (0, main("Newchannel")),
            (0.1, dial("DialBegin", LOOKUP, "100.2", DestContext="ctgw-lookup")),
            (2, main("Hangup", Cause="16", Cause_txt="Normal Clearing")),
        ],
    )[-1]
    assert (final.state, final.agent, final.ring_seconds) == ("abandoned", None, None)


def test_lookup_leg_is_never_an_agent_or_a_ring(tracker, clock):
    """The lookup Local channel answering or bridging does not count as ringing or answering."""
    lookup2 = LOOKUP.replace(";1", ";2")
    updates = run(
        tracker,
        clock,
        [
            (0, main("Newchannel")),
            (0.1, dial("DialBegin", LOOKUP, "100.2", DestContext="ctgw-lookup")),
            (
                0.2,
                ev(
                    "BridgeEnter",
                    Channel=lookup2,
                    Context="ctgw-lookup",
                    Uniqueid="100.4",
                    Linkedid="100.1",
                ),
            ),
            (0.3, dial("DialEnd", LOOKUP, "100.2", DestContext="ctgw-lookup", DialStatus="ANSWER")),
        ],
    )
    assert updates[-1].state == "ringing" and updates[-1].agent is None
    assert tracker.live_linkedids == {"100.1"}


def test_calls_made_only_of_lookup_legs_are_not_tracked(tracker, clock):
    """Events of lookup channels alone never open a call."""
    look = {"Channel": LOOKUP, "Context": "ctgw-lookup", "Uniqueid": "7.1", "Linkedid": "7.1"}
    assert run(tracker, clock, [(0, ev("Newchannel", **look)), (1, ev("Hangup", **look))]) == []


def test_hangup_of_an_unknown_call_opens_nothing(tracker, clock):
    """A Hangup for a call never seen alive does not invent a zero-second call."""
    assert tracker.handle(main("Hangup", Cause="16")) == []
    assert tracker.live_linkedids == frozenset()


def test_hung_up_channel_is_not_revived_by_a_late_event(tracker, clock):
    """An event arriving after its channel's Hangup does not keep the call open."""
    final = run(
        tracker,
        clock,
        [
            (0, main("Newchannel")),
            (1, dial("DialBegin")),
            (2, agent("Hangup")),
            (2, agent("Newchannel")),  # late, out of order
            (20, main("Hangup", Cause="16")),
        ],
    )[-1]
    assert final.final and final.state == "missed"


def test_resync_closes_calls_whose_channels_vanished(tracker, clock):
    """After a reconnect a call with no live channel left is closed, flagged as such."""
    run(tracker, clock, answered_script()[:11])
    clock.seconds = 100
    tracker.resync_started()
    (final,) = tracker.resynced([])
    assert final.final and final.closed_by_resync and final.state == "answered"
    assert final.talk_seconds == 96.0 and final.hangup_cause is None
    assert tracker.live_linkedids == frozenset()


def test_resync_keeps_listed_calls_and_channels_seen_during_it(tracker, clock):
    """Calls Asterisk still lists, or whose channels spoke during the resync, stay open."""
    run(tracker, clock, answered_script()[:11])
    run(
        tracker,
        clock,
        [(50, ev("Newchannel", Channel="PJSIP/trunk-9", Uniqueid="200.1", Linkedid="200.1"))],
    )
    listed = ev(
        "CoreShowChannel",
        Channel=MAIN,
        Context="ctgw-inbound",
        Uniqueid="100.1",
        Linkedid="100.1",
        Duration="00:01:40",
        BridgeId="b1",
    )
    tracker.resync_started()
    tracker.handle(ev("Newstate", Channel="PJSIP/trunk-9", Uniqueid="200.1", Linkedid="200.1"))
    assert [u for u in tracker.resynced([listed]) if u.final] == []
    assert tracker.live_linkedids == {"100.1", "200.1"}


def test_resync_adopts_calls_found_after_a_gateway_restart(tracker, clock):
    """A fresh tracker learns a live answered call from CoreShowChannels, with its agent."""
    clock.seconds = 30
    tracker.resync_started()
    (update,) = tracker.resynced(transcript_messages("coreshowchannels-answered.txt"))
    assert update.linkedid == "1795591690.0" and update.state == "answered"
    assert update.agent == "Local/agent1@eval-agents" and not update.started_exact
    assert update.started_at == T0 + timedelta(seconds=29)
    assert update.recording == "/var/spool/ctgw-ami-eval/monitor/1795591690.1.wav"


def test_recorded_asterisk_transcript_gives_answered_then_abandoned(tracker, clock):
    """Replaying real Asterisk 22 events: call 1 answered by agent1, call 2 unanswered."""
    finals = []
    for n, event in enumerate(transcript_messages("answered-then-unanswered.txt")):
        clock.seconds = n * 0.1
        finals += [u for u in tracker.handle(event) if u.final]
    first, second = finals
    assert (first.linkedid, first.state) == ("1795591690.0", "answered")
    assert first.agent == "Local/agent1@eval-agents"
    assert first.recording == "/var/spool/ctgw-ami-eval/monitor/1795591690.1.wav"
    assert (first.hangup_cause, first.hangup_cause_txt) == (16, "Normal Clearing")
    assert (second.linkedid, second.state, second.agent) == ("1795591699.6", "abandoned", None)
    assert second.dial_status == "NOANSWER"
    assert tracker.live_linkedids == frozenset()


@pytest.mark.parametrize(
    ("channel", "endpoint"),
    [
        ("PJSIP/agent1-0000000a", "PJSIP/agent1"),
        ("PJSIP/agent-1-0000000a", "PJSIP/agent-1"),
        ("Local/agent1@eval-agents-00000002;1", "Local/agent1@eval-agents"),
        ("IAX2/peer-1234", "IAX2/peer"),
    ],
)
def test_agent_endpoint_strips_the_channel_suffix(channel, endpoint):
    """The agent is the device: channel name without its sequence number and Local half."""
    assert agent_endpoint(channel) == endpoint


def test_call_id_seen_only_on_the_hangup_is_kept(tracker, clock):
    """A CTGW_CALL_ID first carried by the Hangup (Dial failed at once) still reaches the record."""
    final = run(
        tracker,
        clock,
        [(0, main("Newchannel")), (1, main("Hangup", ChanVariable="CTGW_CALL_ID=call-9"))],
    )[-1]
    assert final.final and final.call_id == "call-9"


def test_the_route_is_what_the_first_dial_really_dialed():
    """The call's route comes from its first non-lookup DialBegin (technology + DialString),
    so a call the dialplan sent to its fallback says so; later dials do not change it."""
    clock = Clock()
    tracker = CallTracker(clock)
    fallback = "PJSIP/reception-00000004"
    updates = run(
        tracker,
        clock,
        [
            (0, main("Newchannel")),
            (0.1, dial("DialBegin", LOOKUP, "100.2", DestContext="ctgw-lookup", DialString="x")),
            (2.1, dial("DialBegin", fallback, "100.4", DialString="reception")),
            (2.2, dial("DialBegin", AGENT, "100.3", DialString="agent1")),
            (9, main("Hangup", Cause="16")),
        ],
    )
    assert updates[0].route is None  # not dialed yet
    assert {u.route for u in updates[1:]} == {"PJSIP/reception"}
    assert updates[-1].final
