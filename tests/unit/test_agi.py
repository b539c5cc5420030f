"""The FastAGI route server against a fake Asterisk on a real socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from gateway.telephony.agi import AgiRequest, AgiServer, RouteDecision, start_agi_server
from gateway.telephony.agi_protocol import quote, set_variable

ROUTED = [
    'SET VARIABLE CTGW_CALL_ID "call-1"',
    'SET VARIABLE CTGW_SOURCE "google / cpc"',
    'SET VARIABLE CTGW_ROUTE "PJSIP/agent1"',
]


def env_block(script: str = "route", caller_name: bytes = b"Ada Caller", **extra: str) -> bytes:
    """The env block as Asterisk 22 writes it for the ctgw-lookup leg (captured from 22.10.1)."""
    lines = [
        b"agi_network: yes",
        b"agi_network_script: " + script.encode(),
        b"agi_request: agi://127.0.0.1:4573/" + script.encode(),
        b"agi_channel: Local/+14155550123@ctgw-lookup-00000001;2",
        b"agi_language: en",
        b"agi_type: Local",
        b"agi_uniqueid: 1795591796.3",
        b"agi_version: 22.10.1",
        b"agi_callerid: +12025550100",
        b"agi_calleridname: " + caller_name,
        b"agi_callingpres: 0",
        b"agi_callingani2: 0",
        b"agi_callington: 0",
        b"agi_callingtns: 0",
        b"agi_dnid: unknown",
        b"agi_rdnis: unknown",
        b"agi_context: ctgw-lookup",
        b"agi_extension: +14155550123",
        b"agi_priority: 2",
        b"agi_enhanced: 0.0",
        b"agi_accountcode: ",
        b"agi_threadid: 140329112233",
        b"agi_arg_1: 1795591796.0",
        b"agi_arg_2: 1795591796.0",
        b"agi_arg_3: PJSIP/carrier-00000000",
        b"agi_arg_4: +14155550123",
    ]
    # An extra value replaces the line of its key where Asterisk writes it, or comes last.
    for key, value in extra.items():
        line = f"{key}: {value}".encode()
        at = next((i for i, old in enumerate(lines) if old.startswith(key.encode() + b":")), None)
        if at is None:
            lines.append(line)
        else:
            lines[at] = line
    return b"\n".join(lines) + b"\n\n"


class Decider:
    """Routes every call to PJSIP/agent1 and keeps what it was asked."""

    def __init__(self, delay_s: float = 0.0, result: str = "route") -> None:
        self.delay_s = delay_s
        self.result = result
        self.requests: list[AgiRequest] = []
        self.finished = 0

    async def __call__(self, request: AgiRequest) -> RouteDecision | None:
        self.requests.append(request)
        await asyncio.sleep(self.delay_s)
        self.finished += 1
        if self.result == "none":
            return None
        if self.result == "raise":
            raise RuntimeError("store is down")
        source = request.caller_name if self.result == "echo" else "google / cpc"
        return RouteDecision(route="PJSIP/agent1", call_id="call-1", source=source)


@pytest.fixture
def decider() -> Decider:
    return Decider()


@pytest.fixture
async def server(decider: Decider) -> AsyncIterator[AgiServer]:
    agi = await start_agi_server("127.0.0.1", 0, decider, deadline_ms=300)
    try:
        yield agi
    finally:
        await agi.close()


async def fake_asterisk(
    server: AgiServer, env: bytes, answers: list[bytes] | None = None, timeout: float = 3
) -> list[str]:
    """Send `env`, answer each command with the next of `answers` (default `200 result=1`)
    and return the commands received until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    commands: list[str] = []
    pending = list(answers) if answers is not None else None
    try:
        writer.write(env)
        async with asyncio.timeout(timeout):
            while line := await reader.readline():
                commands.append(line.decode().rstrip("\n"))
                if pending is None:
                    writer.write(b"200 result=1\n")
                elif pending:
                    writer.write(pending.pop(0))
    finally:
        writer.close()
    return commands


async def test_routed_call_sets_call_id_source_and_route_last(server, decider):
    """A decided call gets CTGW_CALL_ID, CTGW_SOURCE and then CTGW_ROUTE, and the socket closes."""
    assert await fake_asterisk(server, env_block()) == ROUTED
    assert server.outcomes == {"routed": 1}
    [request] = decider.requests
    assert request.dialed == "+14155550123"
    assert request.caller == "+12025550100"
    assert request.caller_name == "Ada Caller"
    assert request.linkedid == "1795591796.0"
    assert request.channel == "PJSIP/carrier-00000000"


