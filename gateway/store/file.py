"""The store's file on disk: created private, kept private, and its faults said in one line."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import structlog

__all__ = ["damaged_store", "prepare_store_file", "store_fault"]

log = structlog.get_logger()

# The store holds callers' numbers and names and the visits of a site's visitors: only the
# gateway's own user may read it. SQLite gives its -wal and -shm files the mode of the database.
_MODE = 0o600
_COMPANIONS = ("", "-wal", "-shm", "-journal")

_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_NO_WRITE = ("SQLITE_READONLY", "SQLITE_PERM")


def prepare_store_file(path: Path) -> None:
    """Create the store file with mode 0600 if it is missing; tighten an existing one that
    others may read (and its -wal/-shm files), logging once what was changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
        return
    tightened: list[str] = []
    for suffix in _COMPANIONS:
        file = Path(f"{path}{suffix}")
        try:
            mode = file.stat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode) or not mode & 0o077:
            continue
        # Keep the owner's own bits: a file made read-only on purpose stays read-only.
        wanted = stat.S_IMODE(mode) & 0o700
        try:
            file.chmod(wanted)
        except OSError as exc:
            log.warning(
                "store_file_readable_by_others",
                file=str(file),
                mode=oct(mode & 0o777),
                error=str(exc),
            )
            continue
        tightened.append(f"{file.name} {oct(stat.S_IMODE(mode))}->{oct(wanted)}")
    if tightened:
        log.warning("store_permissions_tightened", path=str(path), files=tightened)


def damaged_store(path: Path, reason: str) -> str:
    """One line for a user: the store at `path` is damaged, and what to do."""
    return (
        f"store {path} is damaged or not a ctgw store ({reason}): restore it from a backup, "
        "or move it away to start with an empty store"
    )


def store_fault(path: Path, exc: BaseException) -> str:
    """One line for a user: what is wrong with the store at `path` and what to do."""
    reason = str(exc) or type(exc).__name__
    code = str(getattr(exc, "sqlite_errorname", ""))
    try:
        is_dir = path.is_dir()
    except OSError:
        is_dir = False
    if is_dir:
        return (
            f"store {path} is a directory, not a file: point [store] url at a file, "
            "e.g. sqlite:///var/ctgw.db"
        )
    if code.startswith(_DAMAGED):
        return damaged_store(path, reason)
    if code.startswith(_NO_WRITE) or isinstance(exc, PermissionError):
        return (
            f"cannot open the store {path} for writing ({reason}): the gateway's user needs "
            "write access to the file and to its folder (for its -wal and -shm files)"
        )
    if code.startswith("SQLITE_CANTOPEN"):
        return (
            f"cannot open the store {path} ({reason}): it, its folder and its -wal and -shm "
            "files must be a folder and files the gateway's user may write"
        )
    if code.startswith("SQLITE_FULL") or getattr(exc, "errno", None) == errno.ENOSPC:
        return f"store {path}: the disk is full ({reason}); free some space"
    return f"cannot use the store {path}: {reason}"
