"""MLflow registry: tracking setup, the alias rule, fetching checkpoints back, the pyfunc model."""

from __future__ import annotations

import json
import re
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO
from dnacnn import registry
from dnacnn.config import MlflowConfig
from dnacnn.models import build, load, save
from dnacnn.sequence import encode_batch

L = 40
TASKS = ["cell_a", "cell_b", "cell_c"]


def make_checkpoint(directory: Path, seed: int = 0, task_type: str = "multitask") -> Path:
    torch.manual_seed(seed)
    model = build("simple", {"seq_len": L, "n_tasks": len(TASKS), "filters": 4, "width": 5,
                             "hidden_units": 8})
    save(model, directory, TASKS, task_type=task_type)
    return directory


def sequences(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), L)) for _ in range(n)]


def reference_probs(checkpoint: Path, seqs: list[str], task_type: str = "multitask") -> np.ndarray:
    loaded = load(checkpoint)
    x = torch.as_tensor(encode_batch(seqs, L)).transpose(1, 2).float()
    with torch.no_grad():
        logits = loaded.model(x)
    out = torch.softmax(logits, 1) if task_type == "multiclass" else torch.sigmoid(logits)
    return out.double().numpy()


def log_run(checkpoint: Path, best_val_loss: float, name: str = "simple-toy", epochs: int = 2, **kwargs):
    """Log and register the checkpoint as a training run (its lineage read from model.json)
    with ``epochs`` epochs of history, the last at ``best_val_loss``."""
    cfg = MlflowConfig(experiment="test", registered_model=name, **kwargs)
    loaded = load(checkpoint)
    return registry.log_training_run(registry.TrainingRun(
        config={"model": {"name": "simple"}, "train": {"lr": 0.01}},
        checkpoint_dir=checkpoint, model_name="simple", dataset_name="toy",
        tasks=loaded.tasks, task_type=loaded.task_type, seq_len=loaded.seq_len,
        history=[{"epoch": e, "val_loss": best_val_loss + 0.1 * (epochs - e)} for e in range(1, epochs + 1)],
        final_metrics={"best_val_loss": best_val_loss, "test_auroc": 0.5},
        example=sequences(2),
    ), cfg)


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return make_checkpoint(tmp_path / "ckpt")


def test_tracking_uri_default_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = registry.default_tracking_uri(MlflowConfig(data_dir=str(tmp_path / "d")))
    assert uri == f"sqlite:///{tmp_path / 'd' / 'mlflow.db'}"
    assert registry.artifact_root(uri) == (tmp_path / "d" / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/x.db")
    assert registry.default_tracking_uri(MlflowConfig(tracking_uri="http://x")) == "sqlite:////elsewhere/x.db"


def test_alias_rule_champion_only_when_better(mlflow_uri, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    ckpt = make_checkpoint(tmp_path / "c1")
    first = log_run(ckpt, 0.50)
    assert (first.version, first.alias) == ("1", "champion")
    worse = log_run(make_checkpoint(tmp_path / "c2", seed=1), 0.60)
    assert (worse.version, worse.alias) == ("2", "challenger")
    better = log_run(make_checkpoint(tmp_path / "c3", seed=2), 0.40)
    assert (better.version, better.alias) == ("3", "champion")
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("simple-toy", "champion").version) == "3"
    assert str(client.get_model_version_by_alias("simple-toy", "challenger").version) == "2"
    # The run holds config, per-epoch metrics, provenance.
    run = client.get_run(first.run_id)
    assert run.data.params["train.lr"] == "0.01"
    assert run.data.metrics["best_val_loss"] == 0.5
    assert [m.step for m in client.get_metric_history(first.run_id, "val_loss")] == [1, 2]
    assert run.data.tags["mlflow.source.git.commit"]
    artifacts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"config.json", "tasks.txt", "code.json"} <= artifacts
    assert mlflow.get_tracking_uri() == mlflow_uri


