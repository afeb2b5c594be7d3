"""Early stopping and reduce-LR-on-plateau as small state machines (Keras semantics),
and the warm-up + cosine learning-rate schedule (a pure function of the step).

Both watch one metric per epoch (``mode="min"`` for a loss, ``"max"`` for an
AUROC). Their state is JSON-safe (``state_dict`` / ``load_state_dict``) so a
resumed run continues where it stopped; the best weights kept by
:class:`EarlyStopping` are tensors, saved by the caller as safetensors.
A NaN metric never counts as an improvement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _check_mode(mode: str) -> str:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


class EarlyStopping:
    """Stop after ``patience`` epochs without improvement; keep the best weights.

    Like ``keras.callbacks.EarlyStopping(patience=..., restore_best_weights=True)``:
    the best weights are restored at the end of training whether or not it
    stopped early (:meth:`restore_best`).

    Usage per epoch: ``stop = early.step(val_loss, epoch, model)``.
    """

    def __init__(self, patience: int, mode: str = "min", min_delta: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = patience
        self.mode = _check_mode(mode)
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None

    def step(self, value: float, epoch: int, model: nn.Module | None = None) -> bool:
        """Record one epoch's metric; return True when training should stop.

        Args:
            value: the monitored metric of this epoch.
            epoch: its number (1-based).
            model: when given, its weights are copied (to CPU) on improvement.
        """
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if model is not None:
                self.best_weights = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    @property
    def should_stop(self) -> bool:
        return self.stopped_epoch is not None

    def restore_best(self, model: nn.Module) -> bool:
        """Load the best weights into ``model``; False when none were kept."""
        if self.best_weights is None:
            return False
        model.load_state_dict(self.best_weights)
        return True

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state (the best weights are not included: see ``best_weights``)."""
        return {
            "patience": self.patience, "mode": self.mode, "min_delta": self.min_delta,
            "best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the counters; patience, mode and min_delta stay as constructed."""
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.wait = int(state["wait"])
        self.stopped_epoch = state["stopped_epoch"]


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Like ``keras.callbacks.ReduceLROnPlateau``: improvement means beating the
    best value by more than ``min_delta``; after a reduction the wait restarts
    (then ``cooldown`` epochs pass before waiting again); the rate never goes
    below ``min_lr``.

    Usage per epoch: ``lr = plateau.step(val_loss, lr)``; then set it on the optimiser.
    """

    def __init__(
        self,
        factor: float = 0.5,
        patience: int = 5,
        min_lr: float = 1e-6,
        mode: str = "min",
        min_delta: float = 1e-4,
        cooldown: int = 0,
    ) -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr
        self.mode = _check_mode(mode)
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.best: float | None = None
        self.wait = 0
        self.cooldown_left = 0
        self.reductions = 0

    def step(self, value: float, lr: float) -> float:
        """Record one epoch's metric; return the learning rate for the next epoch."""
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = float(value), 0
            return lr
        if self.cooldown_left > 0:
            return lr
        self.wait += 1
        if self.wait >= self.patience and lr > self.min_lr:
            self.wait = 0
            self.cooldown_left = self.cooldown
            self.reductions += 1
            return max(lr * self.factor, self.min_lr)
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor, "patience": self.patience, "min_lr": self.min_lr,
            "mode": self.mode, "min_delta": self.min_delta, "cooldown": self.cooldown,
            "best": self.best, "wait": self.wait, "cooldown_left": self.cooldown_left,
            "reductions": self.reductions,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = state["best"]
        self.wait = int(state["wait"])
        self.cooldown_left = int(state["cooldown_left"])
        self.reductions = int(state["reductions"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def cosine_lr(base_lr: float, min_lr: float, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """The learning rate of optimiser step ``step`` (0-based) under warm-up + cosine decay.

    Linear warm-up from ``base_lr / warmup_steps`` to ``base_lr`` over the first
    ``warmup_steps`` steps, then half a cosine from ``base_lr`` down to ``min_lr``
    at step ``total_steps`` (and ``min_lr`` after it).
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
