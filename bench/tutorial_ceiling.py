"""The tutorial task's ceiling, and how close a trained model gets to it.

    dnacnn simulate tutorial --out data/datasets/tutorial
    dnacnn train --config jobs/configs/tutorial_multiscale.yaml
    .venv/bin/python bench/tutorial_ceiling.py [--dataset data/datasets/tutorial] \
        [--run runs/multiscale-tutorial]

Positives carry one of four short motifs; but CAAT (4 bp) also occurs by chance in about
half of random 200 bp sequences, so the labels cannot all be recovered. The baseline is
an oracle that knows the four motifs and sees which of them occur in a sequence: its
score is P(positive | presence pattern), counted on the train split. Printed: the
oracle's and the model's test AUROC and accuracy, and their ratio.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

from dnacnn.data.dataset_io import column_to_numpy, split_dir
from dnacnn.data.simulate_tutorial import POSITIVE_MOTIFS
from dnacnn.sequence import decode
from dnacnn.train.run_state import TEST_PREDICTIONS, read_test_predictions


def presence_patterns(dataset: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(pattern (N,) int: bit i set when motif i occurs, labels (N,) 0/1) of one split."""
    table = pq.read_table(split_dir(dataset, split))
    sequences = decode(column_to_numpy(table.column("onehot")))
    found = np.array([[motif in s for motif in POSITIVE_MOTIFS] for s in sequences])
    return found @ (1 << np.arange(len(POSITIVE_MOTIFS))), column_to_numpy(table.column("labels"))[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("data/datasets/tutorial"))
    parser.add_argument("--run", type=Path, default=Path("runs/multiscale-tutorial"))
    args = parser.parse_args()

    train_pattern, train_y = presence_patterns(args.dataset, "train")
    test_pattern, test_y = presence_patterns(args.dataset, "test")
    rate = {p: train_y[train_pattern == p].mean() for p in np.unique(train_pattern)}
    oracle = np.array([rate.get(p, train_y.mean()) for p in test_pattern])
    oracle_auroc, oracle_acc = roc_auc_score(test_y, oracle), np.mean((oracle > 0.5) == test_y)

    finals = [d for d in args.run.glob("checkpoint_*") if (d / TEST_PREDICTIONS).exists()]
    if not finals:
        raise SystemExit(f"no final checkpoint (with {TEST_PREDICTIONS}) in {args.run}: train first")
    final = max(finals)  # checkpoint names end in their timestamp
    test = read_test_predictions(final)
    y, prob = test["y"][:, 0], test["prob"][:, 0]
    model_auroc, model_acc = roc_auc_score(y, prob), np.mean((prob > 0.5) == y)

    print(f"{'':24}{'test AUROC':>12}{'accuracy':>10}")
    print(f"{'motif-presence oracle':24}{oracle_auroc:12.3f}{oracle_acc:10.3f}")
    print(f"{'model (' + final.parent.name + ')':24}{model_auroc:12.3f}{model_acc:10.3f}")
    print(f"model / oracle: AUROC {model_auroc / oracle_auroc:.3f}, accuracy {model_acc / oracle_acc:.3f}")


if __name__ == "__main__":
    main()
