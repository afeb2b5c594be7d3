"""Dense variants: reference windows that overlap share their conv tower.

    DNACNN_SHARED_DATA=../shared/data .venv/bin/python bench/dense_scoring.py [--n 4000] [--spacings 10,30,100,300]

A dense VCF (1000 Genomes, gnomAD: a site every 10 to 50 bp) gives each variant a
600 bp reference window that overlaps its neighbours'. For ``--n`` SNVs at random
positions ``--spacings`` bp apart on average along real GRCh37 chr20 (REF the
genome's base, ALT the next one), on windows already built, with the same model as
``bench/variant_scoring.py`` (cached there, or ``--model DIR``), 2 torch threads:

- ``shared``: ``VariantScorer.score_onehot(ref, alt, starts)``: the engine, told
  where the windows start, runs each conv once over the overlapping windows' union
  (:mod:`dnacnn.scoring.shared_reference`);
- ``alone``: the same without the starts (each reference window whole, as for
  scattered variants);
- ``tangermeme``: ``substitution_effect`` on the same windows (the fastest peer in
  ``bench/variant_scoring.py``; its rate does not depend on the spacing), once;
- deviations: max |delta - naive delta| (probabilities), the naive deltas being
  whole ref and alt windows through ``predict_logits``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from variant_scoring import CACHE, FASTA, L, finish, naive_deltas, tangermeme_deltas, timed, trained_model  # noqa: E402

from dnacnn import models  # noqa: E402
from dnacnn.genome import Genome  # noqa: E402
from dnacnn.scoring import VariantScorer  # noqa: E402
from dnacnn.scoring.allele_windows import variant_windows, window_start  # noqa: E402

BASES = "ACGT"


def dense_snvs(genome: Genome, n: int, spacing: int, first: int = 30_000_000, seed: int = 0):
    """n SNVs at distinct random positions (seeded), ``spacing`` bp apart on average, in a
    stretch of chr20 from the first position >= ``first`` that holds no N: (pos1, ref, alt)."""
    span = n * spacing + L
    start = first
    while "N" in genome.fetch("20", start, start + span).upper():
        start += span
    rng = np.random.default_rng(seed)
    pos0 = start + L // 2 + np.sort(rng.choice(n * spacing, size=n, replace=False))
    ref = [genome.fetch("20", int(p), int(p) + 1).upper() for p in pos0]
    alt = [BASES[(BASES.index(b) + 1) % 4] for b in ref]
    return pos0 + 1, ref, alt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--spacings", default="10,30,100,300", help="bp between neighbouring SNVs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rc", action="store_true", help="average both strands (VariantScorer(rc=True))")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not FASTA.exists():
        raise SystemExit(f"needs {FASTA} (../shared/data beside the clone)")
    model_dir = args.model or trained_model(CACHE, 8000, 1, 4096)
    loaded = models.load(model_dir)
    genome = Genome(FASTA)
    load = os.getloadavg()
    print(f"{args.n} SNVs per spacing, rc={args.rc}, Basset {L} bp x {len(loaded.tasks)} tasks, {args.threads} torch threads, "
          f"load average {load[0]:.2f}", flush=True)
    results: dict = {"n": args.n, "rc": args.rc, "load_start": load, "rows": []}
    peer = None
    for spacing in (int(s) for s in args.spacings.split(",")):
        pos1, ref_allele, alt_allele = dense_snvs(genome, args.n, spacing)
        ref, alt = variant_windows(genome, ["20"] * args.n, pos1 - 1, ref_allele, alt_allele, L)
        starts = window_start(pos1 - 1, L) + (1 << 40)
        naive = naive_deltas(loaded.model, ref, alt, args.rc, args.batch_size)
        row = {"spacing": spacing}
        for precision in ("fp32", "bf16"):
            scorer = VariantScorer(loaded, FASTA, rc=args.rc, batch_size=args.batch_size, precision=precision)
            scorer.score_onehot(ref[:256], alt[:256], starts[:256])
            for name, given in (("shared", starts), ("alone", None)):
                sec, got = timed(lambda: scorer.score_onehot(ref, alt, given)["delta"], args.repeats)
                row[f"{name}_{precision}"] = args.n / sec
                row[f"{name}_{precision}_dev"] = float(np.abs(got - naive).max())
        if peer is None:
            sec, got = timed(lambda: tangermeme_deltas(loaded.model, ref, alt, args.rc, args.batch_size), 1)
            peer = args.n / sec
            results["tangermeme"] = dict(rate=peer, deviation=float(np.abs(got - naive).max()))
            print(f"  tangermeme substitution_effect: {peer:.0f} variants/s", flush=True)
        row["shared_over_alone_fp32"] = row["shared_fp32"] / row["alone_fp32"]
        row["shared_fp32_over_peer"] = row["shared_fp32"] / peer
        row["shared_bf16_over_peer"] = row["shared_bf16"] / peer
        results["rows"].append(row)
        print(f"  every {spacing:>4} bp: shared fp32 {row['shared_fp32']:6.0f}/s (dev {row['shared_fp32_dev']:.1e}), "
              f"alone fp32 {row['alone_fp32']:6.0f}/s: {row['shared_over_alone_fp32']:.2f}x; bf16 shared "
              f"{row['shared_bf16']:6.0f}/s, alone {row['alone_bf16']:6.0f}/s; shared / tangermeme: fp32 "
              f"{row['shared_fp32_over_peer']:.2f}x, bf16 {row['shared_bf16_over_peer']:.2f}x", flush=True)
    finish(results, args.json)


if __name__ == "__main__":
    main()
