"""Checking an output folder before any work: it must be a folder (or creatable) and writable,
and, in a submitted Ray job, outside the job's temporary copy of its working directory.

Nothing is created by the check; a command that fails it has written nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dnacnn.job_paths import ABSOLUTE_HINT, inside_job_copy


class OutputFolderError(ValueError):
    """An output location that cannot be used (a file, not writable)."""


def check_output_folder(path: str | Path, option: str = "--out") -> None:
    """Refuse ``path`` unless it is a writable folder, or can be created as one, outside the
    copy of the working directory that a submitted Ray job runs in (``dnacnn.job_paths``).

    Writability is tried, not guessed from permission bits (root, read-only file
    systems, ACLs): a temporary file is created and removed in ``path`` or in its
    nearest existing parent.

    Raises:
        OutputFolderError: naming the option, the path and the reason.
    """
    if not str(path).strip():  # Path("") is the current folder: a mistyped variable, not a choice
        raise OutputFolderError(f"{option} is empty: give the folder to write to (\".\" for this one)")
    if inside_job_copy(path):
        raise OutputFolderError(
            f"{option} {path} is inside this Ray job's temporary copy of the submitted working "
            "directory: what is written there is lost with it, and a job submitted again could "
            f"not resume from it; {ABSOLUTE_HINT}")
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise OutputFolderError(f"{option} {path}: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file, not a folder" if probe == path else f"cannot be created: {probe} is a file"
        raise OutputFolderError(f"{option} {path} {what}")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        where = "" if probe == path else f" (its parent {probe} is not writable)"
        raise OutputFolderError(
            f"{option} {path} cannot be written{where}: {err.strerror or err}"
        ) from None
    if not os.access(probe, os.X_OK):
        raise OutputFolderError(f"{option} {path} cannot be entered ({probe}: permission denied)")