async def test_trying_lines_before_the_answer_are_skipped(server):
    """`100 Trying...` lines before the final 200 do not end the exchange."""
    answers = [b"100 result=0 Trying...\n200 result=1\n"] * 3
    assert await fake_asterisk(server, env_block(), answers) == ROUTED


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (b"HANGUP\n", "HANGUP"),
        (b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n", "HANGUP"),
        (b"511 Command Not Permitted on a dead channel or intercept routine\n", "511"),
        (b"510 Invalid or unknown command\n", "510"),
        (
            b"520-Invalid command syntax.  Proper usage follows:\n"
            b" Usage: SET VARIABLE <variablename> <value>\n"
            b"520 End of proper usage.\n",
            "520",
        ),
    ],
)
async def test_a_refused_command_ends_the_session_before_the_route(server, answer, kind):
    """HANGUP, 510, 511 and a multi-line 520 stop the exchange: CTGW_ROUTE is never sent."""
    with capture_logs() as logs:
        commands = await fake_asterisk(server, env_block(), [answer])
    assert commands == ROUTED[:1]
    assert {"event": "agi_command_refused", "answer": kind} in [
        {k: log[k] for k in ("event", "answer") if k in log} for log in logs
    ]


async def test_asterisk_closing_mid_exchange_leaves_the_server_serving(server):
    """Asterisk dropping the socket after one command ends that session and no other."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(env_block())
    assert await reader.readline() == (ROUTED[0] + "\n").encode()
    writer.close()
    assert await fake_asterisk(server, env_block()) == ROUTED


@pytest.mark.parametrize(
    "answer", [b"hello\n", b"200\n", b"\xff\xfe\n", b"x" * 5000 + b"\n", b"300 result=1\n"]
)
async def test_a_garbage_answer_ends_the_session_and_the_server_serves_on(server, answer):
    """An answer that is not FastAGI closes that session; the next call is routed."""
    assert await fake_asterisk(server, env_block(), [answer]) == ROUTED[:1]
    assert await fake_asterisk(server, env_block()) == ROUTED


@pytest.mark.parametrize(
    "env",
    [
        b"hello world\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network: yes\nagi_calleridname: " + b"A" * 5000 + b"\n\n",
        b"".join(b"agi_x%d: y\n" % n for n in range(100)) + b"\n",
        b"\x00\x01\x02\n\n",
        b"",
        b"agi_network: yes\n" * 2000,
    ],
    ids=["no-colon", "http", "oversize-line", "too-many-lines", "binary", "empty", "oversize"],
)
async def test_a_bad_env_block_gets_no_answer_and_no_decision(server, decider, env):
    """Garbage, oversize or endless env blocks are closed without a word or a decision."""
    assert await fake_asterisk(server, env) == []
    assert decider.requests == []
    assert await fake_asterisk(server, env_block()) == ROUTED


async def test_an_unknown_script_gets_no_answer(server, decider):
    """Only agi://.../route is served; another script name is closed without a word."""
    assert await fake_asterisk(server, env_block(script="admin")) == []
    assert decider.requests == []


async def test_non_utf8_caller_name_is_tolerated(server, decider):
    """A caller name in Latin-1 reaches the decider with replacement characters."""
    assert await fake_asterisk(server, env_block(caller_name=b"Jos\xe9 M\xfcller")) == ROUTED
    assert decider.requests[0].caller_name == "Jos\ufffd M\ufffdller"


async def test_a_client_that_never_ends_the_env_block_is_closed_at_the_deadline(server):
    """A half-open client (env block without the blank line) is dropped after 300 ms."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(env_block()[:-1])
    start = time.monotonic()
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    assert 0.25 < time.monotonic() - start < 1.0
    writer.close()


async def test_a_silent_client_is_closed_at_the_deadline(server):
    """A client that connects and sends nothing is dropped after 300 ms."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    start = time.monotonic()
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    assert time.monotonic() - start < 1.0
    writer.close()


async def test_a_decision_later_than_the_deadline_is_never_sent(decider):
    """A decider slower than deadline_ms gets nothing sent and the socket closed on time."""
    decider.delay_s = 1.0
    agi = await start_agi_server("127.0.0.1", 0, decider, deadline_ms=300)
    try:
        start = time.monotonic()
        with capture_logs() as logs:
            assert await fake_asterisk(agi, env_block()) == []
        assert time.monotonic() - start < 0.6
        assert decider.finished == 0
        assert "agi_deadline_exceeded" in [log["event"] for log in logs]
        assert agi.outcomes == {"deadline_exceeded": 1}
    finally:
        await agi.close()


