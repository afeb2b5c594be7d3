"""Typed job configs, read from reviewed YAML under ``jobs/configs/``.

A job config has one section per concern::

    data:   {dataset: data/datasets/tutorial_binary}
    model:  {name: multiscale, params: {filters: 32}}
    train:  {epochs: 30, batch_size: 64, lr: 0.001}
    mlflow: {experiment: dnacnn, selection_metric: val_auroc, selection_mode: max}

Each section loads into a dataclass with :func:`from_dict`, which rejects
unknown keys (and sections) with a message naming the key, its section and the
allowed keys, and checks every value against the field's type. ``from_dict`` is
generic: a job with more sections declares a config class that adds them (the
main job's ``MainConfig`` extends :class:`JobConfig`) and loads it with
:func:`load_config` too.

Relative paths stay as written and are resolved against the current directory
by the code that opens them; jobs submitted with ``ray job submit --working-dir``
run in a copy of the working directory, so give them absolute paths.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


# ---------------------------------------------------------------------------
# Generic dict -> dataclass loading
# ---------------------------------------------------------------------------


class ConfigError(ValueError):
    """A wrong key or value in a config; ``key`` is its dotted path (``"train.epochs"``),
    or the section's (``"train"``) for a check across its fields ("" for the whole config)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def from_dict(cls: type[T], d: Mapping[str, Any] | None, where: str) -> T:
    """Build the dataclass ``cls`` from a mapping read from YAML or JSON.

    Args:
        cls: a dataclass type; fields may be ``bool``, ``int``, ``float``, ``str``,
            ``tuple[...]``, ``list[...]``, ``dict``, ``Literal[...]``, ``X | None``
            or another dataclass (loaded recursively as section ``where.field``).
        d: the mapping; None means "all defaults".
        where: the section's name, used in error messages (``"train"``); ``""``
            for a top-level config whose fields are sections.
    Returns:
        an instance of ``cls``.
    Raises:
        ValueError: on an unknown key ("unknown key 'lr' in section 'train';
            allowed: ..."), a missing required key, or a value of the wrong type.
    """
    if d is None:
        d = {}
    if not isinstance(d, Mapping):
        raise ConfigError(
            f"section '{where}' must be a mapping of keys to values, got {type(d).__name__} {d!r}",
            where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in d if k not in fields]
    if unknown:
        if not where:
            raise ConfigError(f"unknown section {unknown[0]!r}; allowed: {', '.join(fields)}",
                              str(unknown[0]))
        raise ConfigError(
            f"unknown key {unknown[0]!r} in section '{where}'; allowed: {', '.join(fields)}",
            f"{where}.{unknown[0]}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in d:
            kwargs[name] = _coerce(d[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if not where:
                raise ConfigError(f"missing section {name!r}; it has no default", key)
            raise ConfigError(f"missing key {name!r} in section '{where}'; it has no default", key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:  # from the class's own checks (__post_init__)
        if not where or "section '" in str(err):
            raise ConfigError(str(err), where) from None
        raise ConfigError(f"in section '{where}': {err}", where) from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against (and lightly converted to) the annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ValueError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {tp}",
                          key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}", key)
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}", key)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}", key)
        return value
    if tp is float:
        # YAML reads 1e-7 (no dot) as a string; accept numeric strings.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}", key)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}", key)
        return value
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key} must be a list, got {value!r}", key)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, got {value!r}", key)
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list or tp is list:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key} must be a list, got {value!r}", key)
        item = args[0] if args else Any
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {value!r}", key)
        return dict(value)
    raise TypeError(f"{key}: unsupported field type {_type_name(tp)}")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain dicts, lists and scalars (YAML- and JSON-safe)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(config)


# ---------------------------------------------------------------------------
# The sections of a training job
# ---------------------------------------------------------------------------


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
    threads_per_worker: int | None = None
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
        if not self.lr > 0 or not self.eps > 0 or not self.min_lr >= 0:
            raise ValueError(f"lr and eps must be > 0 and min_lr >= 0 (lr={self.lr}, "
                             f"eps={self.eps}, min_lr={self.min_lr})")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}")
        if not 0.0 < self.lr_plateau_factor < 1.0:
            raise ValueError(f"lr_plateau_factor must be in (0, 1), got {self.lr_plateau_factor}")
        if isinstance(self.rc_augment, bool):
            self.rc_augment = 0.5 if self.rc_augment else 0.0
        if not 0.0 <= self.rc_augment <= 1.0:
            raise ValueError(f"rc_augment is a share of rows in [0, 1], got {self.rc_augment}")
        if self.max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {self.max_shift}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise ValueError(f"threads_per_worker must be >= 1, got {self.threads_per_worker}")
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


@dataclass
class JobConfig:
    """A whole training job: one YAML file under ``jobs/configs/``."""

    data: DatasetConfig
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


# ---------------------------------------------------------------------------
# YAML files and command-line overrides
# ---------------------------------------------------------------------------


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file; ``FileNotFoundError`` / ``ValueError`` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found; configs live in jobs/configs/")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a mapping of sections (data, model, train, ...)")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a raw config.

    ``["train.epochs=4", "model.params.filters=16"]`` sets nested keys, creating
    missing sections; unknown keys are then rejected by :func:`from_dict` as usual.
    Returns a new dict; ``raw`` is not changed.
    """
    out = _deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or "." not in key:
            raise ValueError(
                f"override {item!r} must look like section.key=value, e.g. train.epochs=4"
            )
        value = yaml.safe_load(text) if text.strip() else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def load_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    cls: type[T] = JobConfig,  # type: ignore[assignment]
) -> T:
    """Read a job config from YAML, apply overrides, validate.

    Args:
        path: a YAML file, e.g. ``jobs/configs/tutorial_multiscale.yaml``.
        overrides: ``section.key=value`` strings (see :func:`apply_overrides`).
        cls: the top-level config class (default :class:`JobConfig`).
    Environment variables (``$HOME``, ``${DATA}``) in string values are expanded.

    Raises:
        ValueError: one line that starts with what is wrong: the override
            (``--set train.epochs=abc: train.epochs must be an integer, ...``) when
            the file alone does not give the error, else the file.
    """
    raw = read_yaml(path)
    try:
        return from_dict(cls, _expand_vars(apply_overrides(raw, overrides)), "")
    except ValueError as err:
        raise ValueError(f"{_blame(cls, raw, overrides, err) or path}: {err}") from None


def _blame(cls: type, raw: dict[str, Any], overrides: Sequence[str], err: ValueError) -> str | None:
    """``--set ITEM`` for the override that causes ``err``: one that sets the key in error
    (or a key of the section in error) and without which the error goes away. None: the
    file's own error."""
    wrong = getattr(err, "key", "")
    for i, item in enumerate(overrides):
        key = item.partition("=")[0].strip()
        if wrong and not (key == wrong or key.startswith(f"{wrong}.") or wrong.startswith(f"{key}.")):
            continue
        try:
            from_dict(cls, _expand_vars(apply_overrides(raw, [*overrides[:i], *overrides[i + 1:]])), "")
        except ValueError as other:
            if str(other) == str(err):
                continue
        return f"--set {item}"
    return None


def _expand_vars(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _expand_vars(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_expand_vars(v) for v in d]
    if isinstance(d, str) and "$" in d:
        return os.path.expandvars(d)
    return d
