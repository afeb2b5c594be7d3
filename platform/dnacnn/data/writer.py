"""Writing in-memory arrays as a dataset folder (no Ray): for the simulators.

Large inputs go through :func:`dnacnn.data.sources.write_dataset` instead; the
simulated tasks are small enough (tens of thousands of windows) to build in
memory, and are written here in parts of ``rows_per_file`` rows.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from dnacnn.data.dataset_io import SPLITS, DatasetDescription, make_table, split_dir

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
    return description