def test_the_same_weights_are_logged_and_registered_once(mlflow_uri, tmp_path):
    """Running a finished training job again gives its final checkpoint again: it is not
    logged as another run nor registered as another version; its alias is the current one."""
    from mlflow.tracking import MlflowClient

    first = log_run(make_checkpoint(tmp_path / "a"), 0.50)
    better = log_run(make_checkpoint(tmp_path / "b", seed=1), 0.40)
    again = log_run(make_checkpoint(tmp_path / "a2"), 0.50)  # the same weights, another folder
    assert (again.run_id, again.version, again.model_uri) == (first.run_id, "1", first.model_uri)
    assert (first.alias, better.alias, again.alias) == ("champion", "champion", None)  # champion moved on
    client = MlflowClient()
    assert len(client.search_model_versions("name = 'simple-toy'")) == 2
    assert len(client.search_runs([first.experiment_id])) == 2
    elsewhere = log_run(make_checkpoint(tmp_path / "a3"), 0.50, name="other-name")  # registered under another name
    assert elsewhere.run_id != first.run_id and elsewhere.version == "1"
    # a resumed run that trained on: early stopping may keep the same best weights, but its
    # history is longer: another run and version
    longer = log_run(make_checkpoint(tmp_path / "a4"), 0.50, epochs=3)
    assert longer.run_id != first.run_id and longer.version == "3"


