"""Thin Ray glue: build the TorchTrainer from a job config, fit, then report and register.

``fit(job)`` runs :func:`dnacnn.train.loop.train_loop_per_worker` on
``train.num_workers`` Ray Train workers (DDP over gloo on CPU, nccl on GPU)
and returns the final checkpoint. Running a job again with the same
``train.run_name`` and ``train.storage_path`` resumes it from its latest
checkpoint: that is how Ray Train V2 resumes (``resume_from_checkpoint`` and
``Trainer.restore`` are gone). A finished run given more epochs continues
training; a run that stopped early only re-scores its test split. What a run
trains (model, dataset, batch size) is recorded in ``<run>/run_identity.json``
once the run has a checkpoint; a run of the same name with a different identity
is refused rather than resumed. A run that failed before its first checkpoint
leaves nothing to resume and binds nothing.

Everything about the job that can be wrong is checked on the driver before any
worker starts: the model is built (and run on a dummy batch) from its config
and the dataset's window length, and the registered model's lineage is checked.

``train_and_register(job)`` adds, on the driver, the report figures and the
MLflow run, model version and alias (see :mod:`dnacnn.registry`).
"""

from __future__ import annotations

import contextlib
import math
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.train import (
    CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig,
)
from ray.train.torch import TorchConfig, TorchTrainer

from dnacnn.config import JobConfig, to_dict
from dnacnn.data.dataset_io import DatasetDescription, split_dir
from dnacnn.data.split_check import check_split_files
from dnacnn.folder_lock import exclusive
from dnacnn.output_folder import check_output_folder
from dnacnn.ray_cluster import check_reachable, cluster_to_join
from dnacnn.train import metrics
from dnacnn.train.ingest import EvalSplitDataConfig, load_datasets
from dnacnn.train.loop import train_loop_per_worker
from dnacnn.train.run_state import LoopSpec, TrainState, check_resumable, read_test_predictions
from dnacnn.train.run_identity import check_run_identity, record_run_identity, run_identity

log = logging.getLogger(__name__)

REPORT_DIR = "report"  # figures and test report, inside the run folder


@dataclass
class FitResult:
    """The outcome of :func:`fit`."""

    run_name: str
    run_dir: Path  # <storage_path>/<run_name>: Ray Train's run folder
    checkpoint_dir: Path  # the final checkpoint (model.json + model.safetensors + state)
    state: TrainState  # history, sessions, test metrics
    spec: LoopSpec
    description: DatasetDescription
    final_metrics: dict[str, float]  # epoch, best_epoch, best_val_*, test_*


@dataclass
class TrainSummary:
    """The outcome of :func:`train_and_register`: where everything went."""

    fit: FitResult
    figures: list[Path]
    run: Any  # dnacnn.registry.LoggedRun (imported with MLflow only when used)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ray_run": self.fit.run_name,
            "run_dir": str(self.fit.run_dir),
            "checkpoint": str(self.fit.checkpoint_dir),
            "epochs": self.fit.state.epoch,
            "sessions": self.fit.state.sessions,
            # an undefined metric (AUROC of a split with one class) is JSON's null, not Python's NaN
            "metrics": {k: None if isinstance(v, float) and math.isnan(v) else v
                        for k, v in self.fit.final_metrics.items()},
            "figures": [str(p) for p in self.figures],
            "mlflow": {
                "tracking_uri": self.run.tracking_uri,
                "run_id": self.run.run_id,
                "model_uri": self.run.model_uri,
                "registered_model": self.run.registered_name,
                "version": self.run.version,
                "alias": self.run.alias,
                "uri": (f"models:/{self.run.registered_name}@{self.run.alias}"
                        if self.run.alias else self.run.model_uri),
            },
        }


