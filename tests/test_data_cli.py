"""``dnacnn simulate ...`` and ``dnacnn data ...`` write dataset folders; bad input gets one
line naming the option, file or record, exit code 2, no traceback and nothing created."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest
from conftest import FIXTURE_FASTA
from typer.testing import CliRunner

from dnacnn import sequence
from dnacnn.cli import app
from dnacnn.data.dataset_io import SPLITS, DatasetDescription, column_to_numpy

runner = CliRunner()
RAY_WORKER = re.compile(r"^(\x1b\[\d+m)?\(\S+ pid=\d+")


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def summary(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def refused(result, *words: str) -> str:
    """The one stderr line of a refused command, checked for ``words``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    # Ray forwards its workers' log lines to the driver late: an earlier command's may land here
    lines = [line for line in result.stderr.strip().splitlines() if not RAY_WORKER.match(line)]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_simulate_tutorial_binary_and_multiclass(tmp_path):
    got = summary(run("simulate", "tutorial", "--out", tmp_path / "b", "--n-samples", 300))
    assert got["task_type"] == "binary" and sum(got["rows"].values()) == 300
    got = summary(run("simulate", "tutorial", "--multiclass", "--out", tmp_path / "m",
                      "--n-samples", 400))
    assert got["tasks"] == 4 and DatasetDescription.load(tmp_path / "m").task_type == "multiclass"
    assert (tmp_path / "m" / "ground_truth.parquet").exists()
    assert run("simulate", "multiclass", "--out", tmp_path / "x").exit_code == 2  # one command


def test_simulate_accessibility_with_a_tasks_file(tmp_path):
    tasks = tmp_path / "cells.txt"
    tasks.write_text("cellA\ncellB\ncellC\n")
    got = summary(run("simulate", "accessibility", "--out", tmp_path / "acc", "--genome", FIXTURE_FASTA,
                      "--tasks-file", tasks, "--n-windows", 120, "--n-breaking", 10,
                      "--n-neutral", 10, "--block-size", 30000))
    assert got["tasks"] == 3 and sum(got["rows"].values()) >= 110
    assert pysam.FastaFile(str(tmp_path / "acc" / "genome.fa.gz")).references == ["20"]


def test_simulate_accessibility_with_a_missing_genome_creates_nothing(tmp_path):
    refused(run("simulate", "accessibility", "--out", tmp_path / "acc", "--genome",
                tmp_path / "none.fa", "--n-windows", 10), str(tmp_path / "none.fa"), "not found")
    refused(run("simulate", "accessibility", "--out", tmp_path / "acc", "--genome", FIXTURE_FASTA,
                "--tasks-file", tmp_path / "cells.txt"), "--tasks-file", "not found")
    refused(run("simulate", "accessibility", "--out", tmp_path / "acc", "--genome", FIXTURE_FASTA,
                "--meme", tmp_path / "m.meme"), "--meme", "not found")
    assert not (tmp_path / "acc").exists()


def test_data_fasta_and_bad_pairs(tmp_path):
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text(">chr1:100-110\nACGTACGTAC\n>chr8:0-10\nAAAAAAAAAA\n")
    b.write_text(">chr9:5-15\nCCCCCCCCCC\n")
    got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"))
    assert got["rows"] == {"train": 1, "valid": 1, "test": 1}
    assert got["records"] == {"read": 3, "written": 3, "skipped": {}, "first_skipped": {},
                              "duplicates": 0}
    refused(run("data", "fasta", "--class", str(a), "--class", f"B={b}", "--out", tmp_path / "x"),
            "must be NAME=PATH")
    assert not (tmp_path / "x").exists()


def test_data_fasta_says_a_split_left_empty_as_intervals_and_tiles_do(tmp_path, caplog):
    """--valid-chroms naming no record's chromosome wrote an empty valid split without a word;
    the training it would be refused for came later."""
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text(">chr1:100-110\nACGTACGTAC\n>chr8:0-10\nAAAAAAAAAA\n")
    b.write_text(">chr9:5-15\nCCCCCCCCCC\n")
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--valid-chroms", "chrQ",
                          "--out", tmp_path / "o"))
    assert got["rows"]["valid"] == 0
    assert f"{tmp_path / 'o'}: the valid split has no rows" in caplog.text
    assert "training on this dataset will be refused" in caplog.text


