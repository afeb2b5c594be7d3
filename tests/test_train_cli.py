"""``dnacnn train`` with bad input, run as a user runs it: exit 2, one line on stderr
naming the key or option and the reason, no traceback, no Ray run, nothing trained."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from dnacnn.data.dataset_io import DatasetDescription, make_table, split_dir


def write_dataset(directory: Path, seq_len: int, rows: int = 40, empty: tuple[str, ...] = ()) -> Path:
    """A small binary dataset of random windows (labels random): enough to validate a job;
    the ``empty`` splits have no row (as when a held-out chromosome is not in the input)."""
    rng = np.random.default_rng(0)
    counts = {s: 0 if s in empty else rows for s in ("train", "valid", "test")}
    for split, n in counts.items():
        onehot = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, seq_len))].reshape(n, seq_len, 4)
        labels = rng.integers(0, 2, (n, 1)).astype(np.float32)
        out = split_dir(directory, split)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(make_table(onehot, labels), out / "part-0.parquet")
    DatasetDescription(name="toy", task_type="binary", tasks=["bound"], seq_len=seq_len, rows=counts,
                       splits={"method": "chrom", "valid_chroms": ["chr8"], "test_chroms": ["chr9"]}
                       ).save(directory)
    return directory


def write_job(tmp_path: Path, seq_len: int, model: dict, empty: tuple[str, ...] = ()) -> Path:
    dataset = write_dataset(tmp_path / f"dataset{seq_len}", seq_len, empty=empty)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({
        "data": {"dataset": str(dataset)},
        "model": model,
        "train": {"epochs": 1, "num_workers": 1, "run_name": "bad",
                  "storage_path": str(tmp_path / "runs")},
        "mlflow": {"experiment": "bad-input", "registered_model": "toy-model"},
    }))
    return path


def dnacnn(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from dnacnn.cli import app; app()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "RAY_ADDRESS": ""}


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "WorkerGroupError" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


MULTISCALE = {"name": "multiscale", "params": {"widths": [5], "filters": 4, "dense": [8],
                                               "dense_dropouts": [0.0]}}


def test_a_model_param_of_the_wrong_type_is_named(tmp_path, env):
    job = write_job(tmp_path, 60, MULTISCALE)
    proc = dnacnn("train", "--config", str(job), "--set", 'model.params.filters="8"',
                  cwd=tmp_path, env=env)
    line = one_error_line(proc)
    assert "model.params.filters must be an integer, got '8'" in line
    assert not (tmp_path / "runs").exists()  # no run started, no identity written


def test_a_window_too_short_for_the_model_is_refused_before_the_workers(tmp_path, env):
    job = write_job(tmp_path, 100, {"name": "basset"})
    line = one_error_line(dnacnn("train", "--config", str(job), cwd=tmp_path, env=env))
    assert "model 'basset'" in line and "seq_len=100 is too short" in line
    assert "dataset 'toy'" in line  # where seq_len came from
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("split", ["valid", "test"])
def test_a_dataset_with_an_empty_split_is_refused_before_ray(tmp_path, env, split):
    # e.g. `dnacnn data intervals --test-chroms chr9` on a label table with no chr9 record
    job = write_job(tmp_path, 100, MULTISCALE, empty=(split,))
    line = one_error_line(dnacnn("train", "--config", str(job), cwd=tmp_path, env=env))
    held_out = {"valid": "chr8", "test": "chr9"}[split]
    assert f"the {split} split has no rows (none of the input's records is on its chromosomes {held_out})" in line
    assert str(tmp_path) in line
    assert not (tmp_path / "runs").exists()  # refused before Ray Train made the run folder


def test_a_dataset_whose_files_do_not_fit_its_description_is_refused_before_ray(tmp_path, env):
    """Labels of 2 (a dataset written by another tool, or edited) trained without an error and
    registered a champion: the losses read a label as a probability. Each file's labels, and
    its cells' shapes, are checked against dataset.json on the driver."""
    from dnacnn.data.dataset_io import labels_column
    from dnacnn.data.split_check import check_split_files

    job = write_job(tmp_path, 100, MULTISCALE)
    dataset = tmp_path / "dataset100"
    description = DatasetDescription.load(dataset)
    check_split_files(dataset, description)  # the dataset as written passes
    valid = split_dir(dataset, "valid") / "part-0.parquet"
    table = pq.read_table(valid)
    labels = table.column("labels").combine_chunks().to_numpy_ndarray().copy()
    labels[7, 0] = 2.0
    pq.write_table(table.set_column(table.schema.get_field_index("labels"), "labels", labels_column(labels)), valid)
    line = one_error_line(dnacnn("train", "--config", str(job), cwd=tmp_path, env=env))
    assert f"{valid}: row 7 has the label 2 for task 'bound', which is outside 0..1" in line
    assert not (tmp_path / "runs").exists()

    for change, said in ((np.nan, "which is not a number"), (-0.5, "which is outside 0..1")):
        labels[7, 0] = change
        pq.write_table(table.set_column(table.schema.get_field_index("labels"), "labels",
                                        labels_column(labels)), valid)
        with pytest.raises(ValueError, match=f"row 7 has the label {change:g} for task 'bound', {said}"):
            check_split_files(dataset, description, batch_rows=3)  # row 7 in the file, in its third batch
    description.tasks, description.task_type = ["a", "b"], "multiclass"
    with pytest.raises(ValueError, match=r"'labels' cells have shape \(1,\), dataset.json says \(2,\)"):
        check_split_files(dataset, description)
    two = split_dir(dataset, "train") / "part-0.parquet"
    pq.write_table(make_table(np.zeros((2, 100, 4), np.uint8), np.array([[1, 0], [0.5, 0.4]], np.float32)), two)
    for split in ("valid", "test"):
        (split_dir(dataset, split) / "part-0.parquet").unlink()
    with pytest.raises(ValueError, match=f"{two}: row 1's labels sum to 0.9; a multiclass row"):
        check_split_files(dataset, description)
    import pyarrow as pa

    pq.write_table(pa.table({"onehot": make_table(np.zeros((1, 100, 4), np.uint8)).column("onehot"),
                             "labels": pa.array([[1.0, 0.0]], pa.list_(pa.float32()))}), two)
    with pytest.raises(ValueError, match=f"{two}: its 'labels' column is of type list<.*: float>, not arrow"):
        check_split_files(dataset, description)
    two.write_bytes(two.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"{two} cannot be read as Parquet"):
        check_split_files(dataset, description)


