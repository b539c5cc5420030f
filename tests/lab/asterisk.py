"""A real Asterisk 22 for the tests, run from the cached root filesystem built by setup.d.

Each lab writes its own config set under ROOT/tmp/ctgw-lab-<id>/ (config, run, log, spool and db
directories), so several labs and a real install never share a socket, port or file. Asterisk
runs with `chroot ROOT /usr/sbin/asterisk -f -n -q -C <that asterisk.conf>`; it shares the host's
network namespace, so the loopback ports work both ways.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AGENT2",
    "AGENT2_SECRET",
    "C2C_AMI_USER",
    "CTGW_AMI_SECRET",
    "CUSTOMER",
    "CUSTOMER_SECRET",
    "DEAF_AMI_USER",
    "OUTBOUND_CONTEXT",
    "AsteriskLab",
    "LabPorts",
    "asterisk_root",
    "free_port",
    "remove_stale_labs",
]

PROJECT = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = Path("/var/cache/ctgw/asterisk-rootfs")
AMI_USER = "test"
AMI_SECRET = "test-secret"
CTGW_AMI_SECRET = "ctgw-lab-secret"
AGENT = "agent1"
AGENT_SECRET = "agent-secret"
# A second agent's phone: two calls at once, each to its own agent's page.
AGENT2 = "agent2"
AGENT2_SECRET = "agent2-secret"
# The customer a click-to-call reaches (a second baresip phone) and the lab's outbound context.
CUSTOMER = "customer1"
CUSTOMER_SECRET = "customer-secret"
OUTBOUND_CONTEXT = "test-outbound"
# The shipped ctgw user plus the originate right, as click-to-call needs it.
C2C_AMI_USER = "ctgw-c2c"
# The shipped ctgw user without the `call` read class (`ctgw doctor` must notice).
DEAF_AMI_USER = "ctgw-deaf"

# Modules that fail harmlessly or log noise at start (docs/lab.md), or that are slow and unused.
_NOLOAD = (
    "res_pjsip_stir_shaken.so",
    "res_stir_shaken.so",
    "chan_dahdi.so",
    "res_hep.so",
    "res_hep_pjsip.so",
    "res_hep_rtcp.so",
    "chan_console.so",
    "chan_mobile.so",
    "chan_unistim.so",
    "chan_skinny.so",
    "chan_mgcp.so",
    "chan_iax2.so",
    "chan_ooh323.so",
    "res_calendar.so",
    "res_config_ldap.so",
    "res_snmp.so",
    "cdr_radius.so",
    "cel_radius.so",
    "res_xmpp.so",
    "chan_motif.so",
    "res_phoneprov.so",
    "res_pjsip_phoneprov_provider.so",
)


def asterisk_root() -> Path | None:
    """The cached root filesystem if it was built completely, else None."""
    root = Path(os.environ.get("CTGW_ASTERISK_ROOT", DEFAULT_ROOT))
    if (root / ".ctgw-complete").exists() and (root / "usr/sbin/asterisk").exists():
        return root
    return None


def remove_stale_labs(root: Path) -> None:
    """Remove lab directories whose Asterisk is gone (a test run killed before its cleanup)."""
    for lab in (root / "tmp").glob("ctgw-lab-*"):
        pid_file = lab / "run" / "asterisk.pid"
        try:
            alive = Path(f"/proc/{int(pid_file.read_text().strip())}").exists()
        except (OSError, ValueError):
            alive = time.time() - lab.stat().st_mtime < 3600  # starting up, or no pid yet
        if not alive:
            shutil.rmtree(lab, ignore_errors=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free right now for both TCP and UDP (baresip binds its SIP port on
    both), outside the kernel's ephemeral range, so no outgoing connection takes it before
    the test binds it (a port picked by binding port 0 was taken so, under load)."""
    del kind  # every port returned is free for both kinds
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(10000, 20000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", port))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free loopback port between 10000 and 20000")


# Caller names the lab's carriers send (base64: the dialplan cannot write a line break).
NAME_WITH_ENV_LINES = b"Ada\nagi_callerid: +19995550000\nagi_arg_4: +19995550001\nLovelace"
NAME_WITH_BLANK_LINES = b"Ada\n\nagi_callerid: +19995550000\n\nLovelace"
_NAME_ENV_LINES = base64.b64encode(NAME_WITH_ENV_LINES).decode()
_NAME_BLANK_LINES = base64.b64encode(NAME_WITH_BLANK_LINES).decode()


@dataclass(frozen=True)
class LabPorts:
    ami: int
    sip: int
    agi: int
    rtp_start: int


