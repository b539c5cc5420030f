"""A private PostgreSQL cluster for the tests and benchmarks, from Debian's package.

`initdb` into a temp folder, then `postgres` on a private loopback port with its unix socket in
that folder, stopped (and the folder removed) at the end. PostgreSQL refuses to run as root, so
as root both run as the `postgres` system user the package creates (`runuser`). Debian's own
binaries under /usr/lib/postgresql/<version>/bin are used: a `pg_ctl` on the PATH may be another.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.lab.asterisk import free_port

__all__ = ["PgCluster", "pg_bin_dir", "private_cluster"]

DEBIAN_PG = Path("/usr/lib/postgresql")
_USER = "postgres"
# Small: many tests share 2 cores; fsync stays on, as a deployment would run it.
_SETTINGS = (
    "max_connections=60",
    "shared_buffers=32MB",
    "listen_addresses=127.0.0.1",
    "log_min_messages=warning",
)


def pg_bin_dir() -> Path | None:
    """Debian's newest PostgreSQL server binaries, or None when the package is not installed
    (CTGW_POSTGRES_ROOT names another folder of <version>/bin, as Debian lays them out)."""
    found: list[tuple[int, Path]] = []
    for bin_dir in Path(os.environ.get("CTGW_POSTGRES_ROOT", DEBIAN_PG)).glob("*/bin"):
        version = bin_dir.parent.name
        if version.isdigit() and (bin_dir / "initdb").exists() and (bin_dir / "postgres").exists():
            found.append((int(version), bin_dir))
    return max(found)[1] if found else None


class PgCluster:
    """One private cluster: `start()` makes and starts it, `stop()` ends it and removes it."""

    def __init__(self, bin_dir: Path, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.port = port or free_port()
        # /tmp, not a pytest tmp dir: the `postgres` user must reach it (root's home is 0700).
        self.folder = Path(tempfile.mkdtemp(prefix="ctgw-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "run"
        self._server: subprocess.Popen[bytes] | None = None
        self._log = self.folder / "postgres.log"

    @property
    def url(self) -> str:
        """A `postgresql://` URL of the cluster's `postgres` database (trust auth, loopback)."""
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", _USER, "--", *argv]

    def start(self, timeout_s: float = 30.0) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_USER)
            for path in (self.folder, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", _USER]
        initdb += ["-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
        done = subprocess.run(self._as_owner(initdb), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-k", str(self.socket_dir)]
        for setting in _SETTINGS:
            argv += ["-c", setting]
        with open(self._log, "wb") as log:
            self._server = subprocess.Popen(
                self._as_owner(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        ready = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._server is not None and self._server.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.tail()}")
            if subprocess.run(ready, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready in {timeout_s} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open sessions are cut), then the folder goes."""
        server, self._server = self._server, None
        if server is not None and server.poll() is None:
            # runuser passes the signal on to postgres; the group covers both either way.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[PgCluster]:
    """A started private cluster, stopped and removed on exit; RuntimeError when none can be."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: run tests/lab/setup.sh as root")
    cluster = PgCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
