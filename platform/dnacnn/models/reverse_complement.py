"""Reverse-complement symmetry: a strand-averaging wrapper and a strand-sharing conv layer.

With channels in A, C, G, T order, the complement of a base is the channel
reversed (A<->T, C<->G), so the reverse complement of ``x`` (N, 4, L) is
``x.flip(dims=(1, 2))``.
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import nn


def reverse_complement_x(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot DNA ``x`` (N, 4, L) float, channels A, C, G, T -> (N, 4, L)."""
    return x.flip(dims=(1, 2))


class RCConv1d(nn.Module):
    """Conv1d over one-hot DNA whose filters are shared between the two strands.

    ``n_filters`` filters W (n_filters, 4, width) are learned; the layer applies
    [W, rc(W)] with rc(W) = W.flip(1, 2) and one bias per learned filter, so it
    has 2 * n_filters output channels: channel f scans the forward strand for
    motif f, channel n_filters + f scans it for the reverse complement of motif f.
    No padding ('valid'), which keeps the layer exactly equivariant: the output
    on rc(x) is the output on x with its two halves swapped and its positions reversed.

    Input: x (N, 4, L) float. Output: (N, 2 * n_filters, L - width + 1).
    """

    def __init__(self, n_filters: int, width: int, bias: bool = True) -> None:
        super().__init__()
        self.n_filters = n_filters
        self.width = width
        self.weight = nn.Parameter(torch.empty(n_filters, 4, width))  # (F, 4, w)
        self.bias = nn.Parameter(torch.empty(n_filters)) if bias else None  # (F,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of ``nn.Conv1d`` with the same fan-in."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(4 * self.width)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 4, L) float -> (N, 2F, L - width + 1)."""
        weight = torch.cat([self.weight, self.weight.flip(1, 2)])  # (2F, 4, w)
        bias = None if self.bias is None else torch.cat([self.bias, self.bias])  # (2F,)
        return F.conv1d(x, weight, bias)

    def extra_repr(self) -> str:
        return f"n_filters={self.n_filters}, width={self.width}, out_channels={2 * self.n_filters}"


def first_conv(filters: int, width: int, rc_equivariant: bool) -> nn.Module:
    """The first conv layer, 4 -> ``filters`` channels of ``width``, no padding.

    With ``rc_equivariant``, ``filters // 2`` learned filters are shared between strands
    (:class:`RCConv1d`), so ``filters`` must be even.
    """
    if rc_equivariant:
        return RCConv1d(filters // 2, width)
    return nn.Conv1d(4, filters, width)


class RCAverage(nn.Module):
    """Wrap a model so that its output is exactly strand-invariant.

    Returns the mean of the model's logits on ``x`` and on its reverse
    complement. Logits, not probabilities, are averaged: the result is as
    exactly invariant (addition commutes), and the wrapper still returns logits
    like every model of the family, so losses and scorers treat it the same.
    Both strands run as one batch of 2N.

    Input: x (N, 4, L) float. Output: (N, T) logits.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def config(self) -> object:
        return self.model.config

    @property
    def seq_len(self) -> int:
        return self.model.seq_len

    @property
    def n_tasks(self) -> int:
        return self.model.n_tasks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 4, L) float -> (N, T) logits averaged over both strands."""
        n = x.shape[0]
        logits = self.model(torch.cat([x, reverse_complement_x(x)]))  # (2N, T)
        return (logits[:n] + logits[n:]) / 2  # (N, T)
