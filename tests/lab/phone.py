"""A SIP agent phone for the tests: baresip, headless, registered to the lab's Asterisk over UDP.

It auto-answers (answermode=auto), plays an 8 kHz mono WAV the test writes as its microphone and
records what it hears to a file: no sound card needed (docs/lab.md: `ausine` fails at 8 kHz).
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AgentPhone", "baresip_path", "write_tone"]


def baresip_path() -> str | None:
    return shutil.which("baresip")


def write_tone(path: Path, seconds: float = 3.0, hz: float = 440.0) -> None:
    """An 8 kHz mono 16-bit sine WAV (what G.711 carries)."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / rate)))
        for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


@dataclass
class AgentPhone:
    """One baresip process registered as `user` to Asterisk's PJSIP on 127.0.0.1:`sip_port`."""

    user: str
    password: str
    sip_port: int
    local_port: int
    ctrl_port: int
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ctgw-phone-")))
    process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        write_tone(self.home / "source.wav")
        modules = "/usr/lib/baresip/modules"
        (self.home / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen 127.0.0.1:{self.local_port}\n"
            f"audio_source aufile,{self.home / 'source.wav'}\n"
            f"audio_player aufile,{self.home / 'heard.wav'}\n"
            "audio_alert aufile,/dev/null\n"
            f"module_path {modules}\n"
            "module g711.so\nmodule aufile.so\n"
            "module_tmp uuid.so\nmodule_tmp account.so\n"
            "module_app menu.so\nmodule_app ctrl_tcp.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\n"
        )
        (self.home / "accounts").write_text(
            f"<sip:{self.user}@127.0.0.1:{self.sip_port};transport=udp>"
            f";auth_pass={self.password};answermode=auto;regint=60;audio_codecs=PCMU,PCMA\n"
        )

    def start(self) -> None:
        self.write_config()
        log = (self.home / "baresip.log").open("wb")
        self.process = subprocess.Popen(
            [baresip_path() or "baresip", "-f", str(self.home)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_registered(self, contacts: Callable[[], str], timeout: float = 20) -> None:
        """Wait until `contacts()` (Asterisk's `pjsip show contacts`) lists this phone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"baresip exited:\n{self.log()}")
            if f"{self.user}/sip:{self.user}" in contacts():
                return
            time.sleep(0.2)
        raise RuntimeError(f"baresip did not register in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        shutil.rmtree(self.home, ignore_errors=True)

    def log(self, lines: int = 40) -> str:
        path = self.home / "baresip.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
