"""`ctgw doctor`'s live AMI check: log in as the gateway does and ask Asterisk what the user may do.

manager.conf on disk may not be what Asterisk runs (not reloaded, another file, another host), so
the doctor also asks the running Asterisk (verified on Asterisk 22: tests/integration/
test_doctor_ami.py):
- `ListCommands` lists only the actions the user's write classes allow (`Originate` only with
  `originate`, `CoreShowChannels` only with `reporting` or `system`);
- the login answers `Event: FullyBooted` only to a user who may read the `system` class;
- no action tells a user's read classes, so `call` events are watched: when the channels
  Asterisk lists change while the doctor watches, Asterisk sent Newchannel/Hangup (class `call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.settings import AmiSettings
from gateway.telephony.ami_protocol import (
    AmiMessage,
    AmiProtocolError,
    MessageReader,
    encode_action,
)
from gateway.telephony.doctor import Finding

__all__ = ["AmiDoctorError", "AmiRights", "ami_rights_findings", "check_ami_user", "probe_ami_user"]

# Actions whose presence in ListCommands means a class a stolen login could own the machine with.
_DANGEROUS_ACTIONS = {
    "Command": "command (CLI and shell commands)",
    "UpdateConfig": "config (rewrites config files)",
    "GetConfig": "system or config (reads config files and their secrets)",
    "ModuleLoad": "system (loads modules)",
}
# ListCommands' reply lists actions as `Name: synopsis (Priv: ...)` next to these headers.
_REPLY_HEADERS = frozenset({"response", "actionid", "message", "eventlist"})
_MAX_MESSAGE_BYTES = 1 << 20  # ListCommands for a user with `all` is one long message


class AmiDoctorError(Exception):
    """The check could not get as far as asking: `code` is the finding's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AmiRights:
    """What the running Asterisk granted the user, as far as AMI shows it."""

    actions: frozenset[str]
    reads_system: bool
    channels_changed: bool  # Asterisk's channel list changed while the doctor watched
    call_events: int  # events of class `call` received while watching


