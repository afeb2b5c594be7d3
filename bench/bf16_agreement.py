"""bf16 against fp32 (and the exact engine against whole windows) on a trained model.

    DNACNN_SHARED_DATA=../shared/data PYTHONPATH=platform .venv/bin/python bench/bf16_agreement.py [--model DIR] [--n 10000]

``--model``: a checkpoint folder; default the newest checkpoint of the main job's run
(``data/runs/main-basset164-*``, after ``make run``). ``--n`` SNVs at random real chr20
positions (``bench/variant_scoring.py``'s sampler, seed 0), scored by ``VariantScorer`` in fp32
and in bf16, plain and RC-averaged; printed per strand mode: the largest difference of the exact
engine from whole-window deltas, the Spearman correlation of max |delta| (bf16 against fp32), and
the share of variants with max |delta| >= 0.01 whose strongest cell type is the same.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import variant_scoring as vs  # noqa: E402

from dnacnn.models import load  # noqa: E402
from dnacnn.scoring.scorer import VariantScorer  # noqa: E402
from dnacnn.sequence import encode_batch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder (default: the main job's newest)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    found = sorted(glob.glob(str(REPO / "data" / "runs" / "main-basset164-*" / "checkpoint_2*")))
    model_dir = args.model or (found[-1] if found else None)
    if model_dir is None:
        raise SystemExit("no --model and no main-job checkpoint under data/runs (run `make run` first)")
    model = load(model_dir).model.eval()
    import pysam

    _, pos1, _, alt = vs.sample_snvs(args.n)
    fasta, length = pysam.FastaFile(str(vs.FASTA)), vs.L
    seqs = [fasta.fetch("20", p - 1 - length // 2, p - 1 - length // 2 + length).upper() for p in pos1]
    ref = encode_batch(seqs, length)
    alt_windows = encode_batch([s[:length // 2] + a + s[length // 2 + 1:] for s, a in zip(seqs, alt)], length)
    print(f"{model_dir}: {args.n} SNVs")
    for rc in (False, True):
        deltas = {p: VariantScorer(model_dir, vs.FASTA, rc=rc, batch_size=64, precision=p)
                  .score_onehot(ref, alt_windows)["delta"] for p in ("fp32", "bf16")}
        naive = vs.naive_deltas(model, ref, alt_windows, rc, 64)
        exact, fast = deltas["fp32"], deltas["bf16"]
        top_exact, top_fast = np.abs(exact).max(1), np.abs(fast).max(1)
        strong = top_exact >= 0.01
        same = float((np.abs(exact).argmax(1) == np.abs(fast).argmax(1))[strong].mean())
        print(f"rc={rc}: exact vs whole windows max |diff| {np.abs(exact - naive).max():.2e}; bf16 vs fp32: "
              f"Spearman of max|delta| {spearmanr(top_exact, top_fast).statistic:.4f}, {int(strong.sum())} "
              f"variants with max|delta| >= 0.01, same strongest cell type for {same:.1%}, max |error| "
              f"{np.abs(exact - fast).max():.2e}", flush=True)


if __name__ == "__main__":
    main()
