"""The FastAGI env block as Asterisk 22 really writes it, caller names with line breaks too."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.telephony.agi import request_from_env
from gateway.telephony.agi_protocol import MAX_LINE_BYTES, AgiProtocolError, parse_env
from tests.unit import test_agi
from tests.unit.test_agi import ROUTED, env_block, fake_asterisk

# The route server and its decider, as in test_agi.
server = test_agi.server
decider = test_agi.decider

# Caller names seen (or made) on real trunks: a name lookup's line breaks, a name whose
# lines look like env lines, a blank line (which ends the env block early on the wire).
HOSTILE_NAMES = [
    b"Ada\nLovelace",
    b"Ada\nagi_callerid: +19995550000\nagi_arg_4: +19995550001\nLovelace",
    b"Ada\n\nagi_callerid: +19995550000\n\nLovelace",
    b"Ada\nagi_callingpres: 0\nagi_dnid: 1\nagi_arg_4: +19995550001",
    b"\n\n\n",
    b"agi_calleridname: Eve\nagi_callingpres: 9",
]


def test_a_captured_asterisk_block_with_a_two_line_name_keeps_the_real_caller():
    """The bytes Asterisk 22.10 sent for a name whose second line fakes agi_callerid parse
    to the real caller number and dialed number, and the whole name."""
    env = parse_env(env_block(caller_name=HOSTILE_NAMES[1]))
    request = request_from_env(env)
    assert request.caller == "+12025550100"
    assert request.dialed == "+14155550123"
    assert request.caller_name.startswith("Ada\n") and request.caller_name.endswith("Lovelace")
    assert env["agi_callingpres"] == "0" and env["agi_context"] == "ctgw-lookup"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.sampled_from(HOSTILE_NAMES))
def test_no_caller_name_changes_the_caller_the_dialed_number_or_the_call(name: bytes):
    """Whatever bytes the caller name holds, the caller, dialed number and linkedid parse as
    Asterisk sent them."""
    request = request_from_env(parse_env(env_block(caller_name=name)))
    assert request.caller == "+12025550100"
    assert request.dialed == "+14155550123"
    assert request.linkedid == "1795591796.0"
    assert len(request.caller_name) <= MAX_LINE_BYTES


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_are_refused_as_not_fastagi(block: bytes):
    """Arbitrary bytes give an env or the protocol error, nothing else."""
    try:
        env = parse_env(block)
    except AgiProtocolError:
        return
    assert all(key.startswith("agi_") for key in env)


async def test_a_name_with_line_breaks_is_routed_over_the_socket(server, decider):
    """A caller name whose lines end the env block early is read to its end and routed."""
    for name in HOSTILE_NAMES:
        assert await fake_asterisk(server, env_block(caller_name=name)) == ROUTED
    assert [r.caller for r in decider.requests] == ["+12025550100"] * len(HOSTILE_NAMES)
    assert [r.dialed for r in decider.requests] == ["+14155550123"] * len(HOSTILE_NAMES)


async def test_an_overlong_caller_name_is_cut_and_the_call_routed(server, decider):
    """A 5000-byte caller name no longer costs the call its route: the name is cut."""
    assert await fake_asterisk(server, env_block(caller_name=b"A" * 5000)) == ROUTED
    name = decider.requests[0].caller_name
    assert name == "A" * len(name) and 1900 < len(name) <= MAX_LINE_BYTES
