"""Bad input to `dnacnn score`, `check-vcf` and `fetch-genome`, run as a user runs them.

Each class of mistake: a non-zero exit, exactly one line on stderr naming the file,
option or record and the reason, no traceback, and nothing created. Refusals that
happen before Ray starts run the real command in a subprocess; the checks that need
a finished run (warnings in summary.json) use the test session's Ray cluster.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pysam
import pytest
from typer.testing import CliRunner

from conftest import FIXTURE_FASTA, FIXTURE_VCF, REPO, ray_processes_left
from dnacnn.cli import app
from dnacnn.scoring.batch import score_vcf
from dnacnn.variants.files import BGZF_EOF
from test_scoring import save_tiny

DNACNN = [sys.executable, "-c", "import sys; from dnacnn.cli import app; sys.argv[0] = 'dnacnn'; app()"]


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "DNACNN_PROGRESS": "0", **(env or {})}
    environ.pop("RAY_ADDRESS", None)
    return subprocess.run([*DNACNN, *args], capture_output=True, text=True, env=environ, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command (after checking there is only one)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr.replace("error:", "")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("model"))


def score_args(model, vcf, out, genome=FIXTURE_FASTA, *extra):
    return ["score", "--model", str(model), "--genome", str(genome), "--vcf", str(vcf), "--out", str(out), *extra]


def uniform_genome(path: Path, contig: str, length: int, base: str = "A") -> Path:
    """A bgzipped, indexed FASTA of one contig of one repeated base: the wrong genome for any VCF."""
    plain = path.with_suffix("")
    with open(plain, "w") as out:
        out.write(f">{contig}\n")
        line = base * 60 + "\n"
        for _ in range(length // 60):
            out.write(line)
        if length % 60:
            out.write(base * (length % 60) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    pysam.faidx(str(path))
    plain.unlink()
    return path


# ---- refused before Ray starts: options, files, folders ----------------------------------


@pytest.mark.parametrize("option, value, named", [
    ("--batch-size", "0", "--batch-size"),
    ("--shard-variants", "0", "--shard-variants"),
    ("--wait-for-resources", "-1", "--wait-for-resources"),
    ("--precision", "fp16", "--precision"),
    ("--actors-per-gpu", "-1", "--actors-per-gpu"),
    ("--device", "cuda:1", "--device must be cpu or cuda"),
    ("--actors-per-gpu", "2", "--actors-per-gpu 2 applies with --device cuda only"),
])
def test_numeric_options_are_checked_before_anything_runs(model_dir, tmp_path, option, value, named):
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, out), option, value))
    assert named in line
    assert not out.exists()


def test_nan_options_are_refused_by_the_library_check():
    # The Ray job's argparse floats take "nan", which passed 'value < low': an actor of nan CPUs,
    # or a wait for a GPU whose deadline never comes.
    from dnacnn.scoring.batch import check_options

    for name, kwargs in (("--cpus-per-actor", {"cpus_per_actor": float("nan")}),
                         ("--wait-for-resources", {"wait_for_resources": float("nan")})):
        args = {"batch_size": 1, "shard_variants": 1, "num_actors": None, "cpus_per_actor": 1.0,
                "device": "cpu", "wait_for_resources": 0.0, **kwargs}
        with pytest.raises(ValueError, match=rf"^{name} must be .*, got nan"):
            check_options(**args)


def test_out_that_is_a_file_or_not_writable(model_dir, tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, a_file)))
    assert "--out" in line and str(a_file) in line and "is a file" in line
    assert a_file.read_text() == "not a folder"

    if os.geteuid() == 0:  # root writes through permission bits: use a file system nobody can write
        unwritable = Path("/proc/dnacnn-scores")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        unwritable = locked / "scores"
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, unwritable)))
    assert "--out" in line and str(unwritable) in line and "cannot be written" in line
    assert not unwritable.exists()

    foreign = tmp_path / "project"  # someone else's folder: the job's parts would mix with its files
    (foreign / "scores").mkdir(parents=True)
    (foreign / "scores" / "keep.parquet").write_text("x")
    (foreign / "notes.txt").write_text("mine")
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, foreign)))
    assert "--out" in line and "not a dnacnn score folder" in line and "scores/" in line and "keep.parquet" in line
    assert sorted(p.name for p in foreign.rglob("*")) == ["keep.parquet", "notes.txt", "scores"]


def test_fetch_genome_into_a_file_is_refused(tmp_path):
    a_file = tmp_path / "data"
    a_file.write_text("x")
    line = one_error_line(run_cli("fetch-genome", "--data-dir", str(a_file)))
    assert "--data-dir" in line and str(a_file) in line and "is a file" in line


def test_missing_model_or_genome_creates_nothing(model_dir, tmp_path):
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(tmp_path / "no-model", FIXTURE_VCF, out)))
    assert str(tmp_path / "no-model") in line
    assert not out.exists()
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, out, tmp_path / "no.fa.gz")))
    assert "genome FASTA not found" in line and str(tmp_path / "no.fa.gz") in line
    assert not out.exists()


def test_a_broken_model_file_is_refused_before_ray_starts(model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a copy cut short
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(broken, FIXTURE_VCF, out)))
    assert str(weights) in line and "truncated" in line
    assert not out.exists()


@pytest.mark.parametrize(("change", "said"), [
    ({"tasks": ["a", "b", "c"]}, "is inconsistent: its config has n_tasks="),
    ({"name": "resnet"}, "unknown model 'resnet'"),
    ({"rc_average": "false"}, "'rc_average' must be true or false"),
])
def test_a_model_json_at_odds_with_itself_is_refused_before_ray_starts(model_dir, tmp_path, change, said):
    # Was found by the actors, after a local cluster had started (or, for "false", read as true).
    odd = tmp_path / "odd"
    shutil.copytree(model_dir, odd)
    meta = json.loads((odd / "model.json").read_text())
    (odd / "model.json").write_text(json.dumps({**meta, **change}))
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(odd, FIXTURE_VCF, out)))
    assert str(odd / "model.json") in line and said in line, line
    assert not out.exists()


def test_weights_that_do_not_fit_their_config_stop_the_started_cluster(model_dir, tmp_path):
    """Found only when the actors load the weights (the driver reads the files without torch):
    the error is the command's last line, its local cluster is stopped before it returns, and
    the output folder it had made is removed."""
    foreign = tmp_path / "foreign"
    shutil.copytree(model_dir, foreign)
    meta = json.loads((foreign / "model.json").read_text())
    meta["config"]["n_tasks"], meta["tasks"] = 1, meta["tasks"][:1]
    (foreign / "model.json").write_text(json.dumps(meta))
    out = tmp_path / "out"
    ray_tmp = tempfile.mkdtemp(prefix="rf", dir="/tmp")  # short: Ray's socket paths are length-limited
    try:
        result = run_cli(*score_args(foreign, FIXTURE_VCF, out), env={"RAY_TMPDIR": ray_tmp})
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and str(foreign / "model.safetensors") in last, last
        assert "does not hold the weights" in last and "n_tasks" not in last.split("(")[0]
        assert not out.exists()  # no shard was done: what the run had created is gone, a rerun starts clean
        assert ray_processes_left(ray_tmp) == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_not_a_vcf_gets_the_line_check_vcf_gives(model_dir, tmp_path):
    noise = tmp_path / "noise.vcf.gz"
    noise.write_bytes(os.urandom(50_000))
    out = tmp_path / "out"
    scored = one_error_line(run_cli(*score_args(model_dir, noise, out)))
    checked = one_error_line(run_cli("check-vcf", "--vcf", str(noise), "--genome", str(FIXTURE_FASTA)))
    assert scored == checked
    assert str(noise) in scored and "not a readable VCF" in scored
    assert not out.exists()


def test_empty_vcf_names_the_users_file(model_dir, tmp_path):
    empty = tmp_path / "empty.vcf"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(model_dir, empty, out)))
    assert str(empty) in line and "empty" in line and "_work" not in line
    assert not out.exists()


@pytest.mark.slow
def test_no_ray_cluster_starts_when_there_is_nothing_to_score(model_dir, tmp_path):
    """A VCF with a header and no record (a contig with no calls) is a finished job of 0
    alleles at once, and the rerun of a finished job rewrites its summary: neither starts
    a Ray cluster for no work."""
    with gzip.open(FIXTURE_VCF, "rt") as handle:
        header = [line for line in handle if line.startswith("#")]
    header_only = tmp_path / "header_only.vcf"
    header_only.write_text("".join(header))
    result = run_cli(*score_args(model_dir, header_only, tmp_path / "none", FIXTURE_FASTA, "--no-plot"))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert (summary["alleles_read"], summary["shards"]) == (0, 0)
    assert "starting a local Ray cluster" not in result.stderr, result.stderr[-2000:]
    # its tables still read as tables, with their columns: 0 rows, the model's tasks
    scores, rejects = (pq.read_table(tmp_path / "none" / name) for name in ("scores", "rejects"))
    assert (scores.num_rows, rejects.num_rows) == (0, 0)
    assert {"delta", "max_task"} <= set(scores.column_names) and "reason" in rejects.column_names
    meta = scores.schema.metadata
    tasks = (tmp_path / "none" / "tasks.txt").read_text().splitlines()
    assert json.loads(meta[b"dnacnn.tasks"]) == tasks and len(tasks) == summary["tasks"] > 0
    assert scores.schema.field("delta").type.list_size == len(tasks)
    assert meta[b"dnacnn.precision"] == b"fp32" and meta[b"dnacnn.task_type"] in (b"binary", b"multitask", b"multiclass")

    out = tmp_path / "done"
    first = run_cli(*score_args(model_dir, FIXTURE_VCF, out, FIXTURE_FASTA, "--no-plot"))
    assert first.returncode == 0 and "starting a local Ray cluster" in first.stderr, first.stderr[-2000:]
    again = run_cli(*score_args(model_dir, FIXTURE_VCF, out, FIXTURE_FASTA, "--no-plot"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "starting a local Ray cluster" not in again.stderr and "0 to score" in again.stderr
    assert json.loads(again.stdout)["alleles_scored"] == json.loads(first.stdout)["alleles_scored"] == 194


def test_address_that_nobody_answers_is_refused_at_once(model_dir, tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "out"
    address = f"127.0.0.1:{port}"
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, out), "--address", address, timeout=120))
    assert f"--address {address}" in line
    assert not out.exists()


def test_address_where_something_else_answers_is_refused_at_once(model_dir, tmp_path):
    """An HTTP server (or a silent one) at --address: Ray waited for a GCS there for minutes."""
    import http.server
    import threading

    class Silent(http.server.BaseHTTPRequestHandler):
        def handle(self):  # accept, say nothing, hang up after a while
            time.sleep(3)

    servers = [http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler),
               http.server.HTTPServer(("127.0.0.1", 0), Silent)]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        for server, scheme in zip(servers, ("", "ray://")):
            address = f"{scheme}127.0.0.1:{server.server_address[1]}"
            out = tmp_path / "out"
            t0 = time.monotonic()
            line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, out), "--address", address,
                                          timeout=120))
            assert time.monotonic() - t0 < 60
            assert f"something answers at --address {address}, but not a Ray cluster's head" in line, line
            assert not out.exists()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, tmp_path / "o"), "--address",
                                  "127.0.0.1:99999"))
    assert line == "error: --address 127.0.0.1:99999 is not a host:port (Port out of range 0-65535)"
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, tmp_path / "o"), "--address", "garbage"))
    assert line == "error: --address garbage is not a host:port (e.g. 10.0.0.5:6379), ray://host:port or auto"
    assert not (tmp_path / "o").exists()  # refused before the job made anything


def test_a_ray_token_that_cannot_be_read_is_one_line(model_dir, tmp_path):
    """RAY_AUTH_TOKEN_PATH naming a missing or empty file: Ray's AuthenticationError was a
    57-line traceback, exit 1."""
    empty = tmp_path / "empty_token"
    empty.write_text("")
    for path in (tmp_path / "nope", empty):
        result = run_cli(*score_args(model_dir, FIXTURE_VCF, tmp_path / "o"),
                         env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        line = result.stderr.strip().splitlines()[-1]  # after the job's own lines (its plan, Ray's start)
        assert line == ("error: Ray's token authentication: RAY_AUTH_TOKEN_PATH is set but file cannot be "
                        f"opened or is empty: {path}"), line


def test_a_ray_head_passes_the_address_check(ray_session):
    import ray

    from dnacnn.ray_cluster import check_reachable

    check_reachable(ray.get_runtime_context().gcs_address, timeout_s=10)


def test_strict_refuses_a_wrong_genome_before_anything_runs(model_dir, tmp_path):
    wrong = uniform_genome(tmp_path / "wrong.fa.gz", "20", 63_025_520)
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, out, wrong, "--strict")))
    assert "REF alleles" in line and "GRCh37 vs GRCh38" in line and str(FIXTURE_VCF) in line
    assert not out.exists()

    other_contig = uniform_genome(tmp_path / "other.fa.gz", "7", 6_000)
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, out, other_contig, "--strict")))
    assert "no record" in line and "contig" in line and "GRCh37 vs GRCh38" in line
    assert not out.exists()


def test_a_header_giving_a_contig_another_length_than_the_genome_is_said_before_any_record(model_dir, tmp_path):
    """A VCF whose ##contig line gives chr20 GRCh38's 64,444,167 bp, scored on GRCh37's chr20:
    nothing was said unless many REF alleles disagreed. check-vcf now warns, --strict refuses
    before anything runs, and check-vcf also says when REF alleles disagree."""
    with gzip.open(FIXTURE_VCF, "rt") as handle:
        text = handle.read()
    assert "##contig=<ID=20,length=63025520," in text
    hg38 = tmp_path / "hg38_header.vcf"
    hg38.write_text(text.replace("##contig=<ID=20,length=63025520,", "##contig=<ID=20,length=64444167,"))
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(model_dir, hg38, out, FIXTURE_FASTA, "--strict")))
    assert (f"the header of {hg38} gives contig '20' 64,444,167 bp and the genome {FIXTURE_FASTA} has "
            "63,025,520 bp for '20'") in line and "GRCh37 vs GRCh38" in line and line.endswith("(--strict)")
    assert not out.exists()
    checked = run_cli("check-vcf", "--vcf", str(hg38), "--genome", str(FIXTURE_FASTA), "--show", "0")
    assert checked.returncode == 0 and "warning: the header of" in checked.stderr
    assert "64,444,167" in json.loads(checked.stdout)["warnings"][0]
    wrong = uniform_genome(tmp_path / "wrong.fa.gz", "20", 63_025_520)
    checked = run_cli("check-vcf", "--vcf", str(FIXTURE_VCF), "--genome", str(wrong), "--show", "0")
    assert checked.returncode == 0 and "REF alleles" in json.loads(checked.stdout)["warnings"][0]


@pytest.mark.slow
def test_cuda_without_a_gpu_fails_at_once_on_a_local_cluster(model_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    out = tmp_path / "out"
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, out), "--device", "cuda",
                                  env={"RAY_TMPDIR": "/tmp"}))
    assert "GPU" in line and "--device cpu" in line
    assert not out.exists()


# ---- accepted with a warning: wrong genome, truncated bgzip; BCF is read -------------------


def test_wrong_genome_is_said_on_the_console_and_in_the_summary(ray_session, model_dir, tmp_path, caplog):
    wrong = uniform_genome(tmp_path / "wrong.fa.gz", "20", 63_025_520)
    with caplog.at_level("WARNING", logger="dnacnn"):
        summary = score_vcf(str(model_dir), wrong, FIXTURE_VCF, tmp_path / "out", plot=False)
    assert summary["alleles_read"] == summary["alleles_scored"] + summary["alleles_rejected"] == 194
    [warning] = [w for w in summary["warnings"] if "GRCh37 vs GRCh38" in w]
    assert f"{summary['rejected_by_reason']['ref_mismatch']} of 194 REF alleles" in warning
    assert warning in caplog.text
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"] == summary["warnings"]

    elsewhere = score_vcf(str(model_dir), uniform_genome(tmp_path / "other.fa.gz", "7", 6_000), FIXTURE_VCF,
                          tmp_path / "out2", plot=False)
    assert elsewhere["alleles_scored"] == 0 and elsewhere["rejected_by_reason"] == {"unknown_contig": 194}
    assert any("no record" in w for w in elsewhere["warnings"])


def test_bgzip_without_its_end_block_is_scored_with_a_warning(ray_session, model_dir, tmp_path, caplog):
    data = FIXTURE_VCF.read_bytes()
    assert data.endswith(BGZF_EOF)
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(data[: -len(BGZF_EOF)])  # every record there, the end-of-file block gone
    with caplog.at_level("WARNING", logger="dnacnn"):
        summary = score_vcf(str(model_dir), FIXTURE_FASTA, cut, tmp_path / "out", plot=False)
    assert summary["alleles_scored"] == 194
    [warning] = [w for w in summary["warnings"] if "end-of-file" in w]
    assert str(cut) in warning and "truncated" in warning
    assert warning in caplog.text
    checked = CliRunner().invoke(app, ["check-vcf", "--vcf", str(cut), "--genome", str(FIXTURE_FASTA)])
    assert checked.exit_code == 0 and json.loads(checked.stdout)["warnings"] == [warning]


def test_plain_gzip_cut_short_is_scored_with_its_warning_in_the_summary_and_in_check_vcf(
        ray_session, model_dir, tmp_path, caplog):
    """The cut was a console line only: summary.json and check-vcf's JSON had no warning."""
    data = gzip.compress(gzip.decompress(FIXTURE_VCF.read_bytes()))
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with caplog.at_level("WARNING", logger="dnacnn"):
        summary = score_vcf(str(model_dir), FIXTURE_FASTA, cut, tmp_path / "out", plot=False)
    assert 0 < summary["records_read"] < 194
    [warning] = [w for w in summary["warnings"] if "truncated" in w]
    assert str(cut) in warning and warning in caplog.text
    checked = CliRunner().invoke(app, ["check-vcf", "--vcf", str(cut), "--genome", str(FIXTURE_FASTA)])
    assert checked.exit_code == 0 and json.loads(checked.stdout)["warnings"] == [warning]
    assert json.loads(checked.stdout)["records"] == summary["records_read"]


