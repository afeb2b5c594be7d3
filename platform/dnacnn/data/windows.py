"""Genome windows for datasets: tiling, centring on intervals, overlap labels (pure, no Ray).

(Variant ref/alt windows belong to :mod:`dnacnn.scoring`: one window rule for batch
scoring and the HTTP service. Centred windows here use the same convention: the
window of L around a centre c starts at ``c - L // 2``.)

Coordinates are 0-based half-open throughout. A window of length L always has
``end = start + L``; the part of it past a contig's end (or before 0) reads as N
(all-zero one-hot rows), through :meth:`dnacnn.genome.Genome.fetch`, the one
padding code path of the package.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnacnn import sequence
from dnacnn.genome import Genome

# ---------------------------------------------------------------- tiling


def tile_count(span: int, length: int, stride: int, cover_end: bool = True) -> int:
    """Number of windows tiling a region of ``span`` bp.

    Windows start at 0, S, 2S, ... With ``cover_end`` the last window is the
    first one that reaches the region's end (it may run past it: past a contig
    end it is N-padded); without, only windows wholly inside the region count.
    """
    if length <= 0 or stride <= 0:
        raise ValueError(f"window length ({length}) and stride ({stride}) must be positive")
    if span <= 0:
        return 0
    if cover_end:
        return 1 + math.ceil(max(0, span - length) / stride)
    return 0 if span < length else 1 + (span - length) // stride


@dataclass(frozen=True)
class TileRun:
    """``count`` windows on ``chrom`` starting at ``first``, ``first + S``, ...

    ``chrom`` is the name as the caller gave it (a BED's or the FASTA's).
    """

    chrom: str
    first: int
    count: int

    def starts(self, stride: int) -> np.ndarray:
        return self.first + stride * np.arange(self.count, dtype=np.int64)


def plan_tile_runs(
    regions: list[tuple[str, int, int]],
    length: int,
    stride: int,
    max_windows: int,
    cover_end: bool = True,
) -> list[TileRun]:
    """Cut the tiling of each region into runs of at most ``max_windows`` windows.

    Args:
        regions: (chrom, start, end) intervals, 0-based half-open.
    Returns:
        runs in region order; consecutive runs of a region continue its grid.
    """
    if max_windows <= 0:
        raise ValueError(f"max_windows must be positive, got {max_windows}")
    runs = []
    for chrom, start, end in regions:
        n = tile_count(end - start, length, stride, cover_end)
        for offset in range(0, n, max_windows):
            runs.append(TileRun(chrom, start + offset * stride, min(max_windows, n - offset)))
    return runs


def strided_windows(codes: np.ndarray, count: int, length: int, stride: int) -> np.ndarray:
    """Windows of an encoded chunk.

    Args:
        codes: (M, 4) uint8 one-hot of a chunk, M >= (count - 1) * stride + length.
    Returns:
        (count, length, 4) uint8; a view when ``stride == length``, else a copy.
    """
    if stride == length:
        return codes[: count * length].reshape(count, length, 4)
    view = np.lib.stride_tricks.as_strided(
        codes,
        shape=(count, length, 4),
        strides=(stride * codes.strides[0], codes.strides[0], codes.strides[1]),
        writeable=False,
    )
    return np.ascontiguousarray(view)


def n_fraction(onehot: np.ndarray) -> np.ndarray:
    """Fraction of N (all-zero) rows per window: (N, L, 4) -> (N,) float32."""
    length = onehot.shape[1]
    if length == 0:
        return np.zeros(len(onehot), dtype=np.float32)
    called = onehot.sum(axis=(1, 2), dtype=np.int64)
    return (1.0 - called / length).astype(np.float32)


def encode_run(
    genome: Genome, run: TileRun, length: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-hot of every window of a run, from one fetch of the whole span.

    Returns:
        onehot: (count, length, 4) uint8 (N-padded past the contig ends);
        starts: (count,) int64.
    """
    starts = run.starts(stride)
    if run.count == 0:
        return np.zeros((0, length, 4), np.uint8), starts
    end = int(starts[-1]) + length
    codes = sequence.encode(genome.fetch(run.chrom, run.first, end))  # (end - first, 4)
    return strided_windows(codes, run.count, length, stride), starts


