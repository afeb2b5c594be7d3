"""Variant scoring speed: the mutant-effect engine against the naive forward and the peers.

    .venv/bin/python bench/variant_scoring.py [--n 10000] [--threads 2] [--model DIR]

One run, one model, one set of variants: Basset (published architecture, 600 bp,
164 tasks), trained briefly on the simulated 164-cell-type task over real GRCh37
chr20 (../shared/data; cached in data/bench_variant_scoring/, or ``--model DIR``),
and ``--n`` SNVs at random real chr20 positions (windows without N, seed 0).
Measured, each plain and RC-averaged (the four windows' probabilities as
``VariantScorer(rc=True)``), on windows already built:

- ``naive``: ``predict_logits`` on the ref and alt windows (the reference numbers);
- ``exact``: ``VariantScorer.score_onehot`` (the engine, fp32);
- ``fast``: the same with ``precision="bf16"``;
- ``tangermeme``: ``tangermeme.variant_effect.substitution_effect``;
- ``grelu``: ``grelu.variant.predict_variant_effects`` (it reads its own windows from
  the FASTA: its rate includes that); skipped when gReLU is not importable;
- the bare forward rate (windows/s, fp32 and bf16): the naive method's limit is half
  of it in variants/s (a quarter with RC).

Then all SNVs of a region (``--region-windows`` tiled 600 bp windows, 1,800 SNVs
each): ``dnacnn.scoring.mutant_effect.ism`` against tangermeme's
``saturation_mutagenesis`` (its fastISM path) and gReLU's ``ISM_predict``; and ISM
of one window alone. Deviations are max |delta| differences from the naive deltas
(probabilities). For bf16, on the trained model: the Spearman correlation of
max |delta| with fp32 and the share of variants with max |delta| >= 0.01 whose
strongest cell type is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from dnacnn import models
from dnacnn.genome import Genome
from dnacnn.models import predict_logits, probabilities
from dnacnn.scoring import VariantScorer
from dnacnn.scoring.mutant_effect import ism
from dnacnn.scoring.allele_windows import variant_windows
from dnacnn.sequence import reverse_complement_onehot

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DNACNN_SHARED_DATA", REPO.parent / "shared" / "data"))
FASTA = SHARED / "grch37_chr20" / "20.fa.gz"
CACHE = REPO / "data" / "bench_variant_scoring"
L = 600
BASES = "ACGT"


def trained_model(cache: Path, n_windows: int, epochs: int, max_train: int) -> Path:
    """A Basset trained briefly (``epochs`` over at most ``max_train`` windows) on the simulated
    164-cell-type task over chr20 (cached)."""
    out = cache / "model"
    if (out / "model.json").exists():
        return out
    from dnacnn.data.dataset_io import column_to_numpy
    from dnacnn.data.simulate_accessibility import AccessibilityConfig, simulate_accessibility
    import pyarrow.parquet as pq

    tasks = models.basset_cell_types()
    sim = cache / "sim"
    if not (sim / "train").exists():
        simulate_accessibility(FASTA, sim, tasks, AccessibilityConfig(n_windows=n_windows, length=L, seed=0))
    table = pq.read_table(sim / "train").slice(0, max_train)
    x = torch.from_numpy(column_to_numpy(table.column("onehot")).astype(np.float32).transpose(0, 2, 1).copy())
    y = torch.from_numpy(column_to_numpy(table.column("labels")).astype(np.float32))
    torch.manual_seed(0)
    model = models.build("basset", {})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), 64):
            xb, yb = x[order[i:i + 64]], y[order[i:i + 64]]
            flip = torch.rand(len(xb), generator=gen) < 0.5  # motifs lie on either strand
            xb = torch.where(flip[:, None, None], xb.flip(1, 2), xb)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xb).float(), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
        print(f"train epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    models.save(model.eval(), out, tasks, task_type="multitask")
    return out


def sample_snvs(n: int, seed: int = 0):
    """n SNVs at random chr20 positions whose 600 bp window has no N: (chrom, pos1, ref, alt)."""
    import pysam

    rng = np.random.default_rng(seed)
    fasta = pysam.FastaFile(str(FASTA))
    length = fasta.get_reference_length("20")
    pos0, ref, alt = [], [], []
    while len(pos0) < n:
        p = int(rng.integers(L, length - L))
        window = fasta.fetch("20", p - L // 2, p - L // 2 + L).upper()
        if "N" in window:
            continue
        base = window[L // 2]
        pos0.append(p)
        ref.append(base)
        alt.append(BASES[(BASES.index(base) + 1 + int(rng.integers(0, 3))) % 4])
    return ["20"] * n, np.array(pos0) + 1, ref, alt


def finish(results: dict, json_path: Path | None) -> None:
    """Record and print the load average at the end; write the figures to ``json_path`` if given."""
    results["load_end"] = os.getloadavg()
    print(f"load average at the end {results['load_end'][0]:.2f}", flush=True)
    if json_path:
        json_path.write_text(json.dumps(results, indent=2, default=float))


def timed(fn, repeats: int):
    """(best seconds of ``repeats`` calls, the last result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def naive_deltas(model, ref, alt, rc, batch_size, precision="fp32"):
    """(N, T) probability deltas from whole ref and alt windows (strand-averaged with rc)."""
    windows = [ref, alt] + ([reverse_complement_onehot(ref), reverse_complement_onehot(alt)] if rc else [])
    probs = [probabilities("multitask", predict_logits(model, w, batch_size=batch_size, precision=precision))
             for w in windows]
    return (np.mean(probs[1::2], axis=0) - np.mean(probs[0::2], axis=0)).astype(np.float32)


def tangermeme_deltas(model, ref, alt, rc, batch_size):
    from tangermeme.variant_effect import substitution_effect

    def one_strand(r, a):
        x = torch.from_numpy(r.astype(np.float32).transpose(0, 2, 1).copy())
        where = np.argwhere((r != a).any(axis=2))  # (N, 2): window, position
        subs = torch.tensor(np.c_[where, a[where[:, 0], where[:, 1]].argmax(axis=1)], dtype=torch.long)
        result = substitution_effect(model, x, subs, batch_size=batch_size, device="cpu", verbose=False)
        return torch.sigmoid(result.y_before).numpy(), torch.sigmoid(result.y_after).numpy()

    strands = [one_strand(ref, alt)]
    if rc:
        strands.append(one_strand(reverse_complement_onehot(ref), reverse_complement_onehot(alt)))
    return (np.mean([s[1] for s in strands], axis=0) - np.mean([s[0] for s in strands], axis=0)).astype(np.float32)


def grelu_model(model, tasks):
    """gReLU's LightningModel around our Basset (gReLU models return (N, T, 1))."""
    from grelu.lightning import LightningModel

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)[:, :, None]

    lm = LightningModel(model_params={"model_type": "ConvModel", "n_tasks": len(tasks), "n_conv": 1},
                        train_params={"task": "binary", "loss": "bce"})
    lm.model = Wrapped(model).eval()
    lm.data_params = {"train": {"seq_len": L}, "tasks": {"name": list(tasks)}}
    return lm


