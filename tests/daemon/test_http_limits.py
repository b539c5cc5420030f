"""`ctgw serve` under slow and greedy clients: header and body deadlines, idle timeout, caps."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.daemon.test_restart import CTGW, free_port, stop_daemon

HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: ctgw\r\n"
STALLED_BODY = (
    b"POST /v1/sessions HTTP/1.1\r\nHost: ctgw\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n" + b'{"site": "demo", '
)
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: ctgw\r\n\r\n"
# Time a close may take beyond its deadline on a loaded 2-core machine.
SLACK = 3.0


def write_config(tmp_path: Path, port: int, workers: int = 0, **http: int) -> Path:
    settings = {
        "header_timeout_seconds": 30,
        "body_timeout_seconds": 30,
        "keepalive_timeout_seconds": 30,
        **http,
    }
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[http]
port = {port}
workers = {workers}
{chr(10).join(f"{key} = {value}" for key, value in settings.items())}
[store]
url = "sqlite:///{tmp_path / "ctgw.db"}"
[agi]
enabled = false
[[sites]]
key = "demo"
[[sites.pools]]
target = "+14155550100"
numbers = ["+14155550101", "+14155550102"]
""",
        encoding="utf-8",
    )
    return path


async def start_daemon(config: Path, port: int, open_files: int | None = None) -> Any:
    log = config.with_name(f"daemon-{port}.log")

    def limit_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [*CTGW, "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            preexec_fn=limit_files,
        )
    proc.log_path = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"daemon did not start: {log.read_text()[-2000:]}")


class Clients:
    """Raw connections to the gateway from chosen loopback addresses, all closed at the end."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []

    async def open(
        self, client: str = "127.0.0.1"
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(client, 0)
        )
        self.writers.append(writer)
        return reader, writer

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


async def seconds_to_close(
    reader: asyncio.StreamReader, within: float, since: float | None = None
) -> float:
    """Seconds from `since` (default: now) until the server closes the connection."""
    started = time.monotonic() if since is None else since
    await asyncio.wait_for(reader.read(), within)
    return time.monotonic() - started


async def health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One keep-alive GET /healthz on an open connection: the status line."""
    writer.write(HEALTH)
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    length = 0
    while (line := await asyncio.wait_for(reader.readline(), 5)) != b"\r\n":
        if not line:
            raise ConnectionResetError("closed by the gateway")
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await asyncio.wait_for(reader.readexactly(length), 5)
    return status.strip()


def events(log: str, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == name]


async def test_a_request_whose_headers_stall_is_closed_at_the_header_deadline(
    tmp_path: Path,
) -> None:
    """A request whose headers are not complete 1 s after its first byte is closed, even when
    the client keeps sending a byte at a time; other clients are answered meanwhile."""
    port = free_port()
    proc = await start_daemon(write_config(tmp_path, port, header_timeout_seconds=1), port)
    clients = Clients(port)
    try:
        half_reader, half_writer = await clients.open()
        half_writer.write(HALF_HEAD)
        sent = time.monotonic()
        drip_reader, drip_writer = await clients.open()

        async def drip() -> None:
            drip_writer.write(b"GET /healthz HTTP/1.1\r\n")
            while not drip_writer.is_closing():
                await asyncio.sleep(0.2)
                drip_writer.write(b"X")

        dripping = asyncio.create_task(drip())
        assert await health(*await clients.open()) == b"HTTP/1.1 200 OK"
        assert 0.9 <= await seconds_to_close(half_reader, 1 + SLACK, since=sent) < 1 + SLACK
        assert 0.9 <= await seconds_to_close(drip_reader, 1 + SLACK, since=sent) < 1 + SLACK
        dripping.cancel()
    finally:
        clients.close()
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
    timed_out = events(log, "http_connections_timed_out")
    assert sum(line["reasons"].get("headers", 0) for line in timed_out) == 2
    assert "Traceback" not in log


