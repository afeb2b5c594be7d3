"""Logging one training run: params, per-epoch metrics, provenance, figures, the pyfunc
model, its registered version and alias.

Training runs are logged from the Ray driver after ``TorchTrainer.fit`` returns,
not from rank 0 inside the workers: the tracking store (a sqlite file on the
driver's disk by default) need not be reachable from worker nodes, and a worker
that fails and restarts cannot leave a half-logged run. The per-epoch metrics
come from the history kept in the final checkpoint, so a resumed run logs its
whole history (steps = epochs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import dnacnn
from dnacnn.checkpoint_files import weights_sha256
from dnacnn.config import MlflowConfig
from dnacnn.registry.aliases import (
    LINEAGE_TAG, Lineage, assign_alias, check_lineage, registered_model_name, start_lineage,
)
from dnacnn.registry.provenance import flatten, git_state, input_files
from dnacnn.registry.pyfunc import log_pyfunc_model
from dnacnn.registry.tracking import setup_tracking

log = logging.getLogger(__name__)

#: The run's tag holding the sha256 of the weights it logged.
WEIGHTS_TAG = "dnacnn.weights_sha256"
#: The run's tag identifying what it logged: its weights, per-epoch history and final metrics
#: (a run is logged once; a resumed run that trained more epochs is another, even when early
#: stopping kept the same best weights).
LOGGED_TAG = "dnacnn.logged_sha256"


@dataclass
class TrainingRun:
    """What one training run produced, as :func:`log_training_run` logs it."""

    config: Mapping[str, Any]  # the whole job config as plain data (params and config.json)
    checkpoint_dir: Path  # the final checkpoint (model.json + model.safetensors)
    model_name: str  # key of dnacnn.models.MODELS
    dataset_name: str
    tasks: Sequence[str]  # T output names
    task_type: str  # "binary", "multitask" or "multiclass"
    seq_len: int  # L, the model's input window in bp
    history: Sequence[Mapping[str, float]]  # one row of metrics per epoch ("epoch" = step)
    final_metrics: Mapping[str, float]  # best_* (validation at the best epoch), test_*, ...
    dataset_dir: Path | None = None  # hashed into inputs.json (every file with its sha256)
    figures: Sequence[Path] = ()  # PNGs, logged under figures/
    json_artifacts: Mapping[str, Any] = field(default_factory=dict)  # {file name: content}
    text_artifacts: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    run_name: str | None = None
    example: Sequence[str] | None = None  # a few input sequences for the model's input example

    @property
    def lineage(self) -> Lineage:
        return Lineage(self.task_type, int(self.seq_len), tuple(self.tasks))


@dataclass
class LoggedRun:
    """What :func:`log_training_run` wrote."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    model_uri: str  # the logged pyfunc model (models:/m-... or runs:/.../model)
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None


def check_registration(cfg: MlflowConfig, model_name: str, dataset_name: str,
                       lineage: Lineage) -> None:
    """Before training: refuse a tracking store the run could not be logged to (``setup_tracking``
    raises), and a job whose model would be registered under a name that holds another
    lineage (see ``aliases.check_lineage``; nothing to check when ``cfg.register`` is false)."""
    setup_tracking(cfg)
    if cfg.register:
        check_lineage(registered_model_name(model_name, dataset_name, cfg), lineage,
                      cfg.new_lineage)


