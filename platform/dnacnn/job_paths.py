"""Paths in a submitted Ray job, which runs in a temporary copy of its working directory.

``ray job submit --working-dir .`` uploads the folder (less what ``.gitignore`` ignores,
``.git`` and ``.venv``) and runs the entrypoint in an unpacked copy of it under Ray's
temporary folder. A relative input path names a file of that copy, there only when it
was uploaded: a dataset made under the git-ignored ``data/`` is not. A relative output
path names a folder of that copy, which nobody looks in and Ray deletes with its
session: the scores or checkpoints would be lost, and a job submitted again (another
copy) could not resume. :func:`check_input_paths` and :func:`inside_job_copy` let the
commands say so in one line before any work starts. An input that was uploaded is used
as :func:`portable_path` names it: every node has its own copy, in a folder that changes
with every upload and session, and its files bear the time they were unpacked.

Ray tells a job's driver what it was submitted with in the environment variable
``RAY_JOB_CONFIG_JSON_ENV_VAR`` (JSON with its ``runtime_env``; Ray 2.60's job
supervisor sets it, ``ray._private.runtime_env.constants``): this module alone reads it,
and ``tests/test_cluster.py`` submits real jobs that depend on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

#: Set by Ray's job supervisor in the environment of a submitted job's entrypoint.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"

#: What a message about a path of the job's copy tells the user to do.
ABSOLUTE_HINT = "give an absolute path that every node of the cluster can reach (e.g. $PWD/...)"


def submitted_runtime_env() -> dict:
    """The runtime environment this process's Ray job was submitted with, when this process
    is such a job's entrypoint; {} otherwise."""
    raw = os.environ.get(JOB_CONFIG_ENV)
    try:
        runtime_env = json.loads(raw).get("runtime_env") if raw else None
    except (ValueError, AttributeError):  # not JSON, or not the object Ray writes
        return {}
    return runtime_env if isinstance(runtime_env, dict) else {}


def submitted_working_dir() -> str | None:
    """The ``working_dir`` this process's Ray job was submitted with (a ``gcs://`` package
    URI), when this process is such a job's entrypoint; None otherwise."""
    working_dir = submitted_runtime_env().get("working_dir")
    return working_dir if isinstance(working_dir, str) and working_dir else None


def inside_job_copy(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a local path, not a URI) lies in the copy of the working directory
    that this submitted Ray job runs in (relative paths all do); False outside a job."""
    if "://" in str(path) or submitted_working_dir() is None:
        return False
    resolved = Path(path).expanduser().resolve()
    return resolved.is_relative_to(Path.cwd().resolve())


def portable_path(path: str | os.PathLike) -> str:
    """``path`` as other processes and a restarted job should name it: relative to the job's
    copy of the working directory when it lies inside it (the scoring actors of every node
    run in their own node's copy), else absolute."""
    absolute = os.path.abspath(path)
    if inside_job_copy(absolute):
        return os.path.relpath(absolute, Path.cwd())
    return absolute


def check_input_paths(paths: Mapping[str, str | os.PathLike | None]) -> None:
    """In a submitted Ray job, refuse a relative input path that its copy of the working
    directory lacks (``paths``: option name -> path; None and URIs are skipped).

    Raises:
        FileNotFoundError: naming the option, the path and why it is not there.
    """
    if submitted_working_dir() is None:
        return
    for option, path in paths.items():
        if path is None or "://" in str(path) or Path(path).expanduser().is_absolute() or Path(path).exists():
            continue
        raise FileNotFoundError(
            f"{option} {path} is not in this Ray job's copy of the submitted working directory "
            "(ray job submit --working-dir leaves out what .gitignore ignores, .git and .venv, "
            f"and holds nothing from outside the folder); {ABSOLUTE_HINT}")
