"""The per-worker training loop for ``ray.train.torch.TorchTrainer`` (DDP), with checkpoints.

Each Ray Train worker runs :func:`train_loop_per_worker`. Data comes from the
Ray Datasets handed to the trainer, split across workers: ``train`` in equal
shards (every rank takes the same number of steps, as DDP needs), ``valid``
and ``test`` in shards that together hold every row once; validation and test
predictions are gathered from all ranks, so every rank computes the same
metrics and the callbacks take the same decisions everywhere.

Checkpoint layout (one folder, written by rank 0 after every epoch)::

    model.json, model.safetensors   the best weights so far (dnacnn.models.save
                                    format: deployable as is)
    task.json                       {"task_type", "dataset"}: how to read the outputs
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

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dnacnn.config import TrainConfig, from_dict, to_dict
from dnacnn.models import RCAverage, build, predict_logits, probabilities, save
from dnacnn.models.prediction import onehot_to_x
from dnacnn.train import metrics
from dnacnn.train.callbacks import EarlyStopping, ReduceLROnPlateau, set_lr

log = logging.getLogger(__name__)

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
    """

    train: TrainConfig
    model_name: str
    model_config: dict[str, Any]
    task_type: str
    tasks: list[str]
    rc_average: bool = False
    dataset: str = ""  # the dataset's name, recorded in task.json

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
        raw = json.loads((directory / STATE_FILE).read_text())
        if raw.get("format") != STATE_FORMAT:
            raise ValueError(f"{directory / STATE_FILE} has format {raw.get('format')!r}, "
                             f"expected {STATE_FORMAT!r}")
        return cls(**raw)


# ---------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------


def build_model(spec: LoopSpec) -> nn.Module:
    """The spec's model (wrapped in RCAverage when asked), in training mode."""
    model = build(spec.model_name, spec.model_config)
    return RCAverage(model) if spec.rc_average else model


def loss_module(task_type: str) -> nn.Module:
    """BCE with logits for binary / multitask; cross-entropy (one-hot targets) for multiclass."""
    return nn.CrossEntropyLoss() if task_type == "multiclass" else nn.BCEWithLogitsLoss()


def worker_threads(requested: int | None, workers_on_node: int) -> int:
    """torch threads for one worker: ``requested``, else the node's CPUs shared among its workers."""
    if requested:
        return requested
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) // max(1, workers_on_node))


def per_worker_batch(batch_size: int, world_size: int) -> int:
    """Rows per worker per step, so that one DDP step sees about ``batch_size`` rows."""
    return max(1, math.ceil(batch_size / world_size))


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def correct_count(task_type: str, logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """(right, total) for accuracy: cells at threshold 0.5, or rows by argmax (multiclass)."""
    if task_type == "multiclass":
        return int((logits.argmax(1) == y.argmax(1)).sum()), len(y)
    return int(((logits > 0) == (y > 0.5)).sum()), y.numel()


def gather_rows(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Concatenate each array's rows from every rank, in rank order (identical on all ranks)."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return arrays
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, arrays)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(arrays)))


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over all ranks."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------------------
# One epoch, prediction
# ---------------------------------------------------------------------------


def train_epoch(
    model: nn.Module,
    batches,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    task_type: str,
    device: torch.device,
    augment=None,
    progress_every: int = 0,
) -> dict[str, float]:
    """One pass over this worker's batches; loss and accuracy summed over all ranks.

    Args:
        model: the (DDP-wrapped) model.
        batches: iterable of numpy dicts {"onehot": (n, L, 4) uint8, "labels": (n, T) float32}.
        augment: optional function batch -> batch (reverse complement, shift).
        progress_every: log rows/s and the running loss every this many batches (0: never).
    Returns:
        {"train_loss": mean loss over rows, "train_accuracy": ...}.
    """
    model.train()
    total_loss = right = cells = rows = 0.0
    started = time.monotonic()
    join = model.join() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext()
    with join:
        for n_batches, batch in enumerate(batches, start=1):
            if augment is not None:
                batch = augment(batch)
            x = onehot_to_x(batch["onehot"], device)  # (n, 4, L)
            y = torch.tensor(batch["labels"], dtype=torch.float32, device=device)  # (n, T)
            logits = model(x)  # (n, T)
            loss = criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(x)
            r, c = correct_count(task_type, logits.detach(), y)
            right, cells, rows = right + r, cells + c, rows + len(x)
            if progress_every and n_batches % progress_every == 0:
                log.info("  %d rows, %.0f rows/s on this worker, running loss %.4f", rows,
                         rows / (time.monotonic() - started), total_loss / rows)
    total_loss, right, cells, rows = all_reduce_sum([total_loss, right, cells, rows], device)
    return {
        "train_loss": total_loss / rows if rows else math.nan,
        "train_accuracy": right / cells if cells else math.nan,
    }


