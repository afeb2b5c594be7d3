"""One Parquet part file written atomically: under a temporary name, renamed into place when complete.

The one part writer of the project (the dataset sink of ``dnacnn.data.parquet_sink``
and the scoring job's shards). A reader of the folder never sees a partial file:
the temporary name starts with ``_tmp-``, which pyarrow, pandas and Ray skip (they
ignore names starting with ``_`` or ``.``), and ``os.replace`` makes the final
name appear at once. A part whose writer is interrupted leaves at most a
temporary file, which :func:`remove_temporaries` clears.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: Prefix of every temporary file.
TMP_PREFIX = "_tmp-"


def temporary_name(path: Path) -> Path:
    """A unique temporary sibling of ``path`` that Parquet readers skip."""
    return path.with_name(f"{TMP_PREFIX}{path.name}-{uuid.uuid4().hex}")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a small text file (a marker, JSON) the same way: all or nothing."""
    path = Path(path)
    tmp = temporary_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def remove_temporaries(folder: str | Path) -> None:
    """Delete what interrupted writers left in ``folder`` (final names are never partial)."""
    folder = Path(folder)
    if folder.is_dir():
        for path in folder.glob(f"{TMP_PREFIX}*"):
            path.unlink(missing_ok=True)


class AtomicPartWriter:
    """Stream tables into ``path``, one row group per ``write``; ``commit`` renames it into place.

    Args:
        path: the final file name.
        schema: the part's schema; every table is cast to it, and a part with no rows
            still gets a file (with this schema). ``None``: the first non-empty
            table's schema, and no file at all when no rows come.
        compression: Parquet codec.
    Use as a context manager (``commit`` on success, ``abort`` on an exception) or call
    them yourself. ``rows`` counts the rows written.
    """

    def __init__(self, path: str | Path, schema: pa.Schema | None = None, compression: str = "snappy"):
        self.path = Path(path)
        self.tmp = temporary_name(self.path)
        self.schema = schema
        self.compression = compression
        self.rows = 0
        self._writer = pq.ParquetWriter(self.tmp, schema, compression=compression) if schema is not None else None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self.schema = table.schema
            self._writer = pq.ParquetWriter(self.tmp, table.schema, compression=self.compression)
        self._writer.write_table(table.cast(self.schema), row_group_size=table.num_rows)
        self.rows += table.num_rows

    def commit(self) -> bool:
        """Close and rename into place; False when there was nothing to write (schema None, no rows)."""
        if self._writer is None:
            return False
        self._writer.close()
        os.replace(self.tmp, self.path)
        return True

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicPartWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()
