"""Variant tables in and out of :class:`~dnacnn.scoring.scorer.VariantScorer`: the four input
columns taken from a dict of arrays, a ``pyarrow.Table`` or a ``pandas.DataFrame`` (checked:
every column there, once, of one length), and the score columns put back in the same format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

#: Columns a batch / DataFrame must have; ``pos`` is the 1-based VCF POS.
INPUT_COLUMNS = ("chrom", "pos", "ref", "alt")
#: Columns the scorer adds to a batch.
SCORE_COLUMNS = ("kind", "delta", "logit_delta", "max_abs_delta", "max_task", "reason", "message")


def input_columns(batch: Mapping[str, Any] | pa.Table | pd.DataFrame) -> dict[str, list]:
    """``chrom``, ``pos``, ``ref``, ``alt`` of a batch as lists.

    Raises:
        ValueError: a column is missing, or held twice in a DataFrame.
    """
    if isinstance(batch, pa.Table):
        cols = {name: batch.column(name).to_pylist() for name in INPUT_COLUMNS if name in batch.column_names}
    elif isinstance(batch, pd.DataFrame):
        _check_single_columns(batch)
        cols = {name: batch[name].tolist() for name in INPUT_COLUMNS if name in batch.columns}
    else:
        cols = {name: list(batch[name]) for name in INPUT_COLUMNS if name in batch}
    missing = [name for name in INPUT_COLUMNS if name not in cols]
    if missing:
        raise ValueError(
            f"the batch lacks column(s) {', '.join(missing)}; a variant batch needs "
            f"{', '.join(INPUT_COLUMNS)} (pos = 1-based VCF POS)"
        )
    return cols


def check_dataframe(df: pd.DataFrame) -> None:
    """Refuse what ``VariantScorer.score_dataframe`` cannot score: not a DataFrame, or one that
    lacks or repeats an input column.

    Raises:
        TypeError, ValueError: saying which.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"score_dataframe takes a pandas DataFrame, got a {type(df).__name__}: "
                        "pd.DataFrame(...) it, or call the scorer on a dict of columns")
    missing = [name for name in INPUT_COLUMNS if name not in df.columns]
    if missing:
        raise ValueError(
            f"the DataFrame lacks column(s) {', '.join(missing)}; give one row per "
            f"(variant, ALT allele) with {', '.join(INPUT_COLUMNS)} (pos = 1-based VCF POS)"
        )
    _check_single_columns(df)


def positional_columns(chrom, pos, ref, alt) -> tuple[list, list, list, list]:
    """The four columns as lists, row k of each at position k: a pandas Series is read by
    position, not by its index labels (those of a sorted or filtered frame are not 0..N-1).

    Raises:
        TypeError: a single value (a string, a number) where a column is due.
        ValueError: columns of different lengths (zip would score the shortest and leave the
            other rows out).
    """
    out = []
    for name, column in zip(INPUT_COLUMNS, (chrom, pos, ref, alt)):
        if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
            raise TypeError(f"{name} is a single value ({column!r}); give a column: one value per row "
                            "(a list, an array or a Series)")
        out.append(column.tolist() if hasattr(column, "tolist") else
                   column.to_pylist() if hasattr(column, "to_pylist") else list(column))
    lengths = [len(column) for column in out]
    if len(set(lengths)) > 1:
        raise ValueError(f"chrom, pos, ref, alt have {', '.join(map(str, lengths))} rows; give one value per row in each")
    return tuple(out)


def _check_single_columns(df: pd.DataFrame) -> None:
    """Refuse an input column held twice (``df["alt"]`` would be a frame of both)."""
    if twice := sorted(set(df.columns[df.columns.duplicated()]) & set(INPUT_COLUMNS)):
        raise ValueError(f"the DataFrame has column(s) {', '.join(twice)} more than once; keep one of each")


def assign_pandas(df: pd.DataFrame, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Put score columns into ``df``: (N, T) arrays as one (T,) array per row."""
    for key, value in scores.items():
        if value.ndim == 2:
            df[key] = pd.Series(list(value), index=df.index, dtype=object)
        elif value.dtype == object:
            df[key] = pd.Series(value, index=df.index, dtype=object)
        else:
            df[key] = value
    return df


def append_arrow(table: pa.Table, scores: dict[str, np.ndarray], n_tasks: int,
                 metadata: dict[bytes, bytes]) -> pa.Table:
    """``table`` with :data:`SCORE_COLUMNS` (replacing any already there): ``delta`` and
    ``logit_delta`` as ``fixed_size_list<float32>[T]``, null for rejected rows; ``metadata``
    added to the schema's."""
    rejected = np.asarray(scores["reason"] != None, dtype=bool)  # noqa: E711
    table = table.drop_columns([c for c in SCORE_COLUMNS if c in table.column_names])
    table = table.append_column("kind", pa.array(scores["kind"].tolist(), pa.string()))
    for key in ("delta", "logit_delta"):
        values = pa.array(np.nan_to_num(scores[key]).ravel(), pa.float32())
        table = table.append_column(key, pa.FixedSizeListArray.from_arrays(values, n_tasks, mask=pa.array(rejected)))
    table = table.append_column("max_abs_delta", pa.array(scores["max_abs_delta"], pa.float32(), mask=rejected))
    for key in ("max_task", "reason", "message"):
        table = table.append_column(key, pa.array(scores[key].tolist(), pa.string()))
    meta = dict(table.schema.metadata or {})
    meta.update(metadata)
    return table.replace_schema_metadata(meta)