def test_data_fasta_skips_empty_and_all_n_records_and_warns_of_duplicates(tmp_path, caplog):
    a = write(tmp_path / "a.fa", ">chr1:0-10\nACGTACGTAC\n>empty1\n>empty2\n\n"
                                 ">chr8:0-10\nNNNNNNNNNN\n>chr1:0-10\nAAAACCCCGG\n")
    b = write(tmp_path / "b.fa", ">chr9:5-15\nCCCCCCCCCC\n>chr2:0-4\nACGT\n>gapped\nACG-T*AC\n")
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}",
                          "--out", tmp_path / "o"))
    records = got["records"]
    assert records["read"] == 8 and records["written"] == 4
    assert records["skipped"] == {"empty": 2, "all_n": 1, "invalid_characters": 1}
    assert records["first_skipped"]["all_n"] == f"{a}: record 3 'chr8:0-10'"
    assert records["duplicates"] == 1
    assert sum(got["rows"].values()) == records["written"]
    assert DatasetDescription.load(tmp_path / "o").records == records
    table = pa.concat_tables(pq.read_table(tmp_path / "o" / split) for split in SPLITS)
    assert table.num_rows == 4
    onehot = column_to_numpy(table.column("onehot"))  # (4, 10, 4)
    assert onehot.any(axis=(1, 2)).all()  # no all-N row
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "no sequence" in warned and "only N" in warned and "repeat an earlier record's name" in warned


def test_data_fasta_refuses_a_class_left_empty_and_a_file_that_is_not_fasta(tmp_path):
    a = write(tmp_path / "a.fa", ">r1\n\n>r2\nNNNN\n")
    b = write(tmp_path / "b.fa", ">r3\nACGT\n")
    refused(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"),
            str(a), "no record of class 'A'")
    headless = write(tmp_path / "headless.fa", "ACGTACGT\n>r4\nACGT\n")  # a sequence of no record
    refused(run("data", "fasta", "--class", f"A={headless}", "--class", f"B={b}", "--out", tmp_path / "o"),
            str(headless), "not a '>' header")
    noise = tmp_path / "noise.fa"
    noise.write_bytes(bytes(range(200, 256)) * 4)
    refused(run("data", "fasta", "--class", f"A={noise}", "--class", f"B={b}", "--out", tmp_path / "o"),
            str(noise), "FASTA")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, option", [
    (("data", "fasta", "--class", "A=a.fa", "--class", "B=b.fa", "--length", "-10"), "--length"),
    # 1 Gbp ran out of memory building one-hot rows
    (("data", "fasta", "--class", "A=a.fa", "--class", "B=b.fa", "--length", "1048577"), "--length"),
    (("data", "tiles", "--fasta", "g.fa", "--length", "0"), "--length"),
    (("data", "tiles", "--fasta", "g.fa", "--max-n-fraction", "1.5"), "--max-n-fraction"),
    (("data", "intervals", "--fasta", "g.fa", "--intervals", "i.tsv", "--min-overlap", "0"),
     "--min-overlap"),
    (("data", "intervals", "--fasta", "g.fa", "--intervals", "i.tsv", "--block-size", "0"),
     "--block-size"),
    (("data", "intervals", "--fasta", "g.fa", "--intervals", "i.tsv", "--valid-fraction", "-0.1"),
     "--valid-fraction"),
    (("simulate", "tutorial", "--n-samples", "0"), "--n-samples"),
    (("simulate", "accessibility", "--label-noise", "2"), "--label-noise"),
    (("simulate", "accessibility", "--n-windows", "-5"), "--n-windows"),
    (("simulate", "species", "--genome", "h=g.fa", "--block-size", "0"), "--block-size"),
    (("simulate", "species", "--genome", "h=g.fa", "--seed", "-1"), "--seed"),
])
def test_numeric_options_are_checked_before_any_work(tmp_path, args, option):
    out = tmp_path / "out"
    result = run(*args, "--out", out)
    assert result.exit_code == 2, result.output
    assert f"'{option}'" in result.stderr and "Traceback" not in result.output
    assert not out.exists()