def test_row_counts_are_checked_and_a_task_of_one_label_trains_saying_so(tmp_path, env):
    """dataset.json's rows were trusted: 10 train rows said, 40 held, trained at "1 steps an
    epoch" with the LR schedule over after it; a task of one label in every train and valid row
    trained in silence and printed a bare NaN (no JSON parser's) for its AUROC."""
    from dnacnn.data.split_check import check_split_files

    job = write_job(tmp_path, 100, MULTISCALE)
    dataset = tmp_path / "dataset100"
    description = DatasetDescription.load(dataset)
    description.rows["train"] = 10
    with pytest.raises(ValueError, match=f"^{split_dir(dataset, 'train')}: its Parquet files hold 40 rows, "
                                         f"{dataset / 'dataset.json'} says 10; "):
        check_split_files(dataset, description)
    description.rows["train"] = 40
    notes = split_dir(dataset, "valid") / "notes.txt"  # was Ray Data's own error, once Ray had started
    notes.write_text("x")
    with pytest.raises(ValueError, match=f"^{notes} is not a Parquet file of the dataset"):
        check_split_files(dataset, description)
    notes.unlink()
    said = json.loads((dataset / "dataset.json").read_text())
    (dataset / "dataset.json").write_text(json.dumps({**said, "tasks": ["a", "b", "c"]}))
    with pytest.raises(ValueError, match=f"^{dataset / 'dataset.json'}: a binary dataset has exactly one task, not 3"):
        DatasetDescription.load(dataset)  # was the rule alone, naming no file
    (dataset / "dataset.json").write_text(json.dumps(said))
    for split in ("train", "valid"):
        pq.write_table(make_table(np.eye(4, dtype=np.uint8)[np.zeros((40, 100), int)], np.zeros((40, 1), np.float32)),
                       split_dir(dataset, split) / "part-0.parquet")
    proc = dnacnn("train", "--config", str(job), cwd=tmp_path, env={**env, "DNACNN_PROGRESS": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for split in ("train", "valid"):
        assert f"task 'bound' has the one label 0 in every {split} row" in proc.stderr, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))["metrics"]
    assert metrics["best_val_auroc"] is None and metrics["test_auroc"] is not None


