"""The one prediction path: one-hot windows -> logits -> probabilities by task type.

Every caller that turns a model's outputs into numbers a user sees goes through
here: the variant scorer (batch job, HTTP service, Python API), the MLflow pyfunc
and training's evaluation. A task type says how logits become probabilities:

    binary, multitask   sigmoid per output (T independent probabilities)
    multiclass          softmax over the T outputs (they sum to 1)

``link`` gives the matching log-scale score: the logits themselves for sigmoid
tasks (log-odds), ``log_softmax`` for multiclass (log-probabilities; raw
multiclass logits are defined only up to a per-row constant).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dnacnn.arguments import check_count
from dnacnn.precision import check_precision
from dnacnn.tasks import TASK_TYPES, check_task_type

def probabilities(task_type: str, logits: np.ndarray) -> np.ndarray:
    """(N, T) logits -> (N, T) float64 probabilities: sigmoid, or softmax for multiclass."""
    check_task_type(task_type)
    logits = np.asarray(logits, dtype=np.float64)
    if task_type == "multiclass":
        z = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-logits))


def link(task_type: str, logits: np.ndarray) -> np.ndarray:
    """(N, T) logits -> (N, T) float64 log-scale scores: logits (log-odds) for sigmoid
    tasks, log-probabilities (``log_softmax``) for multiclass."""
    check_task_type(task_type)
    logits = np.asarray(logits, dtype=np.float64)
    if task_type == "multiclass":
        z = logits - logits.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return logits


def onehot_to_x(onehot: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, L, 4) uint8 (or 0/1 float) one-hot -> (N, 4, L) float32 on ``device`` (a new tensor).

    Bytes travel to the device and become floats there (a quarter of the copy to a GPU)."""
    if not isinstance(onehot, torch.Tensor):
        onehot = torch.from_numpy(np.array(onehot, dtype=np.uint8))  # own, writable copy
    return onehot.to(device=device).to(torch.float32).permute(0, 2, 1).contiguous()


def usable_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` this process can run on.

    Raises:
        ValueError: a name torch does not know ("gpu"), or a CUDA device where torch sees
            no GPU or fewer than its index.
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device (cpu, cuda, cuda:N): {err}") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index or 0) >= count:
            raise ValueError(f"device {device!r}: torch sees {count} CUDA device(s) on this machine")
    return parsed


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` ("fp32": a no-op context)."""
    check_precision(precision)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


#: Blocks inside :func:`fp32_convolutions` now, and cuDNN's TF32 flag before the first of them.
_FP32_BLOCKS = {"open": 0, "before": True}
_FP32_LOCK = threading.Lock()


@contextlib.contextmanager
def fp32_convolutions(device: torch.device):
    """Float32 convolutions on ``device`` for the block: cuDNN runs them in TF32 by default (a
    10-bit mantissa; logits move by about 1e-3), which inference's float32 numbers (the exact
    path's 1e-5) rule out. The flag is process-wide: it stays off while any thread is inside
    such a block (the service scores and predicts in threads at once) and is restored when
    the last one leaves. A no-op off CUDA."""
    if device.type != "cuda":
        yield
        return
    with _FP32_LOCK:
        if not _FP32_BLOCKS["open"]:
            _FP32_BLOCKS["before"] = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False
        _FP32_BLOCKS["open"] += 1
    try:
        yield
    finally:
        with _FP32_LOCK:
            _FP32_BLOCKS["open"] -= 1
            if not _FP32_BLOCKS["open"]:
                torch.backends.cudnn.allow_tf32 = _FP32_BLOCKS["before"]


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    onehot: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Logits of windows, batch by batch, in inference mode.

    Args:
        model: a model of the family (eval mode is set here), input (N, 4, L) float.
        onehot: (N, L, 4) uint8 one-hot windows, L the model's length.
        batch_size: windows per forward pass (>= 1).
        device: where to run; default: where the model's weights are.
        precision: "fp32", or "bf16" autocast (weights stay fp32).
    Returns:
        (N, T) float32 logits.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else model_device(model)
    model.eval()
    parts = []
    with autocast(device, precision), fp32_convolutions(device):
        for lo in range(0, len(onehot), batch_size):
            x = onehot_to_x(onehot[lo:lo + batch_size], device)  # (B, 4, L)
            parts.append(model(x).float().cpu().numpy())  # (B, T)
    if parts:
        return np.concatenate(parts)
    return np.zeros((0, int(getattr(model, "n_tasks", 0))), dtype=np.float32)


def predict(
    model: nn.Module,
    onehot: np.ndarray,
    task_type: str,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Per-task probabilities of windows (see the module docstring for the activation).

    Args: as :func:`predict_logits`, plus ``task_type`` (one of :data:`TASK_TYPES`).
    Returns:
        (N, T) float64 probabilities.
    """
    check_task_type(task_type)
    return probabilities(task_type, predict_logits(model, onehot, batch_size, device, precision))


def predict_sequences(
    model: nn.Module,
    sequences: Sequence[str],
    seq_len: int,
    task_type: str,
    batch_size: int = 256,
    precision: str = "fp32",
) -> np.ndarray:
    """Per-task probabilities of DNA strings of exactly ``seq_len`` bases.

    Args:
        sequences: N strings (A/C/G/T, either case; N and other IUPAC codes read as unknown).
    Returns:
        (N, T) float64 probabilities.
    Raises:
        ValueError: ``sequences`` a string or a DataFrame, ``seq_len`` or ``batch_size`` not
            an integer >= 1; naming the first sequence that is not a string (None, NaN,
            bytes: a missing value is not turned into the text "nan"), whose length is not
            ``seq_len``, or that holds a character that is not a base or an IUPAC code.
    """
    from dnacnn.sequence import encode_batch, non_dna

    if isinstance(sequences, (str, bytes)) or hasattr(sequences, "columns"):  # its letters, its column names
        raise ValueError(f"sequences must be a list of DNA strings, got a {type(sequences).__name__}"
                         + (" (give its 'sequence' column)" if hasattr(sequences, "columns") else ""))
    seq_len = check_count("seq_len", seq_len)
    batch_size = check_count("batch_size", batch_size)
    seqs = list(sequences)
    for i, s in enumerate(seqs):
        if not isinstance(s, str):
            hint = ("one sequence per row (MLflow reads a dict of lists as one row: give a DataFrame)"
                    if isinstance(s, (list, tuple, np.ndarray)) else "give every row a sequence (no missing values)")
            raise ValueError(f"sequence {i} is {s!r:.60} (a {type(s).__name__}), not a string of bases; {hint}")
        if len(s) != seq_len:
            raise ValueError(
                f"sequence {i} has {len(s)} bases; this model takes windows of exactly "
                f"{seq_len} bp: cut or pad (with N) the sequences to {seq_len}"
            )
        if problem := non_dna(s):
            raise ValueError(f"sequence {i} {problem}")
    onehot = encode_batch(seqs, seq_len) if seqs else np.zeros((0, seq_len, 4), np.uint8)
    return predict(model, onehot, task_type, batch_size, precision=precision)
