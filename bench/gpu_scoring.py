"""Variant scoring on a GPU, in one process: the engine against the naive and the bare forward.

    python bench/gpu_scoring.py [--n 65536] [--batch-sizes 4096] [--repeats 1] [--device cuda] [--json F]

For the device machine (one H200), which has no genome and no trained model: an untrained
full Basset (600 bp, 164 tasks; the rates do not depend on the weights) and ``--n`` SNVs
at the centres of random 600 bp windows (seed 0), built on the host as a scoring actor
hands them to the engine (uint8 one-hot). Each method returns numpy arrays, so each
timing includes the device's work and the copies back. Measured, plain and RC-averaged:

- bare forward fp32 (TF32 off) and bf16, windows/s: the limit of whole-window methods;
  the naive method's variant rate is at most half of it (a quarter with RC);
- ``naive``: ``predict_logits`` on the ref and alt windows (the reference numbers);
- ``exact``: ``VariantScorer.score_onehot`` (the mutant-effect engine, fp32);
- ``fast``: the same with ``precision="bf16"``;
- ``engine only``: ``MutantEffect.pair_logits`` on windows already stacked (the
  difference to ``exact`` is the scorer's host work: reverse complements, probabilities);

each at every ``--batch-sizes`` (variants per call), with its max |delta - naive delta|
(probabilities). Then a dense VCF's case: ``--dense-n`` SNVs ``--dense-spacing`` bp apart
on average along one random sequence, RC, bf16, at the largest batch, the engine told
the windows' starts, its reference windows sharing their conv tower (``share_towers``,
off on a GPU by default until measured) or each run whole. Then all SNVs of a region
(``ism`` of 64 windows, fp32 and bf16).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from dnacnn import models  # noqa: E402
from dnacnn.models import predict_logits, usable_device  # noqa: E402
from dnacnn.scoring import VariantScorer  # noqa: E402
from dnacnn.scoring.mutant_effect import ism  # noqa: E402
from dnacnn.sequence import encode_batch, reverse_complement_onehot  # noqa: E402
from score_job import synthetic_genome  # noqa: E402
from variant_scoring import naive_deltas, timed  # noqa: E402

L = 600
BASES = np.array(list("ACGT"))


def synthetic_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ref, alt) (n, L, 4) uint8: random windows and the same with a different centre base."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, L))
    ref = np.eye(4, dtype=np.uint8)[codes]
    alt = ref.copy()
    centre = (codes[:, L // 2] + rng.integers(1, 4, size=n)) % 4
    alt[:, L // 2] = np.eye(4, dtype=np.uint8)[centre]
    return ref, alt


def profile(scorer: VariantScorer, ref: np.ndarray, alt: np.ndarray, out: Path | None) -> None:
    """Where an RC engine call's time goes: torch.profiler's kernels (device time) and
    operators (host time), and the call's wall time against the device's busy time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    both_ref = np.concatenate([ref, reverse_complement_onehot(ref)])
    both_alt = np.concatenate([alt, reverse_complement_onehot(alt)])
    scorer.engine.pair_logits(both_ref, both_alt)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    t0 = time.perf_counter()
    with torch_profile(activities=activities) as prof:
        for _ in range(3):
            scorer.engine.pair_logits(both_ref, both_alt)
    wall = (time.perf_counter() - t0) / 3
    events = prof.key_averages()
    # the device's own activities (kernels, copies): an operator's row repeats its kernels' time
    device_us = sum(e.self_device_time_total for e in events
                    if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA) / 3
    print(f"  profile {scorer.precision} rc, {len(ref)} SNVs a call: wall {wall * 1e3:.1f} ms, device busy "
          f"{device_us / 1e3:.1f} ms ({device_us / 1e6 / wall:.0%})", flush=True)
    for key in (["self_device_time_total"] if torch.cuda.is_available() else []) + ["self_cpu_time_total"]:
        table = events.table(sort_by=key, row_limit=14, max_name_column_width=48)
        print(table, flush=True)
        if out:
            with open(out, "a") as fh:
                fh.write(f"== {scorer.precision} by {key}\n{table}\n")