def loop_spec(job: JobConfig, description: DatasetDescription) -> LoopSpec:
    """What the workers need: the train section, the resolved model config, the task.

    ``seq_len`` and ``n_tasks`` of the model default to the dataset's; given, they must match.
    The model is built here, on the driver, and run on a dummy batch (:func:`check_model`),
    so that a bad config fails before any worker starts.
    """
    params = dict(job.model.params)
    for key, value in (("seq_len", description.seq_len), ("n_tasks", len(description.tasks))):
        if key in params and params[key] != value:
            raise ValueError(
                f"model.params.{key}={params[key]} does not match the dataset "
                f"{description.name!r} ({key}={value}); remove it to take the dataset's"
            )
        params[key] = value
    spec = LoopSpec(train=job.train, model_name=job.model.name,
                    model_config=check_model(job.model.name, params, description),
                    task_type=description.task_type, tasks=list(description.tasks),
                    rc_average=job.model.rc_average, dataset=description.name,
                    train_rows=int(description.rows.get("train", 0)))
    check_metric_names(job, description.task_type)
    return spec


def check_model(name: str, params: dict[str, Any], description: DatasetDescription) -> dict[str, Any]:
    """Type-check ``model.params`` against the model's config class, build the model and
    run it on two all-N windows of the dataset's length.

    Returns:
        the model config's fields (defaults filled in) as plain data.
    Raises:
        ValueError: one line naming ``model.params`` (and the key, for a wrong type)
            and the model's own reason, e.g. a window too short for its conv tower.
    """
    import torch

    from dnacnn.config import from_dict
    from dnacnn.models import MODELS, build

    origin = (f"(seq_len={description.seq_len} and n_tasks={len(description.tasks)} come from "
              f"dataset {description.name!r})")
    try:
        config = from_dict(MODELS[name][1], params, "model.params")
        model = build(name, config).eval()
        with torch.no_grad():
            out = model(torch.zeros(2, 4, description.seq_len))  # (2, T)
    except (ValueError, TypeError, RuntimeError) as err:
        reason = " ".join(str(err).split())  # one line
        raise ValueError(f"model {name!r}: {reason} {origin}") from None
    if tuple(out.shape) != (2, len(description.tasks)):
        raise ValueError(f"model {name!r} gives outputs of shape {tuple(out.shape)} for 2 windows, "
                         f"expected (2, {len(description.tasks)}) {origin}")
    return to_dict(config)


def check_metric_names(job: JobConfig, task_type: str) -> None:
    """Fail before training when ``train.monitor`` or ``mlflow.selection_metric`` is not a metric."""
    val = [f"val_{m}" for m in metrics.metric_names(task_type)]
    monitorable = ["train_loss", "train_accuracy", *val]
    if job.train.monitor not in monitorable:
        raise ValueError(f"train.monitor {job.train.monitor!r} is not a metric of a "
                         f"{task_type} task; choose one of {monitorable}")
    if job.mlflow.selection_metric not in val:
        raise ValueError(f"mlflow.selection_metric {job.mlflow.selection_metric!r} is not a "
                         f"validation metric of a {task_type} task; choose one of {val}")


def run_name(job: JobConfig, description: DatasetDescription) -> str:
    """``train.run_name``, or ``<model>-<dataset>``."""
    return job.train.run_name or f"{job.model.name}-{description.name}"


def storage_path(job: JobConfig) -> str:
    """``train.storage_path`` made absolute (URIs such as ``s3://...`` are kept)."""
    path = job.train.storage_path
    return path if "://" in path else str(Path(path).expanduser().resolve())


def build_trainer(spec: LoopSpec, datasets: dict[str, Any], name: str, storage: str):
    """The TorchTrainer for ``spec``: ScalingConfig, RunConfig (name, storage, failures,
    checkpoints kept), backend gloo on CPU / nccl on GPU."""
    tc = spec.train
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=spec.to_dict(),
        torch_config=TorchConfig(backend="nccl" if tc.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=tc.num_workers, use_gpu=tc.use_gpu),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=tc.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=tc.checkpoints_to_keep),
            # Ray Train's own INFO lines stay in its log files; its warnings still reach
            # the console (the per-report line escapes this filter: see dnacnn.train.quiet).
            logging_config=LoggingConfig(log_level="WARNING"),
        ),
        datasets=datasets,
        dataset_config=EvalSplitDataConfig(),
    )


