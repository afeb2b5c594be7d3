"""A conv tower's map of N windows, kept without a copy per window.

The mutant-effect engine keeps every layer's map of its reference windows and
reads a few columns of them per mutant. Whole windows hold their maps as one
(N, L_k, C) tensor; reference windows that share their tower
(:mod:`dnacnn.scoring.shared_reference`) hold the maps of their unions, each
window a slice of one. :class:`TowerMap` is both: rows of one (M, C) tensor and
where each window's first column is, so neither is copied window by window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TowerMap:
    """Window i's column j of a channels-last map is ``data[base[i] + j]``, j < ``length``.

    Attributes:
        data: (M, C) the maps of the windows (or of their unions), end to end.
        base: (N,) long, on ``data``'s device: the row of each window's first column.
        length: columns per window.
    """

    data: torch.Tensor
    base: torch.Tensor
    length: int

    @classmethod
    def of_windows(cls, maps: torch.Tensor) -> TowerMap:
        """From per-window maps (N, length, C) (a view when they are contiguous)."""
        n, length, channels = maps.shape
        return cls(maps.reshape(n * length, channels), torch.arange(n, device=maps.device) * length, length)

    def columns(self, rows: torch.Tensor, start: torch.Tensor, size: int) -> torch.Tensor:
        """Columns ``start[b] .. start[b] + size - 1`` of window ``rows[b]``: (B, size, C).

        The caller keeps them inside the window (0 <= start, start + size <= length).
        """
        idx = (self.base[rows] + start)[:, None] + torch.arange(size, device=self.data.device)  # (B, size)
        return self.data[idx]

    def windows(self) -> torch.Tensor:
        """(N, length, C): every window's map (a copy)."""
        rows = torch.arange(len(self.base), device=self.base.device)
        return self.columns(rows, torch.zeros_like(rows), self.length)
