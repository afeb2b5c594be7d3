"""Filters as motifs: PFMs, influence, TomTom against JASPAR, the report, the command, the registry.

A small Basset is trained here (plain PyTorch, ~600 steps) on random 100 bp
sequences carrying sampled instances of three JASPAR motifs (REST, NRF1, CTCF),
one task per motif; its filters must recover the implanted factors.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from dnacnn.config import MlflowConfig
from dnacnn.data.dataset_io import DatasetDescription
from dnacnn.data.motifs import Motif, jaspar_collection, jaspar_motifs, read_meme, write_meme
from dnacnn.data.simulate_accessibility import sample_strong
from dnacnn.data.writer import write_arrays
from dnacnn.interpret import filter_influence, filter_motifs, recovered_factors, run_tomtom, tomtom_best_matches
from dnacnn.interpret.filters import filter_layers
from dnacnn.interpret.plots import plot_filter_logo, plot_influence_heatmap
from dnacnn.models import BassetConfig, RCAverage, SimpleCNNConfig, build, save
from dnacnn.sequence import decode, encode_batch, reverse_complement

L = 100
FACTORS = ("MA0138", "MA0506", "MA0139")  # REST, NRF1, CTCF
REPO = Path(__file__).resolve().parents[1]


def simulate(motifs: list[Motif], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, L, 4) one-hot random sequences, each motif implanted (either strand) in 30% of them;
    (n, 3) labels = which motifs a sequence carries."""
    labels = (rng.random((n, len(motifs))) < 0.3).astype(np.float32)
    seqs = []
    for row in labels:
        s = list(rng.choice(list("ACGT"), L))
        taken: list[tuple[int, int]] = []
        for k in np.flatnonzero(row):
            inst = sample_strong(motifs[k], 0.8, rng)
            inst = reverse_complement(inst) if rng.random() < 0.5 else inst
            while True:
                o = int(rng.integers(0, L - len(inst) + 1))
                if all(o + len(inst) <= a or b <= o for a, b in taken):
                    break
            taken.append((o, o + len(inst)))
            s[o:o + len(inst)] = list(inst)
        seqs.append("".join(s))
    return encode_batch(seqs, L), labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained small Basset checkpoint and a dataset folder recording the implanted motifs."""
    root = tmp_path_factory.mktemp("interpret")
    motifs = jaspar_motifs(list(FACTORS))
    rng = np.random.default_rng(0)
    onehot, labels = simulate(motifs, 4000, rng)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend
    try:
        torch.manual_seed(0)
        cfg = BassetConfig(seq_len=L, n_tasks=3, conv_filters=(8, 8), conv_widths=(19, 3),
                           pool_widths=(8, 8), hidden_units=(32,), hidden_dropouts=(0.1,))
        model = build("basset", cfg)
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        x = torch.from_numpy(onehot).float().permute(0, 2, 1)
        y = torch.from_numpy(labels)
        for _ in range(600):
            idx = torch.randint(0, len(x), (64,))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    tasks = [m.name for m in motifs]
    save(model.eval(), root / "model", tasks, task_type="multitask")
    split = np.array(["train"] * 2800 + ["valid"] * 200 + ["test"] * 1000)
    description = DatasetDescription(name="three_motifs", task_type="multitask", tasks=tasks, seq_len=L,
                                     extra={"motifs": "motifs.meme"})
    write_arrays(root / "dataset", description, onehot, labels, split)
    write_meme(motifs, root / "dataset" / "motifs.meme")
    return {"root": root, "model": model.eval(), "motifs": motifs, "onehot": onehot[3000:],
            "labels": labels[3000:], "tasks": tasks}


def test_pfm_of_a_filter_is_the_segments_above_half_its_maximum():
    model = build("simple", SimpleCNNConfig(seq_len=12, n_tasks=1, filters=2, width=3, pool_width=2)).eval()
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.zero_()
        model.conv.weight[0] = torch.eye(4)[[0, 1, 2]].T  # filter 0 scores A, C, G at offsets 0, 1, 2
    onehot = encode_batch(["ACGTTTTTTTTT", "TTTTTACGTTTT", "TTTACTTTTTTT"], 12)
    found = filter_motifs(model, onehot)
    # ACG scores 3 (twice); "AC" then T scores 2 > 1.5 (once); everything else <= 1.
    assert found.sites.tolist() == [3, 0]
    np.testing.assert_allclose(found.counts[0], [[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 2, 1]])
    assert found.max_activation[0] == 3 and [m.id for m in found.motifs()] == ["filter0"]


def test_influence_is_zero_for_a_constant_filter_and_positive_for_the_one_the_model_needs(trained):
    model = trained["model"]
    found = filter_motifs(model, trained["onehot"][:300])
    influence, base_loss = filter_influence(model, trained["onehot"][:300], trained["labels"][:300],
                                            "multitask", found.mean_activation)
    assert influence.shape == (8, 3) and base_loss.shape == (3,)
    assert influence.max() > 0.1  # some filter carries a motif the loss depends on
    # A filter whose weights are zero outputs a constant: replacing it by its mean changes nothing.
    dead = build("basset", model.config)
    dead.load_state_dict(model.state_dict())
    dead.eval()
    with torch.no_grad():
        dead.conv_tower[0].weight[2].zero_()
    found_dead = filter_motifs(dead, trained["onehot"][:300])
    influence_dead, _ = filter_influence(dead, trained["onehot"][:300], trained["labels"][:300],
                                         "multitask", found_dead.mean_activation)
    np.testing.assert_allclose(influence_dead[2], 0, atol=1e-6)


def brute_force_influence(model, onehot: np.ndarray, labels: np.ndarray, task_type: str,
                          means: np.ndarray) -> np.ndarray:
    """The definition: for each filter, the whole model run with that filter's output (after
    its ReLU) set to its mean, minus the model's loss; (F, T)."""
    inner = model.model if isinstance(model, RCAverage) else model
    if inner.name == "basset":
        modules = [inner.conv_tower[2]]  # the first ReLU: its output is the activation
    elif inner.name == "simple":
        modules = [inner.conv]  # before the ReLU: a constant c >= 0 stays c
    else:
        modules = [branch.conv for branch in inner.branches]
    owners = [(module, f) for module, layer in zip(modules, filter_layers(model)) for f in range(layer.n_filters)]
    x = torch.from_numpy(onehot).float().permute(0, 2, 1)
    y = torch.from_numpy(labels)

    def loss(logits):  # (T,) mean loss per task; multiclass: per class, over its samples
        if task_type == "multiclass":
            ce = torch.nn.functional.cross_entropy(logits, y.argmax(1), reduction="none")
            return ((y * ce[:, None]).sum(0) / y.sum(0)).double()
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(0).double()

    out = []
    with torch.no_grad():
        base = loss(model(x))
        for k, (module, f) in enumerate(owners):
            def replace(mod, _inputs, output, f=f, k=k):
                output = output.clone()
                output[:, f] = float(means[k])
                return output
            handle = module.register_forward_hook(replace)
            out.append(loss(model(x)) - base)
            handle.remove()
    return torch.stack(out).numpy()