def test_alias_rule_max_mode_and_nan(mlflow_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    ckpt = make_checkpoint(tmp_path / "c")
    runs = [log_run(ckpt, 0.5, name="m-max", register=False) for _ in range(3)]
    client = MlflowClient(mlflow_uri)
    client.create_registered_model("m-max")
    versions = [str(client.create_model_version("m-max", r.model_uri, run_id=r.run_id).version)
                for r in runs]
    assert registry.assign_alias("m-max", versions[0], 0.80, "val_auroc", "max") == "champion"
    assert registry.assign_alias("m-max", versions[1], 0.70, "val_auroc", "max") == "challenger"
    assert registry.assign_alias("m-max", versions[2], float("nan"), "val_auroc", "max") == "challenger"
    assert str(client.get_model_version_by_alias("m-max", "champion").version) == versions[0]


def test_fetch_model_dir_and_load_model(mlflow_uri, checkpoint, tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    logged = log_run(checkpoint, 0.5)
    seqs = sequences(5)
    expected = reference_probs(checkpoint, seqs)
    logging_err = capfd.readouterr().err
    assert "Downloading artifacts" not in logging_err  # logging the run: no progress bars
    # registering it: none of MLflow's own lines on the job's console
    assert "Successfully registered" not in logging_err and "Created version" not in logging_err
    from mlflow.tracking import MlflowClient
    version = MlflowClient().get_model_version_by_alias("simple-toy", "champion")
    assert version.run_id == logged.run_id  # the version links back to its training run
    uris = ["models:/simple-toy@champion", "models:/simple-toy/1",
            f"runs:/{logged.run_id}/model", logged.model_uri]
    for i, uri in enumerate(uris):
        folder = registry.fetch_model_dir(uri, dst=tmp_path / f"fetched{i}")
        assert folder == tmp_path / f"fetched{i}"
        assert {"model.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
        np.testing.assert_allclose(reference_probs(folder, seqs), expected, rtol=0, atol=1e-7)
    assert "Downloading artifacts" not in capfd.readouterr().err  # fetching: no progress bars
    default = registry.fetch_model_dir("models:/simple-toy@champion")
    assert (default / "model.json").is_file()
    for spec in ("models:/simple-toy@champion", checkpoint):
        loaded = registry.load_model(spec)
        assert loaded.tasks == TASKS and loaded.seq_len == L and not loaded.model.training
    with pytest.raises(ValueError, match="not an MLflow model URI"):
        registry.fetch_model_dir(str(checkpoint))
    with pytest.raises(ValueError, match="cannot fetch models:/nope@champion"):
        registry.fetch_model_dir("models:/nope@champion")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")  # was Errno 17, File exists
    with pytest.raises(ValueError, match=f"cannot fetch models:/simple-toy@champion into {a_file}: it is a file"):
        registry.fetch_model_dir("models:/simple-toy@champion", dst=a_file)
    with pytest.raises(ValueError, match="give a model URI .* or a checkpoint folder, got None"):  # was pathlib's TypeError
        registry.load_model(None)


def test_a_model_whose_artifacts_are_gone_is_refused_naming_it(mlflow_uri, checkpoint, tmp_path):
    """With the registered model's artifacts deleted from the store, MLflow downloaded nothing
    and load_model said 'no dnacnn checkpoint (model.json + model.safetensors) in
    /tmp/dnacnn-fetch-...; is this a model logged by dnacnn.registry?', naming a temporary
    folder and neither the model nor the store."""
    import shutil

    log_run(checkpoint, 0.5)
    shutil.rmtree(tmp_path / "mlartifacts")
    with pytest.raises(ValueError, match=f"cannot fetch models:/simple-toy@champion from {mlflow_uri}: "
                                         "its artifacts are missing"):
        registry.load_model("models:/simple-toy@champion")


def test_a_model_whose_stored_weights_are_truncated_is_refused_naming_the_uri(mlflow_uri, checkpoint, tmp_path):
    """The message named the temporary folder the model was fetched into (gone by then):
    '/tmp/dnacnn-load-320gtnmy/model.safetensors is not a whole safetensors file'."""
    log_run(checkpoint, 0.5)
    (stored,) = (tmp_path / "mlartifacts").rglob("model.safetensors")
    stored.write_bytes(stored.read_bytes()[:600])
    with pytest.raises(ValueError, match="^models:/simple-toy@champion/model.safetensors is not a whole safetensors"):
        registry.load_model("models:/simple-toy@champion")


def test_pyfunc_signature_and_predictions(mlflow_uri, checkpoint):
    # The same check in a fresh interpreter runs in tests/test_train.py (end to end).
    import mlflow

    log_run(checkpoint, 0.5)
    model = mlflow.pyfunc.load_model("models:/simple-toy@champion")
    signature = model.metadata.signature
    assert signature.inputs.input_names() == ["sequence"]
    assert model.metadata.metadata == {"seq_len": L, "task_type": "multitask"}  # what a caller must send
    assert signature.outputs.input_names() == TASKS
    seqs = sequences(7)
    out = model.predict(pd.DataFrame({"sequence": seqs}), params={"batch_size": 3})
    assert list(out.columns) == TASKS
    np.testing.assert_allclose(out.to_numpy(), reference_probs(checkpoint, seqs), rtol=0, atol=1e-7)


def test_the_pyfunc_loads_where_dnacnn_is_not_installed(mlflow_uri, checkpoint):
    """The model required 'dnacnn==0.1.0' (on no index) and imported dnacnn from the
    consumer's environment: "Failed to import code model ... No module named 'dnacnn'"."""
    import ast
    import subprocess
    import sys
    from importlib.metadata import packages_distributions, requires

    import mlflow
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    log_run(checkpoint, 0.5)
    code = ("import json, sys\n"
            "sys.path = [p for p in sys.path if not p.rstrip('/').endswith('/platform')]\n"
            "import mlflow, pandas as pd\n"
            "before = set(sys.modules)\n"
            "model = mlflow.pyfunc.load_model('models:/simple-toy@champion')\n"
            "out = model.predict(pd.DataFrame({'sequence': json.loads(sys.argv[1])}))\n"
            "print(json.dumps({'values': out.values.tolist(), 'from': sys.modules['dnacnn'].__file__,\n"
            "                  'modules': sorted({m.split('.')[0] for m in set(sys.modules) - before})}))")
    seqs = sequences(3)
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(seqs)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri}, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "/code/dnacnn/" in got["from"], got["from"]  # the copy the model carries
    np.testing.assert_allclose(got["values"], reference_probs(checkpoint, seqs), rtol=0, atol=1e-7)
    requirements = Path(mlflow.pyfunc.get_model_dependencies("models:/simple-toy@champion")).read_text()
    assert "torch==" in requirements and "dnacnn" not in requirements
    # every distribution that the carried code's own imports loaded (here, on load and predict)
    # comes with the requirements (numba, which the encoder imports, was missing: a consumer's
    # ModuleNotFoundError); what those libraries import of their own accord is theirs to require
    own = {node.module.split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
           for source in (REPO / "platform" / "dnacnn").rglob("*.py")
           for node in ast.walk(ast.parse(source.read_text()))
           if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "level", 0) == 0
           for alias in node.names}
    listed = {canonicalize_name(Requirement(line).name) for line in requirements.splitlines() if line.strip()}
    closure, todo = set(listed), list(listed)
    while todo:
        for text in requires(todo.pop()) or []:
            wanted = Requirement(text)
            if wanted.marker is None or wanted.marker.evaluate({"extra": ""}):
                if (name := canonicalize_name(wanted.name)) not in closure:
                    closure.add(name)
                    todo.append(name)
    owners = packages_distributions()
    imported = {canonicalize_name(d) for m in set(got["modules"]) & own - {"dnacnn"} for d in owners.get(m, [])}
    assert {"numba", "torch", "safetensors"} <= imported and imported <= closure, sorted(imported - closure)


def test_pyfunc_keeps_the_index_of_its_input(mlflow_uri, checkpoint):
    """A frame indexed 5, 7 gave rows indexed 0, 1: joining them to the input paired nothing
    (NaN rows, no error)."""
    import mlflow

    log_run(checkpoint, 0.5)
    model = mlflow.pyfunc.load_model("models:/simple-toy@champion")
    seqs = sequences(2)
    frame = pd.DataFrame({"sequence": seqs, "id": ["a", "b"]}, index=[5, 7])
    out = model.predict(frame)
    assert list(out.index) == [5, 7] and list(out.columns) == TASKS
    joined = frame.join(out)
    np.testing.assert_allclose(joined[TASKS].to_numpy(), reference_probs(checkpoint, seqs), atol=1e-7)
    assert len(model.predict(pd.DataFrame({"sequence": pd.Series([], dtype=str)}))) == 0


def test_pyfunc_refuses_missing_or_non_string_rows(mlflow_uri, checkpoint):
    """None / NaN / bytes rows were read as their text ('nan': 'sequence 1 has 3 bases');
    now the row and what it holds are named."""
    import mlflow

    log_run(checkpoint, 0.5)
    model = mlflow.pyfunc.load_model("models:/simple-toy@champion")
    seqs = sequences(2)
    for missing in (None, np.nan, seqs[1].encode()):
        with pytest.raises(ValueError, match="sequence 1 is .* not a string of bases"):
            model.predict(pd.DataFrame({"sequence": [seqs[0], missing]}, dtype=object))
    with pytest.raises(ValueError, match=r"sequence 0 has 'X' at base 4 \(1-based\)"):
        model.predict(pd.DataFrame({"sequence": ["ACGX" + seqs[0][4:]]}))
    # a dict of lists is one row to MLflow: said so (was "give every row a sequence (no missing values)")
    with pytest.raises(ValueError, match=r"sequence 0 is .* \(a (list|ndarray)\).*MLflow reads a dict of lists as one row"):
        model.predict({"sequence": seqs})
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got None"):  # was int()'s TypeError
        model.predict(pd.DataFrame({"sequence": seqs}), params={"batch_size": None})


def test_pyfunc_multiclass_softmax_and_errors(mlflow_uri, tmp_path):
    import mlflow

    ckpt = make_checkpoint(tmp_path / "mc", task_type="multiclass")
    registry.setup_tracking(MlflowConfig(experiment="multiclass"))
    with mlflow.start_run():
        info = registry.log_pyfunc_model(ckpt, TASKS, "multiclass", L, example=sequences(2))
    model = mlflow.pyfunc.load_model(info.model_uri)
    seqs = sequences(4)
    out = model.predict(pd.DataFrame({"sequence": seqs}))
    np.testing.assert_allclose(out.to_numpy().sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(out.to_numpy(), reference_probs(ckpt, seqs, "multiclass"), atol=1e-7)
    with pytest.raises(Exception, match=f"takes windows of exactly {L} bp"):
        model.predict(pd.DataFrame({"sequence": ["ACGT"]}))


def test_a_model_of_another_lineage_is_refused_not_compared(mlflow_uri, tmp_path):
    """A 4-class model under the name of a 3-task multitask model: refused (one line, nothing
    logged); with mlflow.new_lineage it starts a new lineage and takes champion outright."""
    from mlflow.tracking import MlflowClient

    first = log_run(make_checkpoint(tmp_path / "multitask"), 0.50)
    second = log_run(make_checkpoint(tmp_path / "multitask2", seed=1), 0.60)
    assert (first.alias, second.alias) == ("champion", "challenger")
    client = MlflowClient()
    runs_before = len(client.search_runs([first.experiment_id]))

    torch.manual_seed(3)
    classes = ["w", "x", "y", "z"]
    other = tmp_path / "multiclass"
    save(build("simple", {"seq_len": L, "n_tasks": 4, "filters": 4, "width": 5, "hidden_units": 8}),
         other, classes, task_type="multiclass")
    run = registry.TrainingRun(
        config={}, checkpoint_dir=other, model_name="simple", dataset_name="toy", tasks=classes,
        task_type="multiclass", seq_len=L, history=[], final_metrics={"best_val_loss": 0.01})
    cfg = MlflowConfig(experiment="test", registered_model="simple-toy")
    with pytest.raises(registry.LineageError) as err:
        registry.log_training_run(run, cfg)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        "registered model 'simple-toy' holds 3 multitask tasks (cell_a, cell_b, cell_c) on 40 bp "
        "windows; this model predicts 4 multiclass tasks (w, x, y, ...) on 40 bp windows "
        "(different task type, tasks)")
    assert len(client.search_model_versions("name = 'simple-toy'")) == 2
    assert len(client.search_runs([first.experiment_id])) == runs_before  # nothing logged
    assert str(client.get_model_version_by_alias("simple-toy", "champion").version) == "1"

    # A different window length alone is another lineage too.
    with pytest.raises(registry.LineageError, match=r"\(different window length\)"):
        registry.check_lineage("simple-toy", registry.Lineage("multitask", 2 * L, tuple(TASKS)))

    # Explicitly a new lineage: champion without comparing a 4-class loss to a multitask one.
    renewed = registry.log_training_run(
        run, MlflowConfig(experiment="test", registered_model="simple-toy", new_lineage=True))
    assert (renewed.version, renewed.alias) == ("3", "champion")
    aliases = client.get_registered_model("simple-toy").aliases
    # The old lineage's challenger is no longer an alias.
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "3"}
    lineage = registry.Lineage.from_json(client.get_registered_model("simple-toy").tags["dnacnn.lineage"])
    assert lineage == registry.Lineage("multiclass", L, tuple(classes))
    # The new lineage compares on metrics as usual; the old one is refused now.
    with pytest.raises(registry.LineageError, match="holds 4 multiclass tasks"):
        log_run(make_checkpoint(tmp_path / "again", seed=4), 0.1)


