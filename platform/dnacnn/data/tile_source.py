"""A Ray Data source of genome tiles: windows of L bp every S bp over a FASTA or regions.

The source plans runs of windows on the driver (:func:`dnacnn.data.windows.plan_tile_runs`)
and returns one ``ReadTask`` per group of runs. A read task opens its own ``pysam``
handle inside ``read_fn`` (handles do not pickle) and yields Arrow blocks of at most
``block_rows`` windows (one fetch per run), so a worker's memory does not grow with
the genome. Blocks are in the :mod:`dnacnn.data.dataset_io` schema without labels:
``chrom``, ``start``, ``end``, ``onehot`` ``arrow.fixed_shape_tensor`` (L, 4) uint8.

With ``splits`` and ``split`` the source yields only that split's windows, deciding
before any sequence is fetched where it can (whole chromosomes).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from dnacnn.data import bed
from dnacnn.data.dataset_io import make_table
from dnacnn.data.splits import SplitConfig, assign_split, assign_splits, check_split_choice
from dnacnn.data.windows import TileRun, iter_run_blocks, plan_tile_runs
from dnacnn.genome import Genome
from dnacnn.ray_cluster import configure_data_context

log = logging.getLogger(__name__)


def _metadata(num_rows: int | None, size_bytes: int, path: str) -> BlockMetadata:
    return BlockMetadata(num_rows=num_rows, size_bytes=int(size_bytes), input_files=[path],
                         exec_stats=None)

def _cluster_cpus() -> int:
    """CPUs of the Ray cluster (of this machine before Ray starts)."""
    if ray.is_initialized():
        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    return os.cpu_count() or 1


def _release_memory() -> None:
    """Hand Arrow's freed buffers back to the OS at the end of a read task (a Ray
    worker lives on, and its allocator would otherwise keep the last task's peak)."""
    pa.default_memory_pool().release_unused()


def _groups(weights: list[int], n_groups: int) -> list[list[int]]:
    """Consecutive indices cut into ``n_groups`` groups of about equal total weight."""
    total = sum(weights)
    n_groups = max(1, min(n_groups, len(weights)))
    target = total / n_groups
    groups: list[list[int]] = [[]]
    acc = 0.0
    for i, w in enumerate(weights):
        if groups[-1] and acc >= target * len(groups) and len(groups) < n_groups:
            groups.append([])
        groups[-1].append(i)
        acc += w
    return groups

@dataclass(frozen=True)
class TileConfig:
    """Genome tiling.

    Attributes:
        length: L, bp per window.
        stride: S, bp between window starts (S = L: adjacent; S < L: overlapping).
        max_n_fraction: windows with a larger fraction of N (incl. padding) are dropped.
        cover_end: tile up to each region's end (the last window may run past a
            contig end, N-padded); False keeps only windows wholly inside regions.
        block_rows: at most this many windows per output block (L=600: 2048 rows = 4.9 MB).
        task_rows: about this many windows per read task (the count of tasks is
            rounded up to a multiple of the cluster's CPUs); a task yields
            ``task_rows / block_rows`` blocks, so its memory stays bounded.
    """

    length: int = 600
    stride: int = 600
    max_n_fraction: float = 1.0
    cover_end: bool = True
    block_rows: int = 2048
    task_rows: int = 16384

    def __post_init__(self) -> None:
        if self.length <= 0 or self.stride <= 0:
            raise ValueError(f"length ({self.length}) and stride ({self.stride}) must be positive")
        if not 0.0 <= self.max_n_fraction <= 1.0:
            raise ValueError(f"max_n_fraction must be in [0, 1], got {self.max_n_fraction}")


def _read_tiles(
    fasta: str, runs: list[TileRun], config: TileConfig,
    splits: SplitConfig | None, split: str | None,
) -> Iterator[pa.Table]:
    # a contig read under another name is said once by the driver (its scan resolves every
    # record's contig), not again by every read task through Ray's log forwarding
    logging.getLogger("dnacnn.genome").setLevel(logging.ERROR)
    genome = Genome(fasta)
    try:
        for chrom, onehot, starts in iter_run_blocks(
            genome, runs, config.length, config.stride, config.max_n_fraction
        ):
            ends = starts + config.length
            if split is not None:
                keep = assign_splits([chrom] * len(starts), starts, splits, ends) == split
                onehot, starts, ends = onehot[keep], starts[keep], ends[keep]
            if len(starts):
                yield make_table(onehot, None, [chrom] * len(starts), starts, ends)
    finally:
        genome.close()
        _release_memory()


