"""A private Asterisk 22 for the AMI evaluation and the real-Asterisk AMI test.

Runs from the one shared root filesystem (built by tests/lab/setup.d/20-asterisk.sh, see
docs/lab.md) with the config of tests/fixtures/asterisk-eval: AMI on 127.0.0.1:26038, no
channel driver that listens on a port. Like the call lab (tests/lab/asterisk.py) it keeps its
config, run, log, spool and db directories in a directory of its own under ROOT/tmp, given to
Asterisk with `-C`, and mounts /proc in a mount namespace of its own: the shared root filesystem
is never changed, and this Asterisk and a lab's can run one after the other or side by side.
Blocking on purpose: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.asterisk import DEFAULT_ROOT, asterisk_root

__all__ = ["AMI_PORT", "AMI_SECRET", "AMI_USER", "EvalAsterisk"]

AMI_PORT = 26038
AMI_USER = "ctgw"
AMI_SECRET = "ctgw-eval-secret"  # a throwaway secret of a loopback-only test Asterisk
_CONF_SRC = Path(__file__).parent.parent / "fixtures" / "asterisk-eval"
_SUBDIRS = ("etc", "run", "log", "spool/monitor", "db", "cache")


def _asterisk_conf(inner: Path) -> str:
    """asterisk.conf with every writable directory in `inner` (the eval's own, in the chroot)."""
    return (
        "[directories]\n"
        f"astetcdir => {inner}/etc\n"
        "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules\n"
        "astvarlibdir => /var/lib/asterisk\n"
        f"astdbdir => {inner}/db\n"
        "astkeydir => /var/lib/asterisk\n"
        "astdatadir => /usr/share/asterisk\n"
        "astagidir => /usr/share/asterisk/agi-bin\n"
        f"astspooldir => {inner}/spool\n"
        f"astrundir => {inner}/run\n"
        f"astlogdir => {inner}/log\n"
        f"astcachedir => {inner}/cache\n"
        "[options]\n"
        "verbose = 0\n"
        "debug = 0\n"
    )


@dataclass
class EvalAsterisk:
    """One Asterisk process with the eval config; start, restart, crash and stop it."""

    rootfs: Path = field(default_factory=lambda: asterisk_root() or DEFAULT_ROOT)
    # Its directory is named like a lab's (`ctgw-lab-*`), so remove_stale_labs clears it after
    # a run killed before its cleanup.
    name: str = field(default_factory=lambda: f"eval-{uuid.uuid4().hex[:10]}")
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def inner(self) -> Path:
        """The eval's directory as Asterisk sees it (inside the chroot)."""
        return Path("/tmp") / f"ctgw-lab-{self.name}"

    @property
    def outer(self) -> Path:
        """The eval's directory as the host sees it."""
        return self.rootfs / self.inner.relative_to("/")

    @property
    def _conf(self) -> str:
        return str(self.inner / "etc" / "asterisk.conf")

    def available(self) -> bool:
        return asterisk_root() is not None and os.geteuid() == 0

    def _install_config(self) -> None:
        for sub in _SUBDIRS:
            (self.outer / sub).mkdir(parents=True, exist_ok=True)
        for conf in _CONF_SRC.glob("*.conf"):
            if conf.name != "asterisk.conf":  # written here: its directories are ours
                shutil.copyfile(conf, self.outer / "etc" / conf.name)
        (self.outer / "etc" / "asterisk.conf").write_text(_asterisk_conf(self.inner))

    def _cli(self, command: str) -> list[str]:
        return ["chroot", str(self.rootfs), "/usr/sbin/asterisk", "-C", self._conf, "-rx", command]

    def rx(self, command: str, timeout: float = 20.0) -> str:
        """Run one CLI command on the running Asterisk over its control socket."""
        try:
            done = subprocess.run(
                self._cli(command), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout.decode(errors="replace")

    def start(self, boot_timeout: float = 30.0) -> float:
        """Start Asterisk and wait until it is fully booted; returns the seconds it took."""
        self._install_config()
        began = time.monotonic()
        # /proc in a mount namespace of Asterisk's own: gone with the process, never shared.
        boot = (
            'mount -t proc proc "$1/proc" && exec chroot "$1" /usr/sbin/asterisk -f -n -q -C "$2"'
        )
        namespace = ["unshare", "--mount", "--propagation", "private", "--"]
        self.process = subprocess.Popen(
            [*namespace, "sh", "-c", boot, "sh", str(self.rootfs), self._conf],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = began + boot_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"asterisk exited with {self.process.returncode} while booting")
            if (self.outer / "run" / "asterisk.ctl").exists():
                left = max(1.0, deadline - time.monotonic())
                if "fully booted" in self.rx("core waitfullybooted", timeout=left).lower():
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
        """Stop Asterisk and remove its directory (the root filesystem stays as it was)."""
        self.stop()
        shutil.rmtree(self.outer, ignore_errors=True)