def dense_pairs(n: int, spacing: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ref, alt, starts): n SNVs at distinct random positions ``spacing`` bp apart on average
    along one random sequence, at their windows' centres; starts as the engine takes them."""
    rng = np.random.default_rng(seed)
    sequence = rng.integers(0, 4, size=n * spacing + L)
    first = np.sort(rng.choice(n * spacing, size=n, replace=False))  # each window's first base
    codes = sequence[first[:, None] + np.arange(L)]
    ref = np.eye(4, dtype=np.uint8)[codes]
    alt = ref.copy()
    alt[:, L // 2] = np.eye(4, dtype=np.uint8)[(codes[:, L // 2] + rng.integers(1, 4, size=n)) % 4]
    return ref, alt, first + (1 << 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=65_536)
    parser.add_argument("--batch-sizes", default="4096", help="variants per call, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per measurement (best kept)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dense-n", type=int, default=16_384, help="SNVs of the dense case")
    parser.add_argument("--dense-spacing", type=int, default=50, help="bp between them on average")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="profile an RC engine call per precision (tables also into FILE) first")
    args = parser.parse_args()
    try:
        sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes takes integers separated by commas, got {args.batch_sizes!r}")
    if min(args.n, args.repeats, args.dense_n, args.dense_spacing, *sizes) < 1:
        parser.error("--n, --repeats, --dense-n, --dense-spacing and --batch-sizes take counts >= 1")
    try:
        device = usable_device(args.device)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"{args.n} SNVs, Basset {L} bp x 164 tasks (untrained), on {name}, torch {torch.__version__}", flush=True)
    results: dict = {"n": args.n, "device": name, "torch": torch.__version__, "rows": []}
    torch.manual_seed(0)
    model = models.build("basset", dict(seq_len=L, n_tasks=164)).eval()
    ref, alt = synthetic_pairs(args.n)
    tasks = [f"cell type {i}" for i in range(164)]
    with tempfile.TemporaryDirectory() as tmp:
        models.save(model, Path(tmp) / "model", tasks, task_type="multitask")
        fasta = synthetic_genome(Path(tmp), 1)  # VariantScorer wants one; never read
        model = model.to(device)
        top = max(sizes)
        if args.profile:
            for precision in ("fp32", "bf16"):
                scorer = VariantScorer(str(Path(tmp) / "model"), fasta, rc=True, batch_size=top,
                                       device=args.device, precision=precision)
                profile(scorer, ref[:top], alt[:top], args.profile)
        for precision in ("fp32", "bf16"):  # the bare forward: whole windows, no variant logic
            for tuned in (False, True):  # cuDNN's own choice of kernels, or the fastest it times
                torch.backends.cudnn.benchmark = tuned
                predict_logits(model, ref[:top], batch_size=top, device=device, precision=precision)
                sec, _ = timed(lambda: predict_logits(model, ref, batch_size=top, device=device,
                                                        precision=precision), args.repeats)
                results[f"forward_{precision}{'_tuned' * tuned}"] = args.n / sec
                print(f"  bare forward {precision} (batch {top}{', cudnn.benchmark' * tuned}): "
                      f"{args.n / sec:,.0f} windows/s", flush=True)
            torch.backends.cudnn.benchmark = False

        def row(method, rc, batch, seconds, deviation):
            rate = args.n / seconds
            results["rows"].append(dict(method=method, rc=rc, batch=batch, rate=rate, deviation=deviation))
            dev = "" if deviation is None else f"{deviation:.1e}"
            print(f"  {method:<11} rc={str(rc):<5} batch {batch:>5}: {rate:>11,.0f} SNVs/s  "
                  f"max|d - naive| {dev}", flush=True)

        for rc in (False, True):
            naive_deltas(model, ref[:top], alt[:top], rc, top)
            sec, naive = timed(lambda: naive_deltas(model, ref, alt, rc, top), args.repeats)
            row("naive", rc, top, sec, 0.0)
            for batch in sizes:
                for method, precision in (("exact", "fp32"), ("fast", "bf16")):
                    scorer = VariantScorer(str(Path(tmp) / "model"), fasta, rc=rc, batch_size=batch,
                                           device=args.device, precision=precision)
                    scorer.score_onehot(ref[:batch], alt[:batch])
                    sec, got = timed(lambda: scorer.score_onehot(ref, alt)["delta"], args.repeats)
                    row(method, rc, batch, sec, float(np.abs(got - naive).max()))
                    if rc:  # the engine alone on the stacked strands, as score_onehot hands them over
                        both_ref = np.concatenate([ref[:batch], reverse_complement_onehot(ref[:batch])])
                        both_alt = np.concatenate([alt[:batch], reverse_complement_onehot(alt[:batch])])
                        calls = args.n // batch
                        sec, _ = timed(lambda: [scorer.engine.pair_logits(both_ref, both_alt)
                                                  for _ in range(calls)], args.repeats)
                        row(f"{method} engine only", rc, batch, sec * args.n / (calls * batch), None)

        dense_ref, dense_alt, starts = dense_pairs(args.dense_n, args.dense_spacing)
        dense_naive = naive_deltas(model, dense_ref, dense_alt, True, top)
        for share in (True, False):
            scorer = VariantScorer(str(Path(tmp) / "model"), fasta, rc=True, batch_size=top,
                                   device=args.device, precision="bf16")
            scorer.engine.share_towers = share
            scorer.score_onehot(dense_ref[:top], dense_alt[:top], starts[:top])
            sec, got = timed(lambda: scorer.score_onehot(dense_ref, dense_alt, starts)["delta"], args.repeats)
            rate = args.dense_n / sec
            results["rows"].append(dict(method=f"fast dense {'shared' if share else 'alone'}", rc=True, batch=top,
                                        rate=rate, deviation=float(np.abs(got - dense_naive).max())))
            print(f"  fast, {args.dense_n:,} SNVs {args.dense_spacing} bp apart, RC, batch {top}, towers "
                  f"{'shared' if share else 'alone '}: {rate:>9,.0f} SNVs/s  max|d - naive| "
                  f"{results['rows'][-1]['deviation']:.1e}", flush=True)

        region = encode_batch(["".join(BASES[r]) for r in np.random.default_rng(2).integers(0, 4, (64, L))], L)
        n_snvs = 3 * 64 * L
        for precision in ("fp32", "bf16"):
            ism(model, region[:2], precision=precision)
            sec, _ = timed(lambda: ism(model, region, precision=precision), args.repeats)
            results[f"ism_{precision}"] = n_snvs / sec
            print(f"  all SNVs of 64 windows ({n_snvs:,}), ism {precision}: {n_snvs / sec:,.0f} SNVs/s", flush=True)
    for rc in (False, True):
        naive_rate = next(r["rate"] for r in results["rows"] if r["method"] == "naive" and r["rc"] == rc)
        best = {m: max(r["rate"] for r in results["rows"] if r["method"] == m and r["rc"] == rc)
                for m in ("exact", "fast")}
        print(f"rc={rc}: exact {best['exact'] / naive_rate:.2f}x naive, fast {best['fast'] / naive_rate:.2f}x naive; "
              f"bare bf16 forward / {4 if rc else 2} = {results['forward_bf16'] / (4 if rc else 2):,.0f} SNVs/s",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