def log_training_run(run: TrainingRun, cfg: MlflowConfig) -> LoggedRun:
    """Log one training run, log its model, register it and give it an alias.

    Args:
        run: what the run produced.
        cfg: the ``mlflow`` section (where to log, whether and under which name to register).
    Returns:
        the run, model URI and registered version with its alias.
    Raises:
        LineageError: the registered model holds another lineage (checked before
            anything is logged) and ``cfg.new_lineage`` is false.
    """
    experiment_id = setup_tracking(cfg)
    name = registered_model_name(run.model_name, run.dataset_name, cfg)
    new_lineage = cfg.register and check_lineage(name, run.lineage, cfg.new_lineage)
    weights = weights_sha256(run.checkpoint_dir)
    what = hashlib.sha256(json.dumps([weights, list(map(dict, run.history)), dict(run.final_metrics)],
                                     sort_keys=True, default=float).encode()).hexdigest()
    logged = logged_before(experiment_id, what, name if cfg.register else None)
    if logged is not None:
        log.info("these weights were logged before (MLflow run %s%s): nothing logged again", logged.run_id,
                 f", version {logged.version} of {name}" if logged.version else "")
        return logged
    git = git_state()
    tags = {
        "dnacnn.version": dnacnn.__version__,
        "dnacnn.model": run.model_name,
        "dnacnn.dataset": run.dataset_name,
        "dnacnn.task_type": run.task_type,
        "mlflow.source.git.commit": git["commit"] or "unknown",
        "dnacnn.git_dirty": str(git["dirty"]),
        WEIGHTS_TAG: weights,
        LOGGED_TAG: what,
        **run.tags,
    }
    with mlflow.start_run(run_name=run.run_name, tags=tags) as active:
        mlflow.log_params(flatten(run.config))
        mlflow.log_dict(dict(run.config), "config.json")
        for row in run.history:
            step = int(row["epoch"])
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=step)
        mlflow.log_metrics({k: float(v) for k, v in run.final_metrics.items()})
        mlflow.log_text("".join(f"{t}\n" for t in run.tasks), "tasks.txt")
        if run.dataset_dir is not None:
            mlflow.log_dict({"dataset": str(Path(run.dataset_dir).resolve()),
                             "files": input_files(run.dataset_dir)}, "inputs.json")
        mlflow.log_dict({"git": git}, "code.json")
        for file_name, content in run.json_artifacts.items():
            mlflow.log_dict(content, file_name)
        for file_name, content in run.text_artifacts.items():
            mlflow.log_text(content, file_name)
        for path in run.figures:
            mlflow.log_artifact(str(path), "figures")
        info = log_pyfunc_model(run.checkpoint_dir, run.tasks, run.task_type, run.seq_len, run.example)
        result = LoggedRun(run_id=active.info.run_id, experiment_id=experiment_id,
                           tracking_uri=mlflow.get_tracking_uri(), model_uri=info.model_uri)
        mlflow.set_tag("dnacnn.model_uri", info.model_uri)
        if cfg.register:
            client = MlflowClient()
            version = register_version(client, name, info.model_uri, info.model_id,
                                       active.info.run_id)
            if new_lineage or LINEAGE_TAG not in client.get_registered_model(name).tags:
                start_lineage(name, run.lineage, client)
            client.set_model_version_tag(name, version, LINEAGE_TAG, run.lineage.to_json())
            value = float(run.final_metrics.get(f"best_{cfg.selection_metric}", math.nan))
            alias = assign_alias(name, version, value, cfg.selection_metric, cfg.selection_mode,
                                 client)
            mlflow.set_tags({"dnacnn.registered_model": name,
                             "dnacnn.registered_version": version, "dnacnn.alias": alias})
            result.registered_name, result.version, result.alias = name, version, alias
    return result


def logged_before(experiment_id: str, logged: str, registered_name: str | None) -> LoggedRun | None:
    """The finished run of the experiment that logged the same thing (``logged``: the
    :data:`LOGGED_TAG` digest of weights, history and final metrics) and, with a
    ``registered_name``, registered it under that name; else None. Running a finished
    training job again (same ``train.run_name``) gives the same final checkpoint and
    history: it is not logged and registered a second time."""
    client = MlflowClient()
    query = f"tags.`{LOGGED_TAG}` = '{logged}' and attributes.status = 'FINISHED'"  # a hex digest: no quoting
    for found in client.search_runs([experiment_id], query, max_results=100, order_by=["attributes.start_time ASC"]):
        tags = found.data.tags
        if "dnacnn.model_uri" not in tags or tags.get("dnacnn.registered_model") != registered_name:
            continue
        version, alias = tags.get("dnacnn.registered_version"), None
        if registered_name is not None:
            try:  # its alias now (a later, better version may have taken "champion")
                aliases = client.get_model_version(registered_name, version).aliases
            except MlflowException:  # the version was deleted since: register these weights again
                continue
            alias = aliases[0] if aliases else None
        return LoggedRun(run_id=found.info.run_id, experiment_id=experiment_id,
                         tracking_uri=mlflow.get_tracking_uri(), model_uri=tags["dnacnn.model_uri"],
                         registered_name=registered_name, version=version, alias=alias)
    return None


def register_version(client: MlflowClient, name: str, model_uri: str, model_id: str | None,
                     run_id: str) -> str:
    """Register ``model_uri`` as the next version of ``name`` (created if new); its number.

    The client's calls rather than ``mlflow.register_model``, which prints its progress
    ("Successfully registered model", "Created version") to the job's console.
    """
    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":  # registered meanwhile by another run
            raise
    return str(client.create_model_version(name, model_uri, run_id=run_id,
                                           model_id=model_id).version)
