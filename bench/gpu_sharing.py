"""K processes sharing one GPU, each scoring windows already in memory: the job's GPU side alone.

    python bench/gpu_sharing.py [--processes 1,4,16] [--seconds 10] [--precision bf16] [--batch 4096]

`dnacnn score --device cuda` runs one scoring actor per CPU, all sharing the GPU (their CUDA
contexts time-sliced: no MPS). Its rate mixes the feed (VCF parsing, windows) with the GPU's
side. This measures the GPU's side alone: K processes, each with an untrained full Basset
(600 bp, 164 tasks) and ``--batch`` random SNVs in memory, call ``VariantScorer.score_onehot``
(RC-averaged, as the job's actors do) for ``--seconds`` after a warm-up, all starting together
at a barrier. Reported per K: RC SNVs/s in all and per process, and the ratio to K = 1. If the
job's rate is near this one at K = its actors, the GPU's side is the limit; if far below, the feed is.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "platform"), str(BENCH)]

#: Seconds a process waits for the others to be ready before giving up.
BARRIER_S = 300


def score_for(rank: int, device: str, precision: str, batch: int, seconds: float, barrier, results) -> None:
    """One process: warm up, wait for the others, then score the same batch for ``seconds``;
    puts (rank, SNVs, seconds), or (rank, the error) if it could not."""
    try:
        import torch

        from dnacnn import models
        from dnacnn.scoring import VariantScorer
        from gpu_scoring import synthetic_pairs
        from score_job import synthetic_genome

        torch.set_num_threads(1)  # as a scoring actor with one CPU
        torch.manual_seed(0)
        model = models.build("basset", dict(seq_len=600, n_tasks=164)).eval()
        with tempfile.TemporaryDirectory() as tmp:
            scorer = VariantScorer(model, synthetic_genome(Path(tmp), 1), rc=True, batch_size=batch, device=device,
                                   precision=precision, tasks=[str(i) for i in range(164)], seq_len=600,
                                   task_type="multitask")
            ref, alt = synthetic_pairs(batch, seed=rank)
            scorer.score_onehot(ref, alt)
            barrier.wait(timeout=BARRIER_S)
            t0, calls = time.perf_counter(), 0
            while time.perf_counter() - t0 < seconds:
                scorer.score_onehot(ref, alt)
                calls += 1
            results.put((rank, calls * batch, time.perf_counter() - t0))
    except Exception as err:  # said by the parent, which stops the others
        barrier.abort()
        results.put((rank, f"{type(err).__name__}: {err}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,4,16", help="K values, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--batch", type=int, default=4096, help="SNVs per call (the job's --batch-size)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    from dnacnn.models import usable_device

    try:
        usable_device(args.device)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    base = None
    print(f"score_onehot, RC, {args.precision}, batch {args.batch}, {args.seconds:g} s per K, on {args.device}",
          flush=True)
    for k in (int(v) for v in args.processes.split(",")):
        barrier, results = ctx.Barrier(k), ctx.Queue()
        procs = [ctx.Process(target=score_for, args=(r, args.device, args.precision, args.batch, args.seconds,
                                                      barrier, results)) for r in range(k)]
        for p in procs:
            p.start()
        got = [results.get(timeout=BARRIER_S + args.seconds + 60) for _ in procs]
        for p in procs:
            p.join()
        failed = [reply for reply in got if len(reply) == 2]
        if failed:
            raise SystemExit(f"error: process {failed[0][0]} of {k}: {failed[0][1]}")
        rate = sum(snvs for _, snvs, _ in got) / max(sec for _, _, sec in got)
        base = base or rate
        print(f"  K={k:>3}: {rate:>10,.0f} RC SNVs/s in all, {rate / k:>9,.0f} per process, "
              f"{rate / base:.2f}x K={args.processes.split(',')[0]}", flush=True)


if __name__ == "__main__":
    main()