def test_a_bad_override_is_blamed_on_the_option_not_the_file(tmp_path, env):
    job = write_job(tmp_path, 60, MULTISCALE)
    line = one_error_line(dnacnn("train", "--config", str(job), "--set", "train.epochs=abc",
                                 cwd=tmp_path, env=env))
    assert line == "error: --set train.epochs=abc: train.epochs must be an integer, got 'abc'"
    # The file is blamed for its own mistakes, even with overrides given.
    job.write_text(job.read_text().replace("epochs: 1", "epochs: ten"))
    line = one_error_line(dnacnn("train", "--config", str(job), "--set", "train.lr=0.1",
                                 cwd=tmp_path, env=env))
    assert line == f"error: {job}: train.epochs must be an integer, got 'ten'"


def test_a_model_of_another_lineage_is_refused_before_training(tmp_path, env, monkeypatch):
    """The registered name holds a 3-task multitask model on 40 bp windows; this job
    trains a binary model on 60 bp windows: refused before Ray starts, and nothing
    is logged or registered."""
    from mlflow.tracking import MlflowClient

    from test_registry import log_run, make_checkpoint

    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
    log_run(make_checkpoint(tmp_path / "other"), 0.5, name="toy-model")
    job = write_job(tmp_path, 60, MULTISCALE)
    line = one_error_line(dnacnn("train", "--config", str(job), cwd=tmp_path, env=env))
    assert ("registered model 'toy-model' holds 3 multitask tasks (cell_a, cell_b, cell_c) on "
            "40 bp windows; this model predicts 1 binary task (bound) on 60 bp windows "
            "(different task type, tasks, window length)") in line
    assert "mlflow.new_lineage: true" in line
    assert not (tmp_path / "runs").exists()
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert len(client.search_model_versions("name = 'toy-model'")) == 1


