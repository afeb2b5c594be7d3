"""Which interval records become training windows, why the others do not, and labels.

Each record of a label table or region BED becomes one window of L bp centred on
it (:func:`dnacnn.data.windows.centred_windows`), except a record

- ``unknown_contig``: on a contig the genome does not have (under any alias);
- ``past_contig_end``: ending past its contig's end (a record of another build);
- ``split_boundary``: whose window spans genomic blocks of two splits (``block``
  splits; the window would leak one split into another);
- ``all_n``: whose window holds no called base (an assembly gap), found when the
  window is read.

The first three are pure functions of the coordinates (:func:`classify_intervals`):
the driver applies them to every line in :func:`scan_intervals` before any Ray work
(parsing every line too, so a malformed file fails there, with one line naming it),
and each read task applies the same function to drop those records. ``all_n`` is
counted as the rows expected per split minus the rows written
(:meth:`IntervalScan.account`), so every input record is accounted for.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from dnacnn.data import bed
from dnacnn.data.dataset_io import SPLITS
from dnacnn.data.splits import SplitConfig, assign_splits
from dnacnn.data.windows import centred_windows, overlap_bp
from dnacnn.genome import Genome, contig_key

log = logging.getLogger(__name__)

UNKNOWN_CONTIG = "unknown_contig"
PAST_CONTIG_END = "past_contig_end"
SPLIT_BOUNDARY = "split_boundary"
ALL_N = "all_n"
SKIP_REASONS = (UNKNOWN_CONTIG, PAST_CONTIG_END, SPLIT_BOUNDARY, ALL_N)


def classify_intervals(
    genome: Genome,
    chroms: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    length: int,
    splits: SplitConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Why each interval is skipped ("" when kept), its window and its split.

    Args:
        chroms, starts, ends: (N,) intervals, 0-based half-open.
        length: L, bp per window.
        splits: how windows are split; None gives every window the split None.
    Returns:
        reason: (N,) object, "" or one of :data:`SKIP_REASONS` (not ``all_n``);
        window_starts: (N,) int64;
        split: (N,) object, the window's split name (None where skipped or no splits).
    """
    n = len(starts)
    sizes = np.full(n, -1, dtype=np.int64)
    for chrom in np.unique(chroms) if n else []:
        if genome.has(chrom):
            sizes[chroms == chrom] = genome.length(chrom)
    reason = np.full(n, "", dtype=object)
    reason[sizes < 0] = UNKNOWN_CONTIG
    reason[(sizes >= 0) & (ends > sizes)] = PAST_CONTIG_END
    window_starts = centred_windows(starts, ends, length)
    split = np.full(n, None, dtype=object)
    if splits is not None and n:
        split = assign_splits(chroms, window_starts, splits, window_starts + length)
        no_split = np.fromiter((s is None for s in split), dtype=bool, count=n)
        reason[(reason == "") & no_split] = SPLIT_BOUNDARY
        split[reason != ""] = None
    return reason, window_starts, split


@dataclass
class IntervalScan:
    """What the driver found in an interval file (see :func:`scan_intervals`).

    Attributes:
        records: data lines read.
        skipped: reason -> records skipped before reading sequence.
        first: reason -> the first such record, ``chrom:start-end``.
        expected: split -> windows the read tasks should yield before ``all_n``.
        duplicates: records with the same chrom, start and end as an earlier one.
        peaks_on_unknown_contigs: task -> contigs of its peak BED that the genome lacks.
        peakless_tasks: tasks whose peak BED holds no interval (each of their labels is 0).
    """

    records: int = 0
    skipped: Counter = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    duplicates: int = 0
    peaks_on_unknown_contigs: dict[str, list[str]] = field(default_factory=dict)
    peakless_tasks: list[str] = field(default_factory=list)

    def account(self, written: dict[str, int]) -> dict:
        """The ``records`` summary of the dataset, given the rows written per split.

        Raises:
            RuntimeError: more rows written than planned (a bug, not an input error).
        """
        skipped = {r: int(self.skipped[r]) for r in SKIP_REASONS if self.skipped[r]}
        all_n = 0
        for split, rows in written.items():
            if rows > self.expected[split]:
                raise RuntimeError(f"{rows} {split} rows written, {self.expected[split]} planned")
            all_n += self.expected[split] - rows
        if all_n:
            skipped[ALL_N] = all_n
            log.warning("skipped %d interval(s) whose window is all N (an assembly gap)", all_n)
        out = {"read": self.records, "written": int(sum(written.values())), "skipped": skipped,
               "first_skipped": {r: self.first[r] for r in skipped if r in self.first},
               "duplicates": self.duplicates}
        if self.peaks_on_unknown_contigs:
            out["peaks_on_unknown_contigs"] = self.peaks_on_unknown_contigs
        if self.peakless_tasks:
            out["peakless_tasks"] = self.peakless_tasks
        return out


