"""Ground truth: on the simulated 164-cell-type accessibility task, a trained model's scores
rank motif-breaking variants above neutral ones, in the cell types where the motif is active.

The simulator plants real JASPAR motif instances into the fixture's real chr20 sequence,
labels each window in each of the 164 Basset cell types by the factors active there, and
writes breaking variants (the 3 most informative bases of an instance) and neutral SNVs with
the cell types each breaking variant affects. A small Basset-shaped model (one conv layer
of motif-sized filters, a max-pool over the whole window, a dense layer) is trained here
with a plain torch loop, saved as a checkpoint, and the batch job scores the simulated VCF.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from sklearn.metrics import roc_auc_score

from conftest import FIXTURE_FASTA
from dnacnn import models
from dnacnn.data import simulate_accessibility as sim
from dnacnn.data.dataset_io import DatasetDescription, column_to_numpy
from dnacnn.scoring.batch import score_vcf

LENGTH = 200
FACTORS = ("CTCF", "GATA1", "SPI1", "CEBPB", "FOXA1", "HNF4A")


def train(x: np.ndarray, y: np.ndarray, epochs: int = 12, seed: int = 0, lr: float = 1e-2) -> torch.nn.Module:
    """x (N, 4, L) float32, y (N, T) float32 -> a trained Basset-shaped model (eval mode)."""
    torch.manual_seed(seed)
    model = models.build("basset", dict(
        seq_len=x.shape[2], n_tasks=y.shape[1], conv_filters=(128,), conv_widths=(19,),
        pool_widths=(x.shape[2] - 18,), hidden_units=(64,), hidden_dropouts=(0.1,),
    ))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), 64):
            xb, yb = xs[order[i : i + 64]], ys[order[i : i + 64]]
            flip = torch.rand(len(xb), generator=gen) < 0.5  # motifs lie on either strand
            xb = torch.where(flip[:, None, None], xb.flip(1, 2), xb)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def test_motif_breaking_variants_rank_first_in_the_cell_types_of_their_motif(ray_session, tmp_path):
    data = tmp_path / "sim"
    tasks = models.basset_cell_types()
    config = sim.AccessibilityConfig(
        n_windows=5000, length=LENGTH, factors=FACTORS, motif_fraction=0.5,
        break_bases=3, n_breaking=100, n_neutral=100, seed=0,
    )
    description = sim.simulate_accessibility(FIXTURE_FASTA, data, tasks, config)
    assert len(description.tasks) == 164

    table = pq.read_table(data / "train")
    x = column_to_numpy(table.column("onehot")).astype(np.float32).transpose(0, 2, 1)  # (N, 4, L)
    y = column_to_numpy(table.column("labels")).astype(np.float32)  # (N, 164)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on two busy cores run several times slower
    try:
        model = train(x, y)
    finally:
        torch.set_num_threads(threads)
    models.save(model, tmp_path / "model", tasks, task_type="multitask")

    summary = score_vcf(str(tmp_path / "model"), data / "genome.fa.gz", data / "variants.vcf.gz",
                        tmp_path / "scores", rc=True, plot=True)
    assert summary["alleles_rejected"] == 0
    truth = pd.read_csv(data / "variant_effects.tsv", sep="\t", dtype={"chrom": str})
    scores = pq.read_table(tmp_path / "scores" / "scores").to_pandas()
    merged = truth.merge(scores, on=["chrom", "pos", "ref", "alt"], validate="one_to_one")
    assert len(merged) == len(truth) == 200

    auroc = roc_auc_score(merged["breaks_motif"], merged["max_abs_delta"])
    assert auroc >= 0.9, f"breaking vs neutral AUROC by max |delta| = {auroc:.3f}"

    # The cell types a breaking variant affects (motif active there, no other instance keeps
    # the window open) lose more accessibility than the others.
    tasks_arr = np.array(description.tasks)
    per_variant, lower = [], []
    for row in merged[merged["breaks_motif"] == 1].itertuples():
        affected = np.isin(tasks_arr, str(row.affected_cell_types).split(","))
        if 0 < affected.sum() < len(tasks_arr):
            per_variant.append(roc_auc_score(affected, -row.delta))
            lower.append(row.delta[affected].mean() < row.delta[~affected].mean())
    assert len(per_variant) >= 50
    assert np.median(per_variant) >= 0.85, f"median per-variant AUROC over cell types {np.median(per_variant):.3f}"
    assert np.mean(lower) >= 0.85, f"only {np.mean(lower):.0%} of breaking variants lower their cell types most"
    print(f"AUROC {auroc:.3f}; per-variant cell-type AUROC median {np.median(per_variant):.3f}; lower {np.mean(lower):.2f}")
