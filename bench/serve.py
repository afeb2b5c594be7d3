"""The HTTP service: one-variant latency and 32-client throughput against in-process scoring.

    .venv/bin/python bench/serve.py [--model DIR|models:/...] [--clients 32] [--requests-per-client 2]

Model: by default a randomly initialised Basset of the main job's shape (600 bp,
164 cell types, pool widths 3/4/40; the numbers do not depend on its weights),
saved to a temporary checkpoint; genome: the committed chr20 fixture; variants:
SNVs at known bases of its real sequence (REF from the genome, ALT the next base).

Measured in the same run:
- ``in-process``: ``VariantScorer.score_columns`` on the variants the clients
  send (at most 4,096), in this process with ``--cpus`` torch threads, after a
  64-variant warm-up (variants/s);
- ``latency``: sequential one-variant ``POST /v1/score`` requests after a warm-up,
  p50 and p99 (ms), through Serve's HTTP proxy on 127.0.0.1;
- ``throughput``: ``--clients`` concurrent clients, each sending
  ``--requests-per-client`` requests of ``--variants`` variants (variants/s over
  the whole burst), and its ratio to ``in-process``.

The service is one replica with ``--cpus`` CPUs (and as many torch threads) on a
local Ray cluster of ``--cpus`` CPUs; the clients run in this process. On a
shared machine, note its load (``uptime``) with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from dnacnn import models
from dnacnn.genome import Genome
from dnacnn.scoring.scorer import VariantScorer, load_model_spec

REPO = Path(__file__).resolve().parents[1]
FIXTURE_FASTA = REPO / "tests" / "data" / "chr20_sparse.fa.gz"
REAL = 150_000  # 0-based; the fixture holds real chr20 sequence over 0-300,000


def snvs(genome: Genome, n: int) -> list[dict]:
    """``n`` real SNVs, 29 bp apart where the base is known, REF read from the genome."""
    out, p = [], REAL
    while len(out) < n:
        ref = genome.fetch("20", p, p + 1).upper()
        if ref in ("A", "C", "G", "T"):
            out.append({"chrom": "20", "pos": p + 1, "ref": ref, "alt": "ACGT"[("ACGT".index(ref) + 1) % 4]})
        p += 29
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process(model: str, genome: Genome, variants: list[dict], cpus: int) -> float:
    scorer = VariantScorer(load_model_spec(model), genome, num_threads=cpus)
    cols = [[v[k] for v in variants] for k in ("chrom", "pos", "ref", "alt")]
    scorer.score_columns(*(c[:64] for c in cols))  # warm-up
    t0 = time.perf_counter()
    scorer.score_columns(*cols)
    return len(variants) / (time.perf_counter() - t0)


def latency(url: str, variants: list[dict], n: int) -> tuple[float, float]:
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(n + 10):
            t0 = time.perf_counter()
            response = client.post("/v1/score", json={"variants": [variants[i % len(variants)]]})
            elapsed = time.perf_counter() - t0
            response.raise_for_status()
            if i >= 10:  # warm-up
                times.append(elapsed * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


async def burst(url: str, variants: list[dict], clients: int, per_client: int, size: int) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def one_client(k: int) -> int:
            done = 0
            for r in range(per_client):
                lo = ((k * per_client + r) * size) % (len(variants) - size)
                response = await client.post("/v1/score", json={"variants": variants[lo:lo + size]})
                response.raise_for_status()
                done += response.json()["n_scored"]
            return done

        await client.get("/healthz")
        t0 = time.perf_counter()
        scored = sum(await asyncio.gather(*(one_client(k) for k in range(clients))))
        elapsed = time.perf_counter() - t0
    assert scored == clients * per_client * size, scored
    return scored / elapsed


def default_model(directory: Path) -> str:
    model = models.build("basset", {"pool_widths": [10, 4, 6]})  # the main job's tower
    models.save(model, directory, [f"cell_{i}" for i in range(model.n_tasks)], task_type="multitask")
    return str(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint folder or models:/ URI (default: a random Basset)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests-per-client", type=int, default=1)
    parser.add_argument("--variants", type=int, default=64, help="variants per throughput request")
    parser.add_argument("--latency-requests", type=int, default=100)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()

    import ray
    from ray import serve

    from dnacnn.serve import ServiceArgs
    from dnacnn.serve.runner import start

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        model = args.model or default_model(Path(tmp) / "model")
        genome = Genome(FIXTURE_FASTA)
        n = args.clients * args.requests_per_client * args.variants
        variants = snvs(genome, min(n, 4096) + args.variants)
        print(f"load before: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} CPUs)")
        base = in_process(model, genome, variants[:min(n, 4096)], args.cpus)
        print(f"in-process VariantScorer: {base:,.0f} variants/s ({args.cpus} torch threads)")

        url = start(ServiceArgs(model=model, genome=str(FIXTURE_FASTA), num_cpus=args.cpus,
                                num_threads=args.cpus), port=free_port(), num_cpus=args.cpus)
        try:
            p50, p99 = latency(url, variants, args.latency_requests)
            print(f"one-variant request: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({args.latency_requests} requests)")
            rate = asyncio.run(burst(url, variants, args.clients, args.requests_per_client, args.variants))
            print(f"{args.clients} clients x {args.requests_per_client} requests x {args.variants} variants: "
                  f"{rate:,.0f} variants/s = {rate / base:.2f} x in-process")
            print(f"load after: {os.getloadavg()[0]:.1f}")
        finally:
            serve.shutdown()
            ray.shutdown()


if __name__ == "__main__":
    main()
