"""MLflow: track training runs, register models, pick aliases, load models back.

Where things go:
    tracking URI   ``MLFLOW_TRACKING_URI`` if set, else ``mlflow.tracking_uri`` of
                   the job config, else ``sqlite:///<data_dir>/mlflow.db`` (absolute);
                   artifacts of a sqlite store go to ``mlartifacts/`` beside the db.
    model name     ``<model>-<dataset>`` (``basset-basset164``) unless configured.
    aliases        a new version becomes ``champion`` when its validation metric
                   beats the current champion's (or there is none), else ``challenger``.

Training runs are logged from the Ray driver after ``TorchTrainer.fit`` returns,
not from rank 0 inside the workers: the tracking store (a sqlite file on the
driver's disk by default) need not be reachable from worker nodes, and a worker
that fails and restarts cannot leave a half-logged run. The per-epoch metrics
come from the history kept in the final checkpoint, so a resumed run logs its
whole history (steps = epochs).

Models are logged as a pyfunc "model from code" (:class:`DnaCnnModel`): the
network is rebuilt from the checkpoint artifact (``model.json`` +
``model.safetensors``); no torch module and no Python object is pickled.
Other teams use it without this package's internals::

    model = mlflow.pyfunc.load_model("models:/basset-basset164@champion")
    probs = model.predict(pd.DataFrame({"sequence": ["ACGT...", ...]}))  # one column per task

The pyfunc imports ``dnacnn`` (installed in the serving environment) to rebuild the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

import dnacnn
from dnacnn.config import MlflowConfig
from dnacnn.models import LoadedModel, load, predict_sequences

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"  # name of the logged pyfunc model inside a run
CHECKPOINT_ARTIFACT = "checkpoint"  # key of the checkpoint folder in the pyfunc's artifacts
CHECKPOINT_FILES = ("model.json", "model.safetensors", "task.json")
URI_SCHEMES = ("models:/", "runs:/")

# The pyfunc entry point, logged as a "model from code": executed when the model loads.
_MODEL_CODE = '''\
"""dnacnn pyfunc model: the network is rebuilt from the checkpoint artifact
(model.json + model.safetensors) by dnacnn.registry.DnaCnnModel; nothing is unpickled."""
import mlflow

from dnacnn.registry import DnaCnnModel

mlflow.models.set_model(DnaCnnModel())
'''


# ---------------------------------------------------------------------------
# Tracking setup
# ---------------------------------------------------------------------------


def default_tracking_uri(cfg: MlflowConfig | None = None) -> str:
    """The tracking URI for ``cfg``: the environment's, the config's, or sqlite in data_dir."""
    cfg = cfg or MlflowConfig()
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if cfg.tracking_uri:
        return cfg.tracking_uri
    data_dir = Path(cfg.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'mlflow.db'}"


def artifact_root(tracking_uri: str) -> str | None:
    """``mlartifacts/`` beside a sqlite db (as a file URI); None lets a server decide."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def setup_tracking(cfg: MlflowConfig | None = None) -> str:
    """Point MLflow at the tracking store of ``cfg`` and select (or create) its experiment.

    Returns:
        the experiment id.
    """
    cfg = cfg or MlflowConfig()
    uri = default_tracking_uri(cfg)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        root = artifact_root(uri)
        location = f"{root}/{cfg.experiment}" if root else None
        experiment_id = mlflow.create_experiment(cfg.experiment, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _ensure_tracking(tracking_uri: str | None) -> None:
    """Use ``tracking_uri``; else ``MLFLOW_TRACKING_URI``; else one this process already set;
    else the default (``sqlite:///data/mlflow.db``)."""
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    elif not is_tracking_uri_set():
        mlflow.set_tracking_uri(default_tracking_uri())


# ---------------------------------------------------------------------------
# Provenance: input files, code version, config
# ---------------------------------------------------------------------------


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
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


# ---------------------------------------------------------------------------
# The pyfunc model
# ---------------------------------------------------------------------------


def model_signature(tasks: Sequence[str]) -> ModelSignature:
    """Input: a ``sequence`` string column. Output: one float column per task. Param: batch_size."""
    return ModelSignature(
        inputs=Schema([ColSpec("string", "sequence")]),
        outputs=Schema([ColSpec("double", t) for t in tasks]),
        params=ParamSchema([ParamSpec("batch_size", "long", 256)]),
    )


class DnaCnnModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: DataFrame with a ``sequence`` column -> per-task probabilities.

    The network is rebuilt in :meth:`load_context` from the ``checkpoint``
    artifact (``dnacnn.models.load``); its ``task_type`` is the checkpoint's, and
    probabilities come from the one prediction path (``dnacnn.models.predict``).
    """

    def load_context(self, context) -> None:
        self.loaded = load(Path(context.artifacts[CHECKPOINT_ARTIFACT]))

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """model_input: DataFrame with a ``sequence`` column (or a list / Series of strings)."""
        if isinstance(model_input, pd.DataFrame):
            if "sequence" not in model_input.columns:
                raise ValueError(
                    f"expected a DataFrame with a 'sequence' column, got columns "
                    f"{list(model_input.columns)}"
                )
            sequences = model_input["sequence"].tolist()
        else:
            sequences = list(model_input)
        batch_size = int((params or {}).get("batch_size", 256))
        loaded = self.loaded
        prob = predict_sequences(loaded.model, sequences, loaded.seq_len, loaded.task_type, batch_size)
        return pd.DataFrame(prob, columns=list(loaded.tasks))


def _checkpoint_copy(checkpoint_dir: Path, dst: Path) -> Path:
    """Copy the deployable files of a checkpoint (no optimizer, no training state) to ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        if (checkpoint_dir / name).exists():
            shutil.copy2(checkpoint_dir / name, dst / name)
    return dst


def log_pyfunc_model(checkpoint_dir: str | Path, tasks: Sequence[str], task_type: str,
                     example: Sequence[str] | None = None):
    """Log the checkpoint as a pyfunc model in the active run.

    Args:
        checkpoint_dir: a folder with model.json + model.safetensors.
        tasks: the T output names (the signature's columns).
        task_type: "binary", "multitask" or "multiclass" (softmax for multiclass).
        example: a few sequences for the input example (optional).
    Returns:
        MLflow's ModelInfo.
    """
    import safetensors
    import torch

    with tempfile.TemporaryDirectory(prefix="dnacnn-pyfunc-") as tmp:
        code = Path(tmp) / "dnacnn_pyfunc.py"
        code.write_text(_MODEL_CODE)
        ckpt = _checkpoint_copy(Path(checkpoint_dir), Path(tmp) / CHECKPOINT_ARTIFACT)
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(code),
            artifacts={CHECKPOINT_ARTIFACT: str(ckpt)},
            model_config={"task_type": task_type},
            signature=model_signature(tasks),
            input_example=pd.DataFrame({"sequence": list(example)}) if example else None,
            # Given, not inferred (inference loads the model in a subprocess). The
            # network's code is the dnacnn package itself, installed where the model runs.
            pip_requirements=[
                f"dnacnn=={dnacnn.__version__}",
                f"mlflow=={mlflow.__version__}",
                f"torch=={torch.__version__.split('+')[0]}",
                f"safetensors=={safetensors.__version__}",
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
            ],
        )


