"""Typed job configs, read from reviewed YAML under ``jobs/configs/``.

A job config has one section per concern::

    data:   {dataset: data/datasets/tutorial_binary}
    model:  {name: multiscale, params: {filters: 32}}
    train:  {epochs: 30, batch_size: 64, lr: 0.001}
    mlflow: {experiment: dnacnn, selection_metric: val_auroc, selection_mode: max}

Each section loads into a dataclass with ``from_dict`` (``dnacnn.config_loader``,
re-exported here), which rejects unknown keys (and sections) with a message naming
the key, its section and the allowed keys, and checks every value against the
field's type. A job with more sections declares a config class that adds them (the
main job's ``MainConfig`` extends :class:`JobConfig`) and loads it with
:func:`load_config` too.

Relative paths stay as written and are resolved against the current directory
by the code that opens them; jobs submitted with ``ray job submit --working-dir``
run in a copy of the working directory, so give them absolute paths.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from dnacnn.config_loader import (  # noqa: F401  (the loader's API, used with these sections)
    ConfigError, apply_overrides, from_dict, load_yaml_config, read_yaml, to_dict,
)

T = TypeVar("T")


# ---------------------------------------------------------------------------
# The sections of a training job
# ---------------------------------------------------------------------------


#: Most torch threads a worker may ask for (train.threads_per_worker): more cores than any node has.
MAX_THREADS = 1024

#: A run name: one folder under storage_path.
_RUN_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")

@dataclass
class DatasetConfig:
    """Section ``data``: which dataset folder (``dnacnn.data.dataset_io`` layout) to train on."""

    dataset: str  # folder with dataset.json and train/ valid/ test/ Parquet splits
    # Read the splits on the driver into Ray's object store before training. Needed
    # on a node whose CPUs are all taken by training workers (Ray Data would get no
    # CPU to read with); turn off to stream splits larger than memory from Parquet
    # on a cluster with CPUs to spare for Ray Data.
    materialize: bool = True


@dataclass
class ModelConfig:
    """Section ``model``: a model of ``dnacnn.models.MODELS`` and its config fields."""

    name: str  # "basset", "multiscale" or "simple"
    # Fields of the model's config dataclass (e.g. BassetConfig). seq_len and
    # n_tasks default to the dataset's; if given they must match it.
    params: dict[str, Any] = field(default_factory=dict)
    rc_average: bool = False  # wrap in RCAverage: train and predict on both strands

    def __post_init__(self) -> None:
        from dnacnn.models import MODELS

        if self.name not in MODELS:
            raise ValueError(f"unknown model {self.name!r}; choose one of {sorted(MODELS)}")
        allowed = [f.name for f in dataclasses.fields(MODELS[self.name][1])]
        for key in self.params:
            if key not in allowed:
                raise ValueError(
                    f"unknown key {key!r} in section 'model.params' of model {self.name!r}; "
                    f"allowed: {', '.join(allowed)}"
                )


@dataclass
class TrainConfig:
    """Section ``train``: Ray Train scaling, the optimiser and the callbacks.

    The defaults are the tutorial's recipe: Adam(lr 1e-3, betas (0.9, 0.999),
    eps 1e-7), batch 64, early stopping on val_loss (patience 10, best weights
    restored) and reduce-LR-on-plateau (patience 5, factor 0.5, min 1e-6).
    """

    epochs: int = 30
    num_workers: int = 2  # Ray Train workers (DDP ranks)
    use_gpu: bool = False  # one GPU per worker; backend nccl, else gloo
    # Rows per optimiser step over all workers (global batch); each of the
    # num_workers DDP workers takes ceil(batch_size / num_workers) rows a step.
    batch_size: int = 64
    lr: float = 0.001
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-7
    monitor: str = "val_loss"  # metric watched by early stopping and the LR schedule
    monitor_mode: Literal["min", "max"] = "min"
    early_stopping_patience: int = 10  # epochs without improvement before stopping
    lr_plateau_patience: int = 5  # epochs without improvement before lowering the LR
    lr_plateau_factor: float = 0.5
    lr_plateau_min_delta: float = 1e-4  # Keras' default for ReduceLROnPlateau
    min_lr: float = 1e-6
    # Share of training rows reverse-complemented each batch (0 = off; true = 0.5).
    rc_augment: bool | float = 0.0
    max_shift: int = 0  # random shift of training rows, in bases (0 = off)
    seed: int = 42
    # torch threads per worker; default max(1, CPUs of the node // workers on the node).
    # On one machine, 1 worker with all its cores usually trains fastest (no gradient
    # all-reduce); more workers pay across machines or GPUs.
    threads_per_worker: int | None = None
    # Forward/backward arithmetic: "bf16" autocast (weights, optimiser and loss stay
    # fp32), "fp32", or "auto": bf16 where the device computes it natively (a CPU with
    # AVX512-BF16 or AMX, a CUDA GPU with bf16), else fp32. Evaluation is always fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # "plateau": halve the LR when the monitored metric stalls (the callbacks above);
    # "cosine": linear warm-up over warmup_epochs, then cosine decay to min_lr by the
    # last epoch, step by step (for a fixed budget of epochs).
    lr_schedule: Literal["plateau", "cosine"] = "plateau"
    warmup_epochs: float = 0.0
    run_name: str | None = None  # Ray run name; default "<model>-<dataset>". Same name = resume.
    storage_path: str = "runs"  # where Ray Train keeps runs and checkpoints
    max_failures: int = 0  # worker failures to recover from (from the latest checkpoint)
    checkpoints_to_keep: int | None = 2  # every epoch is checkpointed; keep the latest N

    def __post_init__(self) -> None:
        positive = ("epochs", "num_workers", "batch_size", "early_stopping_patience",
                    "lr_plateau_patience")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0 < self.lr < math.inf and 0 < self.eps < math.inf and 0 <= self.min_lr < math.inf):
            raise ValueError(f"lr and eps must be finite and > 0, min_lr finite and >= 0 (lr={self.lr}, "
                             f"eps={self.eps}, min_lr={self.min_lr})")
        if self.run_name is not None and (not _RUN_NAME.fullmatch(self.run_name) or self.run_name in (".", "..")):
            raise ValueError(f"run_name {self.run_name!r} must be one folder name (letters, digits, '.', "
                             "'_', '-'): the run is kept under storage_path/run_name")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}")
        if not 0.0 < self.lr_plateau_factor < 1.0:
            raise ValueError(f"lr_plateau_factor must be in (0, 1), got {self.lr_plateau_factor}")
        if not 0.0 <= self.lr_plateau_min_delta < math.inf:  # NaN: no epoch would ever count as better
            raise ValueError(f"lr_plateau_min_delta must be finite and >= 0, got {self.lr_plateau_min_delta}")
        if isinstance(self.rc_augment, bool):
            self.rc_augment = 0.5 if self.rc_augment else 0.0
        if not 0.0 <= self.rc_augment <= 1.0:
            raise ValueError(f"rc_augment is a share of rows in [0, 1], got {self.rc_augment}")
        if self.max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {self.max_shift}")
        if not 0 <= self.warmup_epochs < self.epochs:  # NaN fails too: a NaN learning rate
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}), "
                             f"got {self.warmup_epochs}")
        # torch starts every thread asked for: a million crash the worker after Ray has started.
        if self.threads_per_worker is not None and not 1 <= self.threads_per_worker <= MAX_THREADS:
            raise ValueError(f"threads_per_worker must be in [1, {MAX_THREADS}] or null, "
                             f"got {self.threads_per_worker}")
        # torch.manual_seed takes at most 64 bits and numpy's SeedSequence no negative number:
        # out of range, each worker would fail after Ray has started.
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")
        if self.max_failures < -1:
            raise ValueError(f"max_failures must be >= -1 (-1 = retry forever), got {self.max_failures}")
        if self.checkpoints_to_keep is not None and self.checkpoints_to_keep < 1:
            raise ValueError(f"checkpoints_to_keep must be >= 1 or null, got {self.checkpoints_to_keep}")


@dataclass
class MlflowConfig:
    """Section ``mlflow``: where runs are tracked and how models are registered.

    The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else ``tracking_uri``,
    else ``sqlite:///<data_dir>/mlflow.db`` with artifacts in ``<data_dir>/mlartifacts``.
    """

    tracking_uri: str | None = None
    data_dir: str = "data"
    experiment: str = "dnacnn"
    register: bool = True  # register the model and set an alias
    registered_model: str | None = None  # default "<model>-<dataset>", e.g. basset-basset164
    # A new version becomes `champion` only when this validation metric (of its
    # best epoch) beats the current champion's; otherwise it becomes `challenger`.
    selection_metric: str = "val_loss"
    selection_mode: Literal["min", "max"] = "min"
    # A registered model holds one lineage (tasks, task type, window length). A
    # model of another lineage is refused under the name unless this is true:
    # then it starts a new lineage there and becomes champion without comparison.
    new_lineage: bool = False

    def __post_init__(self) -> None:
        if not self.experiment.strip():
            raise ValueError("experiment must be a name, got ''")
        # MLflow's rule, else the registration after training fails with its traceback.
        name = self.registered_model
        if name is not None and (not name.strip() or "/" in name or ":" in name):
            raise ValueError(f"registered_model {name!r} must be a non-empty name without '/' or ':' "
                             "(or null for <model>-<dataset>)")


@dataclass
class JobConfig:
    """A whole training job: one YAML file under ``jobs/configs/``."""

    data: DatasetConfig
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


def load_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    cls: type[T] = JobConfig,  # type: ignore[assignment]
) -> T:
    """Read a job config (default :class:`JobConfig`) from YAML with ``section.key=value``
    overrides; see ``dnacnn.config_loader.load_yaml_config``."""
    return load_yaml_config(cls, path, overrides)
