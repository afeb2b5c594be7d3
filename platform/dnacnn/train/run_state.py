"""What a training run is and what its checkpoints hold: the worker's spec, the run's
state, and writing / restoring checkpoint folders.

Checkpoint layout (one folder, written by rank 0 after every epoch)::

    model.json, model.safetensors   the best weights so far (dnacnn.models.save
                                    format: deployable as is)
    task.json                       {"task_type", "dataset", "precision"}: how to read
                                    the outputs, and the arithmetic it was trained in
    last.safetensors                the weights after this epoch (to resume)
    optimizer.pt                    Adam's state dict: tensors only, read back
                                    with torch.load(weights_only=True)
    train_state.json                epoch, history, callback states, sessions
    test_predictions.safetensors    final checkpoint only: labels and
                                    probabilities on the test split (in the
                                    split's row order when the datasets carry
                                    a "row" column, as materialised ones do)

The final checkpoint (after the last epoch, best weights restored, test set
scored) carries ``"finished": true`` and the test metrics in train_state.json.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dnacnn.checkpoint_files import read_checkpoint_meta, read_format_json, weights_header
from dnacnn.config import TrainConfig, from_dict, to_dict
from dnacnn.models import RCAverage, build, save
from dnacnn.train.callbacks import EarlyStopping, ReduceLROnPlateau

STATE_FILE = "train_state.json"
TASK_FILE = "task.json"
LAST_WEIGHTS = "last.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
TEST_PREDICTIONS = "test_predictions.safetensors"
STATE_FORMAT = "dnacnn-train-state/1"


@dataclass
class LoopSpec:
    """Everything a worker needs, sent as the trainer's ``train_loop_config`` (a plain dict).

    Attributes:
        train: the ``train`` section.
        model_name: key of ``dnacnn.models.MODELS``.
        model_config: the model config's fields, seq_len and n_tasks included.
        rc_average: wrap the model in ``RCAverage``.
        task_type: "binary", "multitask" or "multiclass".
        tasks: T task names, in label-column order.
        dataset: the dataset's name.
        train_rows: rows of the train split (for steps per epoch and time left).
    """

    train: TrainConfig
    model_name: str
    model_config: dict[str, Any]
    task_type: str
    tasks: list[str]
    rc_average: bool = False
    dataset: str = ""  # the dataset's name, recorded in task.json
    train_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopSpec:
        return from_dict(cls, d, "train_loop_config")


@dataclass
class TrainState:
    """What a checkpoint records about the run beyond weights (``train_state.json``)."""

    epoch: int = 0  # last completed epoch, 1-based; 0 before the first
    lr: float | None = None  # learning rate for the next epoch
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    early_stopping: dict[str, Any] = field(default_factory=dict)
    lr_plateau: dict[str, Any] = field(default_factory=dict)
    # One entry per (re)start: {"start_epoch": first epoch it trained, "world_size": ranks}.
    sessions: list[dict[str, int]] = field(default_factory=list)
    finished: bool = False  # the final checkpoint: best weights restored, test scored
    test: dict[str, float] = field(default_factory=dict)  # test metrics (final only)
    format: str = STATE_FORMAT

    def save(self, directory: Path) -> None:
        (directory / STATE_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def load(cls, directory: Path) -> TrainState:
        path = directory / STATE_FILE
        raw = read_format_json(path, STATE_FORMAT)
        try:
            return cls(**raw)
        except TypeError as err:  # a field missing or unknown
            raise ValueError(f"{path} is not a whole train state ({err})") from None


def build_model(spec: LoopSpec) -> nn.Module:
    """The spec's model (wrapped in RCAverage when asked), in training mode."""
    model = build(spec.model_name, spec.model_config)
    return RCAverage(model) if spec.rc_average else model