@pytest.mark.parametrize("name, params, task_type, wrap", [
    ("basset", dict(seq_len=40, n_tasks=3, conv_filters=(6, 5), conv_widths=(5, 3), pool_widths=(2, 3),
                    hidden_units=(7,), hidden_dropouts=(0.2,)), "multitask", False),
    ("basset", dict(seq_len=30, n_tasks=2, conv_filters=(6,), conv_widths=(5,), pool_widths=(4,),
                    hidden_units=(7, 5), hidden_dropouts=(0.2, 0.1), rc_equivariant_first_layer=True),
     "multitask", True),
    ("basset", dict(seq_len=40, n_tasks=3, conv_filters=(6, 5), conv_widths=(5, 3), pool_widths=(2, 3),
                    hidden_units=(7,), hidden_dropouts=(0.2,), first_activation="exp"), "multitask", False),
    ("simple", dict(seq_len=30, n_tasks=1, filters=5, width=4, pool_width=3, hidden_units=6), "binary", False),
    ("multiscale", dict(seq_len=30, widths=(3, 7), filters=5, dense=(8,), dense_dropouts=(0.2,), n_tasks=3,
                        attention_pooling="sum"), "multiclass", False),
    ("multiscale", dict(seq_len=30, widths=(5,), filters=4, dense=(8,), dense_dropouts=(0.2,), n_tasks=1),
     "binary", True),
])
def test_influence_equals_the_brute_force_definition(name, params, task_type, wrap):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build(name, params)
    onehot = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (150, params["seq_len"]))]
    with torch.no_grad():  # batch norm statistics of real activations, not the initial 0 / 1
        model.train()(torch.from_numpy(onehot).float().permute(0, 2, 1))
    model = RCAverage(model).eval() if wrap else model.eval()
    n_tasks = params["n_tasks"]
    labels = (np.eye(n_tasks)[rng.integers(0, n_tasks, 150)] if task_type == "multiclass"
              else rng.random((150, n_tasks)) < 0.4).astype(np.float32)
    means = filter_motifs(model, onehot).mean_activation
    fast, base = filter_influence(model, onehot, labels, task_type, means, batch_size=64)
    slow = brute_force_influence(model, onehot, labels, task_type, means)
    assert fast.shape == slow.shape == (len(means), n_tasks) and base.shape == (n_tasks,)
    assert np.abs(slow).max() > 1e-4  # the filters matter to the loss: the comparison has teeth
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-6)