def grelu_deltas(lm, chrom, pos1, ref, alt, rc, batch_size, fasta_plain):
    import pandas as pd
    from grelu.variant import predict_variant_effects

    variants = pd.DataFrame({"chrom": chrom, "pos": pos1, "ref": ref, "alt": alt})
    out = predict_variant_effects(variants, lm, devices="cpu", seq_len=L, batch_size=batch_size, num_workers=0,
                                  genome=str(fasta_plain), rc=rc, compare_func="subtract", return_ad=False)
    return np.asarray(out).reshape(len(variants), -1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="SNVs to score")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: train one, cached)")
    parser.add_argument("--train-windows", type=int, default=8000)
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--train-max", type=int, default=4096, help="training windows used")
    parser.add_argument("--region-windows", type=int, default=10, help="600 bp windows of the all-SNVs region")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not FASTA.exists():
        raise SystemExit(f"needs {FASTA} (../shared/data beside the clone)")

    CACHE.mkdir(parents=True, exist_ok=True)
    os.chdir(CACHE)  # gReLU's Lightning trainer writes lightning_logs/ into the working directory
    model_dir = args.model or trained_model(CACHE, args.train_windows, args.train_epochs, args.train_max)
    loaded = models.load(model_dir)
    model = loaded.model.eval()
    genome = Genome(FASTA)
    chrom, pos1, ref_allele, alt_allele = sample_snvs(args.n)
    ref, alt = variant_windows(genome, chrom, pos1 - 1, ref_allele, alt_allele, L)  # (N, L, 4) each
    n = len(ref)
    load = os.getloadavg()
    print(f"{n} SNVs, Basset {L} bp x {len(loaded.tasks)} tasks, {args.threads} torch threads, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)", flush=True)
    results: dict = {"n": n, "threads": args.threads, "load_start": load, "rows": []}

    def row(method, rc, seconds, deviation, note=""):
        rate = n / seconds
        results["rows"].append(dict(method=method, rc=rc, seconds=seconds, rate=rate, deviation=deviation, note=note))
        dev = "" if deviation is None else f"{deviation:.2e}"
        print(f"  {method:<12} rc={str(rc):<5} {rate:9.0f} variants/s   max|d - naive| {dev:>9} {note}", flush=True)

    # the bare forward: the limit of any method that runs whole windows
    for precision in ("fp32", "bf16"):
        predict_logits(model, ref[:64], batch_size=64, precision=precision)
        sec, _ = timed(lambda: predict_logits(model, ref, batch_size=args.batch_size, precision=precision),
                       args.repeats)
        results[f"forward_{precision}"] = n / sec
        print(f"  bare forward {precision}: {n / sec:.0f} windows/s", flush=True)

    fasta_plain = None
    try:
        lm = grelu_model(model, loaded.tasks)
        fasta_plain = CACHE / "20.fa"
        if not fasta_plain.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            with open(fasta_plain, "wb") as fh:
                subprocess.run(["gzip", "-dc", str(FASTA)], stdout=fh, check=True)
            import pysam
            pysam.faidx(str(fasta_plain))
        sizes = Path(f"{fasta_plain}.sizes")  # gReLU's chromosome sizes file
        if not sizes.exists():
            sizes.write_text("".join(f"{line.split()[0]}\t{line.split()[1]}\n"
                                     for line in Path(f"{fasta_plain}.fai").read_text().splitlines()))
    except ImportError as err:
        lm = None
        print(f"  gReLU not importable ({err}): its rows are skipped", flush=True)

    deltas = {}
    for rc in (False, True):
        sec, naive = timed(lambda: naive_deltas(model, ref, alt, rc, args.batch_size), args.repeats)
        row("naive", rc, sec, 0.0)
        for name, precision in (("exact", "fp32"), ("fast", "bf16")):
            scorer = VariantScorer(loaded, FASTA, rc=rc, batch_size=args.batch_size, precision=precision)
            scorer.score_onehot(ref[:64], alt[:64])
            sec, got = timed(lambda: scorer.score_onehot(ref, alt)["delta"], args.repeats)
            deltas[name, rc] = got
            row(name, rc, sec, float(np.abs(got - naive).max()))
        sec, got = timed(lambda: tangermeme_deltas(model, ref, alt, rc, args.batch_size), args.repeats)
        row("tangermeme", rc, sec, float(np.abs(got - naive).max()))
        if lm is not None:
            sec, got = timed(lambda: grelu_deltas(lm, chrom, pos1, ref_allele, alt_allele, rc, args.batch_size,
                                                  fasta_plain), args.repeats)
            row("grelu", rc, sec, float(np.abs(got - naive).max()), "(reads its windows from the FASTA)")
        deltas["naive", rc] = naive

    # bf16 against fp32 on the trained model
    from scipy.stats import spearmanr

    for rc in (False, True):
        exact, fast = deltas["exact", rc], deltas["fast", rc]
        top_exact, top_fast = np.abs(exact).max(axis=1), np.abs(fast).max(axis=1)
        strong = top_exact >= 0.01
        same = float((np.abs(exact).argmax(axis=1) == np.abs(fast).argmax(axis=1))[strong].mean()) if strong.any() \
            else float("nan")
        rho = float(spearmanr(top_exact, top_fast).statistic)
        results[f"bf16_rc{int(rc)}"] = dict(spearman=rho, strong=int(strong.sum()), same_top_task=same,
                                            max_abs_error=float(np.abs(exact - fast).max()))
        print(f"  bf16 vs fp32 rc={rc}: Spearman of max|delta| {rho:.4f}; {int(strong.sum())} variants with "
              f"max|delta| >= 0.01, same strongest cell type for {same:.1%}; max |error| "
              f"{np.abs(exact - fast).max():.2e}", flush=True)

    # all SNVs of a region: tiled windows, every single-base mutant of each
    starts = [int(pos1[0]) - 1 - L // 2 + i * L for i in range(args.region_windows)]
    seqs = [genome.fetch("20", s, s + L) for s in starts]
    from dnacnn.sequence import encode_batch

    region = encode_batch(seqs, L)  # (W, L, 4)
    n_snvs = 3 * int(region.any(axis=2).sum())
    brute_one = None
    for precision in ("fp32", "bf16"):
        ism(model, region[:1], precision=precision)
        sec, got = timed(lambda: ism(model, region, task_type="multitask", diff=True, precision=precision),
                         args.repeats)
        if brute_one is None:  # whole mutant windows of the first window: the naive numbers
            mutants = np.repeat(region[:1], 4 * L, axis=0).reshape(L, 4, L, 4)
            mutants[np.arange(L), :, np.arange(L)] = np.eye(4, dtype=np.uint8)
            p = probabilities("multitask", predict_logits(model, mutants.reshape(4 * L, L, 4)))
            p0 = probabilities("multitask", predict_logits(model, region[:1]))
            brute_one = (p - p0).reshape(L, 4, -1)
        dev = float(np.abs(got[0] - brute_one).max())
        results[f"region_{precision}"] = dict(rate=n_snvs / sec, deviation=dev)
        print(f"  all SNVs of {args.region_windows} windows ({n_snvs} SNVs), ism {precision}: "
              f"{n_snvs / sec:.0f} SNVs/s, max|d - naive| {dev:.2e}", flush=True)
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis

    x_region = torch.from_numpy(region.astype(np.float32).transpose(0, 2, 1).copy())
    saturation_mutagenesis(model, x_region[:1], batch_size=args.batch_size, device="cpu")
    sec, _ = timed(lambda: saturation_mutagenesis(model, x_region, batch_size=args.batch_size, device="cpu"),
                   args.repeats)
    results["region_tangermeme"] = dict(rate=n_snvs / sec)
    print(f"  all SNVs of the region, tangermeme saturation_mutagenesis: {n_snvs / sec:.0f} SNVs/s", flush=True)

    # ISM of one window
    one = {}
    one["dnacnn ism"], _ = timed(lambda: ism(model, region[:1]), max(2, args.repeats))
    one["tangermeme"], _ = timed(lambda: saturation_mutagenesis(model, x_region[:1], batch_size=args.batch_size,
                                                                device="cpu"), max(2, args.repeats))
    if lm is not None:
        from grelu.interpret.score import ISM_predict

        one["grelu"], _ = timed(lambda: ISM_predict(seqs[0], lm, devices="cpu", num_workers=0,
                                                    batch_size=args.batch_size, return_df=False), 1)
    results["ism_one_window_s"] = one
    print("  ISM of one 600 bp window: " + ", ".join(f"{k} {v:.2f} s" for k, v in one.items()), flush=True)

    # ratios to the fastest peer
    for rc in (False, True):
        peers = [r["rate"] for r in results["rows"] if r["rc"] == rc and r["method"] in ("tangermeme", "grelu")]
        best = max(peers)
        for r in results["rows"]:
            if r["rc"] == rc:
                r["ratio_to_fastest_peer"] = r["rate"] / best
        limit = results["forward_fp32"] / (4 if rc else 2)
        print(f"rc={rc}: fastest peer {best:.0f}/s; naive limit (bare fp32 forward / {4 if rc else 2}) "
              f"{limit:.0f}/s; " + ", ".join(f"{r['method']} {r['ratio_to_fastest_peer']:.2f}x"
                                              for r in results["rows"] if r["rc"] == rc), flush=True)
        results[f"region_ratio_rc{int(rc)}"] = results["region_fp32"]["rate"] / best
    print(f"all SNVs of a region (exact) / fastest plain peer: {results['region_ratio_rc0']:.1f}x", flush=True)
    finish(results, args.json)


if __name__ == "__main__":
    main()