def predict_batches(
    model: nn.Module, batches, n_tasks: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and logits of every batch, by the one prediction path (``dnacnn.models.predict_logits``).

    Args:
        batches: numpy dicts {"onehot", "labels"} and optionally "row" (N,) int64,
            each row's index in its split.
    Returns:
        y (n, T) float32, logits (n, T) float32, row (n,) int64 (-1 where the
        batches carry no "row"); n = 0 for an empty shard.
    """
    ys, outs, rows = [], [], []
    for batch in batches:
        outs.append(predict_logits(model, batch["onehot"], batch_size=len(batch["onehot"]) or 1,
                                   device=device))
        ys.append(np.asarray(batch["labels"], dtype=np.float32))
        rows.append(np.asarray(batch["row"], np.int64) if "row" in batch
                    else np.full(len(ys[-1]), -1, np.int64))
    if not ys:
        empty = np.zeros((0, n_tasks), np.float32)
        return empty, empty, np.zeros(0, np.int64)
    return np.concatenate(ys), np.concatenate(outs), np.concatenate(rows)


def gather_predictions(y: np.ndarray, logits: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ranks' (y, logits), in split order when rows are known (else rank order)."""
    y, logits, row = gather_rows(y, logits, row)
    if len(row) and (row >= 0).all():
        order = np.argsort(row, kind="stable")
        y, logits = y[order], logits[order]
    return y, logits


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------


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
) -> None:
    """Write a checkpoint folder (layout in the module docstring).

    Args:
        model: the unwrapped model; its current weights are ``last.safetensors``
            unless ``last_weights`` is given.
        test_predictions: {"y": (N, T), "prob": (N, T)} for the final checkpoint.
    """
    directory.mkdir(parents=True, exist_ok=True)
    current = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(last_weights if last_weights is not None else current, directory / LAST_WEIGHTS)
    best = build_model(spec)
    best.load_state_dict(early.best_weights if early.best_weights is not None else current)
    save(best, directory, spec.tasks, task_type=spec.task_type)  # model.json + model.safetensors: the best weights
    (directory / TASK_FILE).write_text(
        json.dumps({"task_type": spec.task_type, "dataset": spec.dataset}) + "\n")
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


def read_test_predictions(directory: str | Path) -> dict[str, np.ndarray]:
    """{"y": (N, T), "prob": (N, T)} from a final checkpoint."""
    return {k: v.numpy() for k, v in load_file(Path(directory) / TEST_PREDICTIONS).items()}


# ---------------------------------------------------------------------------
# The Ray Train entry point
# ---------------------------------------------------------------------------


