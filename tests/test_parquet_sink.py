"""The streaming Parquet sink: every row written once, readable by plain pyarrow,
no partial files, and write_dataset's empty splits keep the schema."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_FASTA

from dnacnn import sequence
from dnacnn.data.dataset_io import DatasetDescription, column_to_numpy
from dnacnn.data.parquet_sink import write_read_dataset
from dnacnn.data.sources import read_genome_tiles, write_dataset
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


def test_an_empty_split_still_has_the_schema(ray_session, tmp_path):
    # chromosome splits with no test chromosome among the regions: test is empty
    splits = SplitConfig(method="chrom", valid_chroms=["20"], test_chroms=["21"])
    description = DatasetDescription(name="t", task_type="multitask", tasks=[], seq_len=L)
    write_dataset(tmp_path, description, lambda split: read_genome_tiles(
        FIXTURE_FASTA, L, regions=REGION, splits=splits, split=split))
    saved = DatasetDescription.load(tmp_path)
    assert saved.rows == {"train": 0, "valid": 400, "test": 0}
    empty = pq.read_table(tmp_path / "test")
    assert empty.num_rows == 0
    assert empty.schema.field("onehot").type.shape == [L, 4]
    assert pq.read_table(tmp_path / "valid").num_rows == 400
