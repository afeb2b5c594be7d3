"""Job configs: every committed YAML loads; bad keys, types and sections are named in the error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dnacnn.config import (
    JobConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    to_dict,
)

REPO = Path(__file__).resolve().parents[1]
# The training jobs' configs (other jobs, e.g. main.yaml, load into their own classes).
TRAIN_CONFIGS = [REPO / "jobs" / "configs" / name for name in (
    "tutorial_multiscale.yaml", "basset_accessibility.yaml", "species_simple.yaml",
    "oct4_mafk.yaml", "smoke.yaml")]


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def minimal(**sections) -> dict:
    raw = {"data": {"dataset": "data/datasets/x"}, "model": {"name": "simple"}}
    raw.update(sections)
    return raw


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_committed_configs_load(path):
    job = load_config(path)
    assert isinstance(job, JobConfig)
    assert job.train.num_workers >= 1 and job.data.dataset


def test_tutorial_recipe_defaults():
    t = TrainConfig()
    assert (t.num_workers, t.use_gpu, t.batch_size, t.lr, t.betas, t.eps) == (
        2, False, 64, 0.001, (0.9, 0.999), 1e-7)
    assert (t.early_stopping_patience, t.lr_plateau_patience, t.lr_plateau_factor, t.min_lr) == (
        10, 5, 0.5, 1e-6)


def test_unknown_key_names_key_and_section(tmp_path):
    path = write(tmp_path, minimal(train={"learning_rate": 0.1}))
    with pytest.raises(ValueError, match=r"unknown key 'learning_rate' in section 'train'; "
                                         r"allowed: epochs, num_workers"):
        load_config(path)


def test_unknown_section_and_missing_key(tmp_path):
    with pytest.raises(ValueError, match=r"unknown section 'trian'; allowed: data, model, train"):
        load_config(write(tmp_path, minimal(trian={})))
    with pytest.raises(ValueError, match=r"missing key 'dataset' in section 'data'"):
        load_config(write(tmp_path, {"data": {}, "model": {"name": "simple"}}))
    with pytest.raises(ValueError, match=r"missing section 'model'"):
        load_config(write(tmp_path, {"data": {"dataset": "x"}}))


def test_unknown_model_param_names_key(tmp_path):
    path = write(tmp_path, minimal(model={"name": "basset", "params": {"filterz": 3}}))
    with pytest.raises(ValueError, match=r"unknown key 'filterz' in section 'model.params'.*"
                                         r"allowed: seq_len, n_tasks, conv_filters"):
        load_config(path)
    with pytest.raises(ValueError, match=r"unknown model 'resnet'"):
        load_config(write(tmp_path, minimal(model={"name": "resnet"})))


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"epochs": "ten"}, r"train.epochs must be an integer, got 'ten'"),
        ({"epochs": 2.5}, r"train.epochs must be an integer"),
        ({"use_gpu": "yes"}, r"train.use_gpu must be true or false"),
        ({"lr": "fast"}, r"train.lr must be a number"),
        ({"betas": [0.9]}, r"train.betas must be a list of 2 values"),
        ({"monitor_mode": "up"}, r"train.monitor_mode must be one of \['min', 'max'\]"),
        ({"epochs": 0}, r"in section 'train': epochs must be >= 1"),
        ({"lr_plateau_factor": 2}, r"lr_plateau_factor must be in \(0, 1\)"),
        ({"lr": float("inf")}, r"lr and eps must be finite"),  # a run of NaN losses otherwise
        ({"run_name": "../../elsewhere"}, r"run_name '../../elsewhere' must be one folder name"),
        # Out of torch's or numpy's range: each worker failed with a traceback after Ray started
        # (a million threads crashed it).
        ({"threads_per_worker": 1_000_000}, r"threads_per_worker must be in \[1, 1024\] or null"),
        ({"seed": 10**23}, r"seed must be in \[0, 2\*\*63\), got 1000"),
        ({"seed": -1}, r"seed must be in \[0, 2\*\*63\), got -1"),
        # NaN passed both checks: a NaN learning rate, a plateau never seen.
        ({"warmup_epochs": float("nan")}, r"warmup_epochs must be in \[0, epochs=30\), got nan"),
        ({"lr_plateau_min_delta": float("nan")}, r"lr_plateau_min_delta must be finite and >= 0, got nan"),
        ({"lr_plateau_min_delta": -1}, r"lr_plateau_min_delta must be finite and >= 0, got -1"),
    ],
)
def test_bad_values_are_named(tmp_path, train, message):
    with pytest.raises(ValueError, match=message):
        load_config(write(tmp_path, minimal(train=train)))


def test_values_are_converted(tmp_path):
    # YAML reads 1e-7 (no dot) as a string; lists become tuples; rc_augment: true means half the rows.
    job = load_config(write(tmp_path, minimal(train={"eps": "1e-7", "betas": [0.8, 0.99],
                                                     "rc_augment": True, "lr": 1})))
    assert job.train.eps == 1e-7 and job.train.betas == (0.8, 0.99)
    assert job.train.rc_augment == 0.5 and job.train.lr == 1.0 and isinstance(job.train.lr, float)


def test_overrides(tmp_path):
    path = write(tmp_path, minimal())
    job = load_config(path, ["train.epochs=4", "model.params.filters=16", "mlflow.register=false"])
    assert job.train.epochs == 4 and job.model.params == {"filters": 16}
    assert job.mlflow.register is False
    with pytest.raises(ValueError, match=r"unknown key 'epoch' in section 'train'"):
        load_config(path, ["train.epoch=4"])
    with pytest.raises(ValueError, match=r"must look like section.key=value"):
        apply_overrides({}, ["epochs=4"])


def test_a_bad_override_is_named_not_the_file(tmp_path):
    path = write(tmp_path, minimal())
    with pytest.raises(ValueError) as err:
        load_config(path, ["train.lr=0.1", "train.epochs=abc"])
    assert str(err.value) == "--set train.epochs=abc: train.epochs must be an integer, got 'abc'"
    with pytest.raises(ValueError, match=r"^--set train.epochs=0: in section 'train': epochs must be >= 1"):
        load_config(path, ["train.epochs=0"])
    # An override that supplies a key missing from the file is no culprit.
    bad_file = write(tmp_path, {"data": {}, "model": {"name": "simple"}, "train": {"epochs": "x"}})
    with pytest.raises(ValueError) as err:
        load_config(bad_file, ["data.dataset=d"])
    assert str(err.value) == f"{bad_file}: train.epochs must be an integer, got 'x'"


def test_a_score_section_is_not_a_training_job_section(tmp_path):
    with pytest.raises(ValueError, match=r"unknown section 'score'; allowed: data, model, train, mlflow$"):
        load_config(write(tmp_path, minimal(score={"rc": True})))


def test_main_config_is_a_job_config_loaded_like_one(tmp_path, monkeypatch):
    from dnacnn.main_run import MainConfig, load_main_config

    main = load_main_config(REPO / "jobs" / "configs" / "main.yaml")
    assert isinstance(main, MainConfig) and isinstance(main, JobConfig)
    raw = yaml.safe_load((REPO / "jobs" / "configs" / "main.yaml").read_text())
    assert main.score.rc is raw["score"]["rc"] and main.train.batch_size == raw["train"]["batch_size"]
    assert main.simulate.n_windows == raw["simulate"]["n_windows"]
    job = main.training_job()
    assert type(job) is JobConfig and job.model == main.model
    assert job.train.run_name.startswith("main-basset164-")
    # Environment variables are expanded, overrides are named, unknown keys refused.
    monkeypatch.setenv("DNACNN_TEST_DATA", str(tmp_path))
    raw["main"]["data_dir"] = "${DNACNN_TEST_DATA}/out"
    path = write(tmp_path, raw)
    assert load_main_config(path).main.data_dir == f"{tmp_path}/out"
    with pytest.raises(ValueError, match=r"^--set score.batch_size=big: score.batch_size must be an integer"):
        load_main_config(path, ["score.batch_size=big"])
    with pytest.raises(ValueError, match=r"unknown key 'shards' in section 'score'"):
        load_main_config(path, ["score.shards=2"])


def test_round_trip_through_plain_dict():
    job = from_dict(JobConfig, minimal(train={"epochs": 3}), "")
    again = from_dict(JobConfig, to_dict(job), "")
    assert again == job


@dataclass
class Inner:
    size: int = 1


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    limit: float | None = None


def test_from_dict_is_generic():
    out = from_dict(Outer, {"name": "a", "inner": {"size": 3}, "tags": ["x"], "limit": None}, "score")
    assert out == Outer("a", Inner(3), ["x"], None)
    with pytest.raises(ValueError, match=r"unknown key 'sise' in section 'score.inner'; allowed: size"):
        from_dict(Outer, {"name": "a", "inner": {"sise": 3}}, "score")
    with pytest.raises(ValueError, match=r"section 'score' must be a mapping"):
        from_dict(Outer, ["a"], "score")


BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi")
).replace("b: &b [*a", "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\nb: &b [*a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # PyYAML keeps the last of two keys silently: the first section was thrown away.
        ("data: {dataset: a}\nmodel: {name: simple}\ndata: {dataset: b}\n",
         r"is not valid YAML: key 'data' is given twice in one mapping line 3, column 1"),
        ("data: {dataset: a, dataset: b}\nmodel: {name: simple}\n", r"key 'dataset' is given twice"),
        # Nested aliases: 9**9 values, minutes and gigabytes to copy before any check.
        (BILLION_LAUGHS, r"is not a usable config: its aliases expand to more than 100,000 values"),
        # An alias inside its own anchor: a RecursionError traceback.
        ("data: &d {dataset: x, again: *d}\nmodel: {name: simple}\n",
         r"an alias \(\*name\) is used inside its own anchor"),
        ("[" * 3000 + "]" * 3000, r"is not valid YAML: it nests too deeply"),
        ("train: !!python/object/apply:os.system [true]\n", r"is not valid YAML: could not determine a constructor"),
    ],
    ids=["duplicate-section", "duplicate-key", "billion-laughs", "recursive-alias", "deep", "python-tag"],
)
def test_hostile_yaml_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path} ") and "\n" not in str(err.value)


def test_yaml_anchors_and_merge_keys_still_load(tmp_path):
    # A key that overrides one merged in with << is no duplicate.
    path = tmp_path / "job.yaml"
    path.write_text("data: {dataset: x}\nmodel: {name: simple}\n"
                    "train: &t {epochs: 3, seed: 1}\nmlflow: {experiment: e}\nother: {<<: *t, epochs: 5}\n")
    from dnacnn.config import read_yaml

    assert read_yaml(path)["other"] == {"epochs": 5, "seed": 1}
    path.write_text(path.read_text().replace("other: {<<: *t, epochs: 5}\n", ""))
    assert load_config(path).train.epochs == 3


def test_unreadable_config_files_are_named(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("data: {dataset: caf\u00e9}\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"^{bad} is not UTF-8 text \(byte 0xe9 at offset 19\)"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match=rf"config file {tmp_path} is a folder"):
        load_config(tmp_path)


def test_an_override_that_is_not_yaml_is_named(tmp_path):
    path = write(tmp_path, minimal())
    for value in ("*a", "[1", "{a: 1, a: 2}"):
        with pytest.raises(ValueError, match=r"^--set train.epochs=.*: the value '.*' is not valid YAML"):
            load_config(path, [f"train.epochs={value}"])


def test_cli_rejects_bad_config_with_exit_2(tmp_path):
    from dnacnn.cli import app

    path = write(tmp_path, minimal(train={"lr_rate": 0.1}))
    result = CliRunner().invoke(app, ["train", "--config", str(path)])
    assert result.exit_code == 2
    assert "unknown key 'lr_rate' in section 'train'" in result.output
    result = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "not found" in result.output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # Checked by the scoring job only at step 4, after the whole training.
        ("score.batch_size=0", r"in section 'score': batch_size must be >= 1, got 0"),
        ("score.shard_variants=-1", r"in section 'score': shard_variants must be >= 1, got -1"),
        # "negative dimensions are not allowed", a ZeroDivisionError traceback, or silence.
        ("simulate.n_windows=-5", r"in section 'simulate': n_windows must be >= 1, got -5"),
        ("simulate.length=0", r"in section 'simulate': length must be >= 1, got 0"),
        ("simulate.n_breaking=-1", r"in section 'simulate': n_breaking must be >= 0, got -1"),
        ("simulate.max_n_fraction=-1", r"in section 'simulate': max_n_fraction and min_match are shares"),
    ],
)
def test_main_config_ranges_are_checked_when_it_loads(override, message):
    from dnacnn.main_run import load_main_config

    with pytest.raises(ValueError, match=rf"^--set {override}: {message}"):
        load_main_config(REPO / "jobs" / "configs" / "main.yaml", [override])


def test_main_job_opens_its_genome_and_vcf_before_anything_runs(tmp_path):
    # A missing VCF was found at step 4, after the dataset was built and the model trained.
    from dnacnn.main_run import load_main_config, run_main

    fasta = REPO / "tests" / "data" / "chr20_sparse.fa.gz"
    cfg = load_main_config(REPO / "jobs" / "configs" / "main.yaml", [
        f"main.data_dir={tmp_path}", f"main.genome={fasta}", f"main.vcf={tmp_path / 'missing.vcf.gz'}",
        f"data.dataset={tmp_path / 'datasets' / 'x'}", "simulate.n_windows=200",
        "model.params.conv_filters=[0]",  # without the check, training's own refusal comes next
    ])
    with pytest.raises(FileNotFoundError, match="missing.vcf.gz"):
        run_main(cfg)
    assert not (tmp_path / "datasets").exists()
    cfg.main.vcf = str(REPO / "tests" / "data" / "normalize_01_IN.vcf.gz")
    # A Ray address nobody answers at was found at step 3, after the dataset was simulated.
    import socket

    from dnacnn.ray_cluster import RayConnectionError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RayConnectionError, match=f"no Ray cluster answers at --address 127.0.0.1:{port}"):
        run_main(cfg, address=f"127.0.0.1:{port}")
    assert not (tmp_path / "datasets").exists()
    cfg.main.genome = str(tmp_path / "no.fa")
    with pytest.raises((FileNotFoundError, ValueError), match="no.fa"):
        run_main(cfg)
    assert not (tmp_path / "datasets").exists()


def test_an_unset_environment_variable_is_named(tmp_path, monkeypatch):
    # Was left in the path as written: "${DNACNN_TEST_UNSET}/x is not a dnacnn dataset" at best.
    monkeypatch.delenv("DNACNN_TEST_UNSET", raising=False)
    path = write(tmp_path, minimal(data={"dataset": "${DNACNN_TEST_UNSET}/x"}))
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: data.dataset: environment variable DNACNN_TEST_UNSET in "
                              "'${DNACNN_TEST_UNSET}/x' is not set")
    with pytest.raises(ValueError, match=r"^--set train.run_name=\$DNACNN_TEST_UNSET: train.run_name: environment"):
        load_config(write(tmp_path, minimal()), ["train.run_name=$DNACNN_TEST_UNSET"])
    monkeypatch.setenv("DNACNN_TEST_UNSET", str(tmp_path))
    path = write(tmp_path, minimal(data={"dataset": "${DNACNN_TEST_UNSET}/x"}))
    assert load_config(path).data.dataset == f"{tmp_path}/x"


@pytest.mark.parametrize(("mlflow", "message"), [
    # MLflow refused it with a traceback: the name after training, the experiment before.
    ({"registered_model": "../../x"}, r"registered_model '../../x' must be a non-empty name without '/' or ':'"),
    ({"registered_model": ""}, r"registered_model '' must be a non-empty name"),  # was the default, silently
    ({"experiment": ""}, r"experiment must be a name, got ''"),
])
def test_mlflow_names_are_checked_when_the_config_loads(tmp_path, mlflow, message):
    with pytest.raises(ValueError, match=rf"in section 'mlflow': {message}"):
        load_config(write(tmp_path, minimal(mlflow=mlflow)))
