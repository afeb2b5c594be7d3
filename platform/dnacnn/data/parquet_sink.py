"""A Ray Data sink that streams each write task's blocks into one Parquet file.

Ray's own ``write_parquet`` collects every block of a task in memory (``list(blocks)``)
and hands them to ``pyarrow.dataset.write_dataset`` with its own thread pool. For
one-hot genome tiles that is a whole task's output held at once and threads that
compete with the other Ray workers for the node's cores. This sink writes each
block as it arrives (one Parquet row group per block) with a single
``pyarrow.parquet.ParquetWriter``: a task holds one block at a time (Ray Data's
``target_max_block_size``, 128 MiB by default), whatever the genome's length.

A task writes ``part-<task>.parquet.tmp`` and renames it when complete, so a killed
or retried task never leaves a partial file that readers would see.

:func:`write_read_dataset` is the entry point: it writes a Dataset straight from a
``read_*`` call, whose read and write then fuse into one task per read task.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq
import ray.data
from ray.data._internal.execution.backpressure_policy import (
    ENABLED_BACKPRESSURE_POLICIES,
    ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY,
    ResourceBudgetBackpressurePolicy,
)
from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink, WriteResult

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
        final = self.directory / PART_TEMPLATE.format(ctx.task_idx)
        partial = final.with_name(final.name + ".tmp")
        writer, rows = None, 0
        try:
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                if table.num_rows == 0:
                    continue
                if writer is None:
                    writer = pq.ParquetWriter(partial, table.schema, compression=self.compression)
                writer.write_table(table, row_group_size=table.num_rows)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is not None:
            partial.replace(final)
        return rows

    def on_write_complete(self, write_result: WriteResult[int]) -> None:
        self.rows = int(sum(write_result.write_returns))


def write_read_dataset(
    dataset: ray.data.Dataset, directory: str | Path, compression: str = "snappy"
) -> int:
    """Write a Dataset made by a ``read_*`` call to ``directory``; return its rows.

    ``directory`` is emptied first; with no rows it is left empty.

    Read and write fuse into one task per read task, which puts nothing in the
    object store, so Ray Data's object-store budget has nothing to protect here.
    Its resource-budget policy is switched off for this Dataset only: in Ray 2.60
    that budget reads as zero CPUs for the first second of every execution (the
    autoscaling coordinator answers asynchronously), and only one task runs during
    it, a quarter of the time of a 63 Mbp write on 2 CPUs (``bench/pipeline.py``).
    Ray core still runs one task per CPU.

    Raises:
        ValueError: when ``dataset`` has operations after its read (they would not
            all fuse into the write, and then the object-store budget matters).
    """
    if type(dataset._logical_plan.dag).__name__ != "Read":
        raise ValueError("write_read_dataset takes a Dataset straight from a read_* call")
    dataset.context.set_config(
        ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY,
        [p for p in ENABLED_BACKPRESSURE_POLICIES if p is not ResourceBudgetBackpressurePolicy],
    )
    shutil.rmtree(directory, ignore_errors=True)
    Path(directory).mkdir(parents=True)
    sink = StreamingParquetSink(directory, compression)
    dataset.write_datasink(sink)
    return sink.rows


__all__ = ["PART_TEMPLATE", "StreamingParquetSink", "write_read_dataset"]