COMMANDS = {
    "simulate tutorial": ("simulate", "tutorial", "--n-samples", "40"),
    "data fasta": ("data", "fasta", "--class", "A={a}", "--class", "B={b}"),
    "data tiles": ("data", "tiles", "--fasta", str(FIXTURE_FASTA)),
    "data intervals": ("data", "intervals", "--fasta", str(FIXTURE_FASTA), "--intervals", "{labels}"),
}


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in (root ignores permissions: /sys refuses it)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_output_folder_that_cannot_be_written_is_refused_first(tmp_path, command, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where an empty --out would write
    a = write(tmp_path / "a.fa", ">chr1:0-4\nACGT\n")
    b = write(tmp_path / "b.fa", ">chr9:0-4\nACGT\n")
    labels = write(tmp_path / "labels.tsv", "chrom\tstart\tend\tx\n20\t61000\t61500\t1\n")
    args = [arg.format(a=a, b=b, labels=labels) for arg in COMMANDS[command]]
    a_file = write(tmp_path / "taken", "a file")
    refused(run(*args, "--out", a_file), "--out", str(a_file), "is a file")
    assert a_file.read_text() == "a file"
    refused(run(*args, "--out", a_file / "sub"), "--out", "cannot be created", "is a file")
    read_only = _unwritable_folder(tmp_path)
    before = sorted(read_only.iterdir())
    refused(run(*args, "--out", read_only / "dataset"), "--out", "cannot be written", str(read_only))
    assert sorted(read_only.iterdir()) == before
    empty = run(*args, "--out", "")  # a usage error (Click's, see test_cli's one-line usage errors)
    assert empty.exit_code == 2 and "'--out': is empty" in empty.stderr, empty.output
    assert not (tmp_path / "dataset.json").exists()


@pytest.mark.slow
def test_data_tiles_and_intervals_through_ray(ray_session, tmp_path):
    regions = tmp_path / "regions.bed"
    regions.write_text("20\t60000\t90000\n20\t200000\t230000\n")
    got = summary(run("data", "tiles", "--fasta", FIXTURE_FASTA, "--out", tmp_path / "tiles",
                      "--regions", regions, "--max-n-fraction", 0.0,
                      "--split-method", "block", "--block-size", 10000,
                      "--valid-fraction", 0.3, "--test-fraction", 0.3))
    written = sum(got["rows"].values())
    assert 80 < written <= 100
    records = got["records"]
    assert records["regions"] == 2 and records["windows"] == 100 and records["written"] == written
    assert sum(records["skipped"].values()) == 100 - written
    assert records["skipped"]["split_boundary"] > 0  # 30 kb of 600 bp tiles cross 10 kb blocks
    assert "n_windows" not in records  # only said when N windows are kept (max_n_fraction 1)
    table = pq.read_table(tmp_path / "tiles" / "train")
    assert "labels" not in table.column_names and table.num_rows == got["rows"]["train"]
    labels = tmp_path / "labels.tsv"
    labels.write_text("chrom\tstart\tend\tx\ty\n20\t61000\t61500\t1\t0\nchr20\t250000\t250100\t0\t1\n")
    got = summary(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", labels,
                      "--out", tmp_path / "iv", "--length", 200))
    assert got["tasks"] == 2 and got["rows"]["train"] == 2
    assert got["records"]["read"] == 2 and got["records"]["skipped"] == {}
    missing = run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", tmp_path / "none.tsv",
                  "--out", tmp_path / "iv2")
    refused(missing, "not found")


