"""A private Asterisk 22 for the AMI evaluation and the real-Asterisk AMI test.

Runs Debian sid's Asterisk from its own root filesystem (built by
tests/lab/setup.d/50-ami-eval-asterisk.sh) with the config in tests/fixtures/asterisk-eval:
AMI on 127.0.0.1:26038, no channel driver that listens on a port, own run directory.
Blocking on purpose: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AMI_PORT", "AMI_SECRET", "AMI_USER", "DEFAULT_ROOTFS", "EvalAsterisk"]

DEFAULT_ROOTFS = Path(os.environ.get("CTGW_AMI_EVAL_ROOTFS", "/var/cache/ctgw-ami-eval/rootfs"))
AMI_PORT = 26038
AMI_USER = "ctgw"
AMI_SECRET = "ctgw-eval-secret"  # a throwaway secret of a loopback-only test Asterisk
_CONF_SRC = Path(__file__).parent.parent / "fixtures" / "asterisk-eval"
_ETC = "/etc/ctgw-ami-eval"
_ASTERISK = ("/usr/sbin/asterisk", "-C", f"{_ETC}/asterisk.conf")
_DIRS = (
    "var/lib/ctgw-ami-eval",
    "var/spool/ctgw-ami-eval/monitor",
    "var/run/ctgw-ami-eval",
    "var/log/ctgw-ami-eval",
)


@dataclass
class EvalAsterisk:
    """One Asterisk process in the eval root filesystem; start, restart and stop it."""

    rootfs: Path = DEFAULT_ROOTFS
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    mounted_proc: bool = False

    def available(self) -> bool:
        return (self.rootfs / "usr/sbin/asterisk").exists() and os.geteuid() == 0

    def _install_config(self) -> None:
        etc = self.rootfs / _ETC.lstrip("/")
        etc.mkdir(parents=True, exist_ok=True)
        for conf in _CONF_SRC.glob("*.conf"):
            shutil.copyfile(conf, etc / conf.name)
        for d in _DIRS:
            (self.rootfs / d).mkdir(parents=True, exist_ok=True)

    def _mount_proc(self) -> None:
        proc = self.rootfs / "proc"
        if not (proc / "self").exists():
            subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
            self.mounted_proc = True

    def rx(self, command: str, timeout: float = 20.0) -> str:
        """Run one CLI command on the running Asterisk over its control socket."""
        done = subprocess.run(
            ["chroot", str(self.rootfs), *_ASTERISK, "-rx", command],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return done.stdout.decode(errors="replace")

    def start(self, boot_timeout: float = 30.0) -> float:
        """Start Asterisk and wait until it is fully booted; returns the seconds it took."""
        self._install_config()
        self._mount_proc()
        began = time.monotonic()
        self.process = subprocess.Popen(
            ["chroot", str(self.rootfs), *_ASTERISK, "-f", "-n", "-q"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        while time.monotonic() - began < boot_timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"asterisk exited with {self.process.returncode} while booting")
            if "fully booted" in self.rx("core waitfullybooted", timeout=boot_timeout).lower():
                return time.monotonic() - began
            if "Asterisk" in self.rx("core show version"):
                return time.monotonic() - began
            time.sleep(0.1)
        raise TimeoutError("asterisk did not finish booting")

    def stop(self) -> None:
        """Stop Asterisk now (as `core stop now`), killing it if it does not go."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.rx("core stop now", timeout=10)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=5)
        self.process = None

    def crash(self) -> None:
        """Kill Asterisk with SIGKILL: no Hangup events, sockets just close."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> float:
        """Stop and start again; returns the seconds Asterisk was gone."""
        began = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        """Stop Asterisk and unmount the /proc this object mounted."""
        self.stop()
        if self.mounted_proc:
            subprocess.run(["umount", str(self.rootfs / "proc")], check=False)
            self.mounted_proc = False
