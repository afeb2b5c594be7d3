"""Multi-scale CNN with attention pooling (a PyTorch port of the MarkTechPost Keras tutorial).

Parallel conv branches of several widths see the sequence at several scales.
Each branch follows the Keras order conv (ReLU) -> batch norm -> dropout, then
pools its (N, F, L) map with its own attention: a Linear(F -> 1) scores every
position and a softmax over positions turns the scores into weights. How the
weights pool the map is ``MultiScaleConfig.attention_pooling``:

- "max", the tutorial's: the scores go through tanh (bounded, so two positions'
  weights differ by at most e^2), the map is multiplied by the weights and a
  global max over positions leaves F features. The max alone can find a motif,
  so the model need not sharpen its attention, and it does not (BENCHMARKS.md,
  Interpretation).
- "sum", standard attention pooling: unbounded scores, and the F features are
  the sum over positions of weight x map. Only the attention can single out a
  position here, and on the tutorial task it falls on the motifs (BENCHMARKS.md).

The branches' features are concatenated and go through dense blocks
in the Keras order linear (ReLU) -> batch norm -> dropout, then one logit per
output (1 for a binary task; n for n classes, to be used with a softmax loss).

Batch norm keeps PyTorch's defaults (eps 1e-5, momentum 0.1), not Keras's
(eps 1e-3, momentum 0.99 in Keras's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dnacnn.models.common import (
    ConfiguredModel,
    check_input,
    freeze_tuples,
    require_dropouts,
    require_positive_ints,
    require_same_length,
)


ATTENTION_POOLING = ("max", "sum")


@dataclass(frozen=True)
class MultiScaleConfig:
    """Multi-scale attention CNN; the defaults are the tutorial's model."""

    seq_len: int = 200  # L of the training windows; the model itself accepts any length
    widths: tuple[int, ...] = (3, 7, 15, 25)  # one conv branch per width, 'same' padding
    filters: int = 64  # F, channels of each branch
    branch_dropout: float = 0.2  # dropout after each branch's batch norm
    dense: tuple[int, ...] = (256, 128)  # dense blocks after the concatenation
    dense_dropouts: tuple[float, ...] = (0.5, 0.3)  # dropout after each dense block
    n_tasks: int = 1  # T: 1 for binary, n for n-class
    # "max": tanh scores, max over weight x map (the tutorial's; checkpoints saved
    # before this field existed); "sum": unbounded scores, sum of weight x map.
    attention_pooling: str = "max"

    def __post_init__(self) -> None:
        freeze_tuples(self)
        require_positive_ints("seq_len", self.seq_len)
        require_positive_ints("widths", self.widths)
        require_positive_ints("filters", self.filters)
        require_positive_ints("dense", self.dense)
        require_positive_ints("n_tasks", self.n_tasks)
        require_dropouts("branch_dropout", self.branch_dropout)
        require_dropouts("dense_dropouts", self.dense_dropouts)
        require_same_length(dense=self.dense, dense_dropouts=self.dense_dropouts)
        if not self.widths or len(set(self.widths)) != len(self.widths):
            raise ValueError(
                f"widths must be non-empty and distinct (attention maps are keyed by "
                f"width), got {self.widths}"
            )
        if self.attention_pooling not in ATTENTION_POOLING:
            raise ValueError(
                f"attention_pooling must be one of {', '.join(ATTENTION_POOLING)}, "
                f"got {self.attention_pooling!r}"
            )


class AttentionBranch(nn.Module):
    """One scale: conv with 'same' padding, ReLU, batch norm, dropout, attention pooling.

    Input: x (N, 4, L) float. Output: features (N, F) and attention (N, L), rows summing to 1.
    ``pooling`` is "max" or "sum" (see the module docstring).
    """

    def __init__(self, filters: int, width: int, dropout: float, pooling: str = "max") -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, filters, width, padding="same")
        self.bn = nn.BatchNorm1d(filters)
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(filters, 1)
        self.pooling = pooling

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 4, L) -> (features (N, F), attention (N, L))."""
        return self.pool(self.dropout(self.bn(torch.relu(self.conv(x)))))  # from (N, F, L)

    def pool(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention pooling of the branch's map h (N, F, L) -> (features (N, F), attention (N, L))."""
        scores = self.score(h.transpose(1, 2)).squeeze(2)  # (N, L)
        if self.pooling == "max":
            attention = torch.softmax(torch.tanh(scores), dim=1)  # (N, L)
            return (h * attention.unsqueeze(1)).amax(dim=2), attention  # (N, F)
        attention = torch.softmax(scores, dim=1)  # (N, L)
        return torch.einsum("nfl,nl->nf", h, attention), attention  # (N, F)


class MultiScaleCNN(ConfiguredModel):
    """Multi-scale CNN with one attention-pooled branch per conv width.

    Input: x (N, 4, L) float one-hot, channels A, C, G, T, any L >= 1.
    Output: (N, T) logits, T == config.n_tasks (no sigmoid or softmax).
    """

    name = "multiscale"

    def __init__(self, config: MultiScaleConfig) -> None:
        super().__init__()
        self.config = config
        self.branches = nn.ModuleList(
            AttentionBranch(config.filters, width, config.branch_dropout, config.attention_pooling)
            for width in config.widths
        )
        dense: list[nn.Module] = []
        in_features = config.filters * len(config.widths)
        for units, dropout in zip(config.dense, config.dense_dropouts):
            dense += [
                nn.Linear(in_features, units),
                nn.ReLU(),
                nn.BatchNorm1d(units),
                nn.Dropout(dropout),
            ]
            in_features = units
        self.dense = nn.Sequential(*dense)
        self.head = nn.Linear(in_features, config.n_tasks)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """x (N, 4, L) float -> (N, T) logits.

        With ``return_attention=True``, returns ``(logits, attention)`` where
        ``attention[width]`` is that branch's (N, L) weights over positions.
        """
        check_input(x, None)
        features, attention = [], {}
        for width, branch in zip(self.config.widths, self.branches):
            f, a = branch(x)  # (N, F), (N, L)
            features.append(f)
            attention[width] = a
        h = self.dense(torch.cat(features, dim=1))  # (N, dense[-1]) from (N, F * n_widths)
        logits = self.head(h)  # (N, T)
        if return_attention:
            return logits, attention
        return logits
