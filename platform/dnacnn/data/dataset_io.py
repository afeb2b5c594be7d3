"""Datasets on disk: Parquet splits plus a JSON description.

Layout of a dataset folder::

    DIR/dataset.json          DatasetDescription
    DIR/train/*.parquet       one row per sequence
    DIR/valid/*.parquet
    DIR/test/*.parquet

Columns of every split:
    onehot  arrow.fixed_shape_tensor (L, 4) uint8, A/C/G/T, N all-zero
    labels  arrow.fixed_shape_tensor (T,) float32, in the order of ``tasks``
            (binary: T=1; multitask: 0/1 per task; multiclass: one-hot over classes)
    chrom   string, start int64, end int64   (0-based half-open; synthetic
            sequences use chrom "synthetic" and their index as start)
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pyarrow as pa

from dnacnn.tasks import TASK_TYPES

SPLITS = ("train", "valid", "test")
FORMAT = "dnacnn-dataset/1"


@dataclass
class DatasetDescription:
    """What a dataset holds, saved as ``dataset.json`` beside its splits.

    Attributes:
        name: short name, e.g. ``tutorial_binary`` or ``basset164``.
        task_type: one of :data:`TASK_TYPES`.
        tasks: task (cell type / class) names, in label-column order.
        seq_len: L, bases per sequence.
        rows: rows per split.
        splits: how the splits were made (e.g. chromosomes or blocks per split).
        sources: input files with their sha256, or the simulator's parameters.
        records: what became of the input records (``dnacnn data``): ``read``,
            ``written``, ``skipped`` (reason -> count) and any warnings, so that
            every record is accounted for.
        extra: anything else (ground truth file names, seeds, ...).
    """

    name: str
    task_type: str
    tasks: list[str]
    seq_len: int
    rows: dict[str, int] = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    format: str = FORMAT

    def __post_init__(self) -> None:
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"task_type {self.task_type!r} is not one of {TASK_TYPES}")
        if self.task_type == "binary" and len(self.tasks) != 1:
            raise ValueError(f"a binary dataset has exactly one task, not {len(self.tasks)}")

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "dataset.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> DatasetDescription:
        """The description saved in ``directory``.

        Raises:
            FileNotFoundError: no dataset.json there.
            ValueError: naming dataset.json: not JSON, not an object, unknown or missing keys.
        """
        path = Path(directory) / "dataset.json"
        if not path.exists():
            raise FileNotFoundError(
                f"{directory} is not a dnacnn dataset (no dataset.json); make one with "
                "`dnacnn simulate ...` or `dnacnn data ...`"
            )
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not JSON ({err})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{path} holds a JSON {type(meta).__name__}, not a dataset description (an object)")
        names = [f.name for f in fields(cls)]
        unknown = [key for key in meta if key not in names]
        missing = [f.name for f in fields(cls) if f.name not in meta
                   and f.default is MISSING and f.default_factory is MISSING]
        problems = ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + \
                   ([f"missing key(s) {', '.join(missing)}"] if missing else [])
        if problems:
            raise ValueError(f"{path}: {'; '.join(problems)}; is it a dataset.json written by dnacnn?")
        try:
            return cls(**meta)
        except ValueError as err:  # what __post_init__ refuses (a task type, binary with 3 tasks)
            raise ValueError(f"{path}: {err}") from None

    def empty_splits(self) -> list[str]:
        """Splits written with no row (e.g. held-out chromosomes the input did not have)."""
        return [split for split in SPLITS if self.rows.get(split) == 0]

    def why_empty(self) -> str:
        """What to say about :meth:`empty_splits` (e.g. "the test split has no rows ...")."""
        held_out = {"valid": self.splits.get("valid_chroms"), "test": self.splits.get("test_chroms")}
        said = []
        for split in self.empty_splits():
            chroms = held_out.get(split)
            if chroms:
                why = f" (none of the input's records is on its chromosomes {', '.join(map(str, chroms))})"
            elif self.splits.get("method") == "chrom":
                why = " (no chromosome was held out for it)"
            else:
                why = ""
            said.append(f"the {split} split has no rows{why}")
        return "; ".join(said)


def split_dir(directory: str | Path, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    return Path(directory) / split


def tensor_column(values: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """(N, *shape) -> an ``arrow.fixed_shape_tensor`` array of N cells of ``shape``.

    N may be 0 (pyarrow's ``from_numpy_ndarray`` rejects empty arrays, so the
    storage is built directly).
    """
    values = np.ascontiguousarray(values, dtype=value_type.to_pandas_dtype())
    shape = values.shape[1:]
    storage = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), value_type),
                                                int(np.prod(shape)))
    return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(value_type, shape), storage)


def onehot_column(onehot: np.ndarray) -> pa.Array:
    """(N, L, 4) uint8 -> an ``arrow.fixed_shape_tensor`` array of N (L, 4) cells."""
    return tensor_column(onehot, pa.uint8())


def labels_column(labels: np.ndarray) -> pa.Array:
    """(N, T) -> an ``arrow.fixed_shape_tensor`` array of N (T,) float32 cells."""
    return tensor_column(labels, pa.float32())


def make_table(
    onehot: np.ndarray,
    labels: np.ndarray | None = None,
    chrom: list[str] | np.ndarray | None = None,
    start: np.ndarray | None = None,
    end: np.ndarray | None = None,
) -> pa.Table:
    """An Arrow table in the dataset schema from numpy arrays.

    Args:
        onehot: (N, L, 4) uint8.
        labels: (N, T) float; omitted for unlabelled sequence (e.g. genome tiles).
        chrom, start, end: N coordinates; default "synthetic", 0..N-1, 1..N.
    N may be 0 (a table with the schema and no rows).
    """
    n = len(onehot)
    start = np.arange(n, dtype=np.int64) if start is None else np.asarray(start, dtype=np.int64)
    columns = {
        "chrom": pa.array(["synthetic"] * n if chrom is None else list(chrom), pa.string()),
        "start": pa.array(start, pa.int64()),
        "end": pa.array(start + onehot.shape[1] if end is None else np.asarray(end, np.int64), pa.int64()),
        "onehot": onehot_column(onehot),
    }
    if labels is not None:
        columns["labels"] = labels_column(labels)
    return pa.table(columns)


def column_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-shape tensor column back to one (N, *shape) numpy array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.to_numpy_ndarray()
