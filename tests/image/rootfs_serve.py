"""Built images run from their root filesystems as `docker run`/compose would, checked from outside.

Run as root inside `unshare --net --mount --pid` (see `serve_images`): the containers share a
network namespace of their own with only loopback, so they bind 0.0.0.0 as in a container
without touching the host's interfaces, and reach each other by their compose service names
(an /etc/hosts bound into each root, as compose's DNS would answer). This process probes them
from outside their root filesystems, runs the gateway image's HEALTHCHECK inside it, places a
call through Asterisk when it runs, stops each with its STOPSIGNAL and prints JSON findings.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["listening", "main", "serve_images"]

HTTP_PORT = 8080
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0"
# A PID namespace too: when this runner ends, however it ends, the kernel ends every process it
# started (a gateway left running by a failed start was seen before it had one).
_UNSHARE = ("unshare", "--net", "--mount", "--pid", "--mount-proc", "--fork", "--kill-child")


def serve_images(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run this module in fresh network and mount namespaces; its JSON findings."""
    project = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [*_UNSHARE, sys.executable, "-m", "tests.image.rootfs_serve", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=project,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"serve run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    findings: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return findings


def listening(port: int) -> list[str]:
    """Local addresses in LISTEN on `port` in this network namespace (from /proc/net/tcp*)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def _get(url: str, body: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"User-Agent": BROWSER})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_healthy(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, str, float]:
    started = time.monotonic()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return -1, f"exited {proc.returncode}", 0.0
        try:
            status, text = _get(f"http://127.0.0.1:{HTTP_PORT}/healthz")
            return status, text, time.monotonic() - started
        except OSError:
            time.sleep(0.2)
    return -1, "no answer", 0.0


def _in_root(box: dict[str, Any], argv: list[str]) -> list[str]:
    """argv run in a container's root as its user, with its env and working dir."""
    env = [f"{k}={v}" for k, v in {"HOME": box["home"], **box["env"]}.items()]
    inner = f'cd {shlex.quote(box["workdir"])} && exec "$@"'
    chroot = ["chroot", f"--userspec={box['uid']}:{box['gid']}", box["root"]]
    return ["env", "-i", *env, *chroot, "/bin/sh", "-c", inner, "sh", *argv]


def _mount(box: dict[str, Any], hosts: str) -> None:
    root = Path(box["root"])
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    for host, inner in box["volumes"].items():
        subprocess.run(["mount", "--bind", host, str(root / inner.lstrip("/"))], check=True)
    (root / "etc/hosts").touch(exist_ok=True)  # Docker always provides one
    subprocess.run(["mount", "--bind", hosts, str(root / "etc/hosts")], check=True)


def _run(box: dict[str, Any], argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_in_root(box, argv), capture_output=True, text=True, timeout=30)


def _check_gateway(box: dict[str, Any], proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    status, text, took = _wait_healthy(proc, time.monotonic() + 60)
    out: dict[str, Any] = {"health_status": status, "health": text, "ready_seconds": round(took, 2)}
    if status != 200:
        return out
    uid_line = Path(f"/proc/{proc.pid}/status").read_text().split("Uid:")[1]
    out["uid"] = int(uid_line.split()[0])
    out["listening"] = {str(p): listening(p) for p in box["ports"]}
    body = json.dumps({"site": "demo", "url": "http://127.0.0.1:8080/demo/?gclid=t"}).encode()
    out["session_status"], _ = _get(f"http://127.0.0.1:{HTTP_PORT}/v1/sessions", body)
    out["healthcheck_rc"] = _run(box, box["healthcheck"]).returncode
    return out


def _calls(store: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM calls")]


def _check_call(pbx: dict[str, Any], store: Path) -> dict[str, Any]:
    """Asterisk up, the gateway logged in to AMI, then one call through the ctgw dialplan."""
    out: dict[str, Any] = {"booted": _run(pbx, ["asterisk", "-rx", "core waitfullybooted"]).stdout}
    shown_globals = _run(pbx, ["asterisk", "-rx", "dialplan show globals"]).stdout
    out["globals"] = dict(
        line.strip().split("=", 1) for line in shown_globals.splitlines() if "=" in line
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = _run(pbx, ["asterisk", "-rx", "manager show connected"]).stdout
        if " ctgw " in f" {shown} ".replace("\n", " "):
            break
        time.sleep(0.5)
    out["ami_connected"] = shown
    call = "channel originate Local/+14155550101@from-carrier application Wait 1"
    out["originate"] = _run(pbx, ["asterisk", "-rx", call]).stdout
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = _calls(store)
        if rows and rows[0].get("state") != "ringing":
            break
        time.sleep(0.5)
    out["calls"] = rows
    return out


def main(spec: dict[str, Any]) -> dict[str, Any]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    boxes: dict[str, dict[str, Any]] = spec["containers"]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    out: dict[str, Any] = {}
    try:
        for name, box in boxes.items():
            _mount(box, spec["hosts"])
            with open(box["log"], "wb") as log:
                procs[name] = subprocess.Popen(_in_root(box, box["cmd"]), stdout=log, stderr=log)
        out |= _check_gateway(boxes["gateway"], procs["gateway"])
        if "asterisk" in boxes and out.get("health_status") == 200:
            out["asterisk"] = _check_call(boxes["asterisk"], Path(spec["store"]))
    finally:
        for name, proc in procs.items():
            proc.send_signal(getattr(signal, boxes[name]["stopsignal"]))
            try:
                out[f"{name}_exit_code"] = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out[f"{name}_exit_code"] = "killed after 30 s"
    out["healthcheck_rc_stopped"] = _run(
        boxes["gateway"], boxes["gateway"]["healthcheck"]
    ).returncode
    return out


if __name__ == "__main__":
    os.umask(0o022)
    print(json.dumps(main(json.loads(sys.argv[1])), default=str))
