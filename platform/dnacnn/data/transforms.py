"""Training-time batch augmentation on numpy batch dicts: pure numpy, seeded.

A batch is ``{"onehot": (N, L, 4) uint8, "labels": (N, T) float32, ...}`` as
Ray Data's ``iter_batches(batch_format="numpy")`` gives it. Every function
returns a new dict (other keys passed through) and leaves its input unchanged;
randomness comes only from the ``rng`` argument (``np.random.Generator``).

Labels are kept as they are: both augmentations assume the task does not
depend on strand or on a shift of a few bases (true of accessibility and of
motif-presence tasks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


def reverse_complement_rows(
    batch: Mapping[str, np.ndarray], rng: np.random.Generator, fraction: float = 0.5
) -> dict[str, np.ndarray]:
    """Reverse-complement a random subset of rows.

    Args:
        batch: with ``onehot`` (N, L, 4) in A, C, G, T order.
        rng: the random source.
        fraction: share of rows flipped, each row independently with this probability.
    Returns:
        the batch with ``onehot`` replaced.
    """
    onehot = np.asarray(batch["onehot"])
    flip = rng.random(len(onehot)) < fraction
    out = onehot.copy()
    out[flip] = onehot[flip, ::-1, ::-1]  # reverse positions, complement = reverse channels
    result = dict(batch)
    result["onehot"] = out
    return result


def random_shift(
    batch: Mapping[str, np.ndarray], rng: np.random.Generator, max_shift: int
) -> dict[str, np.ndarray]:
    """Shift each row by a random offset in ``[-max_shift, max_shift]`` bases.

    A row shifted by ``k > 0`` moves its sequence right: ``out[i + k] = in[i]``;
    the ``k`` vacated positions at the start are N (all-zero rows), and the last
    ``k`` bases fall off; the length L is kept.

    Returns:
        the batch with ``onehot`` replaced (same shape and dtype).
    """
    onehot = np.asarray(batch["onehot"])
    n, length = onehot.shape[:2]
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    shift = rng.integers(-max_shift, max_shift + 1, size=n)
    source = np.arange(length)[None, :] - shift[:, None]  # (N, L): where out[i] reads from
    valid = (source >= 0) & (source < length)
    gathered = np.take_along_axis(onehot, np.clip(source, 0, length - 1)[..., None], axis=1)
    result = dict(batch)
    result["onehot"] = gathered * valid[..., None].astype(onehot.dtype)
    return result


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation for training batches.

    Attributes:
        rc_fraction: share of rows reverse-complemented (0 disables).
        max_shift: largest shift in bases (0 disables).
    """

    rc_fraction: float = 0.5
    max_shift: int = 0


def augment(
    batch: Mapping[str, np.ndarray], config: AugmentConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Apply the configured augmentations (shift, then reverse complement)."""
    out = dict(batch)
    if config.max_shift > 0:
        out = random_shift(out, rng, config.max_shift)
    if config.rc_fraction > 0:
        out = reverse_complement_rows(out, rng, config.rc_fraction)
    return out
