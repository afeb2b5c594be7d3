"""Provenance of a training run: input files with their hashes, the code version, the config."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dnacnn


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def input_files(directory: str | Path) -> list[dict[str, Any]]:
    """Every file under a dataset folder with its size and sha256, sorted by path."""
    root = Path(directory)
    return [
        {"path": str(p.relative_to(root)), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def git_state(path: str | Path | None = None) -> dict[str, Any]:
    """{"commit": sha or None, "dirty": bool or None} of the repository holding ``path``
    (default: this package's source). ``DNACNN_GIT_COMMIT`` stands in where there is no .git
    (e.g. a Ray job's uploaded working directory)."""
    cwd = Path(path) if path else Path(dnacnn.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=cwd, capture_output=True, text=True, check=True,
                                    timeout=10).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": os.environ.get("DNACNN_GIT_COMMIT"), "dirty": None}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"train.lr": "0.001", ...} for ``mlflow.log_params``."""
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    return out
