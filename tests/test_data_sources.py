"""Ray Data sources on real files: genome tiles and labelled intervals."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest
from conftest import FIXTURE_FASTA

from dnacnn import sequence
from dnacnn.data.dataset_io import DatasetDescription, column_to_numpy
from dnacnn.data.interval_source import read_intervals
from dnacnn.data.tile_source import GenomeTiles, TileConfig, read_genome_tiles
from dnacnn.data.windows import tile_count
from dnacnn.data.writer import write_dataset
from dnacnn.data.splits import SplitConfig
from dnacnn.genome import Genome

L = 600


def pysam_window(fasta: pysam.FastaFile, chrom: str, start: int, end: int) -> str:
    """The window straight from pysam, N-padded by hand past the contig ends."""
    size = fasta.get_reference_length(chrom)
    core = fasta.fetch(chrom, max(start, 0), min(end, size)).upper()
    return "N" * max(0, -start) + core + "N" * max(0, end - max(size, start))


@pytest.fixture(scope="module")
def piece(tmp_path_factory) -> str:
    """A 10,000 bp real-sequence FASTA (chr20:100,000-110,000 of the fixture), soft-masked in part."""
    seq = pysam.FastaFile(str(FIXTURE_FASTA)).fetch("20", 100_000, 110_000)
    seq = seq[:3000] + seq[3000:4000].lower() + seq[4000:]
    path = tmp_path_factory.mktemp("piece") / "piece.fa"
    path.write_text(">piece\n" + "\n".join(seq[i : i + 70] for i in range(0, len(seq), 70)) + "\n")
    pysam.faidx(str(path))
    return str(path)


def rows_of(ds) -> dict[str, np.ndarray]:
    batches = list(ds.iter_batches(batch_size=None, batch_format="numpy"))
    out = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    order = np.lexsort((out["start"], out["chrom"]))
    return {k: v[order] for k, v in out.items()}


def test_tiles_match_pysam_with_padding_at_contig_end(ray_session, piece):
    rows = rows_of(read_genome_tiles(piece, L, stride=450))
    fasta = pysam.FastaFile(piece)
    # 10,000 bp, stride 450: starts 0..9450, the last window reaches the end (1 + ceil(9400/450))
    assert len(rows["start"]) == 22
    assert rows["start"][-1] == 9450 and rows["end"][-1] == 10_050
    for chrom, start, end, onehot in zip(rows["chrom"], rows["start"], rows["end"], rows["onehot"]):
        assert onehot.shape == (L, 4) and onehot.dtype == np.uint8
        assert sequence.decode(onehot) == pysam_window(fasta, chrom, int(start), int(end))
    # the padded tail of the last window is all-zero rows, the soft-masked part is encoded
    assert rows["onehot"][-1][550:].sum() == 0 and rows["onehot"][-1][:550].sum() == 550
    assert rows["onehot"][6].sum() == L  # window 2700-3300 crosses the lower-case run


def test_tiles_of_regions_on_the_sparse_fixture_drop_n_windows(ray_session):
    # chr20 begins with a 60 kb N run: those windows go, windows with real sequence stay
    regions = [("chr20", 0, 90_000)]  # the alias resolves to contig 20; rows keep 'chr20'
    kept = rows_of(read_genome_tiles(FIXTURE_FASTA, L, regions=regions, max_n_fraction=0.1))
    genome = Genome(FIXTURE_FASTA)
    expected = [s for s in range(0, 90_000, L)
                if genome.fetch("20", s, s + L).count("N") <= 0.1 * L]
    assert 0 < len(expected) < 150
    assert kept["start"].tolist() == expected
    assert set(kept["chrom"]) == {"chr20"}
    fasta = pysam.FastaFile(str(FIXTURE_FASTA))
    for start, onehot in zip(kept["start"][:20], kept["onehot"][:20]):
        assert sequence.decode(onehot) == pysam_window(fasta, "20", int(start), int(start) + L)


def test_read_tasks_yield_bounded_blocks_without_ray(piece):
    source = GenomeTiles(piece, TileConfig(length=100, stride=50, block_rows=30, task_rows=60))
    tasks = source.get_read_tasks(parallelism=3)
    assert len(tasks) == 3
    blocks = [block for task in tasks for block in task()]
    assert all(block.num_rows <= 30 for block in blocks)
    assert len(blocks) >= 2 * len(tasks)  # several blocks per task
    starts = np.concatenate([b.column("start").to_numpy() for b in blocks])
    assert starts.tolist() == list(range(0, 9901, 50))  # every window exactly once, in order


def test_tiles_to_parquet_read_back_by_plain_pyarrow(ray_session, piece, tmp_path):
    read_genome_tiles(piece, L).write_parquet(str(tmp_path / "tiles"))
    table = pq.read_table(tmp_path / "tiles")
    assert table.num_rows == 17
    column_type = table.schema.field("onehot").type
    assert isinstance(column_type, pa.FixedShapeTensorType)
    assert column_type.extension_name == "arrow.fixed_shape_tensor"
    assert column_type.shape == [L, 4] and column_type.value_type == pa.uint8()
    onehot = column_to_numpy(table.sort_by("start").column("onehot"))
    assert onehot.shape == (17, L, 4)
    assert sequence.decode(onehot[0]) == Genome(piece).fetch("piece", 0, L)


def test_block_split_tiles_never_overlap_across_splits(ray_session, tmp_path):
    splits = SplitConfig(method="block", block_size=20_000, valid_fraction=0.3, test_fraction=0.3, seed=1)
    regions = [("20", 60_000, 300_000)]
    description = DatasetDescription(name="t", task_type="multitask", tasks=[], seq_len=L)
    plan = GenomeTiles(FIXTURE_FASTA, TileConfig(L, 300), regions, splits)
    write_dataset(tmp_path, description, lambda split: read_genome_tiles(
        FIXTURE_FASTA, L, stride=300, regions=regions, splits=splits, split=split),
        account=plan.account)
    saved = DatasetDescription.load(tmp_path)
    intervals = {}
    for split in ("train", "valid", "test"):
        table = pq.read_table(tmp_path / split)
        assert table.num_rows == saved.rows[split] > 0
        intervals[split] = sorted(zip(table.column("start").to_pylist(), table.column("end").to_pylist()))
    for a in ("train", "valid", "test"):
        for b in ("train", "valid", "test"):
            if a < b:
                starts_b = np.array([s for s, _ in intervals[b]])
                for s, e in intervals[a]:  # no window of split a overlaps one of split b
                    assert not ((starts_b < e) & (starts_b + L > s)).any()
    n_all = 1 + (240_000 - L) // 300 + 1
    assert sum(saved.rows.values()) < n_all  # boundary-spanning windows were dropped
    assert sum(saved.rows.values()) > 0.9 * n_all
    # every planned window is accounted for: written, or dropped at a block boundary
    records = saved.records
    planned = tile_count(240_000, L, 300)  # 1 + ceil((240,000 - 600) / 300)
    assert records["windows"] == planned == 799
    assert records["written"] == sum(saved.rows.values())
    assert records["skipped"] == {"split_boundary": planned - records["written"]}
    assert "all-N ones included" in records["n_windows"]  # max_n_fraction 1 keeps N windows


def write_text(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_label_table_windows_are_centred_with_their_labels(ray_session, tmp_path):
    lines = ["#chrom\tstart\tend\tcellA\tcellB"]
    rng = np.random.default_rng(0)
    expected = {}
    for i in range(40):
        start = int(rng.integers(61_000, 290_000))
        end = start + int(rng.integers(50, 900))
        labels = (float(i % 2), round(float(rng.random()), 3))
        lines.append(f"20\t{start}\t{end}\t{labels[0]:g}\t{labels[1]}")
        expected[(start + end) // 2 - L // 2] = labels
    path = write_text(tmp_path / "labels.tsv", "\n".join(lines) + "\n")
    # tiny byte ranges: many read tasks, each line read exactly once
    rows = rows_of(read_intervals(FIXTURE_FASTA, path, L, task_bytes=200))
    assert sorted(rows["start"].tolist()) == sorted(expected)
    fasta = pysam.FastaFile(str(FIXTURE_FASTA))
    for start, onehot, labels in zip(rows["start"], rows["onehot"], rows["labels"]):
        assert labels.dtype == np.float32 and labels.shape == (2,)
        assert tuple(np.round(labels, 3)) == expected[int(start)]
        assert sequence.decode(onehot) == pysam_window(fasta, "20", int(start), int(start) + L)


def test_peak_overlap_labels_and_bad_input_messages(ray_session, tmp_path):
    # region 4 and a peak of task a are zero-length (start == end: BED's point between two bases;
    # such a file was refused whole, "end <= start")
    regions = write_text(tmp_path / "regions.bed", "track name=x\n20\t100000\t100200\n20\t100500\t100700\n"
                                                   "20\t101000\t101100\n20\t102000\t102000\n")
    # task a: overlaps region 1 (by 1 bp) and, by its point, region 3; task b, named chr20 and
    # gzipped: regions 2 and 3
    peaks_a = write_text(tmp_path / "a.bed", "20\t100199\t100300\n20\t100700\t100800\n20\t101050\t101050\n")
    with gzip.open(tmp_path / "b.bed.gz", "wt") as handle:
        handle.write("chr20\t100600\t100650\nchr20\t100640\t101050\n")
    rows = rows_of(read_intervals(FIXTURE_FASTA, regions, L,
                                  peaks={"a": peaks_a, "b": str(tmp_path / "b.bed.gz")}))
    assert rows["labels"].tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]]
    assert rows["start"].tolist()[-1] == 102_000 - L // 2  # the point's window is centred on it
    with pytest.raises(ValueError, match="header"):
        read_intervals(FIXTURE_FASTA, regions, L)  # a BED without peaks is not a label table
    bad = write_text(tmp_path / "bad.tsv", "chrom\tstart\tend\tt\n20\t500\t400\t1\n")
    with pytest.raises(Exception, match="20:500-400 ends before it starts"):
        read_intervals(FIXTURE_FASTA, bad, L).take_all()


def test_a_line_of_another_width_is_the_one_named():
    """Arrow counts the columns of a chunk's first line: a first line of 7 columns under a
    5-column header was reported as "Expected 7 columns, got 5" quoting the good line after it."""
    from dnacnn.data.bed import parse_intervals

    for bad, n in ((b"20\t100\t700\t1\t0\textra\tmore\n", 7), (b"20\t100\t700\t1\n", 4)):
        with pytest.raises(ValueError) as err:
            parse_intervals(bad + b"20\t200\t800\t0\t1\n", 2, "t.tsv")
        assert f"({bad.decode().strip()!r} has {n} column(s), not 5)".replace("(", "(the line ", 1) in str(err.value)
    chroms, starts, ends, labels = parse_intervals(b"20\t100\t700\tname\t0\t+\n20\t5\t9\n", 0, "t.bed")
    assert starts.tolist() == [100, 5]  # a BED's extra columns are not counted


def test_a_value_that_is_not_a_number_is_named_with_its_line_and_column():
    """Arrow said "In CSV column #3: ... invalid value 'x'": its column counted from 0 (the
    table's fourth), and no line. The message names the line and the column from 1."""
    from dnacnn.data.bed import parse_intervals

    good = b"20\t100\t700\t1\t0\n"
    for bad, value, column, kind in ((b"20\t200\t800\tx\t1\n", "x", 4, "a number"),
                                     (b"20\t2e2\t800\t0\t1\n", "2e2", 2, "an integer"),
                                     (b"20\t200\t800.5\t0\t1\n", "800.5", 3, "an integer")):
        with pytest.raises(ValueError) as err:
            parse_intervals(good + bad, 2, "t.tsv")
        assert f"the line {bad.decode().strip()!r} has {value!r} in column {column}, not {kind}" in str(err.value)
        assert "#" not in str(err.value)


def test_bed_names_with_quotes_and_a_byte_order_mark_read_as_written(tmp_path):
    """A '"' in a BED's name column (5"UTR) made Arrow's CSV reader look for a closing quote
    across lines and fail ("Empty CSV file or block"); a byte-order mark before a first
    '#' or 'track' line made that line a record ("invalid value"). Plain and gzipped."""
    from dnacnn.data.bed import read_bed

    text = '\ufefftrack name="x y"\n20\t100\t200\t5"UTR\t0\t+\n# note\n20\t300\t400\tsay "hi\t0\t-\n'
    plain = write_text(tmp_path / "q.bed", text)
    with gzip.open(tmp_path / "q.bed.gz", "wt", encoding="utf-8") as handle:
        handle.write(text)
    for path in (plain, tmp_path / "q.bed.gz"):
        assert read_bed(path) == [("20", 100, 200), ("20", 300, 400)]
