"""The AMI wire format: parsing what Asterisk sends, encoding what we send."""

from __future__ import annotations

from gateway.telephony.ami_protocol import encode_action, parse_message


def test_values_cannot_inject_headers_or_actions():
    """CR and LF in a value are flattened, so no value can add a header or a second action."""
    wire = encode_action(
        "Originate", "ctgw-1", [("CallerID", "x\r\n\r\nAction: Command\r\nCommand: !sh")]
    )
    assert wire.count(b"\r\n\r\n") == 1 and wire.endswith(b"\r\n\r\n")
    assert b"\r\nAction: Command" not in wire
    lines = wire.decode().split("\r\n")
    assert lines[:2] == ["Action: Originate", "ActionID: ctgw-1"]


def test_channel_variables_in_the_three_forms_asterisk_sends():
    """`ChanVariable`, `ChanVariable(chan)` and `DestChanVariable` lines are all read."""
    message = parse_message(
        [
            b"Event: DialBegin",
            b"ChanVariable: MIXMONITOR_FILENAME=/rec/a.wav",
            b"ChanVariable: CTGW_CALL_ID=c-1",
            b"ChanVariable(Local/x@y-0001;1): CTGW_SOURCE=google",
            b"DestChanVariable: MIXMONITOR_FILENAME=",
        ]
    )
    assert message.channel_variables() == {
        "MIXMONITOR_FILENAME": "/rec/a.wav",
        "CTGW_CALL_ID": "c-1",
        "CTGW_SOURCE": "google",
    }
    assert message.channel_variables(dest=True) == {"MIXMONITOR_FILENAME": ""}


def test_parsing_keeps_repeats_drops_control_characters_and_survives_bad_bytes():
    """Repeated keys stay in order, control bytes vanish, invalid UTF-8 is replaced."""
    message = parse_message(
        [b"Event: X", b"K: 1", b"k: 2", b"Name: a\x00b\x07c", b"Bad: \xff", b"junk"]
    )
    assert message.get_all("K") == ["1", "2"] and message.get("k") == "1"
    assert message.get("Name") == "abc" and message.get("Bad") == "\ufffd"
    assert ("", "junk") in message.headers and "Missing" not in message
