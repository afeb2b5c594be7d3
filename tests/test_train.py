"""Training: metrics against sklearn, callbacks, checkpoints, run identity, and 2-worker
DDP runs on Ray Train.

The Ray tests (marked slow) train a small multi-scale CNN on a motif-implant
dataset built here (2 workers, 2 then 3 epochs), register it in MLflow, load it
back in a fresh interpreter, and resume the run from its checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import matplotlib.pyplot as plt
import pytest
import torch
from sklearn import metrics as skm

from dnacnn.config import DatasetConfig, JobConfig, MlflowConfig, ModelConfig, TrainConfig
from dnacnn.data.dataset_io import DatasetDescription, column_to_numpy, make_table, split_dir
from dnacnn.sequence import decode
from dnacnn.train import metrics
from dnacnn.train.callbacks import EarlyStopping, ReduceLROnPlateau
from dnacnn.train.loop import onehot_to_x, per_worker_batch
from dnacnn.train.run_state import (
    LoopSpec,
    TrainState,
    build_model,
    restore_training_state,
    read_test_predictions,
    save_checkpoint,
)
from dnacnn.train.plots import report_figures

# ---------------------------------------------------------------------------
# Metrics against sklearn
# ---------------------------------------------------------------------------


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(np.float32)
    logits = rng.normal(size=200) + 1.5 * (y - 0.5)
    prob = 1 / (1 + np.exp(-logits))
    got = metrics.evaluate("binary", y[:, None], logits[:, None], prefix="val_")
    pred = prob > 0.5
    assert got["val_accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["val_precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["val_recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["val_auroc"] == pytest.approx(skm.roc_auc_score(y, prob))
    assert got["val_auprc"] == pytest.approx(skm.average_precision_score(y, prob))
    torch_loss = torch.nn.BCEWithLogitsLoss()(torch.tensor(logits), torch.tensor(y, dtype=torch.float64))
    assert got["val_loss"] == pytest.approx(float(torch_loss))
    assert sorted(k[4:] for k in got) == sorted(metrics.metric_names("binary"))


def test_multitask_skips_one_class_tasks():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (100, 4)).astype(np.float32)
    y[:, 2] = 1  # one class only: no AUROC
    prob = np.clip(y * 0.6 + rng.random((100, 4)) * 0.5, 0, 1)
    got = metrics.multitask_metrics(y, prob)
    aurocs = [skm.roc_auc_score(y[:, t], prob[:, t]) for t in (0, 1, 3)]
    auprcs = [skm.average_precision_score(y[:, t], prob[:, t]) for t in (0, 1, 3)]
    assert got["auroc"] == pytest.approx(np.mean(aurocs))
    assert got["auprc"] == pytest.approx(np.mean(auprcs))
    assert (got["tasks_scored"], got["tasks_skipped"]) == (3, 1)
    assert got["accuracy"] == pytest.approx(((prob > 0.5) == (y > 0.5)).mean())
    auroc, _ = metrics.per_task_auc(y, prob)
    assert math.isnan(auroc[2]) and auroc[0] == pytest.approx(aurocs[0])
    # Nothing scorable: NaN means, not an error.
    none = metrics.multitask_metrics(np.ones((5, 2)), np.full((5, 2), 0.7))
    assert math.isnan(none["auroc"]) and none["tasks_skipped"] == 2


def test_multiclass_accuracy_loss_and_report():
    rng = np.random.default_rng(2)
    classes = rng.integers(0, 3, 90)
    y = np.eye(3, dtype=np.float32)[classes]
    logits = rng.normal(size=(90, 3)) + 2 * y
    got = metrics.evaluate("multiclass", y, logits)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(classes, logits.argmax(1)))
    ce = torch.nn.CrossEntropyLoss()(torch.tensor(logits), torch.tensor(classes))
    assert got["loss"] == pytest.approx(float(ce))
    prob = metrics.probabilities("multiclass", logits)
    np.testing.assert_allclose(prob.sum(1), 1.0)
    summary = metrics.classification_summary("multiclass", y, prob, ["a", "b", "c"])
    assert summary["confusion_matrix"] == skm.confusion_matrix(classes, prob.argmax(1)).tolist()
    assert summary["labels"] == ["a", "b", "c"] and "precision" in summary["classification_report"]
    assert set(summary["per_task"]) == {"a", "b", "c"}


def test_loss_is_stable_for_large_logits():
    y = np.array([[1.0], [0.0]])
    logits = np.array([[800.0], [-800.0]])
    assert metrics.loss("binary", y, logits) == pytest.approx(0.0, abs=1e-12)
    assert metrics.loss("binary", 1 - y, logits) == pytest.approx(800.0)


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------


def test_early_stopping_stops_and_restores_best_weights():
    model = torch.nn.Linear(2, 1)
    early = EarlyStopping(patience=2)
    losses = [1.0, 0.8, 0.9, 0.85, 0.7]
    stopped_at = None
    for epoch, value in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)  # weights mark the epoch
        if early.step(value, epoch, model):
            stopped_at = epoch
            break
    assert stopped_at == 4 and early.best_epoch == 2 and early.best == 0.8
    assert early.restore_best(model) and float(model.weight.detach()[0, 0]) == 2.0
    # State round trip: a resumed stopper decides the same.
    again = EarlyStopping(patience=2)
    again.load_state_dict(json.loads(json.dumps(early.state_dict())))
    assert again.should_stop and again.best_epoch == 2


def test_early_stopping_max_mode_and_nan():
    early = EarlyStopping(patience=1, mode="max")
    assert not early.step(0.7, 1)
    assert early.step(float("nan"), 2)  # NaN is never an improvement
    assert early.best == 0.7


def test_reduce_lr_on_plateau_like_keras():
    plateau = ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.2, min_delta=1e-4)
    lr, lrs = 1.0, []
    for value in [1.0, 1.0, 1.0, 0.5, 0.5, 0.49995, 0.5, 0.5, 0.5, 0.5]:
        lr = plateau.step(value, lr)
        lrs.append(lr)
    # wait hits 2 at epochs 3 and 6 (0.49995 is not better by min_delta); floor at 0.2.
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]
    resumed = ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.2)
    resumed.load_state_dict(plateau.state_dict())
    assert resumed.state_dict() == plateau.state_dict()


# ---------------------------------------------------------------------------
# Loop helpers and checkpoints (no Ray)
# ---------------------------------------------------------------------------


def small_spec(**train) -> LoopSpec:
    return LoopSpec(
        train=TrainConfig(**train), model_name="multiscale",
        model_config={"seq_len": 30, "n_tasks": 2, "widths": [3], "filters": 4, "dense": [4],
                      "dense_dropouts": [0.0]},
        task_type="multitask", tasks=["a", "b"], rc_average=True, dataset="toy",
    )


def test_onehot_to_x_and_batches():
    onehot = np.eye(4, dtype=np.uint8)[np.array([[0, 1, 2, 3, 0]])]  # (1, 5, 4)
    x = onehot_to_x(onehot)
    assert x.shape == (1, 4, 5) and x.dtype == torch.float32
    assert torch.equal(x[0].argmax(0), torch.tensor([0, 1, 2, 3, 0]))
    assert per_worker_batch(64, 2) == 32 and per_worker_batch(65, 2) == 33
    assert LoopSpec.from_dict(small_spec().to_dict()) == small_spec()


def test_checkpoint_round_trip(tmp_path):
    from dnacnn.models import load

    spec = small_spec()
    torch.manual_seed(0)
    model = build_model(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.rand(3, 4, 30)
    model(x).sum().backward()
    optimizer.step()
    early, plateau = EarlyStopping(3), ReduceLROnPlateau()
    early.step(0.5, 1, model)  # best = epoch-1 weights
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # now last != best
    state = TrainState(epoch=1, lr=0.01, history=[{"epoch": 1, "val_loss": 0.5}])
    save_checkpoint(tmp_path, spec, model, early, plateau, optimizer, state)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"model.json", "model.safetensors", "task.json", "last.safetensors",
                     "optimizer.pt", "train_state.json"}
    # model.* is the best model, deployable as is; RC averaging is recorded.
    best = load(tmp_path)
    assert best.rc_average and best.tasks == ["a", "b"]
    model.eval()
    early.restore_best(model)
    with torch.no_grad():
        assert torch.allclose(best.model(x), model(x))
    # Resuming restores last weights, best weights, counters and Adam's state.
    fresh, early2, plateau2 = build_model(spec), EarlyStopping(3), ReduceLROnPlateau()
    state2, opt_state = restore_training_state(tmp_path, fresh, early2, plateau2)
    assert state2.epoch == 1 and early2.best_epoch == 1
    assert set(early2.best_weights) == set(fresh.state_dict())
    optimizer2 = torch.optim.Adam(fresh.parameters(), lr=0.01)
    optimizer2.load_state_dict(opt_state)
    assert optimizer2.state_dict()["state"][0]["step"] == 1
    assert json.loads((tmp_path / "task.json").read_text())["task_type"] == "multitask"


@pytest.mark.parametrize("task_type", ["binary", "multitask", "multiclass"])
def test_report_figures(tmp_path, task_type):
    rng = np.random.default_rng(3)
    tasks = ["t"] if task_type == "binary" else ["a", "b", "c"]
    if task_type == "multiclass":
        y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
        prob = metrics.probabilities("multiclass", rng.normal(size=(60, 3)) + 2 * y)
    else:
        y = rng.integers(0, 2, (60, len(tasks))).astype(np.float32)
        prob = np.clip(0.5 * y + 0.5 * rng.random(y.shape), 0, 1)
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.5 + e / 10,
                "val_accuracy": 0.5 + e / 12} for e in (1, 2, 3)]
    paths = report_figures(tmp_path, history, y, prob, task_type, tasks)
    expected = {"training.png", "roc_pr.png"} | ({"task_auroc.png"} if task_type == "multitask" else set())
    assert {p.name for p in paths} == expected
    # Every panel is drawn: training.png has 2 x 2 (history, history, confusion matrix,
    # score distribution), roc_pr.png 1 x 2 (ROC, PR), task_auroc.png one histogram.
    panels = {"training.png": (2, 2), "roc_pr.png": (1, 2), "task_auroc.png": (1, 1)}
    for path in paths:
        rows, cols = panels[path.name]
        for panel in split_panels(plt.imread(path), rows, cols):
            drawn = panel.min(axis=2) < 0.9  # not white: axes, text, lines, cells
            colour = np.ptp(panel, axis=2) > 0.2  # not grey: curves, bars, the colour map
            assert drawn.mean() > 0.02 and colour.mean() > 0.001, (path.name, drawn.mean(), colour.mean())


def split_panels(image: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """A figure's RGB pixels (H, W, 3) cut into its rows x cols grid of panels."""
    h, w = image.shape[0] // rows, image.shape[1] // cols
    return [image[r * h:(r + 1) * h, c * w:(c + 1) * w, :3] for r in range(rows) for c in range(cols)]


