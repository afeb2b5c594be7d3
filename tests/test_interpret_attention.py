"""Attention maps of the multi-scale model on the tutorial's synthetic task.

A small MultiScaleCNN with standard attention pooling (``attention_pooling="sum"``,
as jobs/configs/tutorial_multiscale.yaml) is trained here (plain PyTorch, 1,000
steps) on the tutorial's binary task, 60 bp (positives carry one of TATAAA, CAAT,
GGGCGG, TTGACA). Its attention falls on the implanted sites: the mass within a site
(+- 3 bp) is at least twice the site's length share on the best branch, which
neither the untrained model nor the same model trained on shuffled labels reaches.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dnacnn.data.simulate_tutorial import POSITIVE_MOTIFS, TutorialConfig, write_tutorial
from dnacnn.interpret import attention_maps, site_attention
from dnacnn.interpret.inputs import dataset_sequences
from dnacnn.interpret.plots import plot_attention
from dnacnn.interpret.report import attention_report
from dnacnn.models import LoadedModel, MultiScaleConfig, RCAverage, build

L = 60
CONFIG = MultiScaleConfig(seq_len=L, filters=16, dense=(32,), dense_dropouts=(0.1,), branch_dropout=0.1,
                          n_tasks=1, attention_pooling="sum")


def train_model(onehot: np.ndarray, labels: np.ndarray, steps: int) -> torch.nn.Module:
    """CONFIG trained from seed 0 for ``steps`` steps of 64 (Adam, lr 5e-3); eval mode."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend
    try:
        torch.manual_seed(0)
        model = build("multiscale", CONFIG)
        opt = torch.optim.Adam(model.parameters(), 5e-3)
        x = torch.from_numpy(onehot.copy()).float().permute(0, 2, 1)
        y = torch.from_numpy(labels.copy())
        for _ in range(steps):
            idx = torch.randint(0, len(x), (64,))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("attention")
    write_tutorial(root / "dataset", TutorialConfig(n_samples=4000, length=L, seed=1))
    train = dataset_sequences(root / "dataset", "train")
    model = train_model(train.onehot, train.labels, 1000)
    loaded = LoadedModel(model, "multiscale", CONFIG, ["motif"], L, "binary")
    return {"root": root, "loaded": loaded, "train": train}


def enrichment(model: torch.nn.Module, seqs) -> dict[int, float]:
    """Per branch width: mean attention mass within the positives' implanted sites (+- 3 bp)
    over the mean length share of those intervals (1: no better than uniform)."""
    positives = seqs.sites[seqs.sites["motif"].isin(POSITIVE_MOTIFS)]
    attention, widths = attention_maps(model, seqs.onehot[positives["sequence"].to_numpy()])
    mass, share = site_attention(attention, positives["start"].to_numpy(), positives["end"].to_numpy())
    return {w: float(mass[:, b].mean() / share.mean()) for b, w in enumerate(widths)}


def test_site_attention_is_the_mass_within_the_padded_site():
    attention = np.full((2, 1, 20), 0.02)
    attention[0, 0, 5:9] = 0.17  # 4 positions carry 0.68 of the mass; the other 16 share 0.32
    attention[1, 0] = 0.05
    mass, share = site_attention(attention, np.array([6, 18]), np.array([8, 25]), pad=1)
    np.testing.assert_allclose(mass[:, 0], [0.68, 0.15])  # sites [5, 9) and [17, 20) (clipped)
    np.testing.assert_allclose(share, [4 / 20, 3 / 20])


@pytest.mark.slow  # trains two small models (about 25 s on a quiet machine)
def test_attention_of_the_trained_model_falls_on_the_implanted_sites(trained):
    seqs = dataset_sequences(trained["root"] / "dataset", "test")
    attention, widths = attention_maps(trained["loaded"].model, seqs.onehot)
    assert widths == (3, 7, 15, 25) and attention.shape == (len(seqs.names), 4, L)
    np.testing.assert_allclose(attention.sum(axis=2), 1, atol=1e-5)
    positives = seqs.sites[seqs.sites["motif"].isin(POSITIVE_MOTIFS)]
    assert len(positives) > 300
    mass, share = site_attention(attention[positives["sequence"].to_numpy()], positives["start"].to_numpy(),
                                 positives["end"].to_numpy())
    assert ((mass >= 0) & (mass <= 1)).all() and ((share > 0) & (share <= 12 / L)).all()
    learned = enrichment(trained["loaded"].model, seqs)
    untrained = enrichment(build("multiscale", CONFIG).eval(), seqs)
    shuffled = np.random.default_rng(0).permutation(trained["train"].labels)
    control = enrichment(train_model(trained["train"].onehot, shuffled, 1000), seqs)
    print("attention mass / length share per branch: trained", learned, "untrained", untrained,
          "shuffled labels", control)
    assert max(learned.values()) >= 2  # a multiple of the sites' length share
    assert max(untrained.values()) < 1.5 and max(control.values()) < 1.5