async def test_a_request_whose_body_stalls_is_closed_at_the_body_deadline(tmp_path: Path) -> None:
    """A body that has not arrived 1 s after its headers closes the connection, with no traceback;
    a body sent in pieces within the deadline is answered."""
    port = free_port()
    proc = await start_daemon(write_config(tmp_path, port, body_timeout_seconds=1), port)
    clients = Clients(port)
    try:
        reader, writer = await clients.open()
        writer.write(STALLED_BODY)
        sent = time.monotonic()
        assert 0.9 <= await seconds_to_close(reader, 1 + SLACK, since=sent) < 1 + SLACK

        reader, writer = await clients.open()
        body = b'{"site": "demo", "url": "https://demo.example/"}'
        writer.write(
            b"POST /v1/sessions HTTP/1.1\r\nHost: ctgw\r\nUser-Agent: Mozilla/5.0\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for piece in (body[:10], body[10:30], body[30:]):
            await asyncio.sleep(0.1)
            writer.write(piece)
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    finally:
        clients.close()
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
    timed_out = events(log, "http_connections_timed_out")
    assert sum(line["reasons"].get("body", 0) for line in timed_out) == 1
    assert "Traceback" not in log and "http_unhandled_error" not in log


async def test_an_idle_connection_is_closed_after_the_keepalive_timeout(tmp_path: Path) -> None:
    """A connection that sends nothing, or nothing after its last answer, closes after
    `keepalive_timeout_seconds`."""
    port = free_port()
    proc = await start_daemon(write_config(tmp_path, port, keepalive_timeout_seconds=1), port)
    clients = Clients(port)
    try:
        silent_reader, _ = await clients.open()
        used_reader, used_writer = await clients.open()
        assert await health(used_reader, used_writer) == b"HTTP/1.1 200 OK"
        assert await seconds_to_close(silent_reader, 1 + SLACK) >= 0
        assert await seconds_to_close(used_reader, 1 + SLACK) >= 0
    finally:
        clients.close()
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log


async def test_connections_over_the_caps_are_closed_at_once_and_logged_once(
    tmp_path: Path,
) -> None:
    """Past `max_connections_per_client` or `max_connections` a connection is closed at once,
    the connections under the caps are still answered, and the refusals make one log line per
    interval (here: one at the first refusal, one with the rest at shutdown), no tracebacks."""
    port = free_port()
    config = write_config(tmp_path, port, max_connections=7, max_connections_per_client=3)
    proc = await start_daemon(config, port)
    refused = 0
    clients = Clients(port)
    try:
        first = [await clients.open("127.0.0.2") for _ in range(3)]
        for conn in first:
            assert await health(*conn) == b"HTTP/1.1 200 OK"
        # The fourth from the same address: closed at once (the deadlines are 30 s).
        over_reader, _ = await clients.open("127.0.0.2")
        assert await seconds_to_close(over_reader, 2) < 2
        refused += 1
        assert await health(*first[0]) == b"HTTP/1.1 200 OK"

        # Other addresses are counted on their own, up to the total cap of 7.
        second = [await clients.open("127.0.0.3") for _ in range(3)]
        third = await clients.open("127.0.0.4")
        for conn in [*second, third]:
            assert await health(*conn) == b"HTTP/1.1 200 OK"
        total_reader, _ = await clients.open("127.0.0.5")
        assert await seconds_to_close(total_reader, 2) < 2
        refused += 1

        for _ in range(20):
            reader, _ = await clients.open("127.0.0.2")
            assert await seconds_to_close(reader, 2) < 2
            refused += 1
        for conn in [*first, *second, third]:
            assert await health(*conn) == b"HTTP/1.1 200 OK"

        # A closed connection frees its place.
        first[0][1].close()
        deadline = time.monotonic() + 5
        while True:
            conn = await clients.open("127.0.0.2")
            try:
                assert await health(*conn) == b"HTTP/1.1 200 OK"
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                refused += 1
                assert time.monotonic() < deadline, "the closed connection was not released"
                await asyncio.sleep(0.05)
    finally:
        clients.close()
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
    lines = events(log, "http_connections_refused")
    assert sum(line["count"] for line in lines) == refused
    assert 1 <= len(lines) <= 3  # the first, the rest (at the interval's end or at shutdown)
    assert lines[0]["count"] == 1 and lines[0]["client"] == "127.0.0.2"
    reasons = {reason for line in lines for reason in line["reasons"]}
    assert reasons == {"max_connections_per_client", "max_connections"}
    assert "Traceback" not in log


async def test_a_small_open_files_limit_lowers_the_cap_and_logs_no_tracebacks(
    tmp_path: Path,
) -> None:
    """With a hard open-files limit of 512 the connection cap is lowered to fit; a flood of
    connections is refused without a traceback and the gateway answers once it ends."""
    port = free_port()
    proc = await start_daemon(write_config(tmp_path, port), port, open_files=512)
    clients = Clients(port)
    try:
        for _ in range(700):
            _, writer = await clients.open("127.0.0.2")
            writer.write(HALF_HEAD)
        clients.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert await health(*await clients.open("127.0.0.3")) == b"HTTP/1.1 200 OK"
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                assert time.monotonic() < deadline, "no answer after the flood"
                await asyncio.sleep(0.1)
    finally:
        clients.close()
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
    [lowered] = events(log, "http_max_connections_lowered")
    assert lowered["used"] == 256 and lowered["open_files_limit"] == 512
    assert events(log, "http_connections_refused")
    assert "Traceback" not in log


async def test_a_front_closes_requests_whose_headers_or_body_stall(tmp_path: Path) -> None:
    """With `[http] workers = 1` the front applies the header and body deadlines too."""
    port = free_port()
    config = write_config(
        tmp_path, port, workers=1, header_timeout_seconds=1, body_timeout_seconds=1
    )
    proc = await start_daemon(config, port)
    clients = Clients(port)
    try:
        head_reader, head_writer = await clients.open()
        body_reader, body_writer = await clients.open()
        head_writer.write(HALF_HEAD)
        body_writer.write(STALLED_BODY)
        sent = time.monotonic()
        assert await health(*await clients.open()) == b"HTTP/1.1 200 OK"
        assert 0.9 <= await seconds_to_close(head_reader, 1 + SLACK, since=sent) < 1 + SLACK
        assert 0.9 <= await seconds_to_close(body_reader, 1 + SLACK, since=sent) < 1 + SLACK
    finally:
        clients.close()
        code, log = await asyncio.to_thread(stop_daemon, proc)
    assert code == 0, log
    timed_out = events(log, "http_connections_timed_out")
    assert sum(line["count"] for line in timed_out) == 2
    assert "Traceback" not in log and "http_unhandled_error" not in log