# ---------------------------------------------------------------------------
# Registration and aliases
# ---------------------------------------------------------------------------


def registered_model_name(model_name: str, dataset_name: str, cfg: MlflowConfig | None = None) -> str:
    """``cfg.registered_model`` or ``<model>-<dataset>``, e.g. ``basset-basset164``."""
    if cfg is not None and cfg.registered_model:
        return cfg.registered_model
    return f"{model_name}-{dataset_name}"


def _is_better(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "min" else value > than


def assign_alias(
    name: str, version: str | int, value: float, metric: str, mode: str,
    client: MlflowClient | None = None,
) -> str:
    """Give a new model version ``champion`` or ``challenger``.

    The version becomes champion when there is no champion yet, or when
    ``value`` (its ``metric`` on the validation split) beats the champion's
    (lower for ``mode="min"``, higher for ``"max"``); otherwise challenger.
    The values are kept as version tags ``selection_metric`` / ``selection_value``.
    A NaN value never wins; a champion logged under another metric is kept.

    Returns:
        the alias given: "champion" or "challenger".
    """
    client = client or MlflowClient()
    version = str(version)
    client.set_model_version_tag(name, version, "selection_metric", metric)
    client.set_model_version_tag(name, version, "selection_value", repr(float(value)))
    client.set_model_version_tag(name, version, "selection_mode", mode)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is None:
        alias = CHAMPION if not math.isnan(value) else CHALLENGER
    elif champion.tags.get("selection_metric") != metric:
        log.warning("champion %s v%s was selected on %r, not %r: keeping it; v%s is challenger",
                    name, champion.version, champion.tags.get("selection_metric"), metric, version)
        alias = CHALLENGER
    else:
        best = float(champion.tags["selection_value"])
        alias = CHAMPION if not math.isnan(value) and (
            math.isnan(best) or _is_better(value, best, mode)) else CHALLENGER
        log.info("%s v%s %s=%.5g vs champion v%s %.5g: %s", name, version, metric, value,
                 champion.version, best, alias)
    client.set_registered_model_alias(name, alias, version)
    return alias


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

    @property
    def registry_uri(self) -> str | None:
        """``models:/NAME/VERSION`` of the registered version."""
        return f"models:/{self.registered_name}/{self.version}" if self.version else None


def log_training_run(
    *,
    cfg: MlflowConfig,
    config: Mapping[str, Any],
    checkpoint_dir: str | Path,
    history: Sequence[Mapping[str, float]],
    final_metrics: Mapping[str, float],
    tasks: Sequence[str],
    task_type: str,
    model_name: str,
    dataset_name: str,
    dataset_dir: str | Path | None = None,
    figures: Sequence[str | Path] = (),
    json_artifacts: Mapping[str, Any] | None = None,
    text_artifacts: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
    example: Sequence[str] | None = None,
) -> LoggedRun:
    """Log one training run, log its model, register it and give it an alias.

    Args:
        cfg: the ``mlflow`` section.
        config: the whole job config as plain data (logged as params and config.json).
        checkpoint_dir: the final checkpoint (model.json + model.safetensors).
        history: one row of metrics per epoch (``epoch`` = step).
        final_metrics: best_* (validation at the best epoch), test_*, ... .
        dataset_dir: hashed into ``inputs.json`` (every file with its sha256).
        figures: PNG paths, logged under ``figures/``.
        json_artifacts / text_artifacts: more files, {file name: content}.
    Returns:
        the run, model URI and registered version with its alias.
    """
    experiment_id = setup_tracking(cfg)
    git = git_state()
    all_tags = {
        "dnacnn.version": dnacnn.__version__,
        "dnacnn.model": model_name,
        "dnacnn.dataset": dataset_name,
        "dnacnn.task_type": task_type,
        "mlflow.source.git.commit": git["commit"] or "unknown",
        "dnacnn.git_dirty": str(git["dirty"]),
        **(tags or {}),
    }
    with mlflow.start_run(run_name=run_name, tags=all_tags) as run:
        mlflow.log_params(flatten(config))
        mlflow.log_dict(dict(config), "config.json")
        for row in history:
            step = int(row["epoch"])
            mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=step)
        mlflow.log_metrics({k: float(v) for k, v in final_metrics.items()})
        mlflow.log_text("".join(f"{t}\n" for t in tasks), "tasks.txt")
        if dataset_dir is not None:
            mlflow.log_dict({"dataset": str(Path(dataset_dir).resolve()),
                             "files": input_files(dataset_dir)}, "inputs.json")
        mlflow.log_dict({"git": git}, "code.json")
        for name, content in (json_artifacts or {}).items():
            mlflow.log_dict(content, name)
        for name, content in (text_artifacts or {}).items():
            mlflow.log_text(content, name)
        for path in figures:
            mlflow.log_artifact(str(path), "figures")
        info = log_pyfunc_model(checkpoint_dir, tasks, task_type, example)
        result = LoggedRun(run_id=run.info.run_id, experiment_id=experiment_id,
                           tracking_uri=mlflow.get_tracking_uri(), model_uri=info.model_uri)
        if cfg.register:
            name = registered_model_name(model_name, dataset_name, cfg)
            version = mlflow.register_model(info.model_uri, name)
            value = float(final_metrics.get(f"best_{cfg.selection_metric}", math.nan))
            alias = assign_alias(name, version.version, value, cfg.selection_metric,
                                 cfg.selection_mode)
            mlflow.set_tags({"dnacnn.registered_model": name,
                             "dnacnn.registered_version": str(version.version),
                             "dnacnn.alias": alias})
            result.registered_name, result.version, result.alias = name, str(version.version), alias
    return result


