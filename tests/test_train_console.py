"""What a person sees while training: the job's own progress, not Ray Train's noise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dnacnn.data.dataset_io import DatasetDescription, column_to_numpy, make_table, split_dir
from dnacnn.train.quiet import report_logger


def test_the_report_logger_is_the_one_ray_train_reports_through():
    """Pins the private logger that dnacnn.train.quiet quiets: if a Ray upgrade renames
    it, this fails (and the console test below would show TrainingReport lines again)."""
    from ray.train.v2._internal.execution import context

    assert context.logger is report_logger()


def write_dataset(directory: Path, length: int = 50) -> Path:
    rng = np.random.default_rng(1)
    rows = {"train": 400, "valid": 100, "test": 100}
    for split, n in rows.items():
        codes = rng.integers(0, 4, (n, length))
        y = (rng.random(n) < 0.5).astype(np.float32)
        for i in np.flatnonzero(y):
            p = rng.integers(0, length - 8)
            codes[i, p:p + 8] = [0, 3, 2, 1, 1, 2, 3, 0]
        out = split_dir(directory, split)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(make_table(np.eye(4, dtype=np.uint8)[codes], y[:, None]), out / "part-0.parquet")
    DatasetDescription(name="console_toy", task_type="binary", tasks=["motif"], seq_len=length,
                       rows=rows).save(directory)
    return directory


@pytest.mark.slow
def test_a_training_run_prints_its_progress_and_no_ray_train_noise(tmp_path):
    dataset = write_dataset(tmp_path / "dataset")
    config = tmp_path / "job.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "data": {"dataset": str(dataset)},
        "model": {"name": "multiscale", "params": {"widths": [5, 9], "filters": 8, "dense": [16],
                                                   "dense_dropouts": [0.1]}},
        "train": {"epochs": 3, "num_workers": 2, "batch_size": 32, "lr": 0.01, "run_name": "console",
                  "lr_schedule": "cosine", "warmup_epochs": 0.5,
                  "storage_path": str(tmp_path / "runs")},
        "mlflow": {"experiment": "console", "registered_model": "console-toy",
                   "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    }))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "RAY_AUTH_MODE")}
    proc = subprocess.run(
        [sys.executable, "-c", "from dnacnn.cli import app; app()", "train", "--config", str(config)],
        capture_output=True, text=True, env={**env, "DNACNN_PROGRESS": "1"}, timeout=900,
    )
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-4000:]
    # Ray Train's once-a-second cleaner warning and its per-report dumps are gone.
    assert "PlacementGroupCleaner" not in console
    assert "Failed to query Ray Train Controller" not in console
    assert "TrainingReport" not in console and "Reporting training result" not in console
    # MLflow's schema set-up of the new sqlite store is not the job's progress.
    assert "Creating initial MLflow database tables" not in console
    # nor MLflow's progress lines: logging the model, registering it
    assert "Validating input example" not in console and "Successfully registered model" not in console
    assert "Created version" not in console
    # Ray Data's progress bars of the training splits are gone.
    assert "row/s]" not in console
    # The local cluster has Ray's default token authentication, without Ray's warning that it has.
    assert "Token authentication" not in console
    # Ray's own notices (dnacnn.ray_cluster.RAY_NOTICES) and its "Started a local Ray instance."
    assert "PreemptionWatcher" not in console and "RayDeprecationWarning" not in console
    assert "Progress bars disabled" not in console and "execution finished in" not in console
    assert "Started a local Ray instance" not in console
    # The job's own lines: the set-up, then one per epoch with loss and validation metrics.
    assert "training multiscale: 2 worker(s) x 1 torch thread(s) on cpu" in console
    lrs = []
    for epoch in (1, 2, 3):
        line = next((ln for ln in console.splitlines() if f"epoch {epoch}/3 done in" in ln), "")
        assert "samples/s" in line and "train_loss" in line and "val_auroc" in line, console[-4000:]
        assert "left" in line
        lrs.append(float(re.search(r"\blr ([0-9.e+-]+)", line).group(1)))
    # Each epoch line shows the LR the epoch ended with: the cosine schedule decays over the run.
    assert 0.01 > lrs[0] > lrs[1] > lrs[2], lrs
    summary = json.loads(proc.stdout[proc.stdout.index("{\n"):])
    task = json.loads((Path(summary["checkpoint"]) / "task.json").read_text())
    assert task["precision"] in ("fp32", "bf16")


def test_a_class_sorted_train_split_is_shuffled_and_kept_whole(ray_session, tmp_path):
    """``dnacnn data fasta`` writes class after class: the materialised train split must
    not hand the loop long runs of one class (that made the Oct4/Mafk model collapse)."""
    from dnacnn.train.ingest import load_datasets

    dataset = write_dataset(tmp_path / "dataset")
    train_dir = split_dir(dataset, "train")
    table = pq.read_table(train_dir)
    y = column_to_numpy(table.column("labels"))[:, 0]  # (400,)
    pq.write_table(table.take(np.argsort(-y, kind="stable")), train_dir / "part-0.parquet")
    labels = np.concatenate([b["labels"][:, 0] for b in load_datasets(dataset, seed=3)["train"]
                             .iter_batches(batch_size=None, batch_format="numpy")])
    assert len(labels) == 400 and labels.sum() == y.sum()  # every row once
    # Every stretch of 100 rows mixes the classes (sorted, each would hold one class only).
    assert all(0.25 < chunk.mean() < 0.75 for chunk in labels.reshape(4, 100)), labels
