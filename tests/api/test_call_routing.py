"""The call path in the real app: FastAGI socket in, call record and route out."""

from __future__ import annotations

from gateway.appkeys import AGI, DB
from tests.api.conftest import demo_config, open_session
from tests.conftest import FakeClock
from tests.unit.test_agi import env_block, fake_asterisk


def routed(commands: list[str]) -> dict[str, str]:
    out = {}
    for command in commands:
        _, _, rest = command.partition("SET VARIABLE ")
        name, _, value = rest.partition(" ")
        out[name] = value.strip('"')
    return out


def call_env(dialed: str, caller: str = "+12025550100", name: bytes = b"Ada", linkedid="1.0"):
    return env_block(
        caller_name=name,
        agi_callerid=caller,
        agi_extension=dialed,
        agi_arg_4=dialed,
        agi_arg_1=linkedid,
    )


async def test_call_on_leased_number_is_attributed_and_routed(client, admin_key) -> None:
    """A call on a leased number routes to the site's destination and records the visit."""
    url = "https://www.demo-plumbing.example/?utm_source=google&utm_campaign=spring&gclid=G9"
    session = await (await open_session(client, url=url)).json()
    number = session["numbers"][0]["number"]
    commands = await fake_asterisk(client.app[AGI], call_env(number))
    variables = routed(commands)
    assert variables["CTGW_ROUTE"] == "PJSIP/agent1"
    assert variables["CTGW_SOURCE"] == "google spring"
    call = await (
        await client.get(
            f"/v1/calls/{variables['CTGW_CALL_ID']}",
            headers={"Authorization": f"Bearer {admin_key}"},
        )
    ).json()
    assert call["state"] == "ringing" and call["dialed"] == number
    assert call["caller"] == "+12025550100" and call["caller_name"] == "Ada"
    attribution = call["attribution"]
    assert attribution["kind"] == "active" and attribution["session_id"] == session["session_id"]
    assert attribution["gclid"] == "G9" and attribution["campaign"] == "spring"
    assert call["first_time"] is True


async def test_carrier_number_shapes_reach_the_same_site(client) -> None:
    """+1…, 1… and national shapes of the dialed number are normalised before matching."""
    for i, shape in enumerate(("+14155550150", "14155550150", "4155550150")):
        variables = routed(await fake_asterisk(client.app[AGI], call_env(shape, linkedid=f"{i}.0")))
        assert variables["CTGW_ROUTE"] == "PJSIP/agent1"
        assert variables["CTGW_SOURCE"] == "billboard"


async def test_repeat_caller_is_not_first_time_and_keeps_first_touch(client, clock) -> None:
    """A second call from the same number is a repeat; the contact keeps its first touch."""
    first = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="1.0")))
    clock.advance(hours=1)
    session = await (await open_session(client, url="https://x.example/?utm_source=bing")).json()
    second = routed(
        await fake_asterisk(
            client.app[AGI], call_env(session["numbers"][0]["number"], linkedid="2.0")
        )
    )
    db = client.app[DB]
    rows = await db.fetchall("SELECT call_id, first_time FROM calls ORDER BY started_at")
    assert [(r["call_id"], r["first_time"]) for r in rows] == [
        (first["CTGW_CALL_ID"], 1),
        (second["CTGW_CALL_ID"], 0),
    ]
    contact = await db.fetchone("SELECT calls, first_touch, last_touch FROM contacts")
    assert contact["calls"] == 2
    assert '"billboard"' in contact["first_touch"] and '"bing"' in contact["last_touch"]


async def test_retried_lookup_for_the_same_call_gets_the_same_call_id(client) -> None:
    """Asterisk asking twice for one linkedid gets one call record."""
    once = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="7.0")))
    again = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="7.0")))
    assert once["CTGW_CALL_ID"] == again["CTGW_CALL_ID"]
    rows = await client.app[DB].fetchall("SELECT call_id FROM calls")
    assert len(rows) == 1


async def test_unknown_or_garbage_numbers_fall_back(client) -> None:
    """A number no site owns, or garbage, sets no route: the dialplan dials its fallback."""
    for dialed in ("+14155550199", "12", "+1415555ABCD"):
        assert await fake_asterisk(client.app[AGI], call_env(dialed)) == []
    rows = await client.app[DB].fetchall("SELECT call_id FROM calls")
    assert rows == []