def test_influence_on_a_class_without_samples_is_nan_as_the_definition_not_zero(tmp_path):
    """A multiclass sample lacking a class (a small --max-sequences, a test split without it)
    reported an influence of exactly 0 for every filter on that class ('no influence'),
    where the definition (mean loss over the class's samples) is undefined: NaN now, and
    the overall influence is the mean over the classes that have samples."""
    from dnacnn.interpret.inputs import Sequences
    from dnacnn.interpret.report import filter_report
    from dnacnn.models import LoadedModel

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    params = dict(seq_len=30, widths=(3, 7), filters=5, dense=(8,), dense_dropouts=(0.2,), n_tasks=3,
                  attention_pooling="sum")
    model = build("multiscale", params)
    onehot = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (60, 30))]
    with torch.no_grad():
        model.train()(torch.from_numpy(onehot).float().permute(0, 2, 1))
    model.eval()
    labels = np.eye(3, dtype=np.float32)[rng.integers(0, 2, 60)]  # class 2 has no sample
    means = filter_motifs(model, onehot).mean_activation
    fast, base = filter_influence(model, onehot, labels, "multiclass", means)
    np.testing.assert_allclose(fast, brute_force_influence(model, onehot, labels, "multiclass", means),
                               rtol=1e-4, atol=1e-6)
    assert np.isnan(fast[:, 2]).all() and np.isfinite(fast[:, :2]).all() and np.isnan(base[2])
    loaded = LoadedModel(model, "multiscale", model.config, ["a", "b", "c"], 30, "multiclass")
    filter_report(loaded, Sequences([f"s{i}" for i in range(60)], onehot, labels), tmp_path, targets=[
        Motif(f"M{i}", f"M{i}", np.eye(4)[rng.integers(0, 4, 6)] + 0.1) for i in range(30)], max_logos=0)
    table = pd.read_csv(tmp_path / "filters.tsv", sep="\t")
    np.testing.assert_allclose(table["influence"], fast[:, :2].mean(axis=1), rtol=1e-5)