def test_check_vcf_reports_the_contig_aliases_it_used_as_the_summary_does(tmp_path):
    """check-vcf's JSON had no contig_aliases (score's summary.json has them): a VCF naming chr20
    against a genome naming 20 said so on the console only. Multi-allelic records count once."""
    text = gzip.decompress(FIXTURE_VCF.read_bytes()).decode()
    lines = text.splitlines()
    records = [line for line in lines if not line.startswith("#")][:5]
    first = records[0].split("\t")
    first[4] = f"{first[4]},{first[3]}A"  # a second ALT
    records[0] = "\t".join(first)
    renamed = tmp_path / "chr.vcf"
    renamed.write_text("\n".join([line.replace("ID=20,", "ID=chr20,") for line in lines if line.startswith("#")]
                                 + ["chr" + r for r in records]) + "\n")
    checked = CliRunner().invoke(app, ["check-vcf", "--vcf", str(renamed), "--genome", str(FIXTURE_FASTA)])
    assert checked.exit_code == 0, checked.output
    said = json.loads(checked.stdout)
    assert said["contig_aliases"] == {"chr20": "20"}
    assert (said["records"], said["alleles"]) == (5, 6)


def test_a_record_past_pos_2_31_takes_no_record_with_it(ray_session, model_dir, tmp_path):
    """A CSI index holds a POS past 2^31 - 1, where pysam's reads by region stop: the shard
    ending there read nothing, without a word (the records before it lost too)."""
    text = gzip.decompress(FIXTURE_VCF.read_bytes()).decode()
    last = text.rstrip("\n").splitlines()[-1].split("\t")
    vcf = tmp_path / "far.vcf"
    vcf.write_text(text + "\t".join(["20", "3000000000", "far", "A", "C", *last[5:]]) + "\n")
    indexed = pysam.tabix_index(str(vcf), preset="vcf", csi=True, force=True)
    summary = score_vcf(str(model_dir), FIXTURE_FASTA, indexed, tmp_path / "out", plot=False, shard_variants=50)
    assert summary["records_read"] == 195
    assert summary["alleles_read"] == summary["alleles_scored"] + summary["alleles_rejected"] == 195
    assert summary["alleles_scored"] == 194
    assert any("past POS 2^31 - 1" in w and "20:3000000000" in w for w in summary["warnings"])


