"""One writer per run folder: an advisory lock `<run>/.mqeval.lock` that names its holder (pid, host, command).

The lock itself is fcntl.flock on the open lock file: the kernel drops it when the holder exits, however it exits,
so the lock of a dead process is taken over by the next writer without guessing from pids. The JSON inside is only
what a second writer is told. The workers of a multi-process launch write under their launcher's lock (they are
handed the resolved plan, mqeval.evaluation.worker, and never take it themselves). Acquiring the lock also removes
the temporary files that killed writers left in the folder (nobody else can be writing them then).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

from mqeval.errors import UserError
from mqeval.fileio import read_json_or_none, remove_stale_temporaries
from mqeval.run_folder import LOCK_NAME



class RunLockedError(UserError):
    """Another process is writing this run folder."""


def lock_holder(run_dir: Path) -> dict:
    data = read_json_or_none(Path(run_dir) / LOCK_NAME)
    return data if isinstance(data, dict) else {}


def command_line() -> str:
    """This process's `mqeval ...` command, without the credentials a URL in it may hold (user:password@)."""
    return re.sub(r"//[^/@\s]+@", "//", " ".join(["mqeval", *sys.argv[1:]]))


def _create_folder(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{run_dir} is a file, not a run folder; pass another --out") from None
    except OSError as exc:
        raise UserError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}") from None
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; pass another --out")


def _open_locked(path: Path) -> Optional[int]:
    """An fd holding the lock on `path`, or None when another process holds it."""
    import fcntl

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise UserError(f"cannot lock {path}: {exc.strerror or exc}") from None
        # The releasing holder unlinks the file: a lock on an inode no longer at `path` protects nothing.
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def run_lock(run_dir: Path, enabled: bool = True) -> Iterator[Optional[str]]:
    """Hold the run folder's lock for the block; yields its token (None when not `enabled`: the other ranks of a
    user's own distributed launch, which write under rank 0's lock)."""
    run_dir = Path(run_dir)
    if not enabled:
        yield None
        return
    _create_folder(run_dir)
    path = run_dir / LOCK_NAME
    fd = _open_locked(path)
    if fd is None:
        holder = lock_holder(run_dir)
        who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
        since = f" since {holder['started']}" if holder.get("started") else ""
        command = f" (`{holder['command']}`)" if holder.get("command") else ""
        raise RunLockedError(f"{run_dir} is being written by {who}{since}{command}; wait for it to finish or "
                             "pass another --out")
    token = uuid.uuid4().hex
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "token": token,
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": command_line()[:300]}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(holder).encode())
    remove_stale_temporaries(run_dir)
    try:
        yield token
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