def test_run_identity_binds_only_once_a_checkpoint_exists(tmp_path):
    from dnacnn.train.run_state import STATE_FILE
    from dnacnn.train.run_identity import IDENTITY_FILE, check_run_identity, record_run_identity

    run_dir = tmp_path / "runs" / "r"
    first, other = {"model": {"name": "basset"}}, {"model": {"name": "simple"}}
    # A session that fails before its first checkpoint binds nothing.
    check_run_identity(run_dir, first)
    record_run_identity(run_dir)
    assert not (run_dir / IDENTITY_FILE).exists()
    check_run_identity(run_dir, other)  # another model may take the name
    # Once a checkpoint exists, the session's identity is the run's.
    (run_dir / "checkpoint_1").mkdir()
    (run_dir / "checkpoint_1" / STATE_FILE).write_text("{}")
    record_run_identity(run_dir)
    assert json.loads((run_dir / IDENTITY_FILE).read_text()) == other
    with pytest.raises(ValueError, match="different model; resuming it would mix two trainings"):
        check_run_identity(run_dir, first)
    check_run_identity(run_dir, other)  # the same job resumes


def test_a_killed_session_with_a_checkpoint_still_binds(tmp_path):
    """The driver died after the first checkpoint, before recording the identity."""
    from dnacnn.train.run_state import STATE_FILE
    from dnacnn.train.run_identity import check_run_identity

    run_dir = tmp_path / "r"
    check_run_identity(run_dir, {"batch_size": 32})
    (run_dir / "checkpoint_1").mkdir()
    (run_dir / "checkpoint_1" / STATE_FILE).write_text("{}")
    with pytest.raises(ValueError, match="different batch_size"):
        check_run_identity(run_dir, {"batch_size": 16})


