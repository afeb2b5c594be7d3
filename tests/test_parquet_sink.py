"""Atomic Parquet parts and the streaming sink: every row written once, readable by plain
pyarrow, no partial files, write_dataset's empty splits keep the schema; and the Ray Data
behaviour the sink relies on, pinned so that a Ray upgrade that changes it fails here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray.data
from conftest import FIXTURE_FASTA

from dnacnn import sequence
from dnacnn.data.dataset_io import DatasetDescription, column_to_numpy
from dnacnn.data.parquet_part import ParquetPart, remove_unfinished_parts
from dnacnn.data.parquet_sink import write_read_dataset
from dnacnn.data.ray_internals import is_straight_from_read
from dnacnn.data.tile_source import read_genome_tiles
from dnacnn.data.writer import write_dataset
from dnacnn.data.splits import SplitConfig
from dnacnn.genome import Genome

L = 600
REGION = [("20", 0, 240_000)]


def test_every_tile_written_once_and_read_back_by_pyarrow(ray_session, tmp_path):
    (tmp_path / "stale.parquet").write_bytes(b"not parquet")  # the folder is replaced
    ds = read_genome_tiles(FIXTURE_FASTA, L, stride=500, regions=REGION, block_rows=64,
                           task_rows=128)
    ds.context.target_max_block_size = 100_000  # Ray Data blocks of ~40 rows
    rows = write_read_dataset(ds, tmp_path)
    parts = sorted(p.name for p in tmp_path.iterdir())
    assert parts and all(p.startswith("part-") and p.endswith(".parquet") for p in parts)
    assert len(parts) > 1  # one file per read task, several tasks
    table = pq.read_table(tmp_path).sort_by("start")
    starts = table.column("start").to_numpy()
    assert rows == table.num_rows == 1 + (240_000 - L + 499) // 500
    np.testing.assert_array_equal(starts, np.arange(0, 240_000 - L + 500, 500)[: len(starts)])
    # a row group per Ray Data block: the file is streamed, not built in memory
    meta = pq.read_metadata(tmp_path / parts[0])
    assert meta.num_row_groups > 1 and meta.row_group(0).num_rows <= 64
    onehot = column_to_numpy(table.column("onehot"))
    genome = Genome(FIXTURE_FASTA)
    for i in (0, len(starts) // 2, len(starts) - 1):
        assert sequence.decode(onehot[i]) == genome.fetch("20", int(starts[i]), int(starts[i]) + L)


def test_only_datasets_straight_from_a_read(ray_session, tmp_path):
    ds = read_genome_tiles(FIXTURE_FASTA, L, regions=REGION).map_batches(lambda b: b)
    with pytest.raises(ValueError, match="straight from a read"):
        write_read_dataset(ds, tmp_path)


def test_ray_internals_tell_a_read_from_what_follows_it(ray_session):
    # pins dnacnn.data.ray_internals, the one reader of Ray Data's private plan
    read = read_genome_tiles(FIXTURE_FASTA, L, regions=REGION)
    assert is_straight_from_read(read)
    assert is_straight_from_read(ray.data.range(10))
    for later in (read.map_batches(lambda b: b), read.repartition(2), read.limit(3),
                  read.select_columns(["start"])):
        assert not is_straight_from_read(later)


def test_the_public_switch_write_read_dataset_turns_off_exists():
    # write_read_dataset sets DataContext.op_resource_reservation_enabled = False; a
    # dataclass would take the attribute silently if Ray dropped the field
    fields = {f.name for f in dataclasses.fields(ray.data.DataContext)}
    assert "op_resource_reservation_enabled" in fields


SCHEMA = pa.schema([("chrom", pa.string()), ("pos", pa.int64())])


def test_a_part_appears_whole_on_commit_and_never_on_abort(tmp_path):
    path = tmp_path / "part-a.parquet"
    with ParquetPart(path, SCHEMA) as part:
        part.write(pa.table({"chrom": ["20", "20"], "pos": [1, 2]}))
        part.write(pa.table({"chrom": ["21"], "pos": [3]}))
        assert not path.exists()
        assert [p.name.startswith(".") for p in tmp_path.iterdir()] == [True]
    assert part.rows == 3 and pq.read_metadata(path).num_row_groups == 2
    assert pq.read_table(tmp_path).to_pydict() == {"chrom": ["20", "20", "21"], "pos": [1, 2, 3]}
    with pytest.raises(RuntimeError, match="shard failed"):
        with ParquetPart(path, SCHEMA) as failed:
            failed.write(pa.table({"chrom": ["22"], "pos": [9]}))
            raise RuntimeError("shard failed")
    assert list(tmp_path.iterdir()) == [path]  # the earlier part stands, no temporary file
    assert pq.read_table(path).num_rows == 3
    with ParquetPart(tmp_path / "part-empty.parquet", SCHEMA):
        pass  # with a schema, an empty part is a file of that schema
    assert pq.read_schema(tmp_path / "part-empty.parquet").names == SCHEMA.names
    with ParquetPart(tmp_path / "part-none.parquet") as part:
        part.write(pa.table({"x": pa.array([], pa.int8())}))
    assert part.rows == 0 and not (tmp_path / "part-none.parquet").exists()


def test_an_empty_split_still_has_the_schema(ray_session, tmp_path):
    # chromosome splits with no test chromosome among the regions: test is empty
    splits = SplitConfig(method="chrom", valid_chroms=["20"], test_chroms=["21"])
    description = DatasetDescription(name="t", task_type="multitask", tasks=[], seq_len=L)
    write_dataset(tmp_path, description, lambda split: read_genome_tiles(
        FIXTURE_FASTA, L, regions=REGION, splits=splits, split=split))
    saved = DatasetDescription.load(tmp_path)
    assert saved.rows == {"train": 0, "valid": 400, "test": 0}
    assert saved.records == {}  # no account given
    empty = pq.read_table(tmp_path / "test")
    assert empty.num_rows == 0
    assert empty.schema.field("onehot").type.shape == [L, 4]
    assert pq.read_table(tmp_path / "valid").num_rows == 400


def test_a_killed_writer_leaves_only_a_hidden_file_that_a_restart_removes(tmp_path):
    with ParquetPart(tmp_path / "part-done.parquet", SCHEMA) as done:
        done.write(pa.table({"chrom": ["20"], "pos": [1]}))
    killed = ParquetPart(tmp_path / "part-x.parquet", SCHEMA)
    killed.write(pa.table({"chrom": ["21"], "pos": [2]}))  # never committed: the process died
    assert pq.read_table(tmp_path).to_pydict() == {"chrom": ["20"], "pos": [1]}  # skipped
    assert remove_unfinished_parts(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["part-done.parquet"]
