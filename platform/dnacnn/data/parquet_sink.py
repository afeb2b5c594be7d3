"""Atomic Parquet parts, and a Ray Data sink that streams each write task into one.

:class:`ParquetPart` writes one Parquet file under a temporary name, a row group
per table written, and renames it into place on commit (or removes it on abort),
so a reader of the folder never sees a partial file and a retried task never
appends to an old one. Temporary names start with ``.``, which pyarrow's dataset
discovery (``pq.read_table(folder)``) skips; :func:`remove_unfinished_parts` deletes
those a killed process left.

Ray's own ``write_parquet`` collects every block of a task in memory (``list(blocks)``)
and hands them to ``pyarrow.dataset.write_dataset`` with its own thread pool. For
one-hot genome tiles that is a whole task's output held at once and threads that
compete with the other Ray workers for the node's cores. :class:`StreamingParquetSink`
writes each block as it arrives into a :class:`ParquetPart`: a task holds one block
at a time (Ray Data's ``target_max_block_size``, 128 MiB by default), whatever the
genome's length.

:func:`write_read_dataset` is the entry point: it writes a Dataset straight from a
``read_*`` call, whose read and write then fuse into one task per read task.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq
import ray.data
from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink, WriteResult

from dnacnn.data.ray_internals import is_straight_from_read

PART_TEMPLATE = "part-{:05d}.parquet"


class ParquetPart:
    """One Parquet file written atomically: ``write`` tables, then ``commit`` or ``abort``.

    Args:
        path: the final file; replaced on commit if it exists.
        schema: every table is cast to it, and a part with no rows is still
            committed as a file with this schema; without one, the first
            non-empty table's schema is used and a part with no rows commits nothing.
        compression: Parquet codec (``snappy``, ``zstd``, ``none``...).

    As a context manager it commits when the block ends normally and aborts when
    it raises. ``rows`` counts the rows written so far.
    """

    def __init__(self, path: str | Path, schema: pa.Schema | None = None,
                 compression: str = "snappy"):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        self.schema = schema
        self.compression = compression
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        if schema is not None:
            self._open(schema)

    def _open(self, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(self.tmp, schema, compression=self.compression)

    def write(self, table: pa.Table) -> None:
        """Append ``table`` as one row group (nothing for an empty table)."""
        if table.num_rows == 0:
            return
        if self.schema is not None:
            table = table.cast(self.schema)
        if self._writer is None:
            self._open(table.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows

    def commit(self) -> int:
        """Close and move the file into place; return its rows (no file: 0 rows, no schema)."""
        if self._writer is not None:
            self._writer.close()
            self.tmp.replace(self.path)
        return self.rows

    def abort(self) -> None:
        """Close and remove the temporary file; the final path is left as it was."""
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> ParquetPart:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def remove_unfinished_parts(directory: str | Path) -> int:
    """Delete the temporary files that killed writers of :class:`ParquetPart` left in
    ``directory`` (e.g. when a job restarts); return how many there were."""
    stale = list(Path(directory).glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


class StreamingParquetSink(Datasink[int]):
    """Write a Dataset to ``directory/part-NNNNN.parquet``, one file per write task.

    Args:
        directory: local (or shared) folder, created if missing; files of the same
            task index are replaced.
        compression: Parquet codec (``snappy``, ``zstd``, ``none``...).
    Each task's ``write`` returns its row count; :attr:`rows` holds the total after
    the write (on the driver).
    """

    def __init__(self, directory: str | Path, compression: str = "snappy"):
        self.directory = Path(directory)
        self.compression = compression
        self.rows = 0

    def get_name(self) -> str:
        return "Parquet"

    def on_write_start(self, schema: pa.Schema | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, blocks: Iterable[Block], ctx) -> int:
        with ParquetPart(self.directory / PART_TEMPLATE.format(ctx.task_idx),
                         compression=self.compression) as part:
            for block in blocks:
                part.write(BlockAccessor.for_block(block).to_arrow())
        return part.rows

    def on_write_complete(self, write_result: WriteResult[int]) -> None:
        self.rows = int(sum(write_result.write_returns))


def write_read_dataset(
    dataset: ray.data.Dataset, directory: str | Path, compression: str = "snappy"
) -> int:
    """Write a Dataset made by a ``read_*`` call to ``directory``; return its rows.

    ``directory`` is emptied first; with no rows it is left empty.

    Read and write fuse into one task per read task, which puts nothing in the
    object store, so Ray Data's object-store budget has nothing to protect here.
    Its per-operator resource reservation (a public ``DataContext`` switch) is
    turned off for this Dataset only: in Ray 2.60 that budget reads as zero CPUs
    for the first second of every execution (the autoscaling coordinator answers
    asynchronously), and only one task runs during it, a quarter of the time of a
    63 Mbp write on 2 CPUs (``bench/pipeline.py``). Ray core still runs one task
    per CPU.

    Raises:
        ValueError: when ``dataset`` has operations after its read (they would not
            all fuse into the write, and then the object-store budget matters).
    """
    if not is_straight_from_read(dataset):
        raise ValueError("write_read_dataset takes a Dataset straight from a read_* call")
    dataset.context.op_resource_reservation_enabled = False
    shutil.rmtree(directory, ignore_errors=True)
    Path(directory).mkdir(parents=True)
    sink = StreamingParquetSink(directory, compression)
    dataset.write_datasink(sink)
    return sink.rows


__all__ = [
    "PART_TEMPLATE", "ParquetPart", "StreamingParquetSink", "remove_unfinished_parts",
    "write_read_dataset",
]