# ---------------------------------------------------------------------------
# Ray Train: 2 DDP workers, MLflow, resume
# ---------------------------------------------------------------------------

L = 60
# Odd sizes: no row may be dropped. 1,200 training rows and 16 filters: two epochs learn the
# motif whatever order Ray Data deals the rows in (test AUROC 0.998-1.000 over 12 orders in a
# single-process replay; with 600 rows and 8 filters one order in 12 stayed near 0.7).
ROWS = {"train": 1200, "valid": 161, "test": 157}


def write_motif_dataset(directory: Path, seed: int = 0) -> Path:
    """A binary task: label 1 when an 8 bp motif is implanted at a random position."""
    rng = np.random.default_rng(seed)
    motif = np.array([0, 3, 2, 1, 1, 2, 3, 0])  # ATGCCGTA
    for split, n in ROWS.items():
        codes = rng.integers(0, 4, (n, L))
        y = (rng.random(n) < 0.5).astype(np.float32)
        for i in np.flatnonzero(y):
            p = rng.integers(0, L - len(motif))
            codes[i, p:p + len(motif)] = motif
        out = split_dir(directory, split)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(make_table(np.eye(4, dtype=np.uint8)[codes], y[:, None]), out / "part-0.parquet")
    DatasetDescription(name="motif_toy", task_type="binary", tasks=["motif"], seq_len=L,
                       rows=dict(ROWS)).save(directory)
    return directory