def fit(job: JobConfig, address: str | None = None,
        preflight: Callable[[LoopSpec, DatasetDescription], None] | None = None) -> FitResult:
    """Train ``job`` on Ray Train; resume its run when one of the same name exists.

    Args:
        job: the job config.
        address: a Ray cluster to join; default ``RAY_ADDRESS`` or a local cluster.
        preflight: more checks of the resolved job (e.g. the registry's lineage), run
            after the model and metric checks, before the run identity is checked and
            before Ray starts.
    Returns:
        the final checkpoint (downloaded under ``<run_dir>/final`` when storage is remote)
        and what it records.
    Raises:
        FolderBusyError: another job is training the same run (same name and storage) now.
    """
    description = DatasetDescription.load(job.data.dataset)
    if description.empty_splits():
        raise ValueError(f"dataset {job.data.dataset}: {description.why_empty()}; training needs rows in "
                         "train, valid (early stopping, LR on plateau) and test (the final metrics)")
    check_split_files(job.data.dataset, description)
    spec = loop_spec(job, description)
    name, storage = run_name(job, description), storage_path(job)
    if (joining := cluster_to_join(address)) is not None:  # before the registry's store or the run's folder is made
        check_reachable(joining)
    if preflight is not None:
        preflight(spec, description)
    if "://" not in storage:
        check_output_folder(job.train.storage_path, "train.storage_path")  # as the user wrote it
        if (Path(storage) / name).exists() and not (Path(storage) / name).is_dir():
            raise ValueError(f"run {name}: {Path(storage) / name} is a file, not a run folder; "
                             "give another train.run_name (or train.storage_path)")
    with _run_lock(storage, name):  # first: the identity check writes into the run's folder
        if "://" not in storage:
            check_run_identity(Path(storage) / name, run_identity(job, description))
            check_resumable(Path(storage) / name)
        return _fit(job, address, spec, description, name, storage)


def _run_lock(storage: str, name: str) -> contextlib.AbstractContextManager:
    """One job at a time trains run ``name`` (``dnacnn.folder_lock``; a local storage only)."""
    if "://" in storage:
        return contextlib.nullcontext()
    return exclusive(Path(storage) / name, f"run {name} in {storage}",
                     "give another train.run_name (or train.storage_path)")


def _fit(job: JobConfig, address: str | None, spec: LoopSpec, description: DatasetDescription,
         name: str, storage: str) -> FitResult:
    """:func:`fit` once its checks passed: Ray Train, then the final checkpoint."""
    from dnacnn.ray_cluster import ClusterResourceError, Interrupted, init_ray

    started = init_ray(address, dashboard=True)  # Ray Train polls the state API the dashboard serves
    cpus = ray.cluster_resources().get("CPU", 0)
    gpus = ray.cluster_resources().get("GPU", 0)
    if started and (cpus < job.train.num_workers or (job.train.use_gpu and gpus < job.train.num_workers)):
        # a private local cluster cannot grow: Ray Train would wait for the workers for good
        ray.shutdown()
        kind, have = ("GPU", gpus) if job.train.use_gpu and gpus < job.train.num_workers else ("CPU", cpus)
        raise ClusterResourceError(
            f"the local Ray cluster (this machine) has {have:g} {kind}(s) and train.num_workers is "
            f"{job.train.num_workers} (one {kind} each); lower --num-workers, or join a bigger "
            "cluster (--address)")
    if not job.data.materialize and cpus <= job.train.num_workers:
        log.warning("data.materialize is false but the cluster has %s CPUs for %d training "
                    "workers: Ray Data gets no CPU to stream the splits with and training "
                    "waits until the cluster grows; set data.materialize: true on a node this "
                    "size", cpus, job.train.num_workers)
    datasets = load_datasets(job.data.dataset, job.data.materialize, job.train.num_workers,
                             job.train.seed)
    log.info("training %s on %s (%d workers) as run %s in %s", job.model.name,
             description.name, job.train.num_workers, name, storage)
    try:
        result = build_trainer(spec, datasets, name, storage).fit()
    except SystemExit:  # Ray Train's SIGINT handler ends an aborted run with sys.exit (status 0 or 1)
        raise Interrupted(f"training interrupted: run {name} keeps its checkpoints in {storage}/{name}; "
                          "run the same command again to resume it") from None
    finally:
        if "://" not in storage:
            record_run_identity(Path(storage) / name)
    if result.checkpoint is None:
        raise RuntimeError(f"run {name} ended without a checkpoint; see the Ray logs")
    checkpoint_dir = Path(result.checkpoint.path)
    if "://" in storage or not checkpoint_dir.is_dir():
        checkpoint_dir = Path(result.checkpoint.to_directory(str(Path(tempfile.mkdtemp()) / "final")))
    state = TrainState.load(checkpoint_dir)
    if not state.finished:
        raise RuntimeError(f"the latest checkpoint of run {name} ({checkpoint_dir}) is not final")
    return FitResult(
        run_name=name,
        run_dir=Path(result.path) if "://" not in storage else checkpoint_dir.parent,
        checkpoint_dir=checkpoint_dir,
        state=state,
        spec=spec,
        description=description,
        final_metrics=final_metrics(state),
    )


