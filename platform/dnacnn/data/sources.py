"""Ray Data sources: genome tiles and labelled intervals, and writing them as datasets.

Each source plans shards on the driver (regions of the genome, byte ranges of a
label file) and returns one ``ReadTask`` per group of shards. A read task opens
its own ``pysam`` handles inside ``read_fn`` (they do not pickle) and yields Arrow
blocks of bounded size (``block_rows`` rows), so a worker's memory does not grow
with the genome. The windowing and labelling are the pure functions of
:mod:`dnacnn.data.windows`, :mod:`dnacnn.data.interval_records` and
:mod:`dnacnn.data.bed`.

Output blocks are in the :mod:`dnacnn.data.dataset_io` schema (``chrom``,
``start``, ``end``, ``onehot`` ``arrow.fixed_shape_tensor`` (L, 4) uint8, and
``labels`` (T,) float32 for labelled sources).

Splits: every ``read_*`` takes ``splits`` (a :class:`SplitConfig`) and ``split``
(a split name); the source then yields only that split's windows, deciding
before any sequence is fetched where it can. :func:`write_dataset` writes the
three splits of a source to a dataset folder, with what became of the input
records (the sources' ``account``).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from dnacnn import sequence
from dnacnn.data import bed
from dnacnn.data.dataset_io import SPLITS, DatasetDescription, make_table, split_dir
from dnacnn.data.interval_records import (
    IntervalScan,
    classify_intervals,
    peak_labels,
    scan_intervals,
)
from dnacnn.data.parquet_sink import write_read_dataset
from dnacnn.data.splits import SplitConfig, assign_split, assign_splits
from dnacnn.data.windows import TileRun, iter_run_blocks, plan_tile_runs
from dnacnn.genome import Genome
from dnacnn.ray_cluster import configure_data_context

log = logging.getLogger(__name__)


def _check_split(splits: SplitConfig | None, split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    if split is not None and splits is None:
        raise ValueError("pass `splits` (a SplitConfig) together with `split`")


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


# ---------------------------------------------------------------- genome tiles


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
        _check_split(splits, split)
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
        return {"regions": self.num_regions, "windows": self.num_windows, "written": total,
                "skipped": skipped}

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


# ---------------------------------------------------------------- labelled intervals


@dataclass(frozen=True)
class IntervalConfig:
    """Labelled intervals.

    Attributes:
        length: L; each interval becomes the window of L centred on it.
        min_overlap: peaks mode: bp of overlap between the interval (as given, not
            resized) and a task's peaks for label 1.
        block_rows: rows per output block.
        task_bytes: bytes of the interval file per read task (plain files; a
            gzipped file is read by one task).
    """

    length: int = 600
    min_overlap: int = 1
    block_rows: int = 2048
    task_bytes: int = 8 << 20


def interval_table(
    genome: Genome,
    chroms: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    labels: np.ndarray,
    length: int,
    splits: SplitConfig | None = None,
    split: str | None = None,
) -> pa.Table | None:
    """Centred windows of intervals with their labels as a dataset table (None if empty).

    Records that :func:`~dnacnn.data.interval_records.classify_intervals` skips, of
    other splits than ``split``, or whose window is all N, are left out.
    """
    reason, w_starts, w_split = classify_intervals(genome, chroms, starts, ends, length, splits)
    keep = reason == ""
    if split is not None:
        keep &= w_split == split
    chroms, w_starts, labels = chroms[keep], w_starts[keep], labels[keep]
    if len(w_starts) == 0:
        return None
    seqs = [genome.fetch(c, s, s + length) for c, s in zip(chroms.tolist(), w_starts.tolist())]
    onehot = sequence.encode_batch(seqs, length)
    called = onehot.any(axis=(1, 2))  # all-N windows: counted by IntervalScan.account
    if not called.all():
        onehot, labels, chroms, w_starts = onehot[called], labels[called], chroms[called], w_starts[called]
    if len(w_starts) == 0:
        return None
    return make_table(onehot, labels, chroms, w_starts, w_starts + length)


def _read_intervals(
    fasta: str, path: str, byte_range: tuple[int, int], n_label_columns: int,
    peak_paths: list[str] | None, config: IntervalConfig,
    splits: SplitConfig | None, split: str | None, has_header: bool,
) -> Iterator[pa.Table]:
    genome = Genome(fasta)
    peak_sets = [bed.cached_peaks(p) for p in peak_paths] if peak_paths else None
    try:
        for chunk in bed.iter_line_chunks(path, byte_range[0], byte_range[1], config.block_rows,
                                          skip_first=has_header):
            chroms, starts, ends, labels = bed.parse_intervals(chunk, n_label_columns, path)
            if peak_sets is not None:
                labels = peak_labels(chroms, starts, ends, peak_sets, config.min_overlap)
            table = interval_table(genome, chroms, starts, ends, labels, config.length, splits, split)
            if table is not None:
                yield table
    finally:
        genome.close()


class LabelledIntervals(Datasource):
    """Windows centred on labelled intervals.

    Two forms:
    - ``intervals`` is a label table (header ``chrom start end TASK...``, one 0/1 or
      float column per task), ``peaks`` is None;
    - ``intervals`` is a BED of regions and ``peaks`` maps each task to a peak BED:
      the label is 1 where the region overlaps that task's peaks (``min_overlap``).

    Rows: chrom, start, end (the window), onehot (L, 4) uint8, labels (T,) float32.
    The interval file is read by byte ranges, one task per ``task_bytes``.
    """

    def __init__(
        self,
        fasta: str | Path,
        intervals: str | Path,
        config: IntervalConfig = IntervalConfig(),
        peaks: dict[str, str | Path] | None = None,
        splits: SplitConfig | None = None,
        split: str | None = None,
    ):
        super().__init__()
        _check_split(splits, split)
        self.fasta, self.path, self.config = str(fasta), str(intervals), config
        self.splits, self.split = splits, split
        Genome(self.fasta).close()  # fail early on a bad FASTA
        if not Path(self.path).exists():
            raise FileNotFoundError(f"interval file not found: {self.path}")
        if peaks:
            for task, p in peaks.items():
                if not Path(p).exists():
                    raise FileNotFoundError(f"peak BED of task {task!r} not found: {p}")
            self.tasks = list(peaks)
            self.peak_paths = [str(p) for p in peaks.values()]
            self.has_header, self.n_label_columns, offset = False, 0, 0
        else:
            header = bed.read_label_header(self.path)
            self.tasks, self.peak_paths = header.tasks, None
            self.has_header, self.n_label_columns = True, len(header.tasks)
            offset = header.data_offset
        self.ranges = bed.byte_ranges(self.path, offset, config.task_bytes)

    def scan(self) -> IntervalScan:
        """Parse and classify every record on the driver (see
        :func:`~dnacnn.data.interval_records.scan_intervals`)."""
        genome = Genome(self.fasta)
        try:
            return scan_intervals(
                genome, self.path, self.config.length, self.splits, self.n_label_columns,
                self.has_header, dict(zip(self.tasks, self.peak_paths)) if self.peak_paths else None,
            )
        finally:
            genome.close()

    def get_name(self) -> str:
        return "LabelledIntervals"

    def estimate_inmemory_data_size(self) -> int:
        text = sum((b - a) for a, b in self.ranges if b > 0) or Path(self.path).stat().st_size
        rows = text // 40 + 1  # ~40 bytes per BED line
        return rows * (self.config.length * 4 + 4 * len(self.tasks) + 32)

    def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
        return [
            ReadTask(
                functools.partial(
                    _read_intervals, self.fasta, self.path, byte_range, self.n_label_columns,
                    self.peak_paths, self.config, self.splits, self.split, self.has_header,
                ),
                _metadata(None, max(1, (byte_range[1] - byte_range[0]) // 40)
                          * (self.config.length * 4 + 32), self.path),
                per_task_row_limit=per_task_row_limit,
            )
            for byte_range in self.ranges
        ]


def read_intervals(
    fasta: str | Path,
    intervals: str | Path,
    length: int = 600,
    *,
    peaks: dict[str, str | Path] | None = None,
    min_overlap: int = 1,
    splits: SplitConfig | None = None,
    split: str | None = None,
    block_rows: int = 2048,
    task_bytes: int = 8 << 20,
    override_num_blocks: int | None = None,
) -> ray.data.Dataset:
    """Labelled intervals as one-hot windows of ``length`` centred on each interval.

    Args:
        fasta: indexed FASTA.
        intervals: a label table (``chrom start end TASK...`` header), or with
            ``peaks`` a BED of regions.
        peaks: task name -> peak BED; label 1 where a region overlaps the peaks.
        min_overlap: bp of overlap for label 1 (peaks mode).
        splits, split: keep only one split's windows.
    Returns:
        Dataset of chrom, start, end, onehot (L, 4) uint8, labels (T,) float32;
        ``LabelledIntervals(...).tasks`` gives the task order.
    """
    configure_data_context()
    config = IntervalConfig(length, min_overlap, block_rows, task_bytes)
    source = LabelledIntervals(fasta, intervals, config, peaks, splits, split)
    return ray.data.read_datasource(
        source, override_num_blocks=override_num_blocks or max(1, len(source.ranges))
    )


# ---------------------------------------------------------------- writing


def write_dataset(
    out_dir: str | Path,
    description: DatasetDescription,
    read_split: Callable[[str], ray.data.Dataset],
    account: Callable[[dict[str, int]], dict] | None = None,
) -> DatasetDescription:
    """Write the three splits of a source as a dataset folder.

    Args:
        out_dir: the dataset folder (see :mod:`dnacnn.data.dataset_io`); existing
            split folders are replaced.
        description: saved as ``dataset.json`` with ``rows`` filled in.
        read_split: split name -> the Dataset of that split's rows, straight from a
            ``read_*`` call (see :func:`dnacnn.data.parquet_sink.write_read_dataset`).
        account: rows written per split -> the description's ``records`` (what
            became of the input records), e.g. :meth:`IntervalScan.account`.
    """
    for split in SPLITS:
        target = split_dir(out_dir, split)
        description.rows[split] = write_read_dataset(read_split(split), target)
        if description.rows[split] == 0:  # no rows, no part file: keep the schema
            labels = np.zeros((0, len(description.tasks)), np.float32) if description.tasks else None
            pq.write_table(make_table(np.zeros((0, description.seq_len, 4), np.uint8), labels, []),
                           target / "empty.parquet")
        log.info("wrote %d %s rows to %s", description.rows[split], split, target)
    if account is not None:
        description.records = account(dict(description.rows))
    description.save(out_dir)
    return description


__all__ = [
    "GenomeTiles", "IntervalConfig", "LabelledIntervals", "TileConfig", "read_genome_tiles",
    "read_intervals", "write_dataset",
]
