"""The per-worker training loop for ``ray.train.torch.TorchTrainer`` (DDP).

Each Ray Train worker runs :func:`train_loop_per_worker`. Data comes from the
Ray Datasets handed to the trainer, split across workers: ``train`` in equal
shards (every rank takes the same number of steps, as DDP needs), ``valid``
and ``test`` in shards that together hold every row once; validation and test
predictions are gathered from all ranks, so every rank computes the same
metrics and the callbacks take the same decisions everywhere.

Checkpoints (their layout, writing and restoring) are in :mod:`dnacnn.train.run_state`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dnacnn.config import TrainConfig
from dnacnn.models import predict_logits, probabilities
from dnacnn.models.prediction import autocast, onehot_to_x
from dnacnn.train import metrics
from dnacnn.train.callbacks import EarlyStopping, ReduceLROnPlateau, cosine_lr, set_lr
from dnacnn.train.progress import EpochProgress, epoch_line, steps_per_epoch
from dnacnn.train.quiet import quiet_report_lines
from dnacnn.train.run_state import (
    LoopSpec,
    TrainState,
    build_model,
    restore_training_state,
    save_checkpoint,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------


def loss_module(task_type: str) -> nn.Module:
    """BCE with logits for binary / multitask; cross-entropy (one-hot targets) for multiclass."""
    return nn.CrossEntropyLoss() if task_type == "multiclass" else nn.BCEWithLogitsLoss()


def worker_threads(requested: int | None, workers_on_node: int) -> int:
    """torch threads for one worker: ``requested``, else the node's CPUs shared among its workers."""
    if requested:
        return requested
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) // max(1, workers_on_node))


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU with bf16, or a CPU with
    AVX512-BF16 or AMX (read from /proc/cpuinfo; False where it cannot be read)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str, device: torch.device, warn: bool = True) -> str:
    """The precision a worker trains in: ``requested``, with "auto" -> "bf16" where native.

    Args:
        warn: log a warning when bf16 is asked for on a device without native bf16.
    """
    if requested == "auto":
        return "bf16" if bf16_native(device) else "fp32"
    if requested == "bf16" and warn and not bf16_native(device):
        log.warning("train.precision is bf16 but %s has no native bf16 (AVX512-BF16, AMX or a "
                    "bf16 GPU): it runs emulated and slower than fp32; set train.precision: "
                    "auto or fp32", device)
    return requested


