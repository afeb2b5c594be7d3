"""Attention maps of the multi-scale model on the tutorial's synthetic task.

A small MultiScaleCNN is trained here (plain PyTorch, 200 steps) on the
tutorial's binary task (positives carry one of TATAAA, CAAT, GGGCGG, TTGACA).
The attention mass within the implanted sites is measured and printed; with
this small model it is about what the sites' length alone gets (see
BENCHMARKS.md), so the test checks the measurement, not a learned enrichment.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dnacnn.data.simulate_tutorial import TutorialConfig, write_tutorial
from dnacnn.interpret import attention_maps, site_attention
from dnacnn.interpret.inputs import dataset_sequences
from dnacnn.interpret.plots import plot_attention
from dnacnn.interpret.report import attention_report
from dnacnn.models import LoadedModel, MultiScaleConfig, RCAverage, build


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("attention")
    write_tutorial(root / "dataset", TutorialConfig(n_samples=3000, length=100, seed=1))
    train = dataset_sequences(root / "dataset", "train")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend
    try:
        torch.manual_seed(0)
        cfg = MultiScaleConfig(seq_len=100, filters=16, dense=(32,), dense_dropouts=(0.1,),
                               branch_dropout=0.1, n_tasks=1)
        model = build("multiscale", cfg)
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        x = torch.from_numpy(train.onehot.copy()).float().permute(0, 2, 1)
        y = torch.from_numpy(train.labels.copy())
        for _ in range(200):
            idx = torch.randint(0, len(x), (64,))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    loaded = LoadedModel(model.eval(), "multiscale", cfg, ["motif"], 100, "binary")
    return {"root": root, "loaded": loaded}


def test_site_attention_is_the_mass_within_the_padded_site():
    attention = np.full((2, 1, 20), 0.02)
    attention[0, 0, 5:9] = 0.17  # 4 positions carry 0.68 of the mass; the other 16 share 0.32
    attention[1, 0] = 0.05
    mass, share = site_attention(attention, np.array([6, 18]), np.array([8, 25]), pad=1)
    np.testing.assert_allclose(mass[:, 0], [0.68, 0.15])  # sites [5, 9) and [17, 20) (clipped)
    np.testing.assert_allclose(share, [4 / 20, 3 / 20])


@pytest.mark.slow  # trains a small model (about 20 s on a quiet machine)
def test_attention_maps_of_the_trained_model_and_their_mass_on_the_implanted_sites(trained):
    seqs = dataset_sequences(trained["root"] / "dataset", "test")
    positives = seqs.sites[seqs.sites["motif"].isin(["TATAAA", "GGGCGG", "TTGACA", "CAAT"])]
    attention, widths = attention_maps(trained["loaded"].model, seqs.onehot)
    assert widths == (3, 7, 15, 25) and attention.shape == (len(seqs.names), 4, 100)
    np.testing.assert_allclose(attention.sum(axis=2), 1, atol=1e-5)
    assert attention.std(axis=2).min() > 0  # trained maps are not flat
    rows = positives["sequence"].to_numpy()
    assert len(rows) > 100
    mass, share = site_attention(attention[rows], positives["start"].to_numpy(), positives["end"].to_numpy())
    assert ((mass >= 0) & (mass <= 1)).all() and ((share > 0) & (share < 0.2)).all()
    print("attention mass / length share per branch:",
          dict(zip(widths, (mass.mean(axis=0) / share.mean()).round(2))))


@pytest.mark.slow  # trains a small model (about 20 s on a quiet machine)
def test_attention_of_a_strand_averaged_model_is_the_inner_models_forward_strand(trained):
    seqs = dataset_sequences(trained["root"] / "dataset", "test", max_sequences=5)
    plain, _ = attention_maps(trained["loaded"].model, seqs.onehot)
    wrapped, _ = attention_maps(RCAverage(trained["loaded"].model), seqs.onehot)
    np.testing.assert_array_equal(plain, wrapped)
    with pytest.raises(ValueError, match="multi-scale"):
        attention_maps(build("simple", {"seq_len": 100}), seqs.onehot)


@pytest.mark.slow  # trains a small model (about 20 s on a quiet machine)
def test_attention_report_tables_figures_and_page(trained, tmp_path):
    seqs = dataset_sequences(trained["root"] / "dataset", "test", max_sequences=40)
    summary = attention_report(trained["loaded"], seqs, tmp_path, max_plots=2)
    assert set(summary["enrichment"]) == {3, 7, 15, 25} and summary["sites"] > 0
    assert json.loads((tmp_path / "summary.json").read_text())["sequences"] == 40
    page = (tmp_path / "index.html").read_text()
    for name in ("attention.parquet", "attention_sites.tsv", "attention_0.png", "attention_1.png"):
        assert f"'{name}'" in page and (tmp_path / name).exists()
    axes = plot_attention(np.full((4, 100), 0.01), (3, 7, 15, 25), [(10, 16)], title="seq0")
    assert [ax.get_ylabel() for ax in axes] == ["w3", "w7", "w15", "w25"]
    assert axes[0].get_title() == "seq0" and axes[-1].get_xlabel() == "position (bp)"
    assert len(axes[0].patches) == 1  # the site, shaded
