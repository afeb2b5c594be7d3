"""The genome-wide batch job: accounting, agreement with the Python API, restarts, rejects.

Core tests run on the committed fixture (real chr20 sequence around 194 real 1000 Genomes
indels); the real VCFs of ../shared/data run against the whole chr20 when present.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import runpy
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest
import torch

from conftest import FIXTURE_FASTA, FIXTURE_VCF, ray_processes_left, shared
from dnacnn import models
from dnacnn.genome import Genome
from dnacnn.scoring import VariantScorer
from dnacnn.scoring.batch import score_vcf
from dnacnn.scoring.shards import plan_shards
from dnacnn.variants import indexed_copy
from test_scoring import TASKS, save_tiny

SHARD = 6  # records per shard: about 30 shards of the fixture's 194 records
KEY = ["chrom", "pos", "ref", "alt"]


# ---- helpers ----------------------------------------------------------------------------


def data_lines(path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        return [line for line in handle if not line.startswith("#")]


def header_lines(path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        return [line for line in handle if line.startswith("#")]


def text_alleles(path) -> pd.DataFrame:
    """(chrom, pos, id, ref, alt) per ALT allele, by splitting the text: independent of pysam."""
    rows = []
    for line in data_lines(path):
        chrom, pos, vid, ref, alts = line.split("\t")[:5]
        rows += [(chrom, int(pos), vid, ref.upper(), alt.upper()) for alt in alts.split(",")]
    return pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt"])


def read_scores(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "scores").to_pandas()


def read_rejects(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "rejects").to_pandas()


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal as sets of (variant, allele) rows, none twice, scores within 1e-6."""
    assert not a.duplicated(KEY).any() and not b.duplicated(KEY).any()
    a, b = a.sort_values(KEY).reset_index(drop=True), b.sort_values(KEY).reset_index(drop=True)
    assert a[KEY].equals(b[KEY])
    np.testing.assert_allclose(np.stack(a["delta"]), np.stack(b["delta"]), atol=1e-6)
    np.testing.assert_allclose(np.stack(a["logit_delta"]), np.stack(b["logit_delta"]), atol=1e-5)
    assert list(a["max_task"]) == list(b["max_task"])


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_accounting(summary: dict, out: Path) -> None:
    assert summary["alleles_read"] == summary["alleles_scored"] + summary["alleles_rejected"]
    assert summary["alleles_rejected"] == sum(summary["rejected_by_reason"].values())
    assert pq.read_table(out / "scores").num_rows == summary["alleles_scored"]
    assert pq.read_table(out / "rejects").num_rows == summary["alleles_rejected"]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert not list(out.rglob(".*.tmp")) and not list(out.rglob("_tmp-*"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def clean_run(ray_session, model_dir, tmp_path_factory):
    """One uninterrupted run on the fixture: the reference for the other tests."""
    out = tmp_path_factory.mktemp("clean")
    said, logger = _Lines(), logging.getLogger("dnacnn")
    level = logger.level
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    t0 = time.monotonic()
    try:
        summary = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, vcf_out=True)
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
    console = {"lines": said.lines, "seconds": time.monotonic() - t0}
    out.with_name(f"{out.name}.console.json").write_text(json.dumps(console))  # beside, not in, the job's folder
    return out, summary


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


# ---- core: the committed fixture --------------------------------------------------------


def test_progress_is_said_every_few_seconds_not_once_a_shard(clean_run):
    """A VCF on 500 contigs (a shard each, done in a blink) printed 500 progress lines."""
    from dnacnn.scoring.shard_pool import PROGRESS_EVERY_S

    out, summary = clean_run
    console = json.loads(out.with_name(f"{out.name}.console.json").read_text())
    progress = [line for line in console["lines"] if line.startswith("shard ") and " done: " in line]
    n = summary["shards"]
    assert n > 10 and progress[-1].startswith(f"shard {n}/{n} "), progress
    assert len(progress) <= 2 + console["seconds"] / PROGRESS_EVERY_S, progress


def test_fixture_run_outputs_and_accounting(clean_run):
    out, summary = clean_run
    assert_accounting(summary, out)
    n = len(data_lines(FIXTURE_VCF))
    assert summary["records_read"] == n == 194
    assert summary["alleles_read"] == len(text_alleles(FIXTURE_VCF)) == summary["alleles_scored"]
    assert summary["shards"] == len(list((out / "_shards").glob("*.json"))) > 10
    assert (out / "tasks.txt").read_text().splitlines() == TASKS

    table = pq.read_table(out / "scores")
    assert table.schema.names == ["chrom", "pos", "id", "ref", "alt", "kind", "delta", "logit_delta",
                                  "max_abs_delta", "max_task"]
    assert str(table.schema.field("delta").type).startswith("fixed_size_list") and table.schema.field("delta").type.list_size == 4
    assert json.loads(table.schema.metadata[b"dnacnn.tasks"]) == TASKS
    scores = table.to_pandas()
    assert set(scores["kind"]) <= {"insertion", "deletion"}
    assert list(scores["pos"]) == sorted(scores["pos"])  # parts in genome order

    with pysam.VariantFile(str(out / "scores.vcf.gz")) as vcf:  # bgzipped and tabix-indexed
        records = list(vcf.fetch("20", 0, 63_025_520))
    assert len(records) == len(scores)
    assert records[0].info["DNACNN_MAXABS"][0] == pytest.approx(scores["max_abs_delta"][0], rel=1e-5)
    assert records[0].info["DNACNN_TASK"][0] == scores["max_task"][0].strip().replace(" ", "_")
    assert (out / "top_effects.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_scores_vcf_keeps_every_task_its_own_name_and_leaves_out_what_a_vcf_cannot_name(
        clean_run, tmp_path, caplog):
    """Were: 'CD4+ T cell' and 'CD4+_T_cell' both DNACNN_TASK=CD4+_T_cell; a contig named 'x,y'
    failed the whole job after every shard was scored ("Invalid chromosome/contig")."""
    from dnacnn.scoring.score_outputs import info_names, write_scores_vcf

    assert info_names(["CD4+ T cell", "CD4+_T_cell", "a,b=c;d", "é", "é"]) == {
        "CD4+ T cell": "CD4+_T_cell", "CD4+_T_cell": "CD4+_T_cell_2", "a,b=c;d": "a_b_c_d", "é": "__5"}
    out = tmp_path / "out"
    shutil.copytree(clean_run[0], out)
    first = sorted((out / "scores").glob("part-*.parquet"))[0]
    table = pq.read_table(first)
    moved = table.num_rows
    pq.write_table(table.set_column(table.schema.get_field_index("chrom"), "chrom",
                                    pa.array(["x,y"] * moved, table.schema.field("chrom").type)), first)
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        path, indexed = write_scores_vcf(out, Genome(FIXTURE_FASTA))
    assert f"its {moved} scored allele(s) on contig 'x,y' are left out (a VCF cannot name that contig)" in caplog.text
    pysam.set_verbosity(3)
    try:
        with pysam.VariantFile(str(path)) as vcf:
            assert sum(1 for _ in vcf) == clean_run[1]["alleles_scored"] - moved and moved > 0
    finally:
        pysam.set_verbosity(0)


def test_a_vcf_on_many_small_contigs_is_a_few_shards_and_every_record_is_counted(ray_session, model_dir, tmp_path):
    """Each contig was a shard of its own (500 scaffolds: 500 shards, 1,000 parts); a shard of
    several contigs reads each whole, its records counted once each (their indices restart
    with every read)."""
    from dnacnn.data.simulation_files import write_fasta_bgzip

    rng = np.random.default_rng(3)
    contigs = {f"s{i}": rng.choice(list(b"ACGT"), 400).astype(np.uint8).tobytes() for i in range(30)}
    genome = write_fasta_bgzip(contigs, tmp_path / "scaffolds.fa.gz")
    lines = ["##fileformat=VCFv4.2", *(f"##contig=<ID={c},length=400>" for c in contigs),
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for i, (name, seq) in enumerate(contigs.items()):
        for pos in (150, 250)[: 1 + i % 2]:  # one record, then two: a read's indices start at 0 again
            ref = chr(seq[pos - 1])
            lines.append(f"{name}\t{pos}\t{name}_{pos}\t{ref}\t{'A' if ref != 'A' else 'C'},{'G' if ref != 'G' else 'T'}"
                         "\t.\t.\t.")
    vcf = _write_text(tmp_path / "scaffolds.vcf", "\n".join(lines) + "\n")
    summary = score_vcf(str(model_dir), genome, vcf, tmp_path / "out", shard_variants=10, plot=False)
    assert summary["shards"] == 5 == len(list((tmp_path / "out" / "scores").glob("part-*.parquet")))
    assert (summary["records_read"], summary["alleles_read"], summary["alleles_scored"]) == (45, 90, 90)
    assert_accounting(summary, tmp_path / "out")


def test_a_folder_where_an_output_file_goes_is_refused_before_any_work(model_dir, tmp_path):
    """--out holding a folder named scores.vcf.gz failed the job after every shard was scored."""
    (tmp_path / "out" / "scores.vcf.gz").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds a folder named scores\.vcf\.gz, where the job writes its file"):
        score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, tmp_path / "out", vcf_out=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scores.vcf.gz"]


def test_precision_is_chosen_recorded_and_bf16_stays_close(clean_run, model_dir, tmp_path):
    out, summary = clean_run
    assert summary["precision"] == "fp32"
    assert pq.read_table(out / "scores").schema.metadata[b"dnacnn.precision"] == b"fp32"
    fast = tmp_path / "bf16"
    fast_summary = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, fast, shard_variants=100,
                             precision="bf16", plot=False)
    assert fast_summary["precision"] == "bf16"
    assert fast_summary["alleles_scored"] == summary["alleles_scored"]
    table = pq.read_table(fast / "scores")
    assert table.schema.metadata[b"dnacnn.precision"] == b"bf16"
    exact = np.stack(read_scores(out)["delta"])
    approx = np.stack(table.to_pandas()["delta"])
    assert np.abs(approx - exact).max() < 0.02  # bf16: about 3 significant digits
    assert np.abs(approx - exact).max() > 0  # and it is another computation


@pytest.mark.slow
def test_a_lost_scoring_actor_is_replaced_and_its_shard_redone(ray_session, clean_run, model_dir, tmp_path):
    """SIGKILL one shard actor mid-job (as when its node dies): the job still ends with
    exactly the rows of an undisturbed run, none lost, none twice."""
    import threading

    import psutil

    out = tmp_path / "out"
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["summary"] = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out,
                                           shard_variants=SHARD, plot=False)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not list((out / "_shards").glob("*.json")) and time.monotonic() < deadline:
        assert thread.is_alive(), outcome
        time.sleep(0.05)

    def cmdline(p: psutil.Process) -> str:
        try:
            return " ".join(p.cmdline())
        except psutil.Error:
            return ""

    # this session's actors only: descendants of this process, which started the cluster
    actors = [p for p in psutil.Process().children(recursive=True) if "ShardWorker" in cmdline(p)]
    assert actors, "no shard actor found"
    actors[0].kill()
    thread.join(600)
    assert "summary" in outcome, outcome.get("error")
    assert_accounting(outcome["summary"], out)
    assert_same_rows(read_scores(out), read_scores(clean_run[0]))