def iter_run_blocks(
    genome: Genome,
    runs: list[TileRun],
    length: int,
    stride: int,
    max_n_fraction: float = 1.0,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(chrom, onehot (n, L, 4) uint8, starts (n,)) per run, windows with too many N dropped."""
    for run in runs:
        onehot, starts = encode_run(genome, run, length, stride)
        if max_n_fraction < 1.0:
            keep = n_fraction(onehot) <= max_n_fraction
            if not keep.all():
                onehot, starts = onehot[keep], starts[keep]
        yield run.chrom, onehot, starts


_ACGT = np.zeros(256, dtype=bool)
_ACGT[np.frombuffer(b"ACGTacgt", dtype=np.uint8)] = True


def candidate_windows(genome: Genome, length: int, max_n_fraction: float = 0.0) -> pd.DataFrame:
    """Grid windows ``[kL, (k+1)L)`` wholly inside each contig with at most ``max_n_fraction`` N.

    Returns:
        DataFrame chrom, start (0-based), in genome order.
    """
    parts = []
    for chrom, size in genome.lengths.items():
        n = size // length
        if n == 0:
            continue
        codes = np.frombuffer(genome.fetch(chrom, 0, n * length).encode("ascii"), dtype=np.uint8)
        called = _ACGT[codes].reshape(n, length).sum(axis=1)
        keep = np.flatnonzero(1.0 - called / length <= max_n_fraction)
        parts.append(pd.DataFrame({"chrom": chrom, "start": keep.astype(np.int64) * length}))
    if not parts:
        return pd.DataFrame({"chrom": pd.Series(dtype=object), "start": pd.Series(dtype=np.int64)})
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------- intervals


def centred_windows(starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Starts of windows of ``length`` centred on each interval.

    The centre of ``[s, e)`` is ``(s + e) // 2``; the window is
    ``[centre - length // 2, centre - length // 2 + length)`` (the convention of
    variant windows, where the centre is the variant's position).
    Returns:
        (N,) int64 window starts (may be negative near a contig start: N-padded).
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    return (starts + ends) // 2 - length // 2


def merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, merged (non-overlapping, non-touching) intervals of one chromosome."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    running_end = np.maximum.accumulate(ends)
    new = np.ones(len(starts), dtype=bool)
    new[1:] = starts[1:] > running_end[:-1]
    group = np.cumsum(new) - 1
    merged_ends = np.zeros(group[-1] + 1, dtype=np.int64)
    np.maximum.at(merged_ends, group, ends)
    return starts[new], merged_ends


def overlap_bp(
    starts: np.ndarray, ends: np.ndarray, peak_starts: np.ndarray, peak_ends: np.ndarray
) -> np.ndarray:
    """Bases of each interval covered by merged peaks of the same chromosome.

    Args:
        starts, ends: (N,) the intervals.
        peak_starts, peak_ends: (P,) output of :func:`merge_intervals`.
    Returns:
        (N,) int64 bp of overlap.
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    if len(peak_starts) == 0 or len(starts) == 0:
        return np.zeros(len(starts), dtype=np.int64)
    # prefix sums of peak lengths: covered(x) = bases of peaks before position x
    lengths = peak_ends - peak_starts
    before = np.concatenate([[0], np.cumsum(lengths)])

    def covered(x: np.ndarray) -> np.ndarray:
        i = np.searchsorted(peak_starts, x, side="right")  # peaks starting at or before x
        partial = np.where(i > 0, np.minimum(x, peak_ends[np.maximum(i - 1, 0)])
                           - peak_starts[np.maximum(i - 1, 0)], 0)
        return before[np.maximum(i - 1, 0)] * (i > 0) + np.maximum(partial, 0)

    return covered(ends) - covered(starts)
