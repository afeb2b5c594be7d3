"""Writing dataset folders (see :mod:`dnacnn.data.dataset_io`), from memory or from Ray Data.

:func:`write_arrays` writes in-memory arrays, in parts of ``rows_per_file`` rows,
without Ray: the simulated tasks and labelled FASTA files are small enough (tens
of thousands of windows) to build in memory. :func:`write_dataset` writes the
splits of a Ray Data source (genome tiles, labelled intervals) through
:func:`dnacnn.data.parquet_sink.write_read_dataset`, streaming, whatever the
genome's size.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from dnacnn.data.dataset_io import SPLITS, DatasetDescription, make_table, split_dir

if TYPE_CHECKING:
    import ray.data

log = logging.getLogger(__name__)


def write_arrays(
    out_dir: str | Path,
    description: DatasetDescription,
    onehot: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray,
    chrom: np.ndarray | list[str] | None = None,
    start: np.ndarray | None = None,
    end: np.ndarray | None = None,
    rows_per_file: int = 20_000,
) -> DatasetDescription:
    """Write rows to ``out_dir/{train,valid,test}/part-NNNNN.parquet`` and ``dataset.json``.

    Args:
        onehot: (N, L, 4) uint8. labels: (N, T) float.
        split: (N,) split names; rows whose split is None are not written.
        chrom, start, end: (N,) coordinates (default "synthetic", row index, index + L).
    Returns:
        ``description`` with ``rows`` filled in (also saved as dataset.json).
    """
    n = len(onehot)
    chrom = np.asarray(["synthetic"] * n if chrom is None else chrom, dtype=object)
    start = np.arange(n, dtype=np.int64) if start is None else np.asarray(start, np.int64)
    end = start + onehot.shape[1] if end is None else np.asarray(end, np.int64)
    split = np.asarray(split, dtype=object)
    for name in SPLITS:
        target = split_dir(out_dir, name)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        rows = np.flatnonzero(split == name)
        for part, lo in enumerate(range(0, len(rows), rows_per_file)):
            idx = rows[lo : lo + rows_per_file]
            table = make_table(onehot[idx], labels[idx], chrom[idx], start[idx], end[idx])
            pq.write_table(table, target / f"part-{part:05d}.parquet")
        if len(rows) == 0:  # an empty split still gets a file, so that readers see the schema
            pq.write_table(make_table(onehot[:0], labels[:0], [], start[:0], end[:0]),
                           target / "part-00000.parquet")
        description.rows[name] = int(len(rows))
    description.save(out_dir)
    log.info("wrote %s to %s: %s", description.name, out_dir, description.rows)
    _said_if_empty(out_dir, description)
    return description


def _said_if_empty(out_dir: str | Path, description: DatasetDescription) -> None:
    """A split without rows is said when the dataset is written, not first when it is trained on."""
    if description.empty_splits():
        log.warning("%s: %s; training on this dataset will be refused", out_dir, description.why_empty())


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
            became of the input records), e.g. ``GenomeTiles.account`` or
            :meth:`dnacnn.data.interval_records.IntervalScan.account`.
    """
    from dnacnn.data.parquet_sink import write_read_dataset  # Ray Data: only for this path

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
    _said_if_empty(out_dir, description)
    return description
