"""A one-conv-layer CNN, as in the human-vs-mouse fragment classifier blog post.

One conv layer finds short motifs, max-pooling with stride = window shortens
the map, dropout, and the flattened pooled map (channel-major) feeds one hidden
dense layer that combines motifs by position, then one logit per task. The
post gives no layer sizes; the defaults here are small ones: 32 filters of
width 12, pool 4, 64 hidden units. Flattening, unlike a global max pool, keeps
where a motif sits, so the model is built for one input length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dnacnn.models.common import (
    ConfiguredModel,
    check_input,
    require_bool,
    require_dropouts,
    require_positive_ints,
)
from dnacnn.models.reverse_complement import first_conv


@dataclass(frozen=True)
class SimpleCNNConfig:
    """One conv layer and one hidden dense layer."""

    seq_len: int = 200  # L, input window in bp
    n_tasks: int = 1  # T: 1 for human (1) vs mouse (0)
    filters: int = 32  # conv output channels
    width: int = 12  # conv kernel width, no padding
    pool_width: int = 4  # max-pool window = stride
    conv_dropout: float = 0.2  # dropout on the pooled conv map
    hidden_units: int = 64  # dense layer after flattening
    hidden_dropout: float = 0.5  # dropout after the dense layer
    # Conv as RCConv1d: filters // 2 learned filters, applied to both strands.
    rc_equivariant_first_layer: bool = False

    def __post_init__(self) -> None:
        for name in ("seq_len", "n_tasks", "filters", "width", "pool_width", "hidden_units"):
            require_positive_ints(name, getattr(self, name))
        require_dropouts("conv_dropout", self.conv_dropout)
        require_dropouts("hidden_dropout", self.hidden_dropout)
        require_bool("rc_equivariant_first_layer", self.rc_equivariant_first_layer)
        if self.rc_equivariant_first_layer and self.filters % 2:
            raise ValueError(
                f"rc_equivariant_first_layer needs an even number of filters (half forward, "
                f"half reverse-complement), got {self.filters}"
            )
        if self.seq_len < self.width + self.pool_width - 1:
            raise ValueError(
                f"seq_len={self.seq_len} is too short for a conv of width {self.width} and "
                f"a pool of {self.pool_width}: use seq_len >= {self.width + self.pool_width - 1}"
            )

    @property
    def pooled_length(self) -> int:
        """Positions of the pooled conv map (47 at the default 200 bp)."""
        return (self.seq_len - self.width + 1) // self.pool_width


class SimpleCNN(ConfiguredModel):
    """Conv, ReLU, max-pool, dropout, flatten, dense, ReLU, dropout, dense.

    Input: x (N, 4, L) float one-hot, channels A, C, G, T, L == config.seq_len.
    Output: (N, T) logits, T == config.n_tasks (no sigmoid).
    """

    name = "simple"

    def __init__(self, config: SimpleCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.conv = first_conv(config.filters, config.width, config.rc_equivariant_first_layer)
        self.pool = nn.MaxPool1d(config.pool_width)
        self.conv_dropout = nn.Dropout(config.conv_dropout)
        self.hidden = nn.Linear(config.filters * config.pooled_length, config.hidden_units)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)
        self.head = nn.Linear(config.hidden_units, config.n_tasks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 4, L) float -> (N, T) logits."""
        check_input(x, self.config.seq_len)
        h = self.pool(torch.relu(self.conv(x)))  # (N, filters, pooled_length)
        h = self.conv_dropout(h).flatten(1)  # (N, filters * pooled_length)
        h = self.hidden_dropout(torch.relu(self.hidden(h)))  # (N, hidden_units)
        return self.head(h)  # (N, T)
