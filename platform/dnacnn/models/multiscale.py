"""Multi-scale CNN with attention pooling (a PyTorch port of the MarkTechPost Keras tutorial).

Parallel conv branches of several widths see the sequence at several scales.
Each branch follows the Keras order conv (ReLU) -> batch norm -> dropout, then
pools its (N, F, L) map with its own attention: a Linear(F -> 1) with tanh
scores every position, a softmax over positions turns the scores into weights,
the map is multiplied by the weights, and a global max over positions leaves F
features. The branches' features are concatenated and go through dense blocks
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


class AttentionBranch(nn.Module):
    """One scale: conv with 'same' padding, ReLU, batch norm, dropout, attention pooling.

    Input: x (N, 4, L) float. Output: features (N, F) and attention (N, L), rows summing to 1.
    """

    def __init__(self, filters: int, width: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, filters, width, padding="same")
        self.bn = nn.BatchNorm1d(filters)
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(filters, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 4, L) -> (features (N, F), attention (N, L))."""
        h = self.dropout(self.bn(torch.relu(self.conv(x))))  # (N, F, L)
        scores = torch.tanh(self.score(h.transpose(1, 2))).squeeze(2)  # (N, L)
        attention = torch.softmax(scores, dim=1)  # (N, L)
        features = (h * attention.unsqueeze(1)).amax(dim=2)  # (N, F)
        return features, attention


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
            AttentionBranch(config.filters, width, config.branch_dropout)
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
