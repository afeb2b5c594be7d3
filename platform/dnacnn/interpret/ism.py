"""In-silico saturation mutagenesis (ISM): every single-base substitution of a sequence.

Each entry is the model's prediction of one single mutant minus that of the
reference: the mutants' logits come from the mutant-effect engine
(``dnacnn.scoring.mutant_effect.ism``: the reference's conv tower once, then only
each mutant's receptive field; exact, not a gradient approximation), and become
probabilities or link-scale scores by the one prediction path
(``dnacnn.models.probabilities`` / ``link``).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from dnacnn.models import link, predict_logits, probabilities
from dnacnn.scoring.mutant_effect import ism as mutant_logits

SCALES = ("probability", "link")


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
        batch_size: reference windows per forward pass.
    Returns:
        (N, L, 4, T) float64: prediction of the sequence with base b at position l,
        minus the reference's; exactly 0 where b is the reference base. At an N
        (all-zero row), each of the 4 bases is a substitution.
    """
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r} is not one of {', '.join(SCALES)}")
    onehot = np.asarray(onehot, dtype=np.uint8)
    n, length, _ = onehot.shape
    if n == 0:
        return np.zeros((0, length, 4, int(getattr(model, "n_tasks", 0))))
    to_scale = probabilities if scale == "probability" else link
    mutants = to_scale(task_type, mutant_logits(model, onehot, device=device))  # (N, L, 4, T)
    ref = to_scale(task_type, predict_logits(model, onehot, batch_size, device))  # (N, T)
    effect = mutants - ref[:, None, None, :]
    effect[onehot.astype(bool)] = 0.0  # the reference base itself: no substitution
    return effect


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
