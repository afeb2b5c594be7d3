"""``dnacnn simulate ...`` and ``dnacnn data ...`` write dataset folders; bad input exits 2."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pysam
from conftest import FIXTURE_FASTA
from typer.testing import CliRunner

from dnacnn.cli import app
from dnacnn.data.dataset_io import DatasetDescription

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def summary(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def test_simulate_tutorial_and_multiclass(tmp_path):
    got = summary(run("simulate", "tutorial", "--out", tmp_path / "b", "--n-samples", 300))
    assert got["task_type"] == "binary" and sum(got["rows"].values()) == 300
    got = summary(run("simulate", "multiclass", "--out", tmp_path / "m", "--n-samples", 400))
    assert got["tasks"] == 4 and DatasetDescription.load(tmp_path / "m").task_type == "multiclass"
    assert (tmp_path / "m" / "ground_truth.parquet").exists()


def test_simulate_accessibility_with_a_tasks_file(tmp_path):
    tasks = tmp_path / "cells.txt"
    tasks.write_text("cellA\ncellB\ncellC\n")
    got = summary(run("simulate", "accessibility", "--out", tmp_path / "acc", "--genome", FIXTURE_FASTA,
                      "--tasks-file", tasks, "--n-windows", 120, "--n-breaking", 10,
                      "--n-neutral", 10, "--block-size", 30000))
    assert got["tasks"] == 3 and sum(got["rows"].values()) >= 110
    assert pysam.FastaFile(str(tmp_path / "acc" / "genome.fa.gz")).references == ["20"]


def test_data_fasta_and_bad_pairs(tmp_path):
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text(">chr1:100-110\nACGTACGTAC\n>chr8:0-10\nAAAAAAAAAA\n")
    b.write_text(">chr9:5-15\nCCCCCCCCCC\n")
    got = summary(run("data", "fasta", "--class", f"A={a}", "--class", f"B={b}", "--out", tmp_path / "o"))
    assert got["rows"] == {"train": 1, "valid": 1, "test": 1}
    bad = run("data", "fasta", "--class", str(a), "--class", f"B={b}", "--out", tmp_path / "x")
    assert bad.exit_code == 2 and "must be NAME=PATH" in bad.output


def test_data_tiles_and_intervals_through_ray(ray_session, tmp_path):
    regions = tmp_path / "regions.bed"
    regions.write_text("20\t60000\t90000\n20\t200000\t230000\n")
    got = summary(run("data", "tiles", "--fasta", FIXTURE_FASTA, "--out", tmp_path / "tiles",
                      "--regions", regions, "--max-n-fraction", 0.0,
                      "--split-method", "block", "--block-size", 10000,
                      "--valid-fraction", 0.3, "--test-fraction", 0.3))
    assert 80 < sum(got["rows"].values()) <= 100
    table = pq.read_table(tmp_path / "tiles" / "train")
    assert "labels" not in table.column_names and table.num_rows == got["rows"]["train"]
    labels = tmp_path / "labels.tsv"
    labels.write_text("chrom\tstart\tend\tx\ty\n20\t61000\t61500\t1\t0\nchr20\t250000\t250100\t0\t1\n")
    got = summary(run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", labels,
                      "--out", tmp_path / "iv", "--length", 200))
    assert got["tasks"] == 2 and got["rows"]["train"] == 2
    missing = run("data", "intervals", "--fasta", FIXTURE_FASTA, "--intervals", tmp_path / "none.tsv",
                  "--out", tmp_path / "iv2")
    assert missing.exit_code == 2 and "not found" in missing.output