def test_data_intervals_accounts_for_records_outside_the_genome(ray_session, tmp_path, caplog):
    # chr20 of the fixture is N up to 60,000 and 63,025,520 bp long
    labels = write(tmp_path / "labels.tsv", "chrom\tstart\tend\tx\n"
                   "20\t61000\t61500\t1\n"          # written
                   "20\t61000\t61500\t0\n"          # written, a duplicate
                   "20\t200000\t200400\t1\n"        # written
                   "20\t1000\t1200\t1\n"            # all N
                   "20\t70000000\t70000200\t1\n"    # past the end of 20
                   "chrUn\t100\t300\t0\n")          # unknown contig
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        got = summary(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", labels,
                          "--out", tmp_path / "iv", "--length", 200))
    records = got["records"]
    assert records["read"] == 6 and records["written"] == 3 == sum(got["rows"].values())
    assert records["skipped"] == {"unknown_contig": 1, "past_contig_end": 1, "all_n": 1}
    assert records["first_skipped"] == {"unknown_contig": "chrUn:100-300",
                                        "past_contig_end": "20:70000000-70000200"}
    assert records["duplicates"] == 1
    assert DatasetDescription.load(tmp_path / "iv").records == records
    starts = sorted(s for split in SPLITS
                    for s in pq.read_table(tmp_path / "iv" / split).column("start").to_pylist())
    assert starts == [61150, 61150, 200100]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for words in ("contig the genome lacks", "past the end", "all N", "repeat an earlier",
                  "the valid split has no rows (no chromosome was held out for it)",
                  "training on this dataset will be refused"):
        assert words in warned


def test_data_intervals_reports_peaks_on_contigs_the_genome_lacks(ray_session, tmp_path):
    regions = write(tmp_path / "regions.bed", "20\t100000\t100200\n20\t100500\t100700\n")
    peaks = write(tmp_path / "peaks.bed", "20\t100150\t100250\nchrUn_gl000220\t5\t50\n")
    got = summary(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", regions,
                      "--peaks", f"a={peaks}", "--out", tmp_path / "iv", "--length", 200))
    assert got["records"]["peaks_on_unknown_contigs"] == {"a": ["chrUn_gl000220"]}
    assert got["records"]["written"] == 2
    # a peaks BED with no interval: every label of its task 0, which was said nowhere
    empty = write(tmp_path / "none.bed", "")
    got = summary(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", regions,
                      "--peaks", f"a={peaks}", "--peaks", f"b={empty}", "--out", tmp_path / "iv2", "--length", 200))
    assert got["records"]["peakless_tasks"] == ["b"]


def test_data_refuses_intervals_and_regions_that_fit_no_genome_before_ray(tmp_path):
    # no Ray here: each of these is refused on the driver
    other_build = write(tmp_path / "mm10.tsv", "chrom\tstart\tend\tx\nchrX_mouse\t10\t400\t1\n")
    refused(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", other_build,
                "--out", tmp_path / "o"), str(other_build), "unknown_contig", "same build")
    header_only = write(tmp_path / "empty.tsv", "chrom\tstart\tend\tx\n")
    refused(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", header_only,
                "--out", tmp_path / "o"), str(header_only), "no interval records")
    malformed = write(tmp_path / "bad.tsv", "chrom\tstart\tend\tx\n20\tten\t400\t1\n")
    refused(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", malformed,
                "--out", tmp_path / "o"), str(malformed), "cannot parse")
    negative = write(tmp_path / "neg.tsv", "chrom\tstart\tend\tx\n20\t61000\t61500\t1\n"
                                           "20\t-5\t400\t1\n")
    refused(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", negative,
                "--out", tmp_path / "o"), str(negative), "20:-5-400", "starts before 0")
    no_label = write(tmp_path / "nan.tsv", "chrom\tstart\tend\tx\n20\t61000\t61500\t\n")
    refused(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", no_label,
                "--out", tmp_path / "o"), str(no_label), "not a number", "20:61000-61500")
    infinite = write(tmp_path / "inf.tsv", "chrom\tstart\tend\tx\n20\t61000\t61500\t1\n20\t62000\t62500\tinf\n")
    refused(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", infinite,
                "--out", tmp_path / "o"), str(infinite), "infinite", "20:62000-62500")
    for name, text, said in (
            ("two.tsv", "chrom\tstart\tend\tx\n20\t61000\t61500\t2\n", ("20:61000-61500", "task value 2",
                                                                           "0 to 1")),
            ("twice.tsv", "chrom\tstart\tend\tx\tx\n20\t61000\t61500\t1\t0\n", ("task 'x' twice",
                                                                                  "columns 4 and 5")),
            ("unnamed.tsv", "chrom\tstart\tend\tx\t\n20\t61000\t61500\t1\t0\n", ("column 5 has no task name",)),
            ("order.tsv", "start\tchrom\tend\tx\n20\t61000\t61500\t1\n", ("column 1 is 'start'",
                                                                           "chrom, start, end"))):
        table = write(tmp_path / name, text)  # labels of 2 were trained on; duplicate tasks, columns by name
        refused(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", table,
                    "--out", tmp_path / "o"), str(table), *said)
    regions = write(tmp_path / "regions.bed", "20\t63025000\t63030000\n")
    refused(run("data", "tiles", "--fasta", FIXTURE_FASTA, "--regions", regions,
                "--out", tmp_path / "o"), "20:63025000-63030000", "not within contig")
    refused(run("data", "tiles", "--fasta", FIXTURE_FASTA, "--regions", tmp_path / "none.bed",
                "--out", tmp_path / "o"), "--regions", "not found")
    regions = write(tmp_path / "regions.bed", "chr21\t0\t1000\n")
    refused(run("data", "tiles", "--fasta", FIXTURE_FASTA, "--regions", regions,
                "--out", tmp_path / "o"), "'chr21'", "not in the genome")
    assert not (tmp_path / "o").exists()