async def test_an_asterisk_slow_to_acknowledge_still_gets_the_route(server):
    """Once the decision is made in time, Asterisk acknowledging each variable later than the
    deadline (a host short of CPU) still gets every variable, the route last: the caller's
    channel is still waiting for it, and dropping it would send the call to the fallback."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    commands: list[str] = []
    try:
        writer.write(env_block())
        async with asyncio.timeout(5):
            while line := await reader.readline():
                commands.append(line.decode().rstrip("\n"))
                await asyncio.sleep(0.4)  # more than the 300 ms deadline, each time
                writer.write(b"200 result=1\n")
    finally:
        writer.close()
    assert commands == ROUTED
    assert server.outcomes == {"routed": 1}


@pytest.mark.parametrize(("wait", "low", "high"), [("1", 0.9, 1.6), ("", 1.9, 2.8)])
async def test_an_asterisk_that_never_acknowledges_is_dropped_when_the_caller_stops_waiting(
    server, wait, low, high
):
    """The wait for Asterisk's answer is the caller's own (agi_arg_6, else the dialplan's
    default 2 s): an Asterisk that takes the first variable and says nothing more is dropped
    then, and the session counted as an answer timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(env_block(agi_arg_6=wait) if wait else env_block())
        start = time.monotonic()
        async with asyncio.timeout(5):
            assert await reader.readline() == (ROUTED[0] + "\n").encode()
            with capture_logs() as logs:
                assert await reader.read() == b""
        took = time.monotonic() - start
    finally:
        writer.close()
    assert low <= took <= high, took
    assert server.outcomes == {"answer_timeout": 1}
    assert [log["event"] for log in logs] == ["agi_answer_timeout"]


@pytest.mark.parametrize("result", ["none", "raise"])
async def test_no_decision_or_a_failing_decider_gets_no_answer(server, decider, result):
    """A decider that returns None or raises leaves the dialplan to its fallback."""
    decider.result = result
    assert await fake_asterisk(server, env_block()) == []
    assert server.outcomes == {"no_route" if result == "none" else "decider_failed": 1}
    decider.result = "route"
    assert await fake_asterisk(server, env_block()) == ROUTED


INJECTIONS = [
    b'Eve" EXEC System "rm -rf /',
    b'\\" \\\\ "\\n200 result=1\\nEXEC System "touch /tmp/x"',
    b"Eve\rEXEC System x\r",
    b'"""\\\\\\\'',
]


@pytest.mark.parametrize("name", INJECTIONS)
async def test_a_hostile_caller_name_never_changes_the_commands(server, name):
    """Quotes, backslashes, CR and AGI-command text in the caller name change no command."""
    assert await fake_asterisk(server, env_block(caller_name=name)) == ROUTED


def agi_parse_args(line: str) -> list[str]:
    """Split a command line the way Asterisk's res_agi parse_args does (quotes, backslash)."""
    args: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if current is None:
                current = []
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                args.append("".join(current))
            current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        current = [] if current is None else current
        current.append(char)
    if current is not None:
        args.append("".join(current))
    return args


@pytest.mark.parametrize("name", INJECTIONS)
async def test_a_label_built_from_caller_data_is_one_quoted_argument(server, decider, name):
    """Even a decider that echoes the caller name sends one line whose value parses back as
    the name with CR/LF/NUL removed."""
    decider.result = "echo"
    commands = await fake_asterisk(server, env_block(caller_name=name))
    assert len(commands) == 3
    assert commands[0] == ROUTED[0] and commands[2] == ROUTED[2]
    expected = name.decode().replace("\r", "")
    assert agi_parse_args(commands[1]) == ["SET", "VARIABLE", "CTGW_SOURCE", expected]


def test_quote_strips_line_breaks_and_nul_and_escapes():
    """quote() cuts CR, LF and NUL, escapes backslash and double quote, and bounds length."""
    assert quote('a"b\\c\r\n\0d') == '"a\\"b\\\\cd"'
    assert len(quote("x" * 1000)) == 258


def test_only_the_fixed_variable_names_can_be_set():
    """set_variable refuses any name but CTGW_ROUTE, CTGW_CALL_ID and CTGW_SOURCE."""
    assert set_variable("CTGW_ROUTE", "PJSIP/a") == b'SET VARIABLE CTGW_ROUTE "PJSIP/a"\n'
    with pytest.raises(ValueError, match="CTGW_"):
        set_variable("AGISTATUS", "SUCCESS")


async def test_close_waits_for_the_sessions_in_flight(decider):
    """close() stops accepting but lets a session already deciding finish its answer."""
    decider.delay_s = 0.1
    agi = await start_agi_server("127.0.0.1", 0, decider, deadline_ms=300)
    port = agi.port
    call = asyncio.create_task(fake_asterisk(agi, env_block()))
    while not decider.requests:
        await asyncio.sleep(0.005)
    await agi.close()
    assert await call == ROUTED
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_many_concurrent_calls_are_each_routed(server):
    """Fifty calls at once are all answered in full."""
    results = await asyncio.gather(*(fake_asterisk(server, env_block()) for _ in range(50)))
    assert all(commands == ROUTED for commands in results)