def final_metrics(state: TrainState) -> dict[str, float]:
    """epoch, best_epoch, stopped_early, best_val_* (at the best epoch) and test_*."""
    early = state.early_stopping
    best = next((r for r in state.history if r["epoch"] == early.get("best_epoch")), {})
    return {
        "epochs": float(state.epoch),
        "best_epoch": float(early.get("best_epoch") or 0),
        "stopped_early": float(early.get("stopped_epoch") is not None),
        **{f"best_{k}": float(v) for k, v in best.items() if k.startswith("val_")},
        **{k: float(v) for k, v in state.test.items()},
    }


def train_and_register(job: JobConfig, address: str | None = None) -> TrainSummary:
    """Fit, draw the report figures, log the run to MLflow, register the model, set its alias."""
    from dnacnn import registry
    from dnacnn.train.plots import report_figures

    def lineage_allows(spec: LoopSpec, description: DatasetDescription) -> None:
        registry.check_registration(job.mlflow, spec.model_name, description.name,
                                    registry.Lineage(spec.task_type, description.seq_len,
                                                     tuple(spec.tasks)))

    result = fit(job, address, preflight=lineage_allows)
    spec, state = result.spec, result.state
    predictions = read_test_predictions(result.checkpoint_dir)
    report_dir = result.run_dir / REPORT_DIR
    figures = report_figures(report_dir, state.history, predictions["y"], predictions["prob"],
                             spec.task_type, spec.tasks)
    summary = metrics.classification_summary(spec.task_type, predictions["y"],
                                             predictions["prob"], spec.tasks)
    (report_dir / "test_report.json").write_text(json.dumps(summary, indent=1))
    logged = registry.log_training_run(registry.TrainingRun(
        config=to_dict(job),
        checkpoint_dir=result.checkpoint_dir,
        model_name=spec.model_name,
        dataset_name=result.description.name,
        tasks=spec.tasks,
        task_type=spec.task_type,
        seq_len=result.description.seq_len,
        history=state.history,
        final_metrics=result.final_metrics,
        dataset_dir=Path(job.data.dataset),
        figures=figures,
        json_artifacts={"test_report.json": summary, "train_state.json": _state_dict(state),
                        "dataset.json": to_dict(result.description)},
        text_artifacts={"classification_report.txt": summary["classification_report"]},
        tags={"dnacnn.ray_run": result.run_name, "dnacnn.ray_run_dir": str(result.run_dir),
              "dnacnn.checkpoint": str(result.checkpoint_dir),
              "dnacnn.resumed_from_epoch": str(state.sessions[-1]["start_epoch"] - 1)},
        run_name=result.run_name,
        example=example_sequences(job.data.dataset),
    ), job.mlflow)
    log.info("run %s: checkpoint %s; MLflow run %s; model %s v%s (%s)", result.run_name,
             result.checkpoint_dir, logged.run_id, logged.registered_name, logged.version,
             logged.alias)
    return TrainSummary(fit=result, figures=figures, run=logged)


def example_sequences(dataset_dir: str | Path, n: int = 2) -> list[str]:
    """The first ``n`` test sequences as strings: the logged model's input example."""
    import pyarrow.parquet as pq

    from dnacnn.data.dataset_io import column_to_numpy
    from dnacnn.sequence import decode

    first = sorted(split_dir(dataset_dir, "test").glob("*.parquet"))[0]
    table = pq.ParquetFile(first).read_row_group(0, columns=["onehot"]).slice(0, n)
    decoded = decode(column_to_numpy(table.column("onehot")))
    return [decoded] if isinstance(decoded, str) else list(decoded)


def _state_dict(state: TrainState) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(state)