def written_rows(folder: Path) -> list[tuple[str, str]]:
    """(chrom column, decoded sequence) of every row of a dataset folder, sorted."""
    table = pa.concat_tables(pq.read_table(folder / split) for split in SPLITS)
    return sorted(zip(table.column("chrom").to_pylist(),
                      sequence.decode(column_to_numpy(table.column("onehot")))))


def test_data_fasta_reads_header_coordinates_that_are_no_place_as_none(tmp_path, caplog):
    """A coordinate past int64 was an OverflowError traceback from the writer; a start after
    its end was read as a place. Both are headers without coordinates now, with a warning."""
    a = write(tmp_path / "a.fa", ">chr1:99999999999999999999999-100000000000000000000000\nACGTACGTAC\n"
                                 ">chr1:500-100\nGGGGACGTAC\n>chr1:5-15\nACGTACGTAC\n")
    b = write(tmp_path / "b.fa", ">chr9:5-15\nCCCCCCCCCC\n")
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}",
                          "--out", tmp_path / "o"))
    assert got["records"]["written"] == 4 and got["records"]["skipped"] == {}
    extra = DatasetDescription.load(tmp_path / "o").extra
    assert extra["bad_coordinates"] == 2 and extra["without_coordinates"] == 0
    chroms = [chrom for chrom, _ in written_rows(tmp_path / "o")]
    assert chroms == ["chr1", "chr1:500-100", "chr1:99999999999999999999999-100000000000000000000000", "chr9"]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert f"{a}: record 0 'chr1:99999999999999999999999-100000000000000000000000' has " \
           "coordinates past 2**62" in warned and "2 FASTA record(s)" in warned


def test_data_fasta_skips_a_record_holding_a_nul_byte(tmp_path):
    """htslib's records are C strings: a NUL cut the record there, written as its first half
    padded with N, without a word."""
    a = tmp_path / "a.fa"
    a.write_bytes(b">chr1:0-10\nACGTA\0CGTA\n>chr1:20-30\nGGGGGCCCCC\n")
    b = write(tmp_path / "b.fa", ">chr9:5-15\nCCCCCCCCCC\n")
    got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"))
    assert got["records"]["skipped"] == {"invalid_characters": 1}
    assert got["records"]["first_skipped"] == {"invalid_characters": f"{a}: record 0 'chr1:0-10'"}
    assert written_rows(tmp_path / "o") == [("chr1", "GGGGGCCCCC"), ("chr9", "CCCCCCCCCC")]


def test_data_fasta_default_length_is_the_longest_record_written(tmp_path):
    """A skipped record (gaps, GenBank-style numbered lines, all N) set L: 5,000 bp rows of
    which 98% were N padding."""
    a = write(tmp_path / "a.fa", ">chr1:0-10\nACGTACGTAC\n>gaps\n" + "-" * 5000 + "\n"
                                 ">numbered\n1 ACGTACGTAC GTACGTACGT\n21 ACGTACGTAC\n"
                                 ">unknown\n" + "N" * 300 + "\n")
    b = write(tmp_path / "b.fa", ">chr9:0-8\nCCCCCCCC\n")
    got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"))
    assert got["seq_len"] == 10
    assert got["records"]["skipped"] == {"invalid_characters": 2, "all_n": 1}
    assert written_rows(tmp_path / "o") == [("chr1", "ACGTACGTAC"), ("chr9", "NCCCCCCCCN")]