@pytest.mark.slow  # trains a small model (about 12 s on a quiet machine)
def test_attention_of_a_strand_averaged_model_is_the_inner_models_forward_strand(trained):
    seqs = dataset_sequences(trained["root"] / "dataset", "test", max_sequences=5)
    plain, _ = attention_maps(trained["loaded"].model, seqs.onehot)
    wrapped, _ = attention_maps(RCAverage(trained["loaded"].model), seqs.onehot)
    np.testing.assert_array_equal(plain, wrapped)
    with pytest.raises(ValueError, match="multi-scale"):
        attention_maps(build("simple", {"seq_len": L}), seqs.onehot)


@pytest.mark.slow  # trains a small model (about 12 s on a quiet machine)
def test_attention_report_tables_figures_and_page(trained, tmp_path):
    seqs = dataset_sequences(trained["root"] / "dataset", "test", max_sequences=40)
    summary = attention_report(trained["loaded"], seqs, tmp_path, max_plots=2)
    assert set(summary["enrichment"]) == {3, 7, 15, 25} and summary["sites"] > 0
    # Per motif: the implanted motifs apart from the negatives' decoys.
    motifs = set(seqs.sites.drop_duplicates("sequence")["motif"])
    assert set(summary["enrichment_by_motif"]) == motifs and len(motifs) > 2
    positive = [m for m in motifs if m in POSITIVE_MOTIFS][0]
    sites = seqs.sites.drop_duplicates("sequence")
    sites = sites[sites["motif"] == positive]
    mass, share = site_attention(attention_maps(trained["loaded"].model, seqs.onehot)[0][sites["sequence"]],
                                 sites["start"].to_numpy(), sites["end"].to_numpy())
    assert summary["enrichment_by_motif"][positive] == pytest.approx(
        dict(zip((3, 7, 15, 25), mass.mean(axis=0) / share.mean())))
    assert json.loads((tmp_path / "summary.json").read_text())["sequences"] == 40
    page = (tmp_path / "index.html").read_text()
    for name in ("attention.parquet", "attention_sites.tsv", "attention_0.png", "attention_1.png"):
        assert f"'{name}'" in page and (tmp_path / name).exists()
    axes = plot_attention(np.full((4, 100), 0.01), (3, 7, 15, 25), [(10, 16)], title="seq0")
    assert [ax.get_ylabel() for ax in axes] == ["w3", "w7", "w15", "w25"]
    assert axes[0].get_title() == "seq0" and axes[-1].get_xlabel() == "position (bp)"
    assert len(axes[0].patches) == 1  # the site, shaded


def test_a_broken_dataset_folder_is_refused_in_one_line(tmp_path):
    """A dataset.json with an unknown or a missing key, or holding a list, gave a TypeError
    stack trace (exit 1); one that is not JSON a message not naming it; a missing split
    'error: DIR/valid'. Each now names the file or folder and the reason."""
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    torch.manual_seed(0)
    save(build("multiscale", CONFIG).eval(), tmp_path / "model", ["motif"], task_type="binary")
    dataset = tmp_path / "dataset"
    write_tutorial(dataset, TutorialConfig(n_samples=40, length=L, seed=1))
    good = json.loads((dataset / "dataset.json").read_text())
    path = dataset / "dataset.json"

    def attention(*extra):
        done = CliRunner().invoke(app, ["interpret", "attention", "--model", str(tmp_path / "model"), "--dataset",
                                        str(dataset), "--out", str(tmp_path / "out"), *extra])
        assert done.exit_code == 2 and not isinstance(done.exception, TypeError), done.output
        return " ".join(done.output.split())

    for text, reason in ((json.dumps({**good, "bogus": 1}), "unknown key(s) bogus"),
                         (json.dumps({k: v for k, v in good.items() if k != "tasks"}), "missing key(s) tasks"),
                         ("[1]", "holds a JSON list, not a dataset description"),
                         ("{", "is not JSON (Expecting property name")):
        path.write_text(text)
        said = attention()
        assert str(path) in said and reason in said, said
    path.write_text(json.dumps(good))
    for part in (dataset / "valid").iterdir():
        part.unlink()
    (dataset / "valid").rmdir()
    assert f"{dataset} has no valid split (no folder {dataset / 'valid'})" in attention("--split", "valid")