def save_checkpoint(
    directory: Path,
    spec: LoopSpec,
    model: nn.Module,
    early: EarlyStopping,
    plateau: ReduceLROnPlateau,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    last_weights: dict[str, torch.Tensor] | None = None,
    test_predictions: dict[str, np.ndarray] | None = None,
    precision: str = "fp32",
) -> None:
    """Write a checkpoint folder (layout in the module docstring).

    Args:
        model: the unwrapped model; its current weights are ``last.safetensors``
            unless ``last_weights`` is given.
        test_predictions: {"y": (N, T), "prob": (N, T)} for the final checkpoint.
        precision: the arithmetic the weights were trained in, recorded in task.json.
    """
    directory.mkdir(parents=True, exist_ok=True)
    current = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(last_weights if last_weights is not None else current, directory / LAST_WEIGHTS)
    best = build_model(spec)
    best.load_state_dict(early.best_weights if early.best_weights is not None else current)
    save(best, directory, spec.tasks, task_type=spec.task_type)  # model.json + model.safetensors: the best weights
    (directory / TASK_FILE).write_text(
        json.dumps({"task_type": spec.task_type, "dataset": spec.dataset,
                    "precision": precision}) + "\n")
    torch.save(optimizer.state_dict(), directory / OPTIMIZER_FILE)
    if test_predictions is not None:
        save_file({k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in test_predictions.items()},
                  directory / TEST_PREDICTIONS)
    state.early_stopping = early.state_dict()
    state.lr_plateau = plateau.state_dict()
    state.save(directory)  # last: a folder with train_state.json is complete


def restore_training_state(
    directory: Path, model: nn.Module, early: EarlyStopping, plateau: ReduceLROnPlateau
) -> tuple[TrainState, dict[str, Any]]:
    """Restore weights and callbacks from a checkpoint folder.

    Returns:
        the TrainState and the optimizer's state dict (load it after building the optimizer).
    """
    state = TrainState.load(directory)
    model.load_state_dict(load_file(directory / LAST_WEIGHTS))
    early.load_state_dict(state.early_stopping)
    if early.best_epoch is not None:
        from safetensors import safe_open

        with safe_open(directory / "model.safetensors", framework="pt") as f:
            best = {k: f.get_tensor(k) for k in f.keys()}
        # model.safetensors holds the inner model's weights; RCAverage prefixes them.
        if isinstance(model, RCAverage):
            best = {f"model.{k}": v for k, v in best.items()}
        early.best_weights = best
    plateau.load_state_dict(state.lr_plateau)
    optimizer_state = torch.load(directory / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    return state, optimizer_state


def check_resumable(run_dir: Path) -> None:
    """Refuse, in the driver, a run whose checkpoints its workers could not restore.

    Ray Train resumes a run from the latest checkpoint in its folder; a file there cut short
    or rewritten failed in a worker, with a page of tracebacks. Each checkpoint folder in
    ``run_dir`` (one holding a ``train_state.json``) is checked file by file: the state parsed,
    the weights files whole (their headers and byte ranges), the optimizer's archive whole.

    Raises:
        ValueError: naming the file, what is wrong with it, and what to do.
    """
    for folder in sorted(path.parent for path in run_dir.glob(f"*/{STATE_FILE}")):
        try:
            TrainState.load(folder)
            read_checkpoint_meta(folder)  # model.json and model.safetensors
            weights_header(folder / LAST_WEIGHTS)
            _check_archive(folder / OPTIMIZER_FILE)
        except (OSError, ValueError) as err:
            raise ValueError(f"run {run_dir.name} cannot be resumed: {err}; delete the run's folder {run_dir} "
                             "to train it again from the start, or give another train.run_name") from None


def _check_archive(path: Path) -> None:
    """Refuse a file that is not the whole zip archive ``torch.save`` writes (each member's CRC
    checked), without unpickling it here."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError):
        bad = "its end"
    if bad is not None:
        raise ValueError(f"{path} cannot be read back: it is not a whole zip archive as torch.save "
                         f"writes (damaged at {bad})")


def read_test_predictions(directory: str | Path) -> dict[str, np.ndarray]:
    """{"y": (N, T), "prob": (N, T)} from a final checkpoint."""
    return {k: v.numpy() for k, v in load_file(Path(directory) / TEST_PREDICTIONS).items()}