# ---------------------------------------------------------------------------
# Reading models back
# ---------------------------------------------------------------------------


def is_model_uri(spec: object) -> bool:
    """Whether ``spec`` is an MLflow URI (``models:/...`` or ``runs:/...``)."""
    return isinstance(spec, str) and spec.startswith(URI_SCHEMES)


def _find_checkpoint(root: Path) -> Path:
    """The checkpoint folder inside a downloaded model (or the folder itself)."""
    if (root / "model.json").is_file():
        return root
    mlmodel = root / "MLmodel"
    if mlmodel.is_file():
        import yaml

        meta = yaml.safe_load(mlmodel.read_text())
        artifacts = meta.get("flavors", {}).get("python_function", {}).get("artifacts", {})
        entry = artifacts.get(CHECKPOINT_ARTIFACT)
        if entry and (root / entry["path"] / "model.json").is_file():
            return root / entry["path"]
    found = sorted(p.parent for p in root.rglob("model.json"))
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(
        f"no dnacnn checkpoint (model.json + model.safetensors) in {root}"
        + (f"; found several: {found}" if found else "")
        + "; is this a model logged by dnacnn.registry?"
    )


def fetch_model_dir(
    uri: str, dst: str | Path | None = None, tracking_uri: str | None = None
) -> Path:
    """Download a registered or logged model and return its checkpoint folder.

    Args:
        uri: ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``models:/m-<id>``
            or ``runs:/RUN_ID/model``.
        dst: the folder to put the checkpoint in (created; files overwritten);
            default: a new temporary folder (left for the caller).
        tracking_uri: default: ``MLFLOW_TRACKING_URI``, else one already set in
            this process, else ``sqlite:///data/mlflow.db``.
    Returns:
        ``dst``: a folder in ``dnacnn.models.save`` format (model.json +
        model.safetensors, plus task.json when recorded), readable by ``dnacnn.models.load``.
    """
    if not is_model_uri(uri):
        raise ValueError(
            f"{uri!r} is not an MLflow model URI; use models:/NAME@alias, models:/NAME/VERSION "
            "or runs:/RUN_ID/model (or pass a local checkpoint folder to load_model)"
        )
    _ensure_tracking(tracking_uri)
    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="dnacnn-model-"))
    with tempfile.TemporaryDirectory(prefix="dnacnn-fetch-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except MlflowException as err:
            raise ValueError(
                f"cannot fetch {uri} from {mlflow.get_tracking_uri()}: {err.message}; check the "
                "name, version or alias (and MLFLOW_TRACKING_URI)"
            ) from None
        _checkpoint_copy(_find_checkpoint(local), dst)
    log.info("fetched %s into %s", uri, dst)
    return dst


def load_model(uri_or_dir: str | Path, map_location: str = "cpu",
               tracking_uri: str | None = None) -> LoadedModel:
    """A model from the registry (``models:/...``, ``runs:/...``) or a local checkpoint folder.

    Returns:
        ``dnacnn.models.LoadedModel`` in eval mode on ``map_location``.
    """
    if is_model_uri(uri_or_dir):
        with tempfile.TemporaryDirectory(prefix="dnacnn-load-") as tmp:
            return load(fetch_model_dir(str(uri_or_dir), Path(tmp), tracking_uri), map_location)
    return load(uri_or_dir, map_location)