@pytest.fixture(scope="module")
def mlflow_env(tmp_path_factory):
    """One sqlite tracking store for the module's Ray runs."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> JobConfig:
    root = tmp_path_factory.mktemp("train")
    dataset = write_motif_dataset(root / "dataset")
    return JobConfig(
        data=DatasetConfig(dataset=str(dataset)),
        model=ModelConfig(name="multiscale", params={"widths": [5, 9], "filters": 16, "dense": [16],
                                                     "dense_dropouts": [0.1]}),
        train=TrainConfig(epochs=2, num_workers=2, batch_size=32, lr=0.01, run_name="e2e",
                          storage_path=str(root / "runs"), rc_augment=0.5, max_shift=2),
        mlflow=MlflowConfig(experiment="e2e", registered_model="multiscale-motif_toy"),
    )


@pytest.fixture(scope="module")
def first_run(ray_session, mlflow_env, job):
    from dnacnn.train.trainer import train_and_register

    return train_and_register(job)


# Another team's process: dnacnn not installed (the editable install's path dropped); the
# model carries the package's code.
FRESH_PROCESS = """
import json, sys
sys.path = [p for p in sys.path if not p.rstrip("/").endswith("/platform")]
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.DataFrame({"sequence": json.loads(sys.argv[2])}))
print(json.dumps({"columns": list(out.columns), "values": out.values.tolist(),
                  "dnacnn_modules": sorted(m for m in sys.modules if m.startswith("dnacnn.")),
                  "dnacnn_from": sys.modules["dnacnn"].__file__}))
