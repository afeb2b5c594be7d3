"""In-silico saturation mutagenesis (ISM): every single-base substitution of a sequence.

Each entry is the model's prediction of one single mutant minus that of the
reference, computed through the one prediction path (``dnacnn.models.predict``
or ``link``) on batches of mutants: exact, not a gradient approximation.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from dnacnn.models import link, predict, predict_logits

SCALES = ("probability", "link")


def _score(model: nn.Module, onehot: np.ndarray, task_type: str, scale: str,
           batch_size: int, device) -> np.ndarray:
    """(M, L, 4) -> (M, T) float64 on ``scale``."""
    if scale == "probability":
        return predict(model, onehot, task_type, batch_size, device)
    return link(task_type, predict_logits(model, onehot, batch_size, device))


def ism(
    model: nn.Module,
    onehot: np.ndarray,
    task_type: str,
    scale: str = "probability",
    batch_size: int = 256,
    device=None,
) -> np.ndarray:
    """Effects of every single-base substitution.

    Args:
        model: a model of the family (any length it accepts).
        onehot: (N, L, 4) uint8 reference sequences.
        task_type: how logits become probabilities (see ``dnacnn.models.predict``).
        scale: "probability" (``predict``) or "link" (logits; log-probabilities for
            multiclass).
        batch_size: mutants per forward pass.
    Returns:
        (N, L, 4, T) float64: prediction of the sequence with base b at position l,
        minus the reference's; exactly 0 where b is the reference base. At an N
        (all-zero row), each of the 4 bases is a substitution.
    """
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r} is not one of {', '.join(SCALES)}")
    onehot = np.asarray(onehot, dtype=np.uint8)
    n, length, _ = onehot.shape
    out = []
    for i in range(n):
        ref = onehot[i]
        ref_score = _score(model, ref[None], task_type, scale, batch_size, device)[0]  # (T,)
        pos, base = np.nonzero(ref == 0)  # the substitutions: (M,) positions and bases
        mutants = np.repeat(ref[None], len(pos), axis=0)  # (M, L, 4)
        mutants[np.arange(len(pos)), pos] = 0
        mutants[np.arange(len(pos)), pos, base] = 1
        effect = np.zeros((length, 4, len(ref_score)))
        effect[pos, base] = _score(model, mutants, task_type, scale, batch_size, device) - ref_score
        out.append(effect)
    if not out:
        return np.zeros((0, length, 4, int(getattr(model, "n_tasks", 0))))
    return np.stack(out)


def importance(effects: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Per-position importance: the mean effect of mutating away from the reference base.

    Args:
        effects: (N, L, 4, T) from :func:`ism`; onehot: (N, L, 4) the reference.
    Returns:
        (N, L, T) float64: the mean over the 3 non-reference bases of -effect, so
        a position whose loss lowers the prediction scores positive (at an N,
        the mean over all 4 bases).
    """
    away = (np.asarray(onehot) == 0)[..., None]  # (N, L, 4, 1)
    return -(effects * away).sum(axis=2) / away.sum(axis=2).clip(min=1)
