"""What a person watching a training run sees: rank 0's progress lines.

Two kinds of line, both through the ``dnacnn`` logger of rank 0 (Ray forwards
them to the driver's console):

- during an epoch, at most one line every ``every_s`` seconds::

    epoch 3/20 step 120/589: 312 samples/s, loss 0.2231; 2m31s left in the epoch, ~41m in the run

- at the end of an epoch, one line with the validation metrics (:func:`epoch_line`).

Samples/s count all ranks (DDP ranks step together); time left is the epoch's
remaining steps at the measured rate plus the remaining epochs at the last
epoch's length (evaluation included).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """Seconds as ``"42s"``, ``"3m05s"`` or ``"1h02m"`` ("?" when unknown)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def steps_per_epoch(train_rows: int, world_size: int, batch_per_worker: int) -> int:
    """Optimiser steps in one epoch: each rank takes an equal shard of the train rows."""
    return max(1, math.ceil((train_rows // max(1, world_size)) / max(1, batch_per_worker)))


class EpochProgress:
    """Step counter of one epoch on rank 0; logs a progress line at most every ``every_s`` s.

    Call it after every step with the step's rows on this rank and the running mean loss.

    Args:
        epoch: this epoch, 1-based; epochs: the run's last epoch.
        steps: expected steps in the epoch (:func:`steps_per_epoch`).
        world_size: DDP ranks (samples/s counts them all).
        last_epoch_s: wall time of the previous whole epoch (evaluation included), if any.
        every_s: seconds between lines (0: never).
    """

    def __init__(self, epoch: int, epochs: int, steps: int, world_size: int,
                 last_epoch_s: float | None = None, every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.epoch, self.epochs, self.steps, self.world = epoch, epochs, steps, world_size
        self.last_epoch_s, self.every_s, self.clock = last_epoch_s, every_s, clock
        self.started = self.last_line = clock()
        self.step_count, self.rows = 0, 0

    def __call__(self, rows: int, running_loss: Callable[[], float]) -> None:
        self.step_count += 1
        self.rows += rows
        now = self.clock()
        if self.every_s and now - self.last_line >= self.every_s:
            self.last_line = now
            log.info("%s", self.line(running_loss(), now))

    def samples_per_s(self, now: float | None = None) -> float:
        """Rows per second over all ranks since the epoch began."""
        elapsed = (now if now is not None else self.clock()) - self.started
        return self.rows * self.world / elapsed if elapsed > 0 else math.nan

    def line(self, running_loss: float, now: float) -> str:
        elapsed = now - self.started
        per_step = elapsed / self.step_count if self.step_count else math.nan
        epoch_left = max(0, self.steps - self.step_count) * per_step
        epoch_s = self.last_epoch_s if self.last_epoch_s else self.steps * per_step
        run_left = epoch_left + (self.epochs - self.epoch) * epoch_s
        return (f"epoch {self.epoch}/{self.epochs} step {self.step_count}/{self.steps}: "
                f"{self.samples_per_s(now):.0f} samples/s, loss {running_loss:.4f}; "
                f"{duration(epoch_left)} left in the epoch, ~{duration(run_left)} in the run")


def epoch_line(row: Mapping[str, float], epochs: int, epoch_s: float, samples_per_s: float) -> str:
    """One line per epoch: losses, validation metrics, LR, speed and time left.

    Args:
        row: the epoch's history row (``epoch``, ``train_loss``, ``val_*``, ``lr``).
        epoch_s: the epoch's wall time, evaluation included.
    """
    shown = ["train_loss", "val_loss", "val_auroc", "val_auprc", "val_accuracy"]
    metrics = ", ".join(f"{k} {row[k]:.4f}" for k in shown if k in row)
    left = (epochs - int(row["epoch"])) * epoch_s
    return (f"epoch {int(row['epoch'])}/{epochs} done in {duration(epoch_s)} "
            f"({samples_per_s:.0f} samples/s): {metrics}, lr {row['lr']:.2g}; "
            f"~{duration(left)} left")
