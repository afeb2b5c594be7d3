"""A multi-node Ray cluster and an MLflow server on this machine, jobs submitted as users do.

The slow tests share one cluster (``dnacnn cluster up --nodes 2 --cpus-per-node 1 --mlflow``)
and run in file order: train, load from the registry, score, score through a lost node,
train through a lost node, ``cluster down``. Every wait is bounded; the fixture stops the
cluster whatever happens, and the last test checks that nothing it started is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

from conftest import FIXTURE_FASTA, FIXTURE_VCF, REPO

BIN = Path(sys.executable).parent
DNACNN, RAY = str(BIN / "dnacnn"), str(BIN / "ray")
SHARD_VARIANTS = 4  # the fixture VCF's 194 records make 49 shards
MODEL = "multiscale-smoke"  # jobs/configs/smoke.yaml's registered model


def _base_env() -> dict[str, str]:
    """This test's environment without any Ray or MLflow address of the caller's."""
    drop = {"RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "MLFLOW_TRACKING_URI", "RAY_TMPDIR"}
    return {k: v for k, v in os.environ.items() if k not in drop} | {"DNACNN_PROGRESS": "0"}


def _cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DNACNN, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or _base_env())


# ---- fast: what the command says when it cannot work ---------------------------------------


def test_down_without_a_cluster_says_so_in_one_line(tmp_path):
    proc = _cli("cluster", "down", "--state-dir", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: no cluster recorded in {tmp_path} (cluster.json is absent); "
        "start one with `dnacnn cluster up`"]
    # refused before anything stops (it stopped a worker, then said "timeout must be positive")
    proc = _cli("cluster", "down", "--timeout", "-1", "--state-dir", str(tmp_path))
    assert proc.returncode == 2 and "Invalid value for '--timeout'" in proc.stderr, proc.stderr


@pytest.mark.parametrize("text", ["garbage", '{"state_dir": "/x"}', "[]"], ids=["not-json", "no-processes", "a-list"])
def test_a_damaged_cluster_record_is_named_in_one_line(tmp_path, text):
    # Was "error: Expecting value: line 1 column 1 (char 0)", "error: 'processes'", or a TypeError traceback.
    (tmp_path / "cluster.json").write_text(text)
    for command in ("down", "env", "add-node", "up"):
        proc = _cli("cluster", command, "--state-dir", str(tmp_path))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, (command, proc.stderr[-2000:])
        assert lines[0].startswith(f"error: {tmp_path / 'cluster.json'} is not a cluster record of "
                                   "`dnacnn cluster up` ("), lines[0]


def test_up_refuses_bad_sizes_and_long_folders(tmp_path):
    proc = _cli("cluster", "up", "--nodes", "0", "--state-dir", str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: --nodes and --cpus-per-node must be at least 1 (got 0, 1)"]
    # Were refused by Ray after the head had started: its traceback's tail, or "not ready after -1 s".
    for option, value, said in (("--object-store-mb", "0", "--object-store-mb must be at least 75 (Ray's "
                                 "minimum), got 0"), ("--timeout", "-1", "--timeout must be > 0 seconds, got -1.0")):
        proc = _cli("cluster", "up", option, value, "--state-dir", str(tmp_path))
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"error: {said}"], proc.stderr
        assert not (tmp_path / "cluster.json").exists()
    deep = tmp_path / ("x" * 60)
    proc = _cli("cluster", "up", "--state-dir", str(deep))
    assert proc.returncode == 2 and "too long for Ray's socket paths" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not deep.exists()


# ---- slow: one two-node cluster with a tracking server --------------------------------------


@dataclass
class Cluster:
    state: Path  # --state-dir
    root: Path  # the test's shared folder: dataset, Train storage, scoring outputs
    env: dict[str, str]  # the shell's environment after eval "$(dnacnn cluster up ...)"

    @property
    def record(self) -> dict:
        return json.loads((self.state / "cluster.json").read_text())


@pytest.fixture(scope="module")
def cluster():
    # Not pytest's tmp_path: another pytest session of this user may prune those folders
    # while this one runs. Short: Ray's socket paths live under it.
    root = Path(tempfile.mkdtemp(prefix="dnacnn-cl-"))
    state = root / "c"
    try:
        # Generous start-up limits: the shared 2-core machine may be loaded.
        up = _cli("cluster", "up", "--nodes", "2", "--cpus-per-node", "1", "--mlflow",
                  "--timeout", "400", "--state-dir", str(state), timeout=1500)
        assert up.returncode == 0 and up.stdout.startswith("export "), up.stderr[-3000:]
        # What a user's shell does with it: eval "$(dnacnn cluster up ...)".
        shell = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "_", up.stdout],
                               capture_output=True, text=True, timeout=60, env=_base_env())
        env = dict(item.split("=", 1) for item in shell.stdout.split("\0") if "=" in item)
        assert {"RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "MLFLOW_TRACKING_URI"} <= env.keys()
        simulated = _cli("simulate", "tutorial", "--out", str(root / "data"), "--n-samples", "2000",
                         "--length", "100", timeout=300)
        assert simulated.returncode == 0, simulated.stderr[-2000:]
        yield Cluster(state=state, root=root, env=env)
    finally:
        if (state / "cluster.json").exists():
            _cli("cluster", "down", "--state-dir", str(state), timeout=180)
        shutil.rmtree(root, ignore_errors=True)


def submit(cluster: Cluster, *entrypoint: str, wait: bool = True, timeout: float = 900,
           runtime_env: dict | None = None) -> str:
    """``ray job submit --working-dir . -- python ...`` from the repository root (with
    ``--runtime-env-json`` when ``runtime_env`` is given); with ``wait``, follow its logs to
    the end and fail with them unless it succeeded."""
    job_id = f"dnacnn-test-{uuid.uuid4().hex[:8]}"
    extra = ["--runtime-env-json", json.dumps(runtime_env)] if runtime_env else []
    proc = subprocess.run(
        [RAY, "job", "submit", "--no-wait", "--submission-id", job_id, "--working-dir", ".",
         *extra, "--", "python", *entrypoint],
        cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if wait:
        wait_for_job(cluster, job_id, timeout)
    return job_id


def wait_for_job(cluster: Cluster, job_id: str, timeout: float = 900,
                 status: str = "SUCCEEDED") -> str:
    """Follow the job's logs until it ends; assert that it ended in ``status``; return the logs."""
    logs = subprocess.run([RAY, "job", "logs", "--follow", job_id], env=cluster.env,
                          capture_output=True, text=True, timeout=timeout).stdout
    assert job_status(cluster, job_id) == status, logs[-5000:]
    return logs