def test_batch_job_agrees_with_the_python_api(clean_run, model_dir):
    out, _ = clean_run
    api = VariantScorer(str(model_dir), FIXTURE_FASTA).score_dataframe(text_alleles(FIXTURE_VCF))
    assert api["reason"].isna().all()
    assert_same_rows(read_scores(out), api)


def test_plain_gzip_vcf_as_debian_ships_it_scores_the_same_rows(clean_run, model_dir, tmp_path):
    """vt-examples ships its VCFs plain-gzipped (not BGZF): indexed copy, same rows."""
    import gzip

    plain_gz = tmp_path / "plain.vcf.gz"
    with gzip.open(FIXTURE_VCF, "rb") as src, gzip.open(plain_gz, "wb") as dst:
        dst.write(src.read())
    out = tmp_path / "out"
    summary = score_vcf(str(model_dir), FIXTURE_FASTA, plain_gz, out, shard_variants=SHARD)
    assert_accounting(summary, out)
    assert summary["shards"] > 10  # split by region through the indexed copy
    assert_same_rows(read_scores(out), read_scores(clean_run[0]))


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_restarts_to_the_rows_of_an_uninterrupted_run(clean_run, model_dir, tmp_path, stop):
    """SIGKILL the job's driver (another process on this Ray cluster) once its first shard is
    recorded, or Ctrl-C it (SIGINT: it says how many shards are done and how to go on), then
    run it again with the same output folder."""
    import ray

    out = tmp_path / "out"
    script = tmp_path / "slow_job.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        import ray
        from dnacnn import models
        from dnacnn.models.simple import SimpleCNN
        from dnacnn.ray_cluster import Interrupted
        from dnacnn.scoring.batch import score_vcf

        class SlowSimple(SimpleCNN):  # same weights and outputs, 0.25 s per forward pass
            def forward(self, x):
                time.sleep(0.25)
                return super().forward(x)

        address, model_dir, genome, vcf, out, shard = sys.argv[1:]
        loaded = models.load(model_dir)
        slow = SlowSimple(loaded.model.config)
        slow.load_state_dict(loaded.model.state_dict())
        loaded.model = slow.eval()
        ray.init(address=address)
        try:
            score_vcf(loaded, genome, vcf, out, shard_variants=int(shard), num_actors=1, plot=False)
        except Interrupted as err:
            print(err)
            sys.exit(130)
    """))
    total = len(plan_shards(str(FIXTURE_VCF), True, SHARD))
    address = ray.get_runtime_context().gcs_address
    log = open(tmp_path / "job.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(script), address, str(model_dir), str(FIXTURE_FASTA), str(FIXTURE_VCF), str(out), str(SHARD)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    try:
        while not list((out / "_shards").glob("0*.json")):
            assert proc.poll() is None, f"the job ended before it was killed: {(tmp_path / 'job.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no shard finished in 120 s"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, stop)
        status = proc.wait(timeout=60)
        log.close()
    finished = len(list((out / "_shards").glob("0*.json")))
    assert 1 <= finished < total  # killed mid-way
    if stop == signal.SIGINT:
        said = (tmp_path / "job.log").read_text().strip().splitlines()[-1]
        assert status == 130 and said == (f"scoring interrupted: {finished} of {total} shards are done in {out}; "
                                          "run the same command again to score the rest"), said
    assert not (out / "summary.json").exists()

    summary = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD)
    assert 0 < summary["shards_run_now"] < total
    assert_accounting(summary, out)
    clean_out, clean_summary = clean_run
    for key in ("records_read", "alleles_read", "alleles_scored", "alleles_rejected"):
        assert summary[key] == clean_summary[key]
    assert_same_rows(read_scores(out), read_scores(clean_out))


def test_restart_redoes_exactly_the_shards_without_markers(clean_run, model_dir, tmp_path):
    """The states a kill can leave: parts renamed into place but no marker yet, temporaries."""
    clean_out, clean_summary = clean_run
    out = tmp_path / "out"
    shutil.copytree(clean_out, out)
    markers = sorted((out / "_shards").glob("*.json"))
    for marker in markers[:3]:
        marker.unlink()
    (out / "scores" / ".part-000000.parquet.deadbeef.tmp").write_bytes(b"partial")
    (out / "_shards" / ".000001.json.deadbeef.tmp").write_text("{")
    (out / "summary.json").unlink()

    summary = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)
    assert summary["shards_run_now"] == 3
    assert_accounting(summary, out)
    assert_same_rows(read_scores(out), read_scores(clean_out))

    again = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)
    assert again["shards_run_now"] == 0 and again["alleles_scored"] == clean_summary["alleles_scored"]


def test_restart_redoes_shards_whose_results_are_damaged(clean_run, model_dir, tmp_path, caplog):
    """A garbled marker was "error: Expecting value: line 1 column 1 (char 0)"; a cut Parquet
    part was counted as done, then "Parquet magic bytes not found in footer"; a garbled
    job.json was a JSON error naming no file."""
    clean_out, clean_summary = clean_run
    out = tmp_path / "out"
    shutil.copytree(clean_out, out)
    markers = sorted((out / "_shards").glob("*.json"))
    markers[0].write_text("garbage")
    part = out / "scores" / f"part-{markers[1].stem}.parquet"
    part.write_bytes(part.read_bytes()[:50])
    (out / "summary.json").unlink()
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        summary = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)
    assert summary["shards_run_now"] == 2
    assert caplog.text.count("are damaged") == 2, caplog.text
    assert_accounting(summary, out)
    assert_same_rows(read_scores(out), read_scores(clean_out))
    (out / "job.json").write_text("{bad")
    with pytest.raises(ValueError, match=f"^{out / 'job.json'} cannot be read .*give a new output folder"):
        score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)


def test_ctrl_c_once_every_shard_is_done_says_what_is_left(clean_run, model_dir, tmp_path, monkeypatch):
    """Ctrl-C while the outputs were written exited 130 without a word; just after the last
    shard it said 'run the same command again to score the rest', with none left to score."""
    from dnacnn.ray_cluster import Interrupted

    out = tmp_path / "out"
    shutil.copytree(clean_run[0], out)
    (out / "summary.json").unlink()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dnacnn.scoring.batch._write_outputs", interrupt)
    with pytest.raises(Interrupted, match="every shard is done in .* again to write summary.json"):
        score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)
    monkeypatch.undo()
    monkeypatch.setattr("dnacnn.scoring.batch.shard_done", interrupt)  # once planned
    with pytest.raises(Interrupted, match=r" (\d+) of \1 shards are done in .* again to write the summary$"):
        score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)
    monkeypatch.undo()
    summary = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)
    assert summary["shards_run_now"] == 0 and summary["alleles_scored"] == clean_run[1]["alleles_scored"]


def test_restart_with_other_inputs_is_refused(clean_run, model_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(clean_run[0], out)
    with pytest.raises(ValueError, match="shard_variants"):
        score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD // 2)
    other = save_tiny(tmp_path / "other_model", seed=1)
    with pytest.raises(ValueError, match="model_sha256"):
        score_vcf(str(other), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD)


def test_a_genome_rewritten_in_place_is_another_input(model_dir, tmp_path):
    """The job's identity knew the genome by its path only: a genome rewritten under the same
    name (other bases) resumed, "2 done before, 0 to score", the old rows standing for it."""
    from dnacnn.scoring.job_state import ModelIdentity, check_identity, job_identity

    genome = tmp_path / "genome.fa"
    genome.write_text(">20\n" + "ACGT" * 50 + "\n")
    about = ModelIdentity("0" * 64, "tiny", tuple(TASKS), 200, "multitask")
    out = tmp_path / "out"
    out.mkdir()
    first = job_identity(str(FIXTURE_VCF), str(genome), about, False, SHARD)
    (out / "job.json").write_text(json.dumps(first))
    assert check_identity(out, job_identity(str(FIXTURE_VCF), str(genome), about, False, SHARD))
    genome.write_text(">20\n" + "TGCA" * 50 + "\n")  # same size, other bases
    os.utime(genome, ns=(first["genome_mtime_ns"] + 10**9,) * 2)
    with pytest.raises(ValueError, match=r"other inputs \(genome_mtime_ns differ\)"):
        check_identity(out, job_identity(str(FIXTURE_VCF), str(genome), about, False, SHARD))


def test_a_model_the_actors_cannot_load_leaves_the_folder_as_it_was(ray_session, model_dir, tmp_path):
    """Weights that do not fit their config fail in the actors, before any shard: the error names
    the file, what the run created in an existing folder is removed and the user's files stay; the
    mended model then runs in the same folder (not refused as another job)."""
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    good_meta = (broken / "model.json").read_text()
    meta = json.loads(good_meta)
    meta["config"]["n_tasks"], meta["tasks"] = 1, meta["tasks"][:1]
    (broken / "model.json").write_text(json.dumps(meta))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    with pytest.raises(ValueError, match="does not hold the weights"):
        score_vcf(str(broken), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=100, plot=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (broken / "model.json").write_text(good_meta)
    summary = score_vcf(str(broken), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=100, plot=False)
    assert summary["alleles_scored"] == 194


# ---- rejects from real records with edits -------------------------------------------------


def edited_vcf(path: Path, genome: Genome, unsorted: bool = False) -> dict:
    """The fixture's first 30 real records with edits; returns the expected reject counts."""
    header = [h for h in header_lines(FIXTURE_VCF) if not h.startswith("##fileformat")]
    lines = [line.rstrip("\n").split("\t") for line in data_lines(FIXTURE_VCF)[:30]]
    fields = {i: f for i, f in enumerate(lines)}
    g = fields[3][3]  # GAA at 20:1600125
    fields[3][3] = ("T" if g[0] != "T" else "C") + g[1:]  # ref_mismatch
    fields[5][4] = "<DEL>"  # symbolic_allele
    fields[6][4] = "."  # missing_alt
    fields[8][4] = fields[8][4] + ",<*>"  # one scored ALT, one symbolic_allele
    fields[10][4] = fields[10][3] + "XT"  # invalid_allele
    body = ["\t".join(f) for f in lines]
    # malformed (5 columns), inserted as the 6th line of contig 20, so that the 7th (original line 5)
    # starts the second shard (SHARD records each); its 30 bp REF spans that shard boundary
    boundary = int(lines[5][1])
    bad_pos = boundary - 10
    assert bad_pos > int(lines[4][1])
    bad = f"20\t{bad_pos}\tbad\t{genome.fetch('20', bad_pos - 1, bad_pos + 29)}\tA"
    at = 5
    body.insert(at, bad)
    for f in lines[:2]:  # unknown_contig: the records again, on contig 21 (declared, not in the genome)
        body.append("\t".join(["21"] + f[1:]))
    if unsorted:
        body[0], body[1] = body[1], body[0]
    path.write_text("##fileformat=VCFv4.2\n" + "".join(header) + "\n".join(body) + "\n")
    reasons = {"ref_mismatch": 1, "symbolic_allele": 2, "missing_alt": 1, "invalid_allele": 1,
               "malformed": 1, "unknown_contig": 2}
    malformed_line = len(header) + 1 + at + 1
    return {"reasons": reasons, "records": len(body), "alleles": len(body) + 1, "malformed_line": malformed_line,
            "bad_pos": bad_pos, "boundary": boundary}