def test_bcf_is_scored_like_its_vcf(ray_session, model_dir, tmp_path):
    bcf = tmp_path / "calls.bcf"
    with pysam.VariantFile(str(FIXTURE_VCF)) as src, pysam.VariantFile(str(bcf), "wb", header=src.header) as dst:
        for record in src:
            dst.write(record)
    result = CliRunner().invoke(app, score_args(model_dir, bcf, tmp_path / "out", FIXTURE_FASTA, "--no-plot"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["alleles_scored"] == 194
    from_vcf = score_vcf(str(model_dir), FIXTURE_FASTA, FIXTURE_VCF, tmp_path / "vcf", plot=False)
    key = ["chrom", "pos", "ref", "alt"]
    a = pq.read_table(tmp_path / "out" / "scores").to_pandas().sort_values(key).reset_index(drop=True)
    b = pq.read_table(tmp_path / "vcf" / "scores").to_pandas().sort_values(key).reset_index(drop=True)
    assert a[key].equals(b[key]) and (a["max_abs_delta"] == b["max_abs_delta"]).all()
    assert from_vcf["alleles_scored"] == 194


def test_plain_gzip_leaves_no_temporary_copy(tmp_path, monkeypatch):
    import tempfile

    from dnacnn.variants import inspect_vcf

    plain_gz = tmp_path / "plain.vcf.gz"
    with gzip.open(FIXTURE_VCF, "rb") as src, gzip.open(plain_gz, "wb") as dst:
        dst.write(src.read())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    info = inspect_vcf(plain_gz)
    assert (info.format, info.compression, info.indexed) == ("VCF", "gzip", False)
    assert list(scratch.iterdir()) == []


def test_a_fasta_index_that_promises_more_than_the_file_is_refused(model_dir, tmp_path):
    """A FASTA rewritten (cut) after indexing: its .fai points past its end; reads there would
    fail in the actors or give other bases. Refused up front, in one line."""
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGT"), 12_000))
    fasta = tmp_path / "short.fa"
    fasta.write_text(">20\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n")
    pysam.faidx(str(fasta))
    fai = Path(f"{fasta}.fai")
    name, _, rest = fai.read_text().partition("\t")
    fai.write_text(f"{name}\t5000000\t{rest.split(chr(9), 1)[1]}")  # the index of a longer file
    line = one_error_line(run_cli(*score_args(model_dir, FIXTURE_VCF, tmp_path / "out", fasta)))
    assert str(fai) in line and "past the end" in line and "samtools faidx" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_shard_that_fails_in_its_actor_is_one_line_naming_the_shard(model_dir, tmp_path):
    """A restart into a damaged folder (a shard's part is now a folder): the actor scoring
    that shard fails; the command says which shard and why in one line, not the actor's
    traceback, and the shards that were done stay done."""
    out = tmp_path / "out"
    first = run_cli(*score_args(model_dir, FIXTURE_VCF, out, FIXTURE_FASTA, "--shard-variants", "50"))
    assert first.returncode == 0, first.stderr[-2000:]
    (out / "_shards" / "000001.json").unlink()
    part = out / "scores" / "part-000001.parquet"
    part.unlink()
    part.mkdir()
    result = run_cli(*score_args(model_dir, FIXTURE_VCF, out, FIXTURE_FASTA, "--shard-variants", "50"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: shard 20:") and "could not be scored" in line and "ray::" not in line, line
    assert str(FIXTURE_VCF) in line and "IsADirectoryError" in line
    assert len(list((out / "_shards").glob("*.json"))) == 3  # the other shards' markers stay


def test_a_contig_alias_is_said_once_not_by_every_actor(model_dir, tmp_path):
    """A VCF that says chr20 scored on a genome that says 20: the job says so once (the
    driver), not again from each scoring actor through Ray's log forwarding, and records
    it in summary.json."""
    text = gzip.decompress(FIXTURE_VCF.read_bytes()).decode()
    renamed = tmp_path / "chr.vcf"
    renamed.write_text(re.sub(r"^20\t", "chr20\t", text, flags=re.M).replace("##contig=<ID=20,", "##contig=<ID=chr20,"))
    out = tmp_path / "out"
    result = run_cli(*score_args(model_dir, renamed, out, FIXTURE_FASTA, "--shard-variants", "50", "--no-plot"))
    assert result.returncode == 0, result.stderr[-2000:]
    said = [line for line in result.stderr.splitlines() if "is named '20'" in line]
    assert len(said) == 1 and "pid=" not in said[0], result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["alleles_scored"] == 194 and summary["contig_aliases"] == {"chr20": "20"}
    assert summary["warnings"] == [f"contig 'chr20' is named '20' in {FIXTURE_FASTA}; using '20'"]


def test_the_ray_job_script_prints_the_commands_console(model_dir, tmp_path):
    """jobs/score_variants.py (what `ray job submit` runs) logs as `dnacnn score` does: the
    job's own lines in one format, not Ray's "Started a local Ray instance." notice."""
    environ = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "DNACNN_PROGRESS": "0"}
    environ.pop("RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "score_variants.py"), "--model", str(model_dir), "--genome",
         str(FIXTURE_FASTA), "--vcf", str(FIXTURE_VCF), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=environ, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["alleles_scored"] == 194
    lines = result.stderr.splitlines()
    assert any("starting a local Ray cluster" in line for line in lines), result.stderr
    odd = [line for line in lines if not re.match(r"\d\d:\d\d:\d\d (INFO|WARNING) dnacnn\.", line)]
    assert odd == [], result.stderr
