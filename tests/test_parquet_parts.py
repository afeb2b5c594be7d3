"""The one atomic Parquet part writer: readers never see a partial part."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dnacnn.parquet_parts import AtomicPartWriter, remove_temporaries

SCHEMA = pa.schema([("x", pa.int64())])


def test_a_part_appears_only_when_committed(tmp_path):
    part = AtomicPartWriter(tmp_path / "part-0.parquet", SCHEMA)
    part.write(pa.table({"x": [1, 2]}))
    part.write(pa.table({"x": [3]}))
    assert not (tmp_path / "part-0.parquet").exists()  # only the temporary, which readers skip
    assert part.commit()
    assert pq.read_table(tmp_path).column("x").to_pylist() == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["part-0.parquet"]


def test_an_interrupted_part_leaves_nothing_readers_see(tmp_path):
    with pytest.raises(RuntimeError):
        with AtomicPartWriter(tmp_path / "part-0.parquet", SCHEMA) as part:
            part.write(pa.table({"x": [1]}))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "_tmp-part-1.parquet-dead").write_bytes(b"partial")  # what a SIGKILL leaves
    remove_temporaries(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_without_a_schema_no_rows_means_no_file_and_an_empty_schema_part_is_kept(tmp_path):
    with AtomicPartWriter(tmp_path / "a.parquet") as part:
        part.write(pa.table({"x": pa.array([], pa.int64())}))
    assert not (tmp_path / "a.parquet").exists()
    with AtomicPartWriter(tmp_path / "b.parquet", SCHEMA):
        pass
    assert pq.read_table(tmp_path / "b.parquet").schema == SCHEMA
