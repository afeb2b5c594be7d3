"""Whether a dataset's Parquet files hold what its ``dataset.json`` says, checked before
training starts.

A dataset may come from elsewhere (written by hand, by another tool, or edited): a label
of 2 or -1, or NaN, would train without an error (the losses read a label as a class's
probability) and register a model of nonsense. Each split's files are read here, labels
column only, in batches, so the check's memory is bounded whatever the dataset's size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dnacnn.data.dataset_io import SPLITS, DatasetDescription, column_to_numpy, split_dir

log = logging.getLogger(__name__)

#: How far a multiclass row's labels may sum from 1 (float32 probabilities written by other tools).
SUM_TOLERANCE = 1e-3


def check_split_files(directory: str | Path, description: DatasetDescription, batch_rows: int = 65_536) -> None:
    """Refuse split files whose columns, labels or row counts do not fit ``description``;
    warn of a task with one label in every train or valid row.

    Checks, per Parquet file of each split: an ``onehot`` column of (seq_len, 4) cells and a
    ``labels`` column of (T,) cells, T = the tasks; every label finite and within 0..1; for a
    multiclass dataset, each row's labels summing to 1 (one class, or class probabilities).

    Raises:
        ValueError: naming the file, and the row (0-based, in that file) and task of a bad label.
    """
    tasks, multiclass = description.tasks, description.task_type == "multiclass"
    for split in SPLITS:
        rows, low, high = 0, np.full(len(tasks), np.inf), np.full(len(tasks), -np.inf)
        for stray in sorted(split_dir(directory, split).glob("[!._]*")):  # Ray Data reads every file there
            if stray.suffix != ".parquet" or not stray.is_file():
                raise ValueError(f"{stray} is not a Parquet file of the dataset; a split's folder holds "
                                 "its *.parquet files only: move it elsewhere")
        for path in sorted(split_dir(directory, split).glob("*.parquet")):
            try:
                parquet = pq.ParquetFile(path)
                _check_shapes(path, parquet.schema_arrow, description)
                row = 0
                for batch in parquet.iter_batches(batch_size=batch_rows, columns=["labels"]):
                    labels = column_to_numpy(batch.column(0)).reshape(batch.num_rows, -1)
                    _check_labels(path, row, labels, tasks, multiclass)
                    if len(labels):
                        low, high = np.minimum(low, labels.min(axis=0)), np.maximum(high, labels.max(axis=0))
                    row += batch.num_rows
            except (OSError, pa.ArrowException) as err:  # truncated, not Parquet
                raise ValueError(f"{path} cannot be read as Parquet ({err})") from None
            rows += row
        said = description.rows.get(split)
        if said is not None and said != rows:  # steps per epoch, the LR schedule and progress follow it
            raise ValueError(f"{split_dir(directory, split)}: its Parquet files hold {rows:,} rows, "
                             f"{Path(directory) / 'dataset.json'} says {said:,}; write the dataset again "
                             "(dnacnn data ...) or correct its 'rows'")
        one = [(task, low[k]) for k, task in enumerate(tasks) if rows and low[k] == high[k]]
        if one and not multiclass and split in ("train", "valid"):
            task, value = one[0]
            log.warning("dataset %s: task %r has the one label %g in every %s row%s: the model cannot learn "
                        "it from this split, and its AUROC there is undefined", directory, task, value, split,
                        f" ({len(one)} such tasks)" if len(one) > 1 else "")


def _check_shapes(path: Path, schema: pa.Schema, description: DatasetDescription) -> None:
    """The tensor columns' cell shapes against the description (from the file's schema)."""
    expected = {"onehot": (description.seq_len, 4), "labels": (len(description.tasks),)}
    for name, shape in expected.items():
        if schema.get_field_index(name) < 0:
            raise ValueError(f"{path} has no {name!r} column; a dataset split needs onehot and labels")
        kind = schema.field(name).type
        if not isinstance(kind, pa.FixedShapeTensorType):
            raise ValueError(f"{path}: its {name!r} column is of type {kind}, not arrow.fixed_shape_tensor "
                             "(the dataset format: write datasets with `dnacnn data` or dnacnn.data.dataset_io)")
        if tuple(kind.shape) != shape:
            raise ValueError(f"{path}: its {name!r} cells have shape {tuple(kind.shape)}, dataset.json says "
                             f"{shape} (seq_len {description.seq_len}, {len(description.tasks)} task(s))")


def _check_labels(path: Path, first_row: int, labels: np.ndarray, tasks: list[str], multiclass: bool) -> None:
    """One batch of labels, (N, T); rows are numbered from ``first_row`` in the file."""
    for bad, why in ((~np.isfinite(labels), "is not a number or infinite"),
                     ((labels < 0) | (labels > 1), "is outside 0..1")):
        where = np.argwhere(bad)
        if len(where):
            row, task = (int(i) for i in where[0])
            raise ValueError(f"{path}: row {first_row + row} has the label {labels[row, task]:g} for task "
                             f"{tasks[task]!r}, which {why}; a label is a class's probability, 0 to 1 "
                             f"({int(bad.sum()):,} such label(s) in rows {first_row}-{first_row + len(labels) - 1})")
    if multiclass:
        sums = labels.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1) > SUM_TOLERANCE)
        if len(off):
            row = int(off[0])
            raise ValueError(f"{path}: row {first_row + row}'s labels sum to {sums[row]:g}; a multiclass row "
                             "names one class (one-hot) or gives class probabilities summing to 1")