async def test_hostile_caller_name_is_stored_not_executed(client) -> None:
    """Quotes, backslashes and AGI-looking text in the caller name reach only the stored name."""
    name = b'Eve \\" "\\nEXEC System "rm -rf /"\\'
    commands = await fake_asterisk(client.app[AGI], call_env("+14155550150", name=name))
    assert [c.split(" ")[2] for c in commands] == ["CTGW_CALL_ID", "CTGW_SOURCE", "CTGW_ROUTE"]
    assert all("EXEC" not in c and "rm -rf" not in c for c in commands)
    row = await client.app[DB].fetchone("SELECT caller_name FROM calls")
    assert row["caller_name"].startswith('Eve \\" "')


async def test_probable_attribution_after_the_lease_ended(make_client, tmp_path, clock: FakeClock):
    """A call shortly after the lease ended is probable, pointing at the last holder."""
    client = await make_client(demo_config(tmp_path))
    session = await (await open_session(client)).json()
    clock.advance(minutes=20)
    variables = routed(
        await fake_asterisk(client.app[AGI], call_env(session["numbers"][0]["number"]))
    )
    row = await client.app[DB].fetchone(
        "SELECT attribution_kind, session_id FROM calls WHERE call_id = ?",
        (variables["CTGW_CALL_ID"],),
    )
    assert row["attribution_kind"] == "probable" and row["session_id"] == session["session_id"]


async def test_ledger_completes_then_freezes_the_record(client, clock) -> None:
    """AMI snapshots complete the routed record once; later or unknown snapshots change nothing."""
    from gateway.metrics import Metrics
    from gateway.store.webhooks import create_endpoint
    from gateway.telephony.call_ledger import CallLedger
    from gateway.telephony.call_lifecycle import CallUpdate

    # Events are queued only for an endpoint that asks for them (docs/webhooks.md); a
    # loopback URL: the sender's address guard refuses it, nothing leaves the machine.
    hook = "http://127.0.0.1:9/hook"
    wanted = ["call.started", "call.completed"]
    await create_endpoint(client.app[DB], "demo", hook, wanted, "s" * 16, clock.now())
    variables = routed(
        await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="9.0"))
    )
    ledger = CallLedger(client.app[DB], Metrics())
    start = clock.now()
    answered = CallUpdate(
        linkedid="9.0",
        state="answered",
        started_at=start,
        agent="PJSIP/agent1",
        answered_at=start,
        ended_at=clock.advance(seconds=42),
        ring_seconds=3.0,
        talk_seconds=39.0,
        recording="/var/spool/asterisk/monitor/ctgw-9.0.wav",
        hangup_cause=16,
        hangup_cause_txt="Normal Clearing",
        final=True,
    )
    await ledger.call_updated(answered)
    late = CallUpdate(
        linkedid="9.0",
        state="missed",
        started_at=start,
        final=True,
        ended_at=clock.advance(seconds=5),
    )
    await ledger.call_updated(late)
    await ledger.call_updated(CallUpdate(linkedid="nope", state="missed", started_at=start))
    row = await client.app[DB].fetchone(
        "SELECT state, agent, talk_seconds, recording, hangup_cause FROM calls WHERE call_id = ?",
        (variables["CTGW_CALL_ID"],),
    )
    assert (row["state"], row["agent"], row["talk_seconds"]) == ("answered", "PJSIP/agent1", 39.0)
    assert row["recording"].endswith("ctgw-9.0.wav") and row["hangup_cause"] == "16 Normal Clearing"
    outbox = await client.app[DB].fetchall("SELECT topic FROM outbox WHERE topic LIKE 'call.%'")
    assert [r["topic"] for r in outbox] == ["call.started", "call.completed"]


async def test_resync_closes_calls_that_ended_unseen(client, clock) -> None:
    """After a reconnect, open records whose calls Asterisk no longer has are closed by age."""
    from gateway.metrics import Metrics
    from gateway.telephony.call_follower import CallsResynced
    from gateway.telephony.call_ledger import CallLedger

    short = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="1.1")))
    clock.advance(seconds=30)
    recent = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="1.2")))
    live = routed(await fake_asterisk(client.app[AGI], call_env("+14155550150", linkedid="1.3")))
    clock.advance(seconds=5)
    await CallLedger(client.app[DB], Metrics()).calls_resynced(
        CallsResynced(live_linkedids=frozenset({"1.3"}), at=clock.now())
    )
    states = {
        r["call_id"]: (r["state"], r["ended_at"] is not None)
        for r in await client.app[DB].fetchall("SELECT call_id, state, ended_at FROM calls")
    }
    assert states[short["CTGW_CALL_ID"]] == ("missed", True)  # rang 35 s, never answered
    assert states[recent["CTGW_CALL_ID"]] == ("abandoned", True)  # 5 s
    assert states[live["CTGW_CALL_ID"]] == ("ringing", False)