def job_status(cluster: Cluster, job_id: str, action: str = "") -> str:
    """The job's status from the job server's REST API (with the cluster's token); ``action``
    "stop" asks it to stop the job first, as ``ray job stop`` does (without the CLI's start-up)."""
    token = Path(cluster.env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    url = f"{cluster.env['RAY_API_SERVER_ADDRESS']}/api/jobs/{job_id}"
    if action:
        stop = urllib.request.Request(f"{url}/{action}", method="POST",
                                      headers={"Authorization": f"Bearer {token}"})
        urllib.request.urlopen(stop, timeout=60).close()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["status"]


def ray_list_actors(cluster: Cluster, class_name: str) -> list[dict]:
    proc = subprocess.run([RAY, "list", "actors", "--filter", f"class_name={class_name}",
                           "--detail", "--format", "json", "--limit", "1000"],
                          env=cluster.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def mlflow_client(cluster: Cluster):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=cluster.env["MLFLOW_TRACKING_URI"])


def train_args(cluster: Cluster, *overrides: str) -> list[str]:
    return ["jobs/train.py", "--config", "jobs/configs/smoke.yaml",
            "--set", f"data.dataset={cluster.root / 'data'}",
            "--set", f"train.storage_path={cluster.root / 'runs'}", *overrides]


def score_args(cluster: Cluster, out: Path) -> list[str]:
    return ["jobs/score_variants.py", "--model", f"models:/{MODEL}@champion",
            "--genome", str(FIXTURE_FASTA), "--vcf", str(FIXTURE_VCF), "--out", str(out),
            "--shard-variants", str(SHARD_VARIANTS), "--batch-size", "16", "--num-actors", "2"]


def node_processes(cluster: Cluster, role: str) -> list[psutil.Process]:
    """The processes of one node the cluster recorded (its `ray start` and descendants)."""
    (proc,) = [p for p in cluster.record["processes"] if p["role"] == role]
    root = psutil.Process(proc["pid"])
    return [root, *root.children(recursive=True)]


def kill_raylet(cluster: Cluster, role: str) -> None:
    (raylet,) = [p for p in node_processes(cluster, role) if p.name() == "raylet"]
    raylet.kill()


def add_node(cluster: Cluster) -> str:
    before = {p["role"] for p in cluster.record["processes"]}
    proc = _cli("cluster", "add-node", "--state-dir", str(cluster.state), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (role,) = {p["role"] for p in cluster.record["processes"]} - before
    return role


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def sorted_rows(out: Path, sub: str) -> list[tuple]:
    table = pq.read_table(out / sub)
    rows = table.to_pylist()
    return sorted((r["chrom"], r["pos"], r["ref"], r["alt"], json.dumps(r, default=str)) for r in rows)


@pytest.mark.slow
def test_training_job_runs_ddp_across_nodes_and_logs_to_the_server(cluster):
    # Two nodes of one CPU each: the two DDP workers cannot share one.
    logs = wait_for_job(cluster, submit(cluster, *train_args(cluster), wait=False))
    # the job's own lines: not MLflow's "Waiting up to 300 seconds ..." nor its "🏃 View run ... at"
    assert "View run" not in logs and "Waiting up to" not in logs, logs[-3000:]
    workers = ray_list_actors(cluster, "RayTrainWorker")
    assert len(workers) == 2, workers
    assert len({w["node_id"] for w in workers}) == 2, [w["node_id"] for w in workers]

    client = mlflow_client(cluster)
    version = client.get_model_version_by_alias(MODEL, "champion")
    run = client.get_run(version.run_id)
    assert {"train_loss", "val_loss"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2  # one per epoch
    # Artifacts went up through the server into its own store: the job only had the URL.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "test_report.json" in logged, logged
    stored = {p.name for p in (cluster.state / "mlflow-artifacts").rglob("*") if p.is_file()}
    assert {"test_report.json", "model.safetensors"} <= stored


FRESH_PROCESS = """
import json, sys
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.DataFrame({"sequence": json.loads(sys.argv[2])}))
print(json.dumps({"columns": list(out.columns), "values": out.values.tolist()}))
"""


@pytest.mark.slow
def test_registry_model_loads_in_another_process_with_only_the_tracking_uri(cluster):
    from dnacnn.data.dataset_io import column_to_numpy, split_dir
    from dnacnn.models import load, predict_sequences
    from dnacnn.sequence import decode

    table = pq.read_table(split_dir(cluster.root / "data", "test")).slice(0, 6)
    sequences = list(decode(column_to_numpy(table.column("onehot"))))
    env = {"MLFLOW_TRACKING_URI": cluster.env["MLFLOW_TRACKING_URI"], "PATH": os.environ["PATH"],
           "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS, f"models:/{MODEL}@champion",
                           json.dumps(sequences)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # The same numbers as the checkpoint the job wrote on the shared storage.
    client = mlflow_client(cluster)
    run = client.get_run(client.get_model_version_by_alias(MODEL, "champion").run_id)
    local = load(run.data.tags["dnacnn.checkpoint"])
    expected = predict_sequences(local.model, sequences, local.seq_len, local.task_type)
    assert result["columns"] == list(local.tasks)
    np.testing.assert_allclose(np.array(result["values"]), expected, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_scoring_job_reads_the_registry_and_accounts_for_every_allele(cluster):
    from dnacnn.genome import Genome
    from dnacnn.variants import read_alleles

    out = cluster.root / "scores"
    submit(cluster, *score_args(cluster, out))
    summary = json.loads((out / "summary.json").read_text())
    alleles = list(read_alleles(FIXTURE_VCF, Genome(FIXTURE_FASTA)))
    assert summary["alleles_read"] == len(alleles)
    assert summary["alleles_read"] == summary["alleles_scored"] + summary["alleles_rejected"]
    assert pq.read_table(out / "scores").num_rows == summary["alleles_scored"] > 0
    assert pq.read_table(out / "rejects").num_rows == summary["alleles_rejected"]


STATE_API_ON_EVERY_NODE = """
import sys

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@ray.remote(num_cpus=0)
class Asker:  # as Ray Train's PlacementGroupCleaner asks: an actor, no address given
    def nodes_seen(self):
        from ray.util.state import list_nodes
        return len(list_nodes())


if sys.argv[1] == "dnacnn":  # as the training job joins: dnacnn.ray_cluster.init_ray
    from dnacnn.ray_cluster import init_ray
    init_ray(dashboard=True)
else:
    ray.init()
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
askers = [Asker.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
          for n in nodes]
print("nodes seen from each node:", ray.get([a.nodes_seen.remote() for a in askers]))
"""

OTHER_RAY = """
import sys, ray
ray.init(address="local", num_cpus=1, include_dashboard=False)
print("up", flush=True)
sys.stdin.read()  # until the test closes it
"""


@pytest.mark.slow
def test_every_node_reaches_the_clusters_state_api_while_another_ray_runs_here(cluster):
    """Ray Train's PlacementGroupCleaner asks the state API (no address given) from a node of
    the cluster. Was: with another Ray instance on the machine, "ConnectionError: Found
    multiple active Ray instances" and its traceback in every training job's logs. Fixed
    twice: the nodes of `dnacnn cluster up` know their state API (a job of plain
    ``ray.init()``), and a job joining through ``init_ray`` tells its workers where it is
    (on a cluster whose nodes do not, as a plain ``ray start`` one: the variable blanked)."""
    script = cluster.root / "state_api.py"
    script.write_text(STATE_API_ON_EVERY_NODE)
    other = subprocess.Popen([sys.executable, "-c", OTHER_RAY], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=_base_env())
    try:
        assert other.stdout.readline().strip() == "up"
        plain = submit(cluster, str(script), "ray", wait=False)
        joined = submit(cluster, str(script), "dnacnn", wait=False,
                        runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": ""}})
        for job_id in (plain, joined):
            logs = wait_for_job(cluster, job_id, timeout=300)
            assert "nodes seen from each node: [2, 2]" in logs, logs[-3000:]
    finally:
        other.stdin.close()
        other.wait(timeout=120)


def _error_lines(logs: str) -> list[str]:
    """The job's ``error:`` lines (a failed job's logs end with Ray's copy of them: once each)."""
    return sorted({line for line in logs.splitlines() if line.startswith("error:")})


@pytest.mark.slow
def test_paths_inside_the_jobs_copy_of_the_working_dir_are_refused_in_one_line(cluster):
    """A submitted job runs in a temporary copy of the working directory. Were: a relative
    train.storage_path or local MLflow store (checkpoints, run and model written into the
    copy and lost, the job SUCCEEDED), a relative --out ("no model.json in
    out/scores/_work/model": the actor on the other node has its own copy), a git-ignored
    dataset ("not a dnacnn dataset (no dataset.json); make one", though it is there)."""
    score = [a if a != str(cluster.root / "x") else "out/x" for a in score_args(cluster, cluster.root / "x")]
    ignored = Path("data") / f"ignored-{uuid.uuid4().hex[:8]}"  # there, but git-ignored: not uploaded
    (REPO / ignored).mkdir(parents=True)
    try:
        jobs = {
            "--out out/x is inside this Ray job's temporary copy": submit(cluster, *score, wait=False),
            "train.storage_path runs is inside": submit(
                cluster, *train_args(cluster, "--set", "train.storage_path=runs"), wait=False),
            "the tracking store sqlite:///": submit(
                cluster, *train_args(cluster), wait=False,
                runtime_env={"env_vars": {"MLFLOW_TRACKING_URI": ""}}),
            f"data.dataset {ignored} is not in this Ray job's copy": submit(
                cluster, *train_args(cluster, "--set", f"data.dataset={ignored}"), wait=False),
        }
    finally:
        (REPO / ignored).rmdir()
    for said, job_id in jobs.items():
        lines = _error_lines(wait_for_job(cluster, job_id, status="FAILED"))
        assert len(lines) == 1 and said in lines[0], lines
        assert "give an absolute path" in lines[0] or "set MLFLOW_TRACKING_URI" in lines[0], lines


@pytest.mark.slow
def test_a_scoring_job_reads_inputs_uploaded_with_it_and_resumes_in_another_upload(cluster):
    """--genome and --vcf relative: files of the uploaded working directory. Were: "its index
    ... is older than the file" (the unpacking's times) and a re-indexed copy of the VCF, and,
    submitted again from a changed working directory (another upload), "holds results of a
    job with other inputs (vcf, vcf_mtime_ns, genome differ)"."""
    out = cluster.root / "uploaded-inputs"
    fixtures = {str(FIXTURE_FASTA): str(FIXTURE_FASTA.relative_to(REPO)),
                str(FIXTURE_VCF): str(FIXTURE_VCF.relative_to(REPO))}
    args = [fixtures.get(a, a) for a in score_args(cluster, out)]
    logs = wait_for_job(cluster, submit(cluster, *args, wait=False))
    assert "older than the file" not in logs and "indexed copy" not in logs, logs[-3000:]
    for sub in ("scores", "rejects"):
        assert sorted_rows(out, sub) == sorted_rows(cluster.root / "scores", sub)
    marker = sorted((out / "_shards").glob("*.json"))[0]
    marker.unlink()  # one shard to do again
    logs = wait_for_job(cluster, submit(cluster, *args, wait=False,
                                        runtime_env={"excludes": ["README.md"]}))  # another upload
    assert "48 done before, 1 to score" in logs, logs[-3000:]
    assert marker.exists()


@pytest.mark.slow
def test_dnacnn_score_joins_the_cluster_with_a_relative_out(cluster):
    """``dnacnn score --address`` from a shell in another folder, ``--out`` relative. Was:
    "error: no model.json in rel/_work/model" (the fetched model's path was relative, and
    the joined cluster's actors run in their own working directory). The shell has the
    cluster's token (RAY_AUTH_TOKEN_PATH) but not RAY_AUTH_MODE=token: Ray printed a GCS
    warning every second for 20 s, then "Failed to connect"; with a token at hand dnacnn asks
    for the mode itself."""
    args = score_args(cluster, Path("rel-scores"))[1:]  # the job's options, without the script
    env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
    proc = subprocess.run([DNACNN, "score", *args, "--address", cluster.env["RAY_ADDRESS"]],
                          cwd=cluster.root, env=env, capture_output=True, text=True, timeout=600)
    assert "gcs_client" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    for sub in ("scores", "rejects"):  # the submitted job's rows, to the last digit
        assert sorted_rows(cluster.root / "rel-scores", sub) == sorted_rows(cluster.root / "scores", sub)


@pytest.mark.slow
def test_a_stopped_scoring_job_says_what_it_kept_and_resumes(cluster):
    """``ray job stop`` mid-scoring. Was: Ray's SIGTERM handler ended the job without a word
    (only Ray's own "*** SIGTERM received" lines); now the job says how many shards are done,
    leaves no scoring actor, and the same job submitted again scores only the rest."""
    out = cluster.root / "scores-stopped"
    args = [a if a != str(SHARD_VARIANTS) else "1" for a in score_args(cluster, out)]  # 194 shards
    job_id = submit(cluster, *args, wait=False)
    wait_until(lambda: any((out / "_shards").glob("*.json"))
               or job_status(cluster, job_id) not in ("PENDING", "RUNNING"), 600, "the first shard")
    job_status(cluster, job_id, action="stop")
    logs = wait_for_job(cluster, job_id, timeout=120, status="STOPPED")
    said = [line for line in logs.splitlines() if line.startswith("scoring interrupted: ")]
    assert said and f"shards are done in {out}; run the same command again" in said[0], logs[-3000:]
    done = int(said[0].split()[2])
    assert 0 < done < 194
    wait_until(lambda: not [a for a in ray_list_actors(cluster, "ShardWorker") if a["state"] == "ALIVE"],
               60, "the scoring actors to go")
    kept = len(list((out / "_shards").glob("*.json")))  # an actor may finish one more as it goes
    assert done <= kept < 194
    logs = wait_for_job(cluster, submit(cluster, *args, wait=False))
    assert f"194 shard(s) of {FIXTURE_VCF}: {kept} done before, {194 - kept} to score" in logs
    summary = json.loads((out / "summary.json").read_text())
    keys = [(r["chrom"], r["pos"], r["ref"], r["alt"]) for r in pq.read_table(out / "scores").to_pylist()]
    assert len(keys) == len(set(keys)) == summary["alleles_scored"] > 0  # none lost, none twice


@pytest.mark.slow
def test_scoring_survives_losing_a_worker_node(cluster):
    """The worker node's raylet dies mid-job: Ray retries its shards elsewhere and the
    rows equal the undisturbed run's, none lost, none twice."""
    add_node(cluster)  # three CPUs for two actors: room to restart the one that is lost
    out = cluster.root / "scores-killed"
    job_id = submit(cluster, *score_args(cluster, out), wait=False)
    shards = out / "_shards"
    wait_until(lambda: shards.is_dir() and any(shards.glob("*.json")), 600, "the first shard")

    def hosting() -> list[str]:
        return [p["role"] for p in cluster.record["processes"]
                if p["role"].startswith("worker") and _runs(cluster, p["role"], "ShardWorker")]

    # The pool's second actor may still be starting when the first shard is done.
    wait_until(lambda: hosting(), 300, "a scoring actor on a worker node")
    kill_raylet(cluster, hosting()[0])
    done_at_kill = len(list(shards.glob("*.json")))
    wait_for_job(cluster, job_id)
    summary = json.loads((out / "summary.json").read_text())
    assert done_at_kill < summary["shards"], "the job ended before the node was lost"
    undisturbed = cluster.root / "scores"
    for sub in ("scores", "rejects"):
        assert sorted_rows(out, sub) == sorted_rows(undisturbed, sub), sub


@pytest.mark.slow
def test_training_resumes_from_its_checkpoint_after_losing_a_node(cluster):
    from dnacnn.train.run_state import TrainState

    add_node(cluster)  # the replacement the restarted worker group lands on
    epochs = 6
    job_id = submit(cluster, *train_args(cluster, "--set", "train.run_name=lost-node",
                                         "--set", "train.max_failures=1",
                                         "--set", f"train.epochs={epochs}",
                                         "--set", "train.early_stopping_patience=20"), wait=False)
    run_dir = cluster.root / "runs" / "lost-node"
    # written once the controller has registered the first checkpoint
    wait_until(lambda: (run_dir / "checkpoint_manager_snapshot.json").exists(), 900,
               "the first checkpoint")
    hosting = [p["role"] for p in cluster.record["processes"]
               if p["role"].startswith("worker") and _runs(cluster, p["role"], "RayTrainWorker")]
    assert hosting, "no worker node holds a training worker"
    kill_raylet(cluster, hosting[0])
    wait_for_job(cluster, job_id)
    # the last epoch's checkpoint and the final one (best weights, test scored) share an epoch
    states = [TrainState.load(p) for p in run_dir.glob("checkpoint_20*")]
    state = max(states, key=lambda s: (s.epoch, s.finished))
    assert state.finished and [r["epoch"] for r in state.history] == list(range(1, epochs + 1))
    assert len(state.sessions) == 2 and state.sessions[0]["start_epoch"] == 1
    assert 1 < state.sessions[1]["start_epoch"] <= epochs  # resumed, not started over
    run = mlflow_client(cluster).search_runs(
        [mlflow_client(cluster).get_experiment_by_name("dnacnn-smoke").experiment_id],
        filter_string="tags.`dnacnn.ray_run` = 'lost-node'")[0]
    assert int(run.data.tags["dnacnn.resumed_from_epoch"]) >= 1


def _runs(cluster: Cluster, role: str, text: str) -> bool:
    """Whether a process of node ``role`` has ``text`` in its command line."""
    try:
        return any(text in " ".join(p.cmdline()) for p in node_processes(cluster, role))
    except psutil.Error:  # the node (or one of its processes) is gone
        return False


@pytest.mark.slow
def test_cluster_down_leaves_no_process_behind(cluster):
    again = _cli("cluster", "up", "--state-dir", str(cluster.state))
    assert again.returncode == 1 and "is running" in again.stderr  # one cluster per folder
    recorded = cluster.record["processes"]
    proc = _cli("cluster", "down", "--state-dir", str(cluster.state), timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not any(psutil.pid_exists(p["pid"]) and psutil.Process(p["pid"]).create_time()
                   == p["create_time"] for p in recorded)
    marker = str(cluster.state)
    left = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []) or \
                    p.environ().get("RAY_TMPDIR", "").startswith(marker):
                left.append((p.pid, p.info["cmdline"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    assert left == []
