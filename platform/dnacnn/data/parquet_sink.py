"""A Ray Data sink that streams each write task into one atomic Parquet part
(:class:`~dnacnn.data.parquet_part.ParquetPart`).

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
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import ray.data
from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink, WriteResult

from dnacnn.data.parquet_part import ParquetPart
from dnacnn.data.ray_internals import is_straight_from_read

PART_TEMPLATE = "part-{:05d}.parquet"


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


__all__ = ["PART_TEMPLATE", "StreamingParquetSink", "write_read_dataset"]