class GenomeTiles(Datasource):
    """Windows of length L every S bp over all contigs of a FASTA, or over regions.

    Args:
        fasta: indexed FASTA.
        config: :class:`TileConfig`.
        regions: (chrom, start, end) intervals (0-based); default: every contig whole.
            Output ``chrom`` is the name as given here (aliases such as ``chr20`` for
            ``20`` are resolved for fetching and logged).
        splits, split: yield only windows of ``split`` under ``splits``.
    Rows: chrom, start, end (= start + L), onehot (L, 4) uint8. No labels.
    """

    def __init__(
        self,
        fasta: str | Path,
        config: TileConfig = TileConfig(),
        regions: list[tuple[str, int, int]] | None = None,
        splits: SplitConfig | None = None,
        split: str | None = None,
    ):
        super().__init__()
        check_split_choice(splits, split)
        self.fasta = str(fasta)
        self.config = config
        genome = Genome(self.fasta)
        try:
            if regions is None:
                regions = [(c, 0, n) for c, n in genome.lengths.items()]
            for chrom, start, end in regions:
                size = genome.length(chrom)  # unknown contigs fail here, on the driver
                if not 0 <= start <= end <= size:
                    raise ValueError(
                        f"region {chrom}:{start}-{end} is not within contig {chrom} "
                        f"(0-{size}); regions are 0-based half-open, inside the genome "
                        f"{self.fasta}"
                    )
        finally:
            genome.close()
        if split is not None and splits.method == "chrom":
            regions = [r for r in regions if assign_split(r[0], r[1], splits) == split]
        self.splits, self.split = splits, split
        self.runs = plan_tile_runs(
            list(regions), config.length, config.stride, config.block_rows, config.cover_end
        )
        self.num_windows = sum(r.count for r in self.runs)
        self.num_regions = len(regions)

    def account(self, written: dict[str, int]) -> dict:
        """The ``records`` summary of this tiling written per split (for
        :func:`write_dataset`): windows planned, written, and skipped by reason
        (``split_boundary``: across blocks of two splits; ``max_n_fraction``: too
        many N)."""
        boundary = 0
        if self.splits is not None and self.splits.method == "block":
            size, length = self.splits.block_size, self.config.length
            for run in self.runs:
                starts = run.starts(self.config.stride)
                across = np.flatnonzero(starts // size != (starts + length - 1) // size)
                if len(across):  # only windows across a block boundary can be dropped
                    got = assign_splits([run.chrom] * len(across), starts[across], self.splits,
                                        starts[across] + length)
                    boundary += sum(s is None for s in got)
        total = int(sum(written.values()))
        too_many_n = self.num_windows - boundary - total
        if too_many_n < 0:
            raise RuntimeError(f"{total} windows written, {self.num_windows - boundary} planned")
        skipped = {k: int(v) for k, v in
                   (("split_boundary", boundary), ("max_n_fraction", too_many_n)) if v}
        out = {"regions": self.num_regions, "windows": self.num_windows, "written": total,
               "skipped": skipped}
        if self.config.max_n_fraction >= 1.0:  # not counted: that would need a pass over the genome
            out["n_windows"] = ("kept, all-N ones included (max_n_fraction 1.0); "
                                "--max-n-fraction below 1 drops them")
        return out

    def get_name(self) -> str:
        return "GenomeTiles"

    def estimate_inmemory_data_size(self) -> int:
        return self.num_windows * (self.config.length * 4 + 32)

    @property
    def default_num_tasks(self) -> int:
        """About one read task per ``task_rows`` windows, rounded up to a multiple of
        the cluster's CPUs so that the last round of tasks keeps every CPU busy."""
        n = math.ceil(self.num_windows / self.config.task_rows)
        cpus = _cluster_cpus()
        n = cpus * math.ceil(n / cpus)
        return max(1, min(len(self.runs), n))

    def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
        if not self.runs:
            return []
        n_tasks = parallelism if parallelism > 0 else self.default_num_tasks
        exact = self.config.max_n_fraction >= 1.0 and self.split is None
        tasks = []
        for group in _groups([r.count for r in self.runs], n_tasks):
            runs = [self.runs[i] for i in group]
            rows = sum(r.count for r in runs)
            tasks.append(ReadTask(
                functools.partial(_read_tiles, self.fasta, runs, self.config, self.splits, self.split),
                _metadata(rows if exact else None, rows * (self.config.length * 4 + 32), self.fasta),
                per_task_row_limit=per_task_row_limit,
            ))
        return tasks


def read_genome_tiles(
    fasta: str | Path,
    length: int = 600,
    stride: int | None = None,
    regions: list[tuple[str, int, int]] | str | Path | None = None,
    max_n_fraction: float = 1.0,
    *,
    cover_end: bool = True,
    splits: SplitConfig | None = None,
    split: str | None = None,
    block_rows: int = 2048,
    task_rows: int = 16384,
    override_num_blocks: int | None = None,
) -> ray.data.Dataset:
    """Tile a genome into one-hot windows as a Ray Dataset.

    Args:
        fasta: indexed FASTA (plain or bgzip + .fai/.gzi).
        length: L, bp per window. stride: bp between starts (default L).
        regions: (chrom, start, end) tuples or a BED path; default all contigs.
        max_n_fraction: drop windows with more N than this fraction (1.0 keeps all).
        cover_end, block_rows, task_rows: see :class:`TileConfig`.
        splits, split: keep only one split's windows.
    Returns:
        Dataset of rows chrom, start, end, onehot (L, 4) uint8.
    """
    configure_data_context()
    if isinstance(regions, (str, Path)):
        regions = bed.read_bed(regions)
    config = TileConfig(length, stride or length, max_n_fraction, cover_end, block_rows, task_rows)
    source = GenomeTiles(fasta, config, regions, splits, split)
    log.info("tiling %s: %d windows of %d bp (stride %d)", fasta, source.num_windows,
             config.length, config.stride)
    # As many blocks as read tasks: Ray would otherwise split each task's output
    # further (and stop fusing the read with what follows, e.g. the Parquet write).
    return ray.data.read_datasource(
        source, override_num_blocks=override_num_blocks or source.default_num_tasks
    )



__all__ = ["GenomeTiles", "TileConfig", "read_genome_tiles"]
