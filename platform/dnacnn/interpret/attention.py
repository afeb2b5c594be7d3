"""Attention maps of the multi-scale model: where each branch's attention pooling looks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dnacnn.models import MultiScaleCNN, RCAverage
from dnacnn.models.prediction import model_device, onehot_to_x


def _multiscale(model: nn.Module) -> MultiScaleCNN:
    inner = model.model if isinstance(model, RCAverage) else model
    if not isinstance(inner, MultiScaleCNN):
        raise ValueError(
            f"attention maps need a multi-scale model (MultiScaleCNN); this is a "
            f"{type(inner).__name__}"
        )
    return inner


@torch.inference_mode()
def attention_maps(
    model: nn.Module, onehot: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Each branch's attention weights over the positions of each sequence.

    Args:
        model: a ``MultiScaleCNN`` (an ``RCAverage`` wrapper is looked through:
            the maps are those of the forward strand).
        onehot: (N, L, 4) uint8 sequences.
    Returns:
        attention (N, B, L) float32, rows summing to 1 (B branches), and the B
        branch widths in the same order (e.g. (3, 7, 15, 25)).
    """
    inner = _multiscale(model)
    inner.eval()
    device = model_device(inner)
    parts = []
    for lo in range(0, len(onehot), batch_size):
        x = onehot_to_x(onehot[lo:lo + batch_size], device)  # (b, 4, L)
        _, attention = inner(x, return_attention=True)
        parts.append(torch.stack([attention[w] for w in inner.config.widths], 1).float().cpu().numpy())
    widths = tuple(inner.config.widths)
    if not parts:
        return np.zeros((0, len(widths), onehot.shape[1]), np.float32), widths
    return np.concatenate(parts), widths


def site_attention(
    attention: np.ndarray, starts: np.ndarray, ends: np.ndarray, pad: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Attention mass within each sequence's motif site, and the share its length alone gets.

    Args:
        attention: (N, B, L) from :func:`attention_maps`.
        starts, ends: (N,) 0-based half-open site of each sequence.
        pad: bp added on both sides of the site (clipped to the sequence).
    Returns:
        mass (N, B): attention within [start - pad, end + pad); and share (N,): that
        interval's length / L, what uniform attention would give. ``mass / share``
        is the enrichment (1: no better than uniform).
    """
    n, _, length = attention.shape
    lo = np.clip(np.asarray(starts) - pad, 0, length)
    hi = np.clip(np.asarray(ends) + pad, 0, length)
    positions = np.arange(length)
    inside = (positions[None, :] >= lo[:, None]) & (positions[None, :] < hi[:, None])  # (N, L)
    mass = (attention * inside[:, None, :]).sum(axis=2)  # (N, B)
    return mass, (hi - lo) / length