def test_attention_command_names_its_own_options_and_bases_1_based(tmp_path):
    """Both --dataset and --fasta, or neither, said 'give exactly one of --dataset, --fasta,
    --bed (with --genome)': attention has no --bed or --genome. A '-' in a record was
    'at position 50', 0-based, where every other message counts from 1."""
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    torch.manual_seed(0)
    save(build("multiscale", CONFIG).eval(), tmp_path / "model", ["motif"], task_type="binary")
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(f">ok\n{'ACGT' * 15}\n")
    gap = tmp_path / "gap.fa"
    gap.write_text(f">g\n{'ACGT' * 12}AC-{'A' * 9}\n")

    def attention(*sources):
        done = CliRunner().invoke(app, ["interpret", "attention", "--model", str(tmp_path / "model"), *sources,
                                        "--out", str(tmp_path / "out")])
        assert done.exit_code == 2 and len(done.output.strip().splitlines()) == 1, done.output
        return done.output

    for sources in (["--fasta", str(fasta), "--dataset", str(tmp_path)], []):
        said = attention(*sources)
        assert "give exactly one of --dataset or --fasta;" in said and "--bed" not in said and "--genome" not in said
    assert f"{gap}: record g has '-' at base 51 (1-based)" in attention("--fasta", str(gap))
    filters = CliRunner().invoke(app, ["interpret", "filters", "--model", str(tmp_path / "model"),
                                       "--out", str(tmp_path / "out")])
    assert filters.exit_code == 2 and "give exactly one of --dataset, --fasta, --bed (with --genome)" in filters.output


def test_record_names_with_a_tab_or_an_emoji_are_plotted_without_warnings(tmp_path):
    """A FASTA name with a tab (or a character the font lacks) became a figure title and
    printed matplotlib's 'Glyph 9 missing from font(s) DejaVu Sans' warnings, with source
    paths, on the console; titles now write such characters as escapes."""
    import warnings

    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.interpret.plots import label
    from dnacnn.models import save

    torch.manual_seed(0)
    save(build("multiscale", CONFIG).eval(), tmp_path / "model", ["motif"], task_type="binary")
    fasta = tmp_path / "names.fa"
    fasta.write_text(f">my seq\twith tab\n{'ACGT' * 15}\n>séquence \U0001f9ec\n{'TTGACA' * 10}\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = CliRunner().invoke(app, ["interpret", "attention", "--model", str(tmp_path / "model"), "--fasta",
                                        str(fasta), "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert [str(w.message) for w in caught] == []
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["attention_0.png", "attention_1.png"]
    assert (label("my seq\twith tab"), label("séquence \U0001f9ec")) == ("my seq\\twith tab", "séquence \\U0001f9ec")


def test_fasta_reports_honour_max_sequences_and_link_only_what_they_wrote(tmp_path, caplog):
    """--max-sequences was ignored with --fasta (every record used, not a word); index.html linked
    attention_sites.tsv, which only a dataset with known sites gives; ISM of a multi-scale
    model took any length (20 kb: minutes, then out of memory) and is now refused past its limit."""
    import logging
    import re

    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.interpret.report import MAX_ISM_LENGTH
    from dnacnn.models import save

    torch.manual_seed(0)
    save(build("multiscale", CONFIG).eval(), tmp_path / "model", ["motif"], task_type="binary")
    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">r{i}\n{'ACGT' * 15}\n" for i in range(3)))
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        done = CliRunner().invoke(app, ["interpret", "attention", "--model", str(tmp_path / "model"), "--fasta",
                                        str(fasta), "--max-sequences", "2", "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["sequences"] == 2
    assert f"{fasta}: using its first 2 of 3 records (--max-sequences)" in caplog.text
    links = re.findall(r"href='([^']+)'", (tmp_path / "out" / "index.html").read_text())
    assert "attention.parquet" in links and "attention_sites.tsv" not in links
    assert all((tmp_path / "out" / link).is_file() for link in links), links

    long = tmp_path / "long.fa"
    long.write_text(f">long\n{'ACGT' * (MAX_ISM_LENGTH // 4 + 1)}\n")
    refused = CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--fasta", str(long),
                                       "--out", str(tmp_path / "ism")])
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1, refused.output
    assert f"{MAX_ISM_LENGTH + 4:,} bp sequences" in refused.output and f"at most {MAX_ISM_LENGTH:,} bp" in refused.output