@pytest.fixture(scope="module")
def edited_run(ray_session, model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edited")
    vcf = tmp / "edited.vcf"  # plain text, no index: the job indexes a copy
    expected = edited_vcf(vcf, Genome(FIXTURE_FASTA))
    summary = score_vcf(str(model_dir), FIXTURE_FASTA, vcf, tmp / "out", shard_variants=SHARD, plot=False)
    return tmp / "out", summary, expected


def test_rejects_with_reasons_from_edited_real_records(edited_run):
    out, summary, expected = edited_run
    assert (out / "_work" / "input.vcf.gz.tbi").exists()
    assert_accounting(summary, out)
    shards = plan_shards(str(out / "_work" / "input.vcf.gz"), True, SHARD)
    assert any(s.start == expected["boundary"] - 1 for s in shards)  # the bad line crosses it
    assert summary["rejected_by_reason"] == expected["reasons"]  # the boundary-crossing line once
    assert summary["records_read"] == expected["records"]
    assert summary["alleles_read"] == expected["alleles"]
    rejects = read_rejects(out)
    assert list(rejects.columns) == ["chrom", "pos", "id", "ref", "alt", "kind", "reason", "message", "line"]
    bad = rejects[rejects.reason == "malformed"].iloc[0]
    assert (bad.chrom, bad.pos, bad.id) == ("20", expected["bad_pos"], "bad")
    assert "8" in bad.message and "column" in bad.message  # says what is wrong with the line
    assert "edited.vcf" in bad.message and "_work" not in bad.message  # the user's file, not the job's copy
    mismatch = rejects[rejects.reason == "ref_mismatch"].iloc[0]
    assert mismatch.pos == 1600125 and "genome build" in mismatch.message
    assert set(rejects[rejects.reason == "unknown_contig"].chrom) == {"21"}
    symbolic = rejects[rejects.reason == "symbolic_allele"]
    assert sorted(symbolic.alt) == ["<*>", "<DEL>"]
    scores = read_scores(out)
    assert not scores.duplicated(KEY).any() and len(scores) == summary["alleles_scored"]


def test_unsorted_vcf_is_read_whole_with_line_numbers(edited_run, model_dir, tmp_path):
    vcf = tmp_path / "unsorted.vcf"
    expected = edited_vcf(vcf, Genome(FIXTURE_FASTA), unsorted=True)
    assert indexed_copy(vcf, tmp_path / "work") == (str(vcf), False)
    out = tmp_path / "out"
    summary = score_vcf(str(model_dir), FIXTURE_FASTA, vcf, out, shard_variants=SHARD, plot=False, vcf_out=True)
    assert summary["shards"] == 1
    assert_accounting(summary, out)
    assert summary["rejected_by_reason"] == expected["reasons"]
    rejects = read_rejects(out)
    assert rejects[rejects.reason == "malformed"].line.tolist() == [expected["malformed_line"]]
    assert (rejects.line > 0).all()
    assert (out / "scores.vcf.gz").exists() and not (out / "scores.vcf.gz.tbi").exists()
    assert_same_rows(read_scores(out), read_scores(edited_run[0]))  # same rows as the sorted file


def test_records_that_are_not_utf8_are_rejects_and_the_rest_is_scored(ray_session, model_dir, tmp_path):
    """A Latin-1 CHROM (htslib indexes it, pysam cannot open the index: read whole) and a
    Latin-1 ID stopped the job with "error: 'utf-8' codec can't decode byte 0xe9"; now each
    is a malformed reject and every other record is scored."""
    header = "".join(header_lines(FIXTURE_VCF)).encode()
    body = [line.encode() for line in data_lines(FIXTURE_VCF)[:6]]
    fields = body[2].split(b"\t")
    body[2] = b"\t".join([fields[0], fields[1], b"r\xe9s"] + fields[3:])
    body.append(b"\t".join([b"2\xe90"] + body[4].split(b"\t")[1:]))  # sorted: tabix indexes it
    vcf = tmp_path / "latin1.vcf"
    vcf.write_bytes(header + b"".join(body))
    assert indexed_copy(vcf, tmp_path / "work") == (str(vcf), False)
    out = tmp_path / "out"
    summary = score_vcf(str(model_dir), FIXTURE_FASTA, vcf, out, shard_variants=SHARD, num_actors=1, plot=False)
    assert_accounting(summary, out)
    assert summary["records_read"] == 7 and summary["rejected_by_reason"] == {"malformed": 2}
    rejects = read_rejects(out)
    assert sorted(m.split(": ")[-1].split(";")[0] for m in rejects.message) == [
        "CHROM not UTF-8 text", "ID not UTF-8 text"]


# ---- the real VCFs against the whole real chr20 --------------------------------------------


@pytest.fixture(scope="module")
def basset_dir(tmp_path_factory):
    """A tiny Basset (batch norm in eval mode) with 6 tasks."""
    torch.manual_seed(7)
    model = models.build("basset", dict(
        seq_len=200, n_tasks=6, conv_filters=(16, 16, 16), conv_widths=(9, 5, 3),
        pool_widths=(2, 2, 2), hidden_units=(32,), hidden_dropouts=(0.1,),
    ))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    directory = tmp_path_factory.mktemp("basset")
    models.save(model.eval(), directory, [f"cell type {i}" for i in range(6)], task_type="multitask")
    return directory


@pytest.mark.parametrize("name, sites, multi", [
    ("pysam_tabix_vcf_2.vcf", 200, 63), ("pysam_tabix_vcf_5.vcf", 977, 43), ("pysam_tabix_vcf_21.vcf", 300, 0),
])
def test_real_vcfs_on_real_chr20(ray_session, basset_dir, tmp_path, name, sites, multi):
    fasta = shared("grch37_chr20", "20.fa.gz")
    vcf = shared("grch37_chr20", "vcf", name)
    expected = text_alleles(vcf)
    assert len(data_lines(vcf)) == sites and int((expected.groupby(["pos", "ref"]).size() > 1).sum()) >= multi
    out = tmp_path / "out"
    summary = score_vcf(str(basset_dir), fasta, vcf, out, shard_variants=500, rc=True, plot=False)
    assert_accounting(summary, out)
    assert summary["records_read"] == sites
    assert summary["alleles_read"] == len(expected)
    assert summary["alleles_rejected"] == 0  # every REF of these files matches chr20
    api = VariantScorer(str(basset_dir), fasta, rc=True).score_dataframe(expected)
    assert_same_rows(read_scores(out), api)


# ---- the command line and the Ray job entrypoint --------------------------------------------


def test_cli_score_and_job_entrypoint(ray_session, model_dir, tmp_path, capsys):
    from typer.testing import CliRunner

    from dnacnn.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, ["score", "--model", str(model_dir), "--genome", str(FIXTURE_FASTA),
                                 "--vcf", str(FIXTURE_VCF), "--out", str(out), "--rc", "--batch-size", "64",
                                 "--shard-variants", "1000", "--no-plot"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["alleles_scored"] == 194

    missing = runner.invoke(app, ["score", "--model", str(model_dir), "--genome", str(FIXTURE_FASTA),
                                  "--vcf", str(tmp_path / "nope.vcf"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "VCF not found" in missing.output

    job = runpy.run_path(str(Path(__file__).resolve().parents[1] / "jobs" / "score_variants.py"))
    job_out = tmp_path / "job"
    assert job["main"](["--model", str(model_dir), "--genome", str(FIXTURE_FASTA), "--vcf",
                        str(FIXTURE_VCF), "--out", str(job_out), "--rc", "--batch-size", "64",
                        "--shard-variants", "1000"]) == 0
    assert_same_rows(read_scores(job_out), read_scores(out))
    capsys.readouterr()
    assert job["main"](["--model", str(model_dir), "--genome", str(FIXTURE_FASTA), "--vcf",
                        str(tmp_path / "nope.vcf"), "--out", str(tmp_path / "y")]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("error: ") and "VCF not found" in said[0], said


# ---- a registered model -------------------------------------------------------------------


def test_registry_uri_is_fetched_once_and_scores_like_the_folder(ray_session, mlflow_uri, clean_run, model_dir, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from dnacnn import registry
    from dnacnn.config import MlflowConfig

    registry.setup_tracking(MlflowConfig(experiment="scoring"))
    with mlflow.start_run():
        info = registry.log_pyfunc_model(model_dir, TASKS, "multitask", models.load(model_dir).seq_len)
    version = mlflow.register_model(info.model_uri, "tiny-scorer")
    MlflowClient().set_registered_model_alias("tiny-scorer", "champion", version.version)

    uri = "models:/tiny-scorer@champion"
    out = tmp_path / "out"
    summary = score_vcf(uri, FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=SHARD, plot=False)
    assert (out / "_work" / "model" / "model.json").exists()  # fetched once, by the driver
    assert summary["model_sha256"] == clean_run[1]["model_sha256"]
    assert_same_rows(read_scores(out), read_scores(clean_run[0]))

    df = text_alleles(FIXTURE_VCF).head(20)
    from_uri = VariantScorer(uri, FIXTURE_FASTA).score_dataframe(df)
    assert_same_rows(from_uri, VariantScorer(str(model_dir), FIXTURE_FASTA).score_dataframe(df))


# ---- no shard worker outlives the job ------------------------------------------------------


def _shard_workers() -> list:
    """Ray actor processes of this test session (descendants of pytest) that run shard workers."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "MapWorker" in " ".join(proc.cmdline()) or "ShardWorker" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def test_no_shard_worker_outlives_a_job_on_a_joined_cluster(clean_run):
    import psutil

    workers = _shard_workers()
    _, alive = psutil.wait_procs(workers, timeout=60)  # Ray ends the pool's actors as the job ends
    assert alive == [], [p.cmdline() for p in alive]


@pytest.mark.slow
def test_the_command_leaves_no_process_behind(model_dir, tmp_path):
    """`dnacnn score` starts its own local cluster and stops all of it before it returns,
    with its heap frozen, so the interpreter's exit skips a last garbage collection; its
    driver never imports torch or numba."""
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are length-limited
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "platform"),
           "DNACNN_PROGRESS": "0", "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_MODE", None)  # as a user's shell has it: unset
    code = ("import atexit, gc, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count(), "
            "'torch' in sys.modules, 'numba' in sys.modules, file=sys.stderr)); from dnacnn.cli import app; sys.argv[0] = 'dnacnn'; app()")
    result = subprocess.run(
        [sys.executable, "-c", code, "score", "--model", str(model_dir), "--genome", str(FIXTURE_FASTA),
         "--vcf", str(FIXTURE_VCF), "--out", str(tmp_path / "out"), "--no-plot", "--shard-variants", "50"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["alleles_scored"] == 194
    frozen = [line for line in result.stderr.splitlines() if line.startswith("frozen ")]
    assert frozen and int(frozen[-1].split()[1]) > 100_000, result.stderr[-2000:]
    assert frozen[-1].split()[2] == "False"  # the driver read the checkpoint without torch (the actors load it)
    assert frozen[-1].split()[3] == "False"  # and encoded no sequence: numba's import (0.25 s) was skipped
    # the private cluster has Ray's default token authentication, without Ray's warning that it has
    assert "Token authentication" not in result.stderr, result.stderr[-2000:]
    # the job says it starts a local cluster; Ray does not say it again
    assert "starting a local Ray cluster" in result.stderr and "Started a local Ray instance" not in result.stderr
    assert ray_processes_left(ray_tmp) == []
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_shards_tile_each_contig_and_say_where_they_are():
    shards = plan_shards(str(FIXTURE_VCF), True, 50)
    assert [s.index for s in shards] == list(range(len(shards))) and len(shards) == 4
    for before, after in zip(shards, shards[1:]):
        assert (before.chrom, before.end) == (after.chrom, after.start)  # no gap, no overlap
    assert shards[0].start == 0 and shards[0].describe() == f"20:0-{shards[0].end}"
    assert shards[-1].describe() == f"20:{shards[-1].start}-end"  # open to the contig's end


def test_a_second_job_in_a_folder_being_scored_is_refused_and_touches_nothing(ray_session, model_dir, tmp_path):
    """While a job scores into OUT (here: this process holds its lock, as a running job does),
    another is refused in one line naming the holder, before its clean-up could delete the
    running job's unfinished parts; once the lock is free the same call scores."""
    from dnacnn.folder_lock import FolderBusyError, exclusive

    out = tmp_path / "out"
    (out / "scores").mkdir(parents=True)
    running = out / "scores" / ".part-000001.parquet.0f3a.tmp"  # the running job's part being written
    running.write_bytes(b"half a part")
    with exclusive(out / "_work", "--out", "give another --out"):
        with pytest.raises(FolderBusyError, match=rf"in use by process {os.getpid()} .*give another --out"):
            score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=100, plot=False)
        assert running.read_bytes() == b"half a part"
        assert sorted(p.name for p in out.iterdir()) == ["_work", "scores"]
    running.unlink()
    assert score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, out, shard_variants=100, plot=False)["alleles_scored"] == 194
