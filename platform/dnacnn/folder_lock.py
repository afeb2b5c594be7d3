"""One job at a time in a folder: an exclusive lock that dies with its process.

Two jobs submitted with the same ``train.run_name`` and ``train.storage_path`` would both
train from the same checkpoint into the same run folder, and register two models from
interleaved checkpoints; :func:`exclusive` lets the second refuse to start instead. The
lock is ``flock`` on ``<folder>/.dnacnn.lock`` (on the same machine, and on NFSv4): the
kernel drops it when its holder exits, however it exits (``ray job stop``, kill -9), so
a stopped job never leaves a stale lock behind. The file names its holder for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".dnacnn.lock"


class FolderBusyError(ValueError):
    """Another running process holds the folder's lock; the message names it."""


@contextlib.contextmanager
def exclusive(folder: str | Path, what: str, hint: str) -> Iterator[None]:
    """Hold ``folder``'s lock (the folder is created when missing) for the ``with`` block.

    Args:
        what: the work, for the message ("run smoke in /runs").
        hint: what to do instead ("give another train.run_name").
    Raises:
        FolderBusyError: another process holds it: "<what> is in use by process P on host H
            since T; wait for it to end, or <hint>".
    """
    path = Path(folder) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusyError(f"{what} is in use by {_holder(fd)}; wait for it to end, or {hint}") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"process {holder['pid']} on host {holder['host']} since {holder['since']}"
    except (ValueError, KeyError, TypeError):  # written half-way at this instant
        return "another process"