def test_data_fasta_refuses_a_longest_record_past_the_length_bound(tmp_path):
    """--length 0 taking a record of over 2**20 bases is refused like --length over it, naming
    the record; a given --length takes its centre."""
    from dnacnn.data.labelled_fasta import MAX_LENGTH, LabelledFastaConfig

    a = write(tmp_path / "a.fa", ">huge\n" + "ACGT" * (MAX_LENGTH // 4) + "A\n")
    b = write(tmp_path / "b.fa", ">chr9:0-8\nCCCCCCCC\n")
    refused(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"),
            f"{a}: record 0 'huge' has 1,048,577 bases", "--length")
    assert not (tmp_path / "o").exists()
    got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o",
                      "--length", 8))
    assert got["seq_len"] == 8 and got["records"]["written"] == 2
    with pytest.raises(ValueError, match="length 1,048,577 bp is more than 1,048,576"):
        LabelledFastaConfig(length=MAX_LENGTH + 1)


def test_data_fasta_skips_semicolon_comment_lines(tmp_path):
    """Old (Pearson) FASTA comments: one before the first header was refused as "a sequence
    of no record", one inside a record made it invalid_characters."""
    a = write(tmp_path / "a.fa", ";made by hand\n;second comment\n>chr1:0-10\nACGTA\n;mid comment\nCGTAC\n")
    b = write(tmp_path / "b.fa", ">chr9:0-10\nCCCCC\n;\nGGGGG\n")
    got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"))
    assert got["seq_len"] == 10 and got["records"]["skipped"] == {}
    assert written_rows(tmp_path / "o") == [("chr1", "ACGTACGTAC"), ("chr9", "CCCCCGGGGG")]
    only = write(tmp_path / "only.fa", ";c1\n;c2\n")
    refused(run("data", "fasta", "--class", f"A={only}", "--class", f"B={b}", "--out", tmp_path / "x"),
            str(only), "holds no FASTA records")


def test_data_fasta_removes_whitespace_inside_sequence_lines(tmp_path):
    """As Biopython reads FASTA: spaces and tabs between bases are layout, not characters
    (the record was skipped as invalid_characters)."""
    a = write(tmp_path / "a.fa", ">chr1:0-10\nACGTA CGTAC\n>chr1:20-30 with a description\n GGG\tGG CCCCC \r\n")
    b = write(tmp_path / "b.fa", ">chr9:0-10\nCCCCCCCCCC\n")
    got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"))
    assert got["seq_len"] == 10 and got["records"]["skipped"] == {}
    assert written_rows(tmp_path / "o") == [("chr1", "ACGTACGTAC"), ("chr1", "GGGGGCCCCC"), ("chr9", "CCCCCCCCCC")]


def test_a_folder_given_as_a_fasta_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "not_a_fasta"
    folder.mkdir()
    good = write(tmp_path / "b.fa", ">chr9:0-4\nACGT\n")
    refused(run("data", "fasta", "--class", f"a={folder}", "--class", f"b={good}",
                "--out", tmp_path / "out"), str(folder), "not a file")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_data_tiles_console_shows_the_commands_lines_not_ray_datas(tmp_path):
    """The command as a user runs it (its own local cluster): its own lines, not Ray's token
    notice nor Ray Data's per-dataset execution lines (three datasets: one per split)."""
    import subprocess
    import sys

    regions = tmp_path / "regions.bed"
    regions.write_text("20\t60000\t70000\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_DATA_LOG_LEVEL")}
    proc = subprocess.run([sys.executable, "-c", "from dnacnn.cli import app; app()", "data", "tiles",
                           "--fasta", str(FIXTURE_FASTA), "--regions", str(regions), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote 17 train rows" in proc.stderr
    for noise in ("Token authentication", "Execution plan", "execution finished", "Data sink Parquet"):
        assert noise not in proc.stderr, noise


def test_an_empty_output_path_is_refused_for_python_callers_too():
    from dnacnn.output_folder import OutputFolderError, check_output_folder

    with pytest.raises(OutputFolderError, match=r'--out is empty: give the folder to write to \("\." for this one\)'):
        check_output_folder("", "--out")