def per_worker_batch(batch_size: int, world_size: int) -> int:
    """Rows per worker per step, so that one DDP step sees about ``batch_size`` rows."""
    return max(1, math.ceil(batch_size / world_size))


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _right(task_type: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Right answers for accuracy (a 0-d tensor, no device sync): cells at threshold 0.5,
    or rows by argmax (multiclass)."""
    if task_type == "multiclass":
        return (logits.argmax(1) == y.argmax(1)).sum()
    return ((logits > 0) == (y > 0.5)).sum()


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
    precision: str = "fp32",
    schedule: Callable[[int], float] | None = None,
    progress: Callable[[int, Callable[[], float]], None] | None = None,
) -> dict[str, float]:
    """One pass over this worker's batches; loss and accuracy summed over all ranks.

    Args:
        model: the (DDP-wrapped) model.
        batches: iterable of numpy dicts {"onehot": (n, L, 4) uint8, "labels": (n, T) float32}.
        augment: optional function batch -> batch (reverse complement, shift).
        precision: "fp32", or "bf16": forward and backward under bf16 autocast; the
            weights, the optimiser's state and the loss stay fp32.
        schedule: optional LR of the i-th step of this epoch (0-based), set before it.
        progress: optional callback(rows in the step, running mean loss as a function:
            read only when shown, as it waits for the device) after each step.
    Returns:
        {"train_loss": mean loss over rows, "train_accuracy": ..., "train_rows": rows of
        all ranks}.
    """
    model.train()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    right = torch.zeros((), dtype=torch.float64, device=device)
    cells = rows = 0
    join = model.join() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext()
    with join:
        for step, batch in enumerate(batches):
            if len(batch["labels"]) < 2:
                # Batch norm cannot train on one row (a shard's row count one past a multiple
                # of the batch): every rank has the same shard size, so every rank skips it.
                continue
            if augment is not None:
                batch = augment(batch)
            if schedule is not None:
                set_lr(optimizer, schedule(step))
            x = onehot_to_x(batch["onehot"], device)  # (n, 4, L) float32
            y = torch.from_numpy(np.array(batch["labels"], dtype=np.float32)).to(device)  # (n, T)
            with autocast(device, precision):
                logits = model(x)  # (n, T), bf16 under autocast
            logits = logits.float()
            loss = criterion(logits, y)  # fp32
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = len(x)
            total_loss += loss.detach() * n
            right += _right(task_type, logits.detach(), y)
            cells += y.shape[0] if task_type == "multiclass" else y.numel()
            rows += n
            if progress is not None:
                progress(n, lambda: float(total_loss) / rows)
    total_loss, right, cells, rows = all_reduce_sum([float(total_loss), float(right), cells, rows],
                                                    device)
    return {
        "train_loss": total_loss / rows if rows else math.nan,
        "train_accuracy": right / cells if cells else math.nan,
        "train_rows": rows,
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
# The Ray Train entry point
# ---------------------------------------------------------------------------


def _cosine_schedule(tc: TrainConfig, steps: int, epoch: int) -> Callable[[int], float]:
    """The LR of each step of ``epoch`` under ``lr_schedule: cosine`` (``steps`` an epoch)."""
    first, total, warmup = (epoch - 1) * steps, tc.epochs * steps, round(tc.warmup_epochs * steps)
    return lambda i: cosine_lr(tc.lr, tc.min_lr, first + i, total, warmup)


def _progress_lines() -> bool:
    """Whether rank 0 logs progress lines within epochs (DNACNN_PROGRESS=0 turns them off)."""
    return os.environ.get("DNACNN_PROGRESS", "1") != "0"


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

    quiet_report_lines()
    spec = LoopSpec.from_dict(config)
    tc = spec.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if rank == 0 and not logging.getLogger("dnacnn").handlers:  # progress reaches the driver's log
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logging.getLogger("dnacnn").addHandler(handler)
        logging.getLogger("dnacnn").setLevel(logging.INFO)
        logging.getLogger("dnacnn").propagate = False  # else Ray's root handler prints it again
    threads = worker_threads(tc.threads_per_worker, ctx.get_local_world_size())
    torch.set_num_threads(threads)
    device = ray.train.torch.get_device()
    precision = resolve_precision(tc.precision, device, warn=rank == 0)

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
    steps = steps_per_epoch(spec.train_rows, world, batch)
    shards = {name: ray.train.get_dataset_shard(name) for name in ("train", "valid", "test")}
    if rank == 0:
        log.info("training %s: %d worker(s) x %d torch thread(s) on %s, %s, batch %d per worker, "
                 "%d steps an epoch, LR %s", spec.model_name, world, threads, device.type,
                 precision, batch, steps, tc.lr_schedule)

    def report(row: dict[str, Any], **save_kwargs) -> None:
        if rank != 0:
            ray.train.report(row, checkpoint=None)
            return
        with tempfile.TemporaryDirectory(prefix="dnacnn-ckpt-") as tmp:
            save_checkpoint(Path(tmp), spec, core, early, plateau, optimizer, state,
                            precision=precision, **save_kwargs)
            ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    last_epoch_s: float | None = None
    while state.epoch < tc.epochs and not early.should_stop:
        epoch = state.epoch + 1
        started = time.monotonic()
        seeds = np.random.SeedSequence([tc.seed, epoch, rank])
        rng = np.random.default_rng(seeds)
        torch.manual_seed(int(rng.integers(2**31)))  # dropout: different per rank and epoch
        batches = shards["train"].iter_batches(
            batch_size=batch, batch_format="numpy", local_shuffle_buffer_size=max(8 * batch, 1024),
            local_shuffle_seed=int(rng.integers(2**31)),
        )
        schedule = _cosine_schedule(tc, steps, epoch) if tc.lr_schedule == "cosine" else None
        if schedule is not None:
            lr = schedule(0)
        progress = (EpochProgress(epoch, tc.epochs, steps, world, last_epoch_s)
                    if rank == 0 and _progress_lines() else None)
        row: dict[str, Any] = {"epoch": epoch, "lr": lr}
        row.update(train_epoch(model, batches, optimizer, criterion, spec.task_type, device,
                               _augmenter(tc, rng), precision, schedule, progress))
        train_s = time.monotonic() - started
        if schedule is not None:  # the LR the epoch ended with
            row["lr"] = lr = schedule(steps - 1)
        row["train_samples_per_s"] = row.pop("train_rows") / train_s
        y, logits = gather_predictions(*predict_batches(
            core, shards["valid"].iter_batches(batch_size=4 * batch, batch_format="numpy"),
            n_tasks, device))
        row.update(metrics.evaluate(spec.task_type, y, logits, prefix="val_"))
        value = row[tc.monitor]
        early.step(value, epoch, core)
        if tc.lr_schedule == "plateau":
            lr = plateau.step(value, lr)
            set_lr(optimizer, lr)
        state.epoch, state.lr = epoch, lr
        state.history.append(row)
        last_epoch_s = time.monotonic() - started
        if rank == 0:
            log.info("%s", epoch_line(row, tc.epochs, last_epoch_s, row["train_samples_per_s"]))
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