def _augmenter(train: TrainConfig, rng: np.random.Generator):
    if not train.rc_augment and not train.max_shift:
        return None
    from dnacnn.data.transforms import AugmentConfig, augment

    config = AugmentConfig(rc_fraction=float(train.rc_augment), max_shift=train.max_shift)
    return lambda batch: augment(batch, config, rng)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train on this worker's shards; report metrics every epoch, checkpoint from rank 0.

    Args:
        config: ``LoopSpec.to_dict()``.
    """
    import ray.train
    import ray.train.torch

    spec = LoopSpec.from_dict(config)
    tc = spec.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if rank == 0 and not logging.getLogger("dnacnn").handlers:  # progress reaches the driver's log
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logging.getLogger("dnacnn").addHandler(handler)
        logging.getLogger("dnacnn").setLevel(logging.INFO)
        logging.getLogger("dnacnn").propagate = False  # else Ray's root handler prints it again
    torch.set_num_threads(worker_threads(tc.threads_per_worker, ctx.get_local_world_size()))
    device = ray.train.torch.get_device()

    torch.manual_seed(tc.seed)  # same initial weights on every rank (DDP broadcasts rank 0's anyway)
    model = build_model(spec)
    early = EarlyStopping(tc.early_stopping_patience, tc.monitor_mode)
    plateau = ReduceLROnPlateau(tc.lr_plateau_factor, tc.lr_plateau_patience, tc.min_lr,
                                tc.monitor_mode, tc.lr_plateau_min_delta)
    state, optimizer_state = TrainState(), None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state, optimizer_state = restore_training_state(Path(d), model, early, plateau)
        log.info("rank %d: resuming after epoch %d", rank, state.epoch)
    state.sessions.append({"start_epoch": state.epoch + 1, "world_size": world})
    state.finished, state.test = False, {}

    model = ray.train.torch.prepare_model(model)  # DDP over gloo / nccl when world > 1
    core = unwrap(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tc.betas, eps=tc.eps)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    lr = state.lr if state.lr is not None else tc.lr
    set_lr(optimizer, lr)
    criterion = loss_module(spec.task_type)
    n_tasks = len(spec.tasks)
    batch = per_worker_batch(tc.batch_size, world)
    shards = {name: ray.train.get_dataset_shard(name) for name in ("train", "valid", "test")}

    def report(row: dict[str, Any], **save_kwargs) -> None:
        if rank != 0:
            ray.train.report(row, checkpoint=None)
            return
        with tempfile.TemporaryDirectory(prefix="dnacnn-ckpt-") as tmp:
            save_checkpoint(Path(tmp), spec, core, early, plateau, optimizer, state, **save_kwargs)
            ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    while state.epoch < tc.epochs and not early.should_stop:
        epoch = state.epoch + 1
        seeds = np.random.SeedSequence([tc.seed, epoch, rank])
        rng = np.random.default_rng(seeds)
        torch.manual_seed(int(rng.integers(2**31)))  # dropout: different per rank and epoch
        batches = shards["train"].iter_batches(
            batch_size=batch, batch_format="numpy", local_shuffle_buffer_size=max(8 * batch, 1024),
            local_shuffle_seed=int(rng.integers(2**31)),
        )
        row: dict[str, Any] = {"epoch": epoch, "lr": lr}
        row.update(train_epoch(model, batches, optimizer, criterion, spec.task_type, device,
                               _augmenter(tc, rng), progress_every=25 if rank == 0 else 0))
        y, logits = gather_predictions(*predict_batches(
            core, shards["valid"].iter_batches(batch_size=4 * batch, batch_format="numpy"),
            n_tasks, device))
        row.update(metrics.evaluate(spec.task_type, y, logits, prefix="val_"))
        value = row[tc.monitor]
        early.step(value, epoch, core)
        lr = plateau.step(value, lr)
        set_lr(optimizer, lr)
        state.epoch, state.lr = epoch, lr
        state.history.append(row)
        if rank == 0:
            log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items()})
        report(row)

    # Final: best weights back, test split scored, one more checkpoint.
    last = {k: v.detach().cpu().clone() for k, v in core.state_dict().items()}
    early.restore_best(core)
    y, logits = gather_predictions(*predict_batches(
        core, shards["test"].iter_batches(batch_size=4 * batch, batch_format="numpy"),
        n_tasks, device))
    state.test = metrics.evaluate(spec.task_type, y, logits, prefix="test_")
    state.finished = True
    best_row = next((r for r in state.history if r["epoch"] == early.best_epoch), {})
    final = {
        "epoch": state.epoch,
        "best_epoch": early.best_epoch or 0,
        "stopped_early": early.should_stop,
        **{f"best_{k}": v for k, v in best_row.items() if k.startswith("val_")},
        **state.test,
    }
    report(final, last_weights=last,
           test_predictions={"y": y, "prob": probabilities(spec.task_type, logits)})
