"""A Ray Data source of labelled intervals: one window of L bp centred on each record.

Two inputs: a label table (header ``chrom start end TASK...``, one 0/1 or float
column per task), or a BED of regions with one peak BED per task (label 1 where a
region overlaps that task's peaks by ``min_overlap`` bp). The file is read by byte
ranges, one read task per ``task_bytes``; each task opens its own ``pysam`` handle.
Which records become windows (and why others do not) is
:mod:`dnacnn.data.interval_records`: :meth:`LabelledIntervals.scan` checks every
record on the driver before any Ray work, the read tasks apply the same rules.

Rows: chrom, start, end (the window), onehot (L, 4) uint8, labels (T,) float32.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from dnacnn import sequence
from dnacnn.data import bed
from dnacnn.data.dataset_io import make_table
from dnacnn.data.interval_records import (
    IntervalScan,
    classify_intervals,
    peak_labels,
    scan_intervals,
)
from dnacnn.data.splits import SplitConfig, check_split_choice
from dnacnn.genome import Genome
from dnacnn.ray_cluster import configure_data_context

log = logging.getLogger(__name__)


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
    # a contig read under another name is said once by the driver (its scan resolves every
    # record's contig), not again by every read task through Ray's log forwarding
    logging.getLogger("dnacnn.genome").setLevel(logging.ERROR)
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
        check_split_choice(splits, split)
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
                BlockMetadata(  # rows unknown until read: ~40 bytes per line
                    num_rows=None, input_files=[self.path], exec_stats=None,
                    size_bytes=max(1, (byte_range[1] - byte_range[0]) // 40)
                    * (self.config.length * 4 + 32),
                ),
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



__all__ = ["IntervalConfig", "LabelledIntervals", "interval_table", "read_intervals"]