def test_a_registered_model_without_a_lineage_record_gets_its_checkpoints(mlflow_uri, tmp_path):
    """Names registered before lineages were recorded: the latest version's model.json decides."""
    from mlflow.tracking import MlflowClient

    log_run(make_checkpoint(tmp_path / "c1"), 0.5)
    client = MlflowClient()
    client.delete_registered_model_tag("simple-toy", "dnacnn.lineage")
    assert registry.check_lineage("simple-toy", registry.Lineage("multitask", L, tuple(TASKS))) is False
    assert "dnacnn.lineage" in client.get_registered_model("simple-toy").tags
    with pytest.raises(registry.LineageError, match="this model predicts 1 binary task"):
        registry.check_lineage("simple-toy", registry.Lineage("binary", L, ("t",)))


def test_reading_a_model_never_creates_a_store(tmp_path):
    """A model URI with no tracking store: one line naming the URI tried; no mlflow.db made.
    Run in a fresh process from an empty folder, as a user would, without MLFLOW_TRACKING_URI."""
    import subprocess
    import sys

    from conftest import FIXTURE_FASTA, FIXTURE_VCF

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    proc = subprocess.run(
        [sys.executable, "-c", "from dnacnn.cli import app; app()", "score",
         "--model", "models:/basset-basset164@champion", "--genome", str(FIXTURE_FASTA),
         "--vcf", str(FIXTURE_VCF), "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: cannot fetch models:/basset-basset164@champion: no MLflow tracking store at "
        f"sqlite:///{tmp_path.resolve() / 'data' / 'mlflow.db'} (the default, as "
        "MLFLOW_TRACKING_URI is not set); set MLFLOW_TRACKING_URI to the store or server the "
        "model was registered in"], proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlflow.db").exists()
    # An explicit URI to a missing sqlite file: the same, and the file is not created.
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(ValueError, match=f"no MLflow tracking store at sqlite:///{missing} \\(given\\)"):
        registry.load_model("models:/x@champion", tracking_uri=f"sqlite:///{missing}")
    assert not missing.parent.exists()


@pytest.mark.parametrize("kind,reason", [("folder", "is a folder, not an SQLite file"),
                                         ("empty", "is an empty file, not an MLflow store"),
                                         ("text", "is not an SQLite database")])
def test_a_sqlite_store_that_is_not_a_database_is_refused_in_one_line(tmp_path, kind, reason, monkeypatch):
    """MLFLOW_TRACKING_URI=sqlite:///X where X is a folder (MLflow retried for 100 s, then an
    sqlalchemy OperationalError), a text file (sqlalchemy DatabaseError) or an empty file
    (MLflow wrote a new store into it): a ValueError naming the URI, the file left as it was."""
    store = tmp_path / "mlflow.db"
    if kind == "folder":
        store.mkdir()
    else:
        store.write_text("" if kind == "empty" else ">seq\nACGT\n")
    before = None if kind == "folder" else store.read_bytes()
    with pytest.raises(ValueError, match=f"the MLflow tracking store sqlite:///{store} \\(given\\) {reason}"):
        registry.load_model("models:/x@champion", tracking_uri=f"sqlite:///{store}")
    assert kind == "folder" or store.read_bytes() == before
    # and a training job's store (an empty file is MLflow's to fill): was sqlalchemy's traceback
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if kind != "empty":
        with pytest.raises(ValueError, match=f"^the MLflow tracking store sqlite:///{store} {reason}; "):
            registry.setup_tracking(MlflowConfig(tracking_uri=f"sqlite:///{store}"))
        assert kind == "folder" or store.read_bytes() == before


def test_a_training_store_under_a_file_is_named_as_the_tracking_store(tmp_path, monkeypatch):
    """Was "[Errno 17] File exists: '.../afile'", naming neither MLflow nor the store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "afile").write_text("x")
    uri = f"sqlite:///{tmp_path / 'afile' / 'mlflow.db'}"
    with pytest.raises(ValueError, match=f"^cannot create the MLflow tracking store {uri}: {tmp_path / 'afile'}: "):
        registry.setup_tracking(MlflowConfig(tracking_uri=uri))


def test_a_tracking_server_nobody_answers_at_is_refused_in_seconds(tmp_path, monkeypatch):
    """A server URI where nothing listens: MLflow retried for about four minutes (a dozen
    console warnings) before its error; now one line within seconds, for reading a model
    (the command, in a fresh process) and for a training job's tracking set-up."""
    import socket
    import subprocess
    import sys
    import time

    from conftest import FIXTURE_FASTA, FIXTURE_VCF

    with socket.socket() as sock:  # a port on 127.0.0.1 that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from dnacnn.cli import app; app()", "score",
         "--model", "models:/x@champion", "--genome", str(FIXTURE_FASTA),
         "--vcf", str(FIXTURE_VCF), "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert time.monotonic() - t0 < 60, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"error: cannot fetch models:/x@champion: no MLflow tracking server "
                               f"answers at {uri} (from MLFLOW_TRACKING_URI; ")
    assert not (tmp_path / "out").exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match=f"no MLflow tracking server answers at {uri} \\(the job's"):
        registry.setup_tracking(MlflowConfig(tracking_uri=uri))
    with pytest.raises(ValueError, match="is not a server address"):
        registry.check_server("http://127.0.0.1:99999", "given")