class _Session:
    """One short AMI session: actions answered in order, events counted as they pass."""

    def __init__(self, reader: MessageReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self.events: list[AmiMessage] = []

    async def send(self, name: str, **fields: str) -> tuple[AmiMessage, list[AmiMessage]]:
        """The action's response and, for a list action, its listed events."""
        action_id = f"doctor-{next(self._ids)}"
        self._writer.write(encode_action(name, action_id, fields))
        await self._writer.drain()
        response: AmiMessage | None = None
        listed: list[AmiMessage] = []
        while True:
            message = await self._reader.message()
            if message.action_id != action_id:
                self.events.append(message)
            elif response is None:
                response = message
                if message.get("EventList").lower() != "start":
                    return response, listed
            elif message.get("EventList").lower() == "complete":
                return response, listed
            else:
                listed.append(message)

    def close(self) -> None:
        self._writer.close()

    async def watch(self, seconds: float) -> None:
        """Collect events for `seconds`, returning early once a `call` event came."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not any(_is_call_event(e) for e in self.events):
                    self.events.append(await self._reader.message())


def _is_call_event(message: AmiMessage) -> bool:
    return "call" in {c.strip() for c in message.get("Privilege").split(",")}


def _action_names(reply: AmiMessage) -> Iterator[str]:
    for key, _ in reply.headers:
        if key and key.lower() not in _REPLY_HEADERS:
            yield key


async def _logged_in(settings: AmiSettings, timeout_s: float) -> tuple[_Session, AmiMessage]:
    where = f"{settings.host}:{settings.port}"
    try:
        async with asyncio.timeout(timeout_s):
            stream, writer = await asyncio.open_connection(
                settings.host, settings.port, limit=_MAX_MESSAGE_BYTES
            )
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, TimeoutError):
            reason = "no answer"
        elif isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        else:
            reason = exc.strerror or str(exc)
        raise AmiDoctorError(
            "ami_unreachable",
            f"cannot connect to AMI at {where}: {reason}; is Asterisk running with "
            "`enabled = yes` in manager.conf, and are [ami] host and port right?",
        ) from None
    reader = MessageReader(stream, _MAX_MESSAGE_BYTES)
    session = _Session(reader, writer)
    try:
        async with asyncio.timeout(timeout_s):
            await reader.banner()
            # Events on: what reaches this session shows the user's read classes.
            fields = {"Username": settings.username, "Secret": settings.secret, "Events": "on"}
            login, _ = await session.send("Login", **fields)
    except AmiProtocolError:
        writer.close()
        raise AmiDoctorError(
            "ami_not_asterisk", f"{where} does not answer as Asterisk's AMI: check [ami] port"
        ) from None
    except BaseException:
        writer.close()
        raise
    return session, login


async def probe_ami_user(
    settings: AmiSettings, *, watch_s: float = 3.0, timeout_s: float = 5.0
) -> AmiRights:
    """Log in as the gateway's user and find what it may do; AmiDoctorError when it cannot."""
    where = f"{settings.host}:{settings.port}"
    try:
        session, login = await _logged_in(settings, timeout_s)
    except (OSError, asyncio.IncompleteReadError, TimeoutError):
        raise AmiDoctorError(
            "ami_no_answer",
            f"AMI at {where} did not answer the login in {timeout_s:g} s (or closed): "
            "is another program on that port, or is Asterisk overloaded?",
        ) from None
    try:
        if login.response != "Success":
            raise AmiDoctorError(
                "ami_login_refused",
                f"AMI refused the login as '{settings.username}' ({login.get('Message')}): "
                "the [ami] secret (CTGW_AMI_SECRET) must match the user's `secret` in "
                "manager.conf, and its `permit` must allow this host; then "
                "`asterisk -rx 'manager reload'`",
            )
        async with asyncio.timeout(timeout_s + watch_s):
            commands, _ = await session.send("ListCommands")
            # FullyBooted, if it comes, was written right after the login's answer.
            reads_system = any(e.event == "FullyBooted" for e in session.events)
            actions = frozenset(_action_names(commands))
            before = await _channels(session, actions)
            await session.watch(watch_s)
            after = await _channels(session, actions)
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await session.send("Logoff")  # Asterisk may close before its Goodbye is read
    except (OSError, asyncio.IncompleteReadError):
        raise AmiDoctorError(
            "ami_connection_lost", f"AMI at {where} closed the connection during the check"
        ) from None
    except TimeoutError:
        raise AmiDoctorError(
            "ami_no_answer", f"AMI at {where} stopped answering during the check"
        ) from None
    finally:
        session.close()
    calls = sum(_is_call_event(e) for e in session.events)
    return AmiRights(actions, reads_system, before != after, calls)


async def _channels(session: _Session, actions: frozenset[str]) -> frozenset[str] | None:
    """The channels Asterisk has up (None when the user may not list them)."""
    if "CoreShowChannels" not in actions:
        return None
    _, listed = await session.send("CoreShowChannels")
    return frozenset(m.get("Channel") for m in listed)


def ami_rights_findings(rights: AmiRights, username: str, click_to_call: bool) -> list[Finding]:
    """Findings on what the running Asterisk granted `username` (pure: no I/O)."""
    who = f"AMI user '{username}' (as Asterisk runs it)"
    found: list[Finding] = []
    if "CoreShowChannels" not in rights.actions:
        found.append(
            Finding(
                "error",
                "ami_live_missing_right",
                f"{who} may not run CoreShowChannels: add `reporting` to its write classes "
                "(the gateway resyncs calls with it after each login)",
            )
        )
    if click_to_call and "Originate" not in rights.actions:
        found.append(
            Finding(
                "error",
                "ami_live_missing_right",
                f"{who} may not run Originate but click-to-call is on ([calls] click_to_call): "
                "add `originate` to its write classes, then `manager reload`",
            )
        )
    if not click_to_call and "Originate" in rights.actions:
        found.append(
            Finding(
                "warning",
                "ami_live_unneeded_originate",
                f"{who} may run Originate but click-to-call is off: remove `originate` from "
                "its write classes (least privilege: a leaked secret could place calls)",
            )
        )
    risky = [
        f"{name} ({why})" for name, why in _DANGEROUS_ACTIONS.items() if name in rights.actions
    ]
    if risky:
        found.append(
            Finding(
                "warning",
                "ami_live_dangerous_rights",
                f"{who} may run {', '.join(risky)}: remove those write classes",
            )
        )
    if rights.reads_system:
        found.append(
            Finding(
                "warning",
                "ami_live_reads_system",
                f"{who} reads `system` events: ctgw needs only `read = call`",
            )
        )
    found.append(_call_events_finding(rights, who))
    return found


def _call_events_finding(rights: AmiRights, who: str) -> Finding:
    if rights.call_events:
        return Finding("ok", "ami_live_call_events", f"{who} receives call events")
    if rights.channels_changed:
        return Finding(
            "error",
            "ami_live_no_call_events",
            f"calls started or ended while the doctor watched, yet {who} got no call event: "
            "add `call` to its read classes (the gateway follows calls with them)",
        )
    return Finding(
        "ok",
        "ami_live_call_events_unchecked",
        "no call started or ended while the doctor watched, and AMI cannot list read "
        "classes: `read = call` was checked in manager.conf only",
    )


async def check_ami_user(
    settings: AmiSettings, *, click_to_call: bool, watch_s: float = 3.0, timeout_s: float = 5.0
) -> list[Finding]:
    """The live AMI findings for `ctgw doctor`: one error when the check cannot log in."""
    try:
        rights = await probe_ami_user(settings, watch_s=watch_s, timeout_s=timeout_s)
    except AmiDoctorError as exc:
        return [Finding("error", exc.code, str(exc))]
    where = f"{settings.host}:{settings.port}"
    login = Finding("ok", "ami_live_login", f"logged in to AMI at {where} as '{settings.username}'")
    return [login, *ami_rights_findings(rights, settings.username, click_to_call)]