def test_trained_filters_recover_the_implanted_factors_and_random_ones_do_not(trained):
    jaspar = jaspar_collection()
    assert len(jaspar) == 879
    found = filter_motifs(trained["model"], trained["onehot"])
    tomtom = run_tomtom(found.motifs(), jaspar)
    matches = tomtom.best()
    pd.testing.assert_frame_equal(matches, tomtom_best_matches(found.motifs(), jaspar))
    recovered = recovered_factors(matches, trained["motifs"])
    assert sum(bool(v) for v in recovered.values()) >= 2
    assert recovered["MA0138.3"] or recovered["MA0506.3"]  # REST or NRF1: no look-alike matrices
    # "Matched": an implanted matrix is a significant match of a filter, best or not. Every
    # filter that recovers a factor also matches it, with the same p-value.
    ids = [m.id for m in trained["motifs"]]
    to_implanted = tomtom.to(ids)
    assert len(to_implanted) == len(found.motifs()) * len(ids)  # JASPAR holds each implanted matrix once
    matched = recovered_factors(to_implanted, trained["motifs"])
    for factor, filters in recovered.items():
        assert set(filters) <= set(matched[factor])
    best = matches.set_index("query")
    for row in to_implanted.itertuples():
        assert row.p_value >= best.at[row.query, "p_value"]  # nothing beats the best match
        if row.match_id == best.at[row.query, "match_id"]:
            assert row.p_value == best.at[row.query, "p_value"]
    # Control: untrained filters on random sequence recover nothing, CTCF included. Their flat
    # columns do match the flat flanks of the long CTCF matrices (q < 0.05), which counts only
    # without the guard that the alignment cover half of both motifs' information and the
    # match's core.
    torch.manual_seed(5)
    untrained = build("basset", trained["model"].config).eval()
    noise = np.eye(4, dtype=np.uint8)[np.random.default_rng(1).integers(0, 4, (1000, L))]
    control_tomtom = run_tomtom(filter_motifs(untrained, noise).motifs(), jaspar)
    control = control_tomtom.best()
    assert not any(recovered_factors(control, trained["motifs"]).values())
    assert not any(recovered_factors(control_tomtom.to(ids), trained["motifs"]).values())
    assert recovered_factors(control, trained["motifs"], min_coverage=None)["MA0139.2"]


def test_match_coverage_is_the_share_of_information_within_the_alignment():
    jaspar = jaspar_collection()
    rest = next(m for m in jaspar if m.id == "MA0138.3")  # 20 columns
    ic = rest.information_content()
    part = Motif("part", "part", rest.probs[3:15][::-1, ::-1] * 100, 100)  # columns 3-14, other strand
    longer = Motif("longer", "longer", np.vstack([np.full((5, 4), 25.0), rest.probs[:12] * 100]), 100)
    matches = tomtom_best_matches([part, longer], jaspar).set_index("query")
    # TomTom's offset: query column i faces column i + offset of the (reverse-complemented) match.
    assert list(matches["match_id"]) == ["MA0138.3", "MA0138.3"]
    assert tuple(matches.loc["part", ["strand", "offset", "overlap"]]) == ("-", 20 - 15, 12)
    assert tuple(matches.loc["longer", ["strand", "offset", "overlap"]]) == ("+", -5, 12)
    np.testing.assert_allclose(matches.loc["part", ["query_coverage", "match_coverage"]].astype(float),
                               [1, ic[3:15].sum() / ic.sum()], rtol=1e-6)
    np.testing.assert_allclose(matches.loc["longer", "match_coverage"], ic[:12].sum() / ic.sum(), rtol=1e-6)
    # The flat flank of "longer" holds no information: all of it is within the alignment.
    np.testing.assert_allclose(matches.loc["longer", "query_coverage"], 1, rtol=1e-6)
    np.testing.assert_allclose(matches["match_length_share"], [12 / 20, 12 / 20])
    # Both cover half of REST's information, the first part of REST more than its length share
    # (its first 12 columns are its core) and columns 3-14 too: both recover REST.
    assert recovered_factors(matches.reset_index(), [rest]) == {"MA0138.3": ["part", "longer"]}
    # Columns 4-22 of the extended CTCF matrix: its upstream module's tail and the flat middle.
    ctcf = next(m for m in jaspar if m.id == "MA1929.2")  # 31 columns
    flank = tomtom_best_matches([Motif("flank", "flank", ctcf.probs[4:23] * 100, 100)], jaspar)
    assert tuple(flank.loc[0, ["match_id", "offset", "overlap"]]) == ("MA1929.2", 4, 19)
    assert flank.loc[0, "q_value"] < 1e-10 and flank.loc[0, "match_coverage"] < 19 / 31
    assert recovered_factors(flank, [ctcf]) == {"MA1929.2": []}
    assert recovered_factors(flank, [ctcf], min_coverage=None) == {"MA1929.2": ["flank"]}