def test_a_tracking_uri_mlflow_has_no_store_for_is_one_line(monkeypatch):
    # Was MLflow's UnsupportedModelRegistryStoreURIException traceback, before training.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match=r"^cannot use MLflow experiment 'dnacnn' at tracking URI foo://bar: "
                                         r".*unsupported URI 'foo://bar'"):
        registry.setup_tracking(MlflowConfig(tracking_uri="foo://bar"))
    import mlflow

    assert not mlflow.is_tracking_uri_set() or mlflow.get_tracking_uri() != "foo://bar"  # nothing was set


def test_the_one_model_uri_check_needs_no_mlflow():
    """The scorer and the CLI ask ``registry.is_model_uri``; importing it loads no MLflow."""
    import subprocess
    import sys

    code = ("import sys\nfrom dnacnn import registry\nimport dnacnn.scoring.scorer\n"
            "import dnacnn.cli.score_commands\n"
            "print(registry.is_model_uri('models:/m@champion'), registry.is_model_uri('runs:/1/model'),"
            " registry.is_model_uri('checkpoints/m'), registry.is_model_uri(None),"
            " 'mlflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["True", "True", "False", "False", "False"], proc.stderr[-2000:]


def test_a_model_argument_of_another_uri_scheme_is_refused_not_looked_for_as_a_folder(tmp_path):
    """`--model s3://bucket/model` said "no model.json in <cwd>/s3:/bucket/model"; `models:name`
    (no slash) was looked for as a folder of that name too."""
    from typer.testing import CliRunner

    from conftest import FIXTURE_FASTA, FIXTURE_VCF
    from dnacnn.cli import app
    from dnacnn.registry import is_model_uri

    assert is_model_uri("models:/m/1") and not is_model_uri("runs") and not is_model_uri("./models/m")
    for spec, said in (("s3://bucket/model", "s3:// is not read"), ("HTTPS://host/m", "HTTPS:// is not read"),
                       ("file:///tmp/m", "file:// is not read (give the folder's path)"),
                       ("models:m", "is not a registry URI: write models:/NAME@ALIAS"),
                       ("runs:abc/model", "is not a registry URI")):
        with pytest.raises(ValueError, match=re.escape(f"model {spec!r}") + ".*" + re.escape(said)):
            is_model_uri(spec)
    done = CliRunner().invoke(app, ["score", "--model", "s3://bucket/model", "--genome", str(FIXTURE_FASTA),
                                    "--vcf", str(FIXTURE_VCF), "--out", str(tmp_path / "out")])
    assert done.exit_code == 2 and "error: model 's3://bucket/model': s3:// is not read" in done.output, done.output
    assert not (tmp_path / "out").exists()