@dataclass
class AsteriskLab:
    """One Asterisk process with a config set made for the test session."""

    root: Path
    ports: LabPorts
    fallback: str = "Local/fallback@test-dest"
    lookup_timeout: str = "2"
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    process: subprocess.Popen[bytes] | None = None

    @property
    def inner(self) -> Path:
        """The lab directory as Asterisk sees it (inside the chroot)."""
        return Path("/tmp") / f"ctgw-lab-{self.name}"

    @property
    def outer(self) -> Path:
        """The lab directory as the host sees it."""
        return self.root / self.inner.relative_to("/")

    @property
    def conf(self) -> str:
        return str(self.inner / "etc" / "asterisk.conf")

    @property
    def log_path(self) -> Path:
        return self.outer / "log" / "messages"

    def write_config(self) -> None:
        """Write asterisk.conf, modules, manager, pjsip and the extensions with ctgw.conf."""
        etc = self.outer / "etc"
        for sub in ("etc", "run", "log", "spool/monitor", "db", "cache"):
            (self.outer / sub).mkdir(parents=True, exist_ok=True)
        files = {
            "asterisk.conf": self._asterisk_conf(),
            "modules.conf": "[modules]\nautoload=yes\n"
            + "".join(f"noload => {m}\n" for m in _NOLOAD),
            "logger.conf": "[general]\n[logfiles]\nmessages => notice,warning,error,verbose(3)\n",
            "manager.conf": self._manager_conf(),
            "pjsip.conf": self._pjsip_conf(),
            "rtp.conf": f"[general]\nrtpstart={self.ports.rtp_start}\n"
            f"rtpend={self.ports.rtp_start + 200}\n",
            "extensions.conf": self._extensions_conf(),
            "ctgw.conf": (PROJECT / "dialplans" / "ctgw.conf").read_text(),
            "cdr.conf": "[general]\nenable=no\n",
            "cel.conf": "[general]\nenable=no\n",
        }
        for name, text in files.items():
            (etc / name).write_text(text)

    def _asterisk_conf(self) -> str:
        d = self.inner
        return (
            "[directories]\n"
            f"astetcdir => {d}/etc\n"
            "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules\n"
            "astvarlibdir => /var/lib/asterisk\n"
            f"astdbdir => {d}/db\n"
            "astkeydir => /var/lib/asterisk\n"
            "astdatadir => /usr/share/asterisk\n"
            "astagidir => /usr/share/asterisk/agi-bin\n"
            f"astspooldir => {d}/spool\n"
            f"astrundir => {d}/run\n"
            f"astlogdir => {d}/log\n"
            f"astcachedir => {d}/cache\n"
            "astsbindir => /usr/sbin\n"
            "[options]\n"
            "verbose = 3\n"
        )

    def _manager_conf(self) -> str:
        # The gateway's own user, exactly as shipped, with a lab secret.
        ctgw = (PROJECT / "dialplans" / "manager-ctgw.conf").read_text()
        ctgw = ctgw.replace("CHANGE-ME-to-a-long-random-secret", CTGW_AMI_SECRET)
        return (
            "[general]\nenabled = yes\n"
            f"port = {self.ports.ami}\nbindaddr = 127.0.0.1\n"
            "channelvars = CTGW_CALL_ID,CTGW_SOURCE,MIXMONITOR_FILENAME\n"
            "timestampevents = yes\n\n"
            f"[{AMI_USER}]\nsecret = {AMI_SECRET}\n"
            "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
            "read = all\nwrite = all\n\n"
            + ctgw
            + "\n\n"
            + self._c2c_user(ctgw)
            + "\n\n"
            + self._deaf_user(ctgw)
        )

    @staticmethod
    def _c2c_user(ctgw: str) -> str:
        """The shipped user under another name, with `originate` added to its write classes."""
        user = ctgw.replace("[ctgw]", f"[{C2C_AMI_USER}]", 1)
        return user.replace("\nwrite = reporting\n", "\nwrite = reporting,originate\n", 1)

    @staticmethod
    def _deaf_user(ctgw: str) -> str:
        """The shipped user under another name, reading `dtmf` events instead of `call`."""
        user = ctgw.replace("[ctgw]", f"[{DEAF_AMI_USER}]", 1)
        return user.replace("\nread = call\n", "\nread = dtmf\n", 1)

    def _pjsip_conf(self) -> str:
        return (
            "[transport-udp]\ntype = transport\nprotocol = udp\n"
            f"bind = 127.0.0.1:{self.ports.sip}\n\n"
            + self._phone_conf(AGENT, AGENT_SECRET)
            + "\n"
            + self._phone_conf(AGENT2, AGENT2_SECRET)
            + "\n"
            + self._phone_conf(CUSTOMER, CUSTOMER_SECRET)
        )

    @staticmethod
    def _phone_conf(user: str, secret: str) -> str:
        return (
            f"[{user}]\ntype = endpoint\ncontext = test-agent-out\ndisallow = all\n"
            f"allow = ulaw,alaw\nauth = {user}\naors = {user}\ndirect_media = no\n"
            "rtp_symmetric = yes\n\n"
            f"[{user}]\ntype = auth\nauth_type = userpass\nusername = {user}\n"
            f"password = {secret}\n\n"
            f"[{user}]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n"
        )

    def _extensions_conf(self) -> str:
        return (
            "[general]\nstatic = yes\nwriteprotect = yes\n\n"
            "[globals]\n"
            "CTGW_AGI_HOST=127.0.0.1\n"
            f"CTGW_AGI_PORT={self.ports.agi}\n"
            # As shipped: no second gateway (tests set these with AMI Setvar when they need one).
            "CTGW_AGI_HOST2=\n"
            "CTGW_AGI_PORT2=\n"
            f"CTGW_LOOKUP_TIMEOUT={self.lookup_timeout}\n"
            f"CTGW_FALLBACK={self.fallback}\n"
            "CTGW_RING_TIMEOUT=20\n"
            "CTGW_RECORD=no\n"
            "CTGW_RECORD_FORMAT=wav\n\n"
            "#include ctgw.conf\n\n"
            "; What a carrier's inbound context looks like.\n"
            "[test-inbound]\ninclude => ctgw-inbound\n\n"
            "; Carriers whose caller names hold line breaks (a lookup, a non-SIP trunk): the name\n"
            "; reaches FastAGI raw, its lines looking like env lines, or ending the env block.\n"
            "[test-inbound-newline-name]\n"
            f"exten => _[+0-9]X.,1,Set(CALLERID(name)=${{BASE64_DECODE({_NAME_ENV_LINES})}})\n"
            " same => n,Goto(ctgw-inbound,${EXTEN},1)\n"
            "[test-inbound-blank-line-name]\n"
            f"exten => _[+0-9]X.,1,Set(CALLERID(name)=${{BASE64_DECODE({_NAME_BLANK_LINES})}})\n"
            " same => n,Goto(ctgw-inbound,${EXTEN},1)\n\n"
            "; Route targets: a checkpoint event saying which one the call reached.\n"
            "[test-dest]\n"
            "exten => _[a-z].,1,UserEvent(CtgwReached,Route: ${EXTEN})\n"
            " same => n,Answer()\n same => n,Wait(1)\n same => n,Hangup()\n\n"
            "[test-agent-out]\nexten => _X.,1,Hangup()\n\n"
            "; Click-to-call's outbound context in the lab: any E.164 number rings the customer.\n"
            f"[{OUTBOUND_CONTEXT}]\nexten => _+X.,1,Dial(PJSIP/{CUSTOMER},20)\n"
            " same => n,Hangup()\n\n"
            "; A destination that rings and never answers (missed and abandoned calls).\n"
            "[test-ring]\nexten => _[a-z].,1,Ringing()\n same => n,Wait(120)\n"
        )

    def _cli(self, command: str) -> list[str]:
        return ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", self.conf, "-rx", command]

    def rx(self, command: str, timeout: float = 10) -> str:
        """Run one CLI command on this Asterisk and return its output ("" if it timed out)."""
        try:
            out = subprocess.run(
                self._cli(command), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return ""
        return out.stdout.decode(errors="replace")

    def start(self, boot_timeout: float = 30) -> None:
        """Start Asterisk and return once it is fully booted (dialplan loaded)."""
        self.write_config()
        console = (self.outer / "log" / "console").open("wb")
        # /proc is mounted in a mount namespace of Asterisk's own: it goes away with the
        # process, so a killed test run never leaves a mount behind, and labs never share one.
        boot = (
            'mount -t proc proc "$1/proc" && exec chroot "$1" /usr/sbin/asterisk -f -n -q -C "$2"'
        )
        namespace = ["unshare", "--mount", "--propagation", "private", "--"]
        self.process = subprocess.Popen(
            [*namespace, "sh", "-c", boot, "sh", str(self.root), self.conf],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        console.close()
        deadline = time.monotonic() + boot_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"asterisk exited at start:\n{self.tail()}")
            if (self.outer / "run" / "asterisk.ctl").exists():
                try:
                    done = subprocess.run(
                        self._cli("core waitfullybooted"),
                        capture_output=True,
                        timeout=max(1.0, deadline - time.monotonic()),
                        check=False,
                    )
                except subprocess.TimeoutExpired:
                    break
                if done.returncode == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"asterisk did not boot in {boot_timeout} s:\n{self.tail()}")

    def stop(self, keep_files: bool = False) -> None:
        """Stop Asterisk (politely, then by force) and remove the lab files."""
        try:
            if self.process is not None and self.process.poll() is None:
                try:
                    self.rx("core stop now", timeout=5)
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
        finally:
            self.process = None
            if not keep_files:
                shutil.rmtree(self.outer, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same ports (for reconnect tests). The astdb is kept, so
        registered phones (PJSIP contacts) stay reachable."""
        self.stop(keep_files=True)
        self.start()

    def tail(self, lines: int = 40) -> str:
        """The last lines of Asterisk's log, for failure messages."""
        for path in (self.log_path, self.outer / "log" / "console"):
            if path.exists():
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"