def test_plots_have_their_axes():
    probs = np.array([[0.97, 0.01, 0.01, 0.01], [0.25] * 4, [0.01, 0.01, 0.01, 0.97]])
    top, bottom = plot_filter_logo(probs, "filter3", probs, "MA0001.1 X", strand="-")
    assert top.get_title() == "filter3" and bottom.get_title() == "MA0001.1 X"
    assert top.get_ylabel() == "bits" and top.get_ylim() == (0, 2)
    ax = plot_influence_heatmap(np.array([[0.1, 0.0], [0.5, -0.2]]), ["f0", "f1"], ["t0", "t1"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["f1", "f0"]  # most influential first
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t0", "t1"]
    assert ax.get_title() == "filter influence"


def _dnacnn(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the ``dnacnn`` command (the installed entry point's app) in a fresh process."""
    return subprocess.run([sys.executable, "-c", "from dnacnn.cli import app; app()", *args],
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_filters_command_on_a_registry_model_writes_the_report_and_logs_it(trained, tmp_path):
    from dnacnn import registry

    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
               OMP_NUM_THREADS="1")
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    try:
        logged = registry.log_training_run(registry.TrainingRun(
            config={"model": {"name": "basset"}}, checkpoint_dir=trained["root"] / "model",
            history=[{"epoch": 1, "val_loss": 0.2}], final_metrics={"best_val_loss": 0.2},
            tasks=trained["tasks"], task_type="multitask", seq_len=L, model_name="basset",
            dataset_name="three", example=["A" * L, "C" * L],
        ), MlflowConfig(experiment="interpret", registered_model="three-motifs"))
        uri = f"models:/three-motifs/{logged.version}"
        out = tmp_path / "report"
        done = _dnacnn("interpret", "filters", "--model", uri, "--dataset", str(trained["root"] / "dataset"),
                       "--out", str(out), "--max-logos", "3", env=env)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["implanted"] == 3 and summary["recovered"] >= 2
        assert summary["matched"] >= summary["recovered"] and len(summary["matched_factors"]) == 3
        table = pd.read_csv(out / "filters.tsv", sep="\t")
        assert list(table.columns[:6]) == ["filter", "sites", "trimmed_width", "information_content",
                                           "max_activation", "influence"]
        assert {"match_id", "match_name", "p_value", "q_value", "strand", "offset"} <= set(table.columns)
        assert len(table) == 8 and len(read_meme(out / "filters.meme")) == 8
        influence = pd.read_parquet(out / "influence.parquet")
        assert list(influence.columns) == ["filter", *trained["tasks"]] and len(influence) == 8
        page = (out / "index.html").read_text()
        for name in ("filters.tsv", "filters.meme", "influence.parquet", "influence.png"):
            assert f"'{name}'" in page and (out / name).exists()
        logos = sorted(p.name for p in (out / "logos").iterdir())
        assert len(logos) == 3 and all(f"logos/{p}" in page for p in logos)
        # The same files are artifacts of the run that produced the model version.
        run_id = mlflow.MlflowClient().get_model_version("three-motifs", logged.version).run_id
        # each report in a folder of its own, named by its UTC time: a later, shorter report's
        # files are not mixed with this one's (they were: one folder, interpretation/filters)
        assert re.fullmatch(rf"runs:/{run_id}/interpretation/filters/\d{{8}}T\d{{6}}\.\d{{6}}Z", summary["logged_to"])
        folder = summary["logged_to"].split("/", 2)[2]
        names = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}
        assert {"filters.tsv", "filters.meme", "index.html", "logos"} <= names
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.mark.slow
def test_filters_command_refuses_bad_input_in_one_line(trained, tmp_path):
    bad = tmp_path / "bad.meme"
    bad.write_text("MEME version 4\n\nMOTIF A\nletter-probability matrix: alength= 4 w= 2\n0.1 0.2 0.7\n")
    done = _dnacnn("interpret", "filters", "--model", str(trained["root"] / "model"), "--dataset",
                   str(trained["root"] / "dataset"), "--motifs", str(bad), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "bad.meme, line 5" in done.stderr
    done = _dnacnn("interpret", "filters", "--model", str(tmp_path / "nope"), "--dataset",
                   str(trained["root"] / "dataset"), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "--model" in done.stderr and "Traceback" not in done.stderr


def test_filters_on_a_dataset_of_other_tasks_are_refused_in_one_line(tmp_path):
    """A 3-task model with a 1-task dataset stopped after the PFMs and TomTom with torch's
    'Target size (torch.Size([40, 1])) must be the same as input size (torch.Size([40, 3]))';
    a dataset of as many tasks under other names gave an influence against the wrong labels."""
    from typer.testing import CliRunner

    from dnacnn.cli import app

    torch.manual_seed(0)
    cfg = BassetConfig(seq_len=L, n_tasks=3, conv_filters=(4, 4), conv_widths=(7, 3), pool_widths=(4, 4),
                       hidden_units=(8,), hidden_dropouts=(0.1,))
    save(build("basset", cfg).eval(), tmp_path / "model", ["a", "b", "c"], task_type="multitask")
    onehot = np.eye(4, dtype=np.uint8)[np.random.default_rng(0).integers(0, 4, (8, L))]
    for tasks, named in ((["motif"], "motif"), (["a", "c", "b"], "a, c, b")):
        labels = np.zeros((8, len(tasks)), dtype=np.float32)
        dataset = tmp_path / f"dataset_{len(tasks)}"
        write_arrays(dataset, DatasetDescription(name="other", task_type="multitask", tasks=tasks, seq_len=L),
                     onehot, labels, np.array(["test"] * 8))
        done = CliRunner().invoke(app, ["interpret", "filters", "--model", str(tmp_path / "model"),
                                        "--dataset", str(dataset), "--out", str(tmp_path / "out")])
        assert done.exit_code == 2, done.output
        assert (f"{dataset}: its labels are for the task(s) {named}, the model predicts a, b, c"
                in " ".join(done.output.split())), done.output
    assert not (tmp_path / "out").exists()


def test_filters_on_a_dataset_of_another_window_length_are_refused_before_any_work(tmp_path):
    """A 100 bp model with a 64 bp dataset of its tasks wrote filters.meme and ran TomTom,
    then stopped at the influence: 'this model was built for sequences of length 100, got
    length 64', a half-written folder left."""
    from typer.testing import CliRunner

    from dnacnn.cli import app

    torch.manual_seed(0)
    cfg = BassetConfig(seq_len=L, n_tasks=1, conv_filters=(4, 4), conv_widths=(7, 3), pool_widths=(4, 4),
                       hidden_units=(8,), hidden_dropouts=(0.1,))
    save(build("basset", cfg).eval(), tmp_path / "model", ["motif"], task_type="binary")
    onehot = np.eye(4, dtype=np.uint8)[np.random.default_rng(0).integers(0, 4, (8, 64))]
    write_arrays(tmp_path / "dataset", DatasetDescription(name="short", task_type="binary", tasks=["motif"],
                                                          seq_len=64),
                 onehot, np.zeros((8, 1), dtype=np.float32), np.array(["test"] * 8))
    done = CliRunner().invoke(app, ["interpret", "filters", "--model", str(tmp_path / "model"),
                                    "--dataset", str(tmp_path / "dataset"), "--out", str(tmp_path / "out")])
    assert done.exit_code == 2, done.output
    assert (f"{tmp_path / 'dataset'} holds 64 bp windows; this model takes exactly {L} bp"
            in " ".join(done.output.split())), done.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command,option,value", [
    ("filters", "--max-sequences", "-5"), ("filters", "--max-sequences", "0"),
    ("filters", "--influence-sequences", "0"), ("filters", "--influence-sequences", "-1"),
    ("filters", "--max-logos", "-1"), ("attention", "--max-sequences", "0"),
    ("attention", "--pad", "-1"), ("attention", "--max-plots", "-1"),
])
def test_counts_out_of_range_are_refused_in_one_line(tmp_path, command, option, value):
    """--max-sequences -5 stopped with numpy's 'negative dimensions are not allowed';
    --max-sequences 0 reported on no sequences and --influence-sequences 0 an influence of 0
    for every filter; --influence-sequences -1 and --max-logos -1 dropped the last sequence or
    logo (Python's [:-1]). Each is a usage error naming the option."""
    from typer.testing import CliRunner

    from dnacnn.cli import app

    fasta = tmp_path / "seqs.fa"
    fasta.write_text(f">a\n{'ACGT' * 25}\n")
    done = CliRunner().invoke(app, ["interpret", command, "--model", str(tmp_path / "model"), "--fasta",
                                    str(fasta), "--out", str(tmp_path / "out"), option, value])
    assert done.exit_code == 2 and f"Invalid value for '{option}'" in done.output, done.output


def test_flat_filters_of_an_untrained_model_are_not_counted_as_matched(tmp_path):
    """An untrained network's filters on random DNA have nearly flat PFMs; TomTom still gives
    some of them q < 0.05 against JASPAR's long matrices (flat columns aligned with flat
    columns). The report counts as matched only matches whose alignment covers both motifs'
    information (the rule ``recovered`` uses), and keeps the q-alone count beside it."""
    from dnacnn.interpret.inputs import Sequences
    from dnacnn.interpret.report import filter_report
    from dnacnn.models import LoadedModel

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build("simple", {"seq_len": 100, "n_tasks": 1, "filters": 16, "width": 9, "hidden_units": 8}).eval()
    onehot = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (400, 100))]
    loaded = LoadedModel(model, "simple", model.config, ["t"], 100, "binary")
    summary = filter_report(loaded, Sequences([f"s{i}" for i in range(400)], onehot, None), tmp_path,
                            targets=jaspar_collection(), max_logos=0)
    assert summary["significant_q_0.05"] > 0  # the q-values alone would report matches
    assert summary["matched_q_0.05"] == 0


def test_a_pair_tomtom_leaves_unaligned_has_no_offset_not_a_cast_nan():
    """memelite leaves some pairs no offset (NaN: a uniform target scores every offset alike),
    run to run: filters.tsv held offset -9223372036854775808 (NaN cast to int) and a negative
    match_length_share; a NaN p-value was the 'lowest' for argmin."""
    from dnacnn.interpret.matching import TomtomResult

    flat = Motif("uni", "uni", np.full((1, 4), 0.25))
    sharp = Motif("a", "a", np.eye(4)[[0, 1, 2]])
    query = Motif("q", "q", np.eye(4)[[0, 1, 2, 3]])
    result = TomtomResult((query, query), (flat, sharp), p=np.array([[1.0, 0.5], [np.nan, 0.5]]),
                          q=np.array([[1.0, 1.0], [np.nan, 1.0]]), offsets=np.array([[np.nan, 0.0], [np.nan, 1.0]]),
                          overlaps=np.array([[np.nan, 3.0], [np.nan, 3.0]]), strands=np.zeros((2, 2)))
    rows = result.to(["uni"])
    assert rows["offset"].isna().all() and list(rows["overlap"]) == [0, 0]
    assert list(rows["query_coverage"]) == [0.0, 0.0] and list(rows["match_length_share"]) == [0.0, 0.0]
    best = result.best()
    assert list(best["match_id"]) == ["a", "a"] and list(best["offset"]) == [0, 1]


def test_a_report_on_unlabelled_fasta_links_only_what_it_wrote(trained, tmp_path, caplog):
    """index.html linked influence.parquet, which a report without labels (--fasta) never
    writes; memelite's multi-line UserWarning about few targets is one line of ours."""
    import logging
    import warnings

    from typer.testing import CliRunner

    from dnacnn.cli import app

    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">s{i}\n{decode(row)}\n" for i, row in enumerate(trained["onehot"][:60])))
    motifs = write_meme(jaspar_collection()[:5], tmp_path / "five.meme")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # none escapes to the console
        with caplog.at_level(logging.WARNING, logger="dnacnn"):
            done = CliRunner().invoke(app, ["interpret", "filters", "--model", str(trained["root"] / "model"), "--fasta",
                                            str(fasta), "--motifs", str(motifs), "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert "TomTom against 5 motif(s) only" in caplog.text
    page = (tmp_path / "out" / "index.html").read_text()
    links = re.findall(r"href='([^']+)'", page)
    assert "filters.tsv" in links and "influence.parquet" not in links
    assert all((tmp_path / "out" / link).is_file() for link in links), links
    split = CliRunner().invoke(app, ["interpret", "filters", "--model", str(trained["root"] / "model"), "--fasta", str(fasta),
                                     "--split", "train", "--out", str(tmp_path / "out2")])
    assert split.exit_code == 2 and "--split chooses a split of a --dataset; --fasta has none" in split.output