def scan_intervals(
    genome: Genome,
    path: str,
    length: int,
    splits: SplitConfig | None,
    n_label_columns: int,
    has_header: bool,
    peak_paths: dict[str, str] | None = None,
    chunk_lines: int = 1_000_000,
) -> IntervalScan:
    """Parse every line of an interval file and classify it, on the driver.

    Logs a warning per skip reason (with its first record), for duplicate records
    and for peak BED contigs that the genome lacks (those peaks label nothing).

    Raises:
        ValueError: a malformed line (see :func:`dnacnn.data.bed.parse_intervals`),
            no record at all, or no record that can become a window.
    """
    scan = IntervalScan()
    coords: dict[str, list[np.ndarray]] = {}
    for chunk in bed.iter_line_chunks(path, 0, -1, chunk_lines, skip_first=has_header):
        chroms, starts, ends, _ = bed.parse_intervals(chunk, n_label_columns, path)
        scan.records += len(starts)
        reason, _, split = classify_intervals(genome, chroms, starts, ends, length, splits)
        for r in SKIP_REASONS:
            rows = np.flatnonzero(reason == r)
            if len(rows):
                scan.skipped[r] += len(rows)
                i = int(rows[0])
                scan.first.setdefault(r, f"{chroms[i]}:{starts[i]}-{ends[i]}")
        kept = reason == ""
        if splits is None:  # no splits: every kept record counts as train
            scan.expected["train"] += int(kept.sum())
        else:
            for name in SPLITS:
                scan.expected[name] += int(np.sum(kept & (split == name)))
        for chrom in np.unique(chroms) if len(chroms) else []:
            rows = chroms == chrom
            coords.setdefault(chrom, []).append(np.stack([starts[rows], ends[rows]], axis=1))
    for chrom, parts in coords.items():
        pairs = np.concatenate(parts)
        scan.duplicates += len(pairs) - len(np.unique(pairs, axis=0))
    if peak_paths:
        for task, peak_path in peak_paths.items():
            peaks = bed.read_peaks(peak_path)
            if not peaks:
                scan.peakless_tasks.append(task)
            missing = sorted(c for c in peaks if not genome.has(c))
            if missing:
                scan.peaks_on_unknown_contigs[task] = missing
    _warn(scan, path)
    if scan.records == 0:
        raise ValueError(f"{path} holds no interval records (chrom, start, end lines)")
    if sum(scan.expected.values()) == 0:
        raise ValueError(
            f"{path}: none of its {scan.records} record(s) can become a window: "
            + ", ".join(f"{n} {r} (first: {scan.first[r]})" for r, n in scan.skipped.items())
            + f"; check that it and the genome {genome.path} are of the same build"
        )
    return scan


def _warn(scan: IntervalScan, path: str) -> None:
    explain = {
        UNKNOWN_CONTIG: "on a contig the genome lacks",
        PAST_CONTIG_END: "ending past the end of their contig",
        SPLIT_BOUNDARY: "whose window spans blocks of two splits",
    }
    for reason, n in scan.skipped.items():
        log.warning("%s: skipped %d record(s) %s (%s; first: %s)",
                    path, n, explain[reason], reason, scan.first[reason])
    if scan.duplicates:
        log.warning("%s: %d record(s) repeat an earlier record's chrom, start and end; "
                    "each is written as its own row", path, scan.duplicates)
    for task in scan.peakless_tasks:
        log.warning("the peaks BED of task %r holds no interval: every window's label for it is 0", task)
    for task, contigs in scan.peaks_on_unknown_contigs.items():
        log.warning("peaks of task %r on contigs the genome lacks label nothing: %s",
                    task, ", ".join(contigs[:10]) + (", ..." if len(contigs) > 10 else ""))


def _lookup_peaks(peaks: bed.PeakSet, chrom: str) -> tuple[np.ndarray, np.ndarray]:
    if chrom in peaks:
        return peaks[chrom]
    key = contig_key(chrom)
    for name, found in peaks.items():  # a peak BED naming contigs as another source does (chr20 / 20)
        if contig_key(name) == key:
            return found
    empty = np.zeros(0, np.int64)
    return empty, empty


def peak_labels(
    chroms: np.ndarray, starts: np.ndarray, ends: np.ndarray,
    peak_sets: list[bed.PeakSet], min_overlap: int = 1,
) -> np.ndarray:
    """(N, T) float32: 1 where interval i overlaps task t's peaks by >= ``min_overlap`` bp."""
    labels = np.zeros((len(starts), len(peak_sets)), dtype=np.float32)
    for chrom in np.unique(chroms) if len(chroms) else []:
        rows = np.flatnonzero(chroms == chrom)
        for t, peaks in enumerate(peak_sets):
            p_starts, p_ends = _lookup_peaks(peaks, chrom)
            covered = overlap_bp(starts[rows], ends[rows], p_starts, p_ends)
            labels[rows, t] = covered >= min_overlap
    return labels


__all__ = ["IntervalScan", "SKIP_REASONS", "classify_intervals", "peak_labels", "scan_intervals"]
