"""What a Ray Train run trains, recorded beside its checkpoints, so that a run of the same
name trains on only while that is unchanged.

``<storage_path>/<run_name>/run_identity.json`` holds the model (name and params), the
dataset (path, name, rows, tasks, window length), the batch size and the number of
workers. The driver checks it before starting the workers and writes it only once the
run has a checkpoint: until then a note, ``run_identity.pending.json``, stands for
the session in progress. A run that failed before its first checkpoint therefore
binds nothing, and the next job of that name, whatever it trains, starts afresh.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dnacnn.config import JobConfig
from dnacnn.data.dataset_io import DatasetDescription
from dnacnn.train.run_state import STATE_FILE

IDENTITY_FILE = "run_identity.json"
PENDING_IDENTITY_FILE = "run_identity.pending.json"  # this session's, until a checkpoint exists


def run_identity(job: JobConfig, description: DatasetDescription) -> dict[str, Any]:
    """What a run trains: resuming makes sense only while this is unchanged.

    Epochs, patience, failures and the like may change between sessions (more
    epochs continue a run); the model, the data and the batch size may not.
    """
    return {
        "model": {"name": job.model.name, "params": job.model.params},
        "dataset": {"path": str(Path(job.data.dataset).resolve()), "name": description.name,
                    "rows": description.rows, "tasks": description.tasks,
                    "seq_len": description.seq_len},
        "batch_size": job.train.batch_size,
        "num_workers": job.train.num_workers,
    }


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder holds a complete checkpoint of the loop (``train_state.json``
    is written last)."""
    return any(run_dir.glob(f"*/{STATE_FILE}"))


def check_run_identity(run_dir: Path, identity: dict[str, Any]) -> None:
    """Before training: check ``identity`` against the run's, then note it as pending.

    A run's identity binds only once the run has a checkpoint: ``run_identity.json``
    (or the pending note of a session that was killed after checkpointing, before
    :func:`record_run_identity` could run). A folder without a checkpoint (a run
    that failed before its first epoch ended) is free for any job.

    Raises:
        ValueError: the folder holds checkpoints of something else; names the differences.
    """
    wanted = json.loads(json.dumps(identity))  # tuples -> lists, as they read back
    if has_checkpoint(run_dir):
        record_run_identity(run_dir)  # a killed session's pending note, if that is all there is
        path = run_dir / IDENTITY_FILE
        recorded = json.loads(path.read_text()) if path.is_file() else wanted
        changed = sorted(k for k in wanted.keys() | recorded.keys() if wanted.get(k) != recorded.get(k))
        if changed:
            raise ValueError(
                f"run {run_dir.name} in {run_dir.parent} was trained with a different "
                f"{', '.join(changed)}; resuming it would mix two trainings. Give this job "
                f"another train.run_name, or delete {run_dir} to start over")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / PENDING_IDENTITY_FILE).write_text(json.dumps(wanted, indent=1) + "\n")


def record_run_identity(run_dir: Path) -> None:
    """After (or during) training: the pending identity becomes the run's once it has a checkpoint."""
    pending = run_dir / PENDING_IDENTITY_FILE
    if pending.is_file() and has_checkpoint(run_dir):
        pending.replace(run_dir / IDENTITY_FILE)