def test_the_ray_job_entrypoint_gives_the_same_one_line(tmp_path, env):
    """``python jobs/train.py`` (what ``ray job submit`` runs) with a bad override."""
    job = write_job(tmp_path, 60, MULTISCALE)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(repo / "jobs" / "train.py"), "--config", str(job),
                           "--set", "train.num_workers=0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    line = one_error_line(proc)
    assert line == ("error: --set train.num_workers=0: in section 'train': "
                    "num_workers must be >= 1, got 0")
    # --epochs 0 was dropped without a word (the config's epochs trained)
    proc = subprocess.run([sys.executable, str(repo / "jobs" / "train.py"), "--config", str(job),
                           "--epochs", "0"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert one_error_line(proc) == ("error: --set train.epochs=0: in section 'train': "
                                    "epochs must be >= 1, got 0")


def test_a_run_another_job_is_training_now_is_refused_in_one_line(tmp_path, env):
    """Two jobs of the same train.run_name at once. Was: both trained from the same checkpoint
    into one run folder, interleaving their checkpoints, and registered two models."""
    from dnacnn.folder_lock import exclusive

    job = write_job(tmp_path, 60, MULTISCALE)
    run = yaml.safe_load(job.read_text())["train"]
    run_dir = tmp_path / run.get("storage_path", "runs") / run["run_name"]
    with exclusive(run_dir, "the first job's run", "wait"):  # held as a running job holds it
        proc = dnacnn("train", "--config", str(job), cwd=tmp_path, env=env)
    line = one_error_line(proc)
    assert line.startswith(f"error: run {run['run_name']} in {run_dir.parent} is in use by process "
                           f"{os.getpid()} on host "), line
    assert line.endswith("; wait for it to end, or give another train.run_name (or train.storage_path)")
    assert [p.name for p in run_dir.iterdir()] == [".dnacnn.lock"]  # the refused job wrote nothing there
    # (once the holder is gone, the run trains: every other training test takes the same lock)


def test_more_workers_than_the_local_cluster_has_cpus_fail_at_once(tmp_path, env):
    """A private local cluster cannot grow: Ray Train would wait for the workers for good."""
    job = write_job(tmp_path, 60, MULTISCALE)
    proc = dnacnn("train", "--config", str(job), "--set", "train.num_workers=64", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the local Ray cluster") and "train.num_workers is 64" in last, last


def test_an_address_nobody_answers_at_is_refused_before_anything_is_made(tmp_path, env):
    """The refusal came after the registry's store (mlflow.db) and the run's folder (its lock,
    its pending identity) had been made."""
    job = write_job(tmp_path, 60, MULTISCALE)
    line = one_error_line(dnacnn("train", "--config", str(job), "--address", "127.0.0.1:1", cwd=tmp_path, env=env))
    assert line.startswith("error: no Ray cluster answers at --address 127.0.0.1:1"), line
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs").exists()


def test_ctrl_c_says_where_the_run_is_and_how_to_resume(tmp_path, env):
    """SIGINT during training: Ray Train aborts the run and ends with sys.exit (the command
    used to exit 1, or 0, with nothing said); now one line says where the checkpoints are and
    how to resume, and the exit status is 130."""
    job = write_job(tmp_path, 100, MULTISCALE)
    config = yaml.safe_load(job.read_text())
    config["train"].update(epochs=500, early_stopping_patience=500, run_name="stopped")
    job.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([sys.executable, "-c", "from dnacnn.cli import app; app()", "train", "--config", str(job)],
                            cwd=tmp_path, env={**env, "DNACNN_PROGRESS": "0"}, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # the first epoch done: a checkpoint exists
            if "epoch 1/500 done" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == 130, rest[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in rest.splitlines() if line.strip() and "RayTrainWorker" not in line]
    assert lines[-1] == (f"training interrupted: run stopped keeps its checkpoints in {tmp_path / 'runs'}/stopped; "
                         "run the same command again to resume it"), rest[-2000:]
    # a checkpoint folder is one with train_state.json (Ray Train also keeps its own
    # checkpoint_manager_snapshot.json beside them)
    kept = sorted(state.parent for state in (tmp_path / "runs" / "stopped").glob("checkpoint_*/train_state.json"))
    assert "Traceback" not in rest and kept

    # its latest checkpoint damaged: one line before Ray starts (was a worker's tracebacks, then
    # Ray Train's WorkerGroupError from the driver)
    latest = kept[-1]
    for name, damage, said in (("last.safetensors", lambda b: b[: len(b) // 2], "is not a whole safetensors file"),
                               ("optimizer.pt", lambda b: b"\x80\x04garbage", "cannot be read back"),
                               ("train_state.json", lambda b: b"{\n", "is not JSON")):
        whole = (latest / name).read_bytes()
        (latest / name).write_bytes(damage(whole))
        line = one_error_line(dnacnn("train", "--config", str(job), cwd=tmp_path, env=env))
        assert line.startswith(f"error: run stopped cannot be resumed: {latest / name} {said}"), line
        assert line.endswith(f"delete the run's folder {tmp_path / 'runs' / 'stopped'} to train it again from "
                             "the start, or give another train.run_name"), line
        (latest / name).write_bytes(whole)


def test_ctrl_c_before_a_command_says_more_is_one_line_and_exit_130(capsys):
    """Ctrl-C while `dnacnn train` started its local Ray cluster printed a blank line (Click's)
    and exited 130 without a word."""
    import typer

    from dnacnn.cli.errors import user_errors

    with pytest.raises(typer.Exit) as stopped:
        with user_errors():
            raise KeyboardInterrupt
    assert stopped.value.exit_code == 130 and capsys.readouterr().err == "interrupted (Ctrl-C)\n"


def test_a_tracking_server_that_does_not_answer_is_refused_before_training_even_unregistered(tmp_path, env):
    """The run is logged with mlflow.register false too: a dead server was found only after training."""
    job = write_job(tmp_path, 100, MULTISCALE)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed once the with-block ends: nothing listens there
    line = one_error_line(dnacnn("train", "--config", str(job), "--set", "mlflow.register=false", cwd=tmp_path,
                                 env={**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}))
    assert f"http://127.0.0.1:{port}" in line
    assert not (tmp_path / "runs").exists()


def test_a_storage_path_that_cannot_be_written_is_named_before_ray(tmp_path, env):
    job = write_job(tmp_path, 100, MULTISCALE)
    taken = tmp_path / "a_file"
    taken.write_text("x")
    line = one_error_line(dnacnn("train", "--config", str(job), "--set", f"train.storage_path={taken / 'runs'}",
                                 cwd=tmp_path, env=env))
    assert line.startswith(f"error: train.storage_path {taken / 'runs'} cannot be created: {taken} is a file"), line
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "bad").write_text("x")  # the run's folder: was "[Errno 17] File exists"
    line = one_error_line(dnacnn("train", "--config", str(job), cwd=tmp_path, env=env))
    assert line == (f"error: run bad: {tmp_path / 'runs' / 'bad'} is a file, not a run folder; "
                    "give another train.run_name (or train.storage_path)"), line
