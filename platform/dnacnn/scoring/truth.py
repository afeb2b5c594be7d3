"""How well variant scores recover a simulated ground truth.

The simulated accessibility task (``dnacnn.data.simulate_accessibility``) writes
``variant_effects.tsv``: for each simulated variant, whether it breaks a planted
motif instance (``breaks_motif``) and which cell types lose accessibility
(``affected_cell_types``). Here the scores of a batch job are checked against it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def recovery_metrics(scores: pd.DataFrame, effects: pd.DataFrame, tasks: list[str]) -> dict:
    """Ranking quality of |delta| against the truth.

    Args:
        scores: one row per scored allele with ``id``, ``delta`` (length-T arrays in
            task order) and ``max_abs_delta``.
        effects: ``variant_effects.tsv`` (id, breaks_motif, affected_cell_types).
        tasks: the T task names, in delta order.
    Returns:
        ``variant_auroc``: AUROC of max |delta| for motif-breaking vs neutral variants;
        ``celltype_auroc``: mean over breaking variants of the AUROC of |delta| per
        cell type, affected vs unaffected cell types; ``celltype_precision``: mean
        share of each breaking variant's top-k cell types by |delta| that are affected
        (k = its number of affected cell types); and the counts behind them.
    """
    merged = scores.merge(effects[["id", "breaks_motif", "affected_cell_types"]], on="id", how="inner")
    if merged["breaks_motif"].nunique() < 2:
        raise ValueError("the truth needs both motif-breaking and neutral variants among the scored ones")
    index = {task: i for i, task in enumerate(tasks)}
    variant_auroc = roc_auc_score(merged["breaks_motif"], merged["max_abs_delta"])
    aurocs, precisions = [], []
    for _, row in merged[merged["breaks_motif"] == 1].iterrows():
        affected = [index[t] for t in str(row["affected_cell_types"]).split(",") if t in index]
        if not affected or len(affected) == len(tasks):
            continue
        magnitude = np.abs(np.asarray(row["delta"], dtype=np.float64))
        truth = np.zeros(len(tasks), dtype=int)
        truth[affected] = 1
        aurocs.append(roc_auc_score(truth, magnitude))
        top = np.argsort(-magnitude)[: len(affected)]
        precisions.append(float(truth[top].mean()))
    return {
        "variant_auroc": float(variant_auroc),
        "celltype_auroc": float(np.mean(aurocs)) if aurocs else float("nan"),
        "celltype_precision": float(np.mean(precisions)) if precisions else float("nan"),
        "n_breaking": int((merged["breaks_motif"] == 1).sum()),
        "n_neutral": int((merged["breaks_motif"] == 0).sum()),
    }


def plot_recovery(scores: pd.DataFrame, effects: pd.DataFrame, metrics: dict, path: str | Path) -> Path:
    """Distributions of max |delta| for motif-breaking vs neutral variants, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    merged = scores.merge(effects[["id", "breaks_motif"]], on="id", how="inner")
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, max(float(merged["max_abs_delta"].max()), 1e-6), 40)
    for flag, label in ((0, "neutral"), (1, "breaks a planted motif")):
        values = merged.loc[merged["breaks_motif"] == flag, "max_abs_delta"]
        ax.hist(values, bins=bins, alpha=0.6, label=f"{label} (n={len(values)})")
    ax.set_xlabel("max |delta| over cell types (alt − ref accessibility)")
    ax.set_ylabel("variants")
    ax.set_title(
        f"Simulated variants: AUROC {metrics['variant_auroc']:.3f}; "
        f"cell-type AUROC {metrics['celltype_auroc']:.3f}"
    )
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
