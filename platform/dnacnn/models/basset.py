"""Basset: DNase I accessibility in 164 cell types from 600 bp (Kelley, Snoek & Rinn 2016).

Three conv blocks (conv, batch norm, ReLU, max-pool) and two dense blocks
(linear, batch norm, ReLU, dropout), then one logit per cell type. The defaults
of ``BassetConfig`` are the published architecture: 4,129,664 conv and dense
weights and biases plus 5,400 batch-norm weights and biases.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import torch
from torch import nn

from dnacnn.models.common import (
    ACTIVATIONS,
    ConfiguredModel,
    activation,
    check_input,
    freeze_tuples,
    require_bool,
    require_dropouts,
    require_positive_ints,
    require_same_length,
)
from dnacnn.models.reverse_complement import first_conv


def basset_cell_types() -> list[str]:
    """The 164 cell-type names of the Basset data set, in its target order."""
    path = resources.files("dnacnn") / "resources" / "basset_cell_types.txt"
    return path.read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class BassetConfig:
    """Basset architecture; the defaults are the published model."""

    seq_len: int = 600  # L, input window in bp
    n_tasks: int = 164  # T, one logit per cell type
    conv_filters: tuple[int, ...] = (300, 200, 200)  # output channels of each conv block
    conv_widths: tuple[int, ...] = (19, 11, 7)  # kernel widths, no padding
    pool_widths: tuple[int, ...] = (3, 4, 4)  # max-pool window = stride
    hidden_units: tuple[int, ...] = (1000, 1000)  # dense blocks
    hidden_dropouts: tuple[float, ...] = (0.3, 0.3)  # dropout after each dense block
    # First conv as RCConv1d: conv_filters[0] // 2 learned filters, applied to both strands.
    rc_equivariant_first_layer: bool = False
    # Activation of the first conv block: "relu" (published) or "exp" (exponential: whole
    # motifs as filters, Koo & Ploenzke 2021); the other blocks use ReLU.
    first_activation: str = "relu"

    def __post_init__(self) -> None:
        freeze_tuples(self)
        require_positive_ints("seq_len", self.seq_len)
        require_positive_ints("n_tasks", self.n_tasks)
        for name in ("conv_filters", "conv_widths", "pool_widths", "hidden_units"):
            require_positive_ints(name, getattr(self, name))
        require_dropouts("hidden_dropouts", self.hidden_dropouts)
        require_same_length(
            conv_filters=self.conv_filters,
            conv_widths=self.conv_widths,
            pool_widths=self.pool_widths,
        )
        require_same_length(hidden_units=self.hidden_units, hidden_dropouts=self.hidden_dropouts)
        if not self.conv_filters:
            raise ValueError("conv_filters is empty; Basset needs at least one conv block")
        require_bool("rc_equivariant_first_layer", self.rc_equivariant_first_layer)
        if self.first_activation not in ACTIVATIONS:
            raise ValueError(f"first_activation {self.first_activation!r} is not one of {', '.join(ACTIVATIONS)}")
        if self.rc_equivariant_first_layer and self.conv_filters[0] % 2:
            raise ValueError(
                f"rc_equivariant_first_layer needs an even conv_filters[0] (half forward, "
                f"half reverse-complement filters), got {self.conv_filters[0]}"
            )
        if self.seq_len < self.min_seq_len:
            raise ValueError(
                f"seq_len={self.seq_len} is too short for the conv tower (widths "
                f"{self.conv_widths}, pools {self.pool_widths}): no positions are left; "
                f"use seq_len >= {self.min_seq_len}"
            )

    @property
    def conv_output_length(self) -> int:
        """Positions left after the conv tower (10 at the published 600 bp)."""
        length = self.seq_len
        for width, pool in zip(self.conv_widths, self.pool_widths):
            length = (length - width + 1) // pool
        return length

    @property
    def min_seq_len(self) -> int:
        """The shortest input that leaves one position after the conv tower."""
        length = 1
        for width, pool in zip(reversed(self.conv_widths), reversed(self.pool_widths)):
            length = length * pool + width - 1
        return length


#: Modules per conv block of ``Basset.conv_tower``: conv, batch norm, activation, max-pool.
BLOCK_MODULES = 4


class Basset(ConfiguredModel):
    """Basset CNN.

    Input: x (N, 4, L) float one-hot, channels A, C, G, T, L == config.seq_len.
    Output: (N, T) logits, T == config.n_tasks (no sigmoid).
    """

    name = "basset"

    def __init__(self, config: BassetConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        in_channels = 4
        for i, (filters, width, pool) in enumerate(
            zip(config.conv_filters, config.conv_widths, config.pool_widths)
        ):
            if i == 0:
                conv = first_conv(filters, width, config.rc_equivariant_first_layer)
            else:
                conv = nn.Conv1d(in_channels, filters, width)
            act = activation(config.first_activation) if i == 0 else nn.ReLU()
            blocks += [conv, nn.BatchNorm1d(filters), act, nn.MaxPool1d(pool)]
            in_channels = filters
        self.conv_tower = nn.Sequential(*blocks)

        dense: list[nn.Module] = []
        in_features = in_channels * config.conv_output_length
        for units, dropout in zip(config.hidden_units, config.hidden_dropouts):
            dense += [
                nn.Linear(in_features, units),
                nn.BatchNorm1d(units),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            in_features = units
        self.dense = nn.Sequential(*dense)
        self.head = nn.Linear(in_features, config.n_tasks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 4, L) float -> (N, T) logits."""
        check_input(x, self.config.seq_len)
        if self.config.first_activation == "exp" and not self.training and torch.is_autocast_enabled(x.device.type):
            # At inference the exponential block runs in float32: exp turns bf16's 0.4% rounding
            # of its input into errors of 1-2% (training keeps bf16: its noise averages out).
            with torch.autocast(x.device.type, enabled=False):
                h = self.conv_tower[:BLOCK_MODULES](x.float())
            h = self.conv_tower[BLOCK_MODULES:](h)
        else:
            h = self.conv_tower(x)  # (N, C, P): C = conv_filters[-1], P = conv_output_length
        h = self.dense(h.flatten(1))  # (N, hidden_units[-1])
        return self.head(h)  # (N, T)