"""


@pytest.mark.slow
def test_ddp_run_to_registry_and_back_in_a_fresh_process(first_run, job, mlflow_env):
    from dnacnn import registry
    from dnacnn.models import load

    fit, run = first_run.fit, first_run.run
    state = fit.state
    assert state.finished and state.epoch == 2
    assert state.sessions == [{"start_epoch": 1, "world_size": 2}]
    assert [r["epoch"] for r in state.history] == [1, 2]
    assert {"train_loss", "train_accuracy", "val_loss", "val_auroc", "val_auprc", "val_precision",
            "val_recall", "lr"} <= set(state.history[-1])
    assert fit.final_metrics["test_auroc"] > 0.8, fit.final_metrics  # the motif is learnt
    # Every test row scored exactly once across the two workers, gathered back in split order.
    table = pq.read_table(split_dir(job.data.dataset, "test"))
    test = read_test_predictions(fit.checkpoint_dir)
    np.testing.assert_array_equal(test["y"], column_to_numpy(table.column("labels")))
    assert {p.name for p in first_run.figures} == {"training.png", "roc_pr.png"}
    assert (fit.run_dir / "report" / "test_report.json").is_file()

    # Registered with the champion alias (the first version).
    assert (run.registered_name, run.version, run.alias) == ("multiscale-motif_toy", "1", "champion")
    folder = registry.fetch_model_dir("models:/multiscale-motif_toy@champion")
    assert {"model.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}

    # Same predictions: the training checkpoint here, the registered pyfunc in a fresh process.
    onehot = column_to_numpy(table.column("onehot"))[:12]
    sequences = decode(onehot)
    local = load(fit.checkpoint_dir)
    with torch.no_grad():
        expected = torch.sigmoid(local.model(onehot_to_x(onehot))).double().numpy()
    np.testing.assert_allclose(expected, test["prob"][:12], atol=1e-5)  # what the workers computed
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, "models:/multiscale-motif_toy@champion",
         json.dumps(sequences)],
        capture_output=True, text=True, env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_env},
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["columns"] == ["motif"]
    assert "/code/dnacnn/" in result["dnacnn_from"], result["dnacnn_from"]  # the model's own copy
    np.testing.assert_allclose(np.array(result["values"]), expected, rtol=0, atol=1e-6)
    fetched = registry.load_model("models:/multiscale-motif_toy@champion")
    with torch.no_grad():
        again = torch.sigmoid(fetched.model(onehot_to_x(onehot))).double().numpy()
    np.testing.assert_array_equal(again, expected)


@pytest.mark.slow
def test_rerun_with_same_name_resumes_from_checkpoint(first_run, job, mlflow_env):
    from dataclasses import replace

    from dnacnn.train.trainer import train_and_register

    longer = replace(job, train=replace(job.train, epochs=3))
    second = train_and_register(longer)
    state = second.fit.state
    assert state.sessions == [{"start_epoch": 1, "world_size": 2}, {"start_epoch": 3, "world_size": 2}]
    assert [r["epoch"] for r in state.history] == [1, 2, 3]
    assert state.history[:2] == first_run.fit.state.history  # epochs 1-2 not trained again
    assert second.run.version == "2"
    # The alias rule on val_loss (min) at each run's best epoch.
    first_best = first_run.fit.final_metrics["best_val_loss"]
    second_best = second.fit.final_metrics["best_val_loss"]
    assert second.run.alias == ("champion" if second_best < first_best else "challenger")


@pytest.mark.slow
def test_a_run_of_something_else_is_refused_not_resumed(first_run, job, mlflow_env):
    from dataclasses import replace

    from dnacnn.train.trainer import fit

    other_model = replace(job, model=replace(job.model, params={**job.model.params, "filters": 4}))
    with pytest.raises(ValueError, match=r"different model.*another train.run_name"):
        fit(other_model)
    other_batch = replace(job, train=replace(job.train, batch_size=16))
    with pytest.raises(ValueError, match="different batch_size"):
        fit(other_batch)


@pytest.mark.slow
def test_a_killed_worker_is_survived(ray_session, mlflow_env, job, tmp_path):
    """SIGKILL one DDP worker after the first checkpoint: with max_failures=1 Ray Train
    restarts the worker group, which resumes from the latest checkpoint."""
    import threading
    import time
    from dataclasses import replace

    import psutil

    from dnacnn.train.trainer import fit

    storage = tmp_path / "runs"
    killed = replace(job, train=replace(job.train, epochs=8, run_name="killed", max_failures=1,
                                        storage_path=str(storage), early_stopping_patience=20))
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["fit"] = fit(killed)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    # the snapshot is written once the controller has registered a checkpoint
    while not (storage / "killed" / "checkpoint_manager_snapshot.json").exists() \
            and time.monotonic() < deadline:
        assert thread.is_alive(), outcome
        time.sleep(0.05)
    # This session's workers only (descendants of this process, which started the local
    # cluster): other Ray clusters may train on the same machine.
    def cmdline(p: psutil.Process) -> str:
        try:
            return " ".join(p.cmdline())
        except psutil.Error:  # gone since listed
            return ""

    workers = [p for p in psutil.Process().children(recursive=True)
               if "ray::RayTrainWorker" in cmdline(p)]
    assert len(workers) == 2, [cmdline(p) for p in workers]
    workers[1].kill()
    thread.join(600)
    assert "fit" in outcome, outcome.get("error")
    state = outcome["fit"].state
    assert state.finished
    assert [r["epoch"] for r in state.history] == list(range(1, 9))  # each epoch once
    assert len(state.sessions) == 2 and state.sessions[0]["start_epoch"] == 1
    assert 1 < state.sessions[1]["start_epoch"] <= 8  # resumed, not started over
    assert len(read_test_predictions(outcome["fit"].checkpoint_dir)["y"]) == ROWS["test"]


@pytest.mark.slow
def test_streaming_from_parquet_scores_every_test_row(ray_session, mlflow_env, job, tmp_path):
    """``data.materialize: false``: splits stream from Parquet through Ray Data (one
    training worker, so that Ray Data has a CPU to read with on this 2-CPU cluster)."""
    from dataclasses import replace

    from dnacnn.train.trainer import fit

    streamed = replace(job, data=replace(job.data, materialize=False),
                       train=replace(job.train, num_workers=1, epochs=4, run_name="streamed",
                                     storage_path=str(tmp_path / "runs")))
    result = fit(streamed)
    assert result.state.finished and [r["epoch"] for r in result.state.history] == [1, 2, 3, 4]
    assert result.final_metrics["test_auroc"] > 0.8, result.final_metrics
    test = read_test_predictions(result.checkpoint_dir)
    labels = column_to_numpy(pq.read_table(split_dir(job.data.dataset, "test")).column("labels"))
    assert len(test["y"]) == len(labels)  # every row once, in arbitrary order
    np.testing.assert_array_equal(np.sort(test["y"][:, 0]), np.sort(labels[:, 0]))
