"""One-hot encoding speed: dnacnn vs the tutorial's loop, tangermeme, and a memory fill.

    .venv/bin/python bench/onehot.py [--mbp 8]

Input: real GRCh37 chr20 sequence (../shared/data, else the committed fixture), made
soft-masked (runs of lower case over about half the bases) with some N runs, as real
genome FASTA looks. Each figure is the best of several runs, in MB/s of sequence
(1 byte = 1 base); ratios are against the project's encoder, measured in this run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dnacnn import sequence
from dnacnn.genome import Genome

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO.parent / "shared" / "data" / "grch37_chr20" / "20.fa.gz", REPO / "tests" / "data" / "chr20_sparse.fa.gz"]


def soft_masked_input(n_bases: int, seed: int = 0) -> str:
    """``n_bases`` of real chr20 (N runs kept), with lower-case runs over about half of it."""
    path = next(p for p in CANDIDATES if p.exists())
    genome = Genome(path)
    real = genome.fetch("20", 60_000, 60_000 + min(n_bases, genome.length("20") - 60_000))
    if len(real) < n_bases:  # the fixture is short of real bases: repeat it
        real = (real * (n_bases // len(real) + 1))[:n_bases]
    buf = bytearray(real.encode())
    rng = np.random.default_rng(seed)
    for start in rng.integers(0, n_bases - 300, size=n_bases // 600):
        buf[start : start + 300] = buf[start : start + 300].lower()
    for start in rng.integers(0, n_bases - 50, size=n_bases // 20_000):
        buf[start : start + 50] = b"N" * 50
    return buf.decode()


def tutorial_loop(seq: str) -> np.ndarray:
    """The original tutorial's per-character loop (its mapping and its skip of N)."""
    mapping = {"A": 0, "C": 1, "G": 2, "T": 3}
    encoded = np.zeros((len(seq), 4))
    for j, nt in enumerate(seq.upper()):
        if nt in mapping:
            encoded[j, mapping[nt]] = 1
    return encoded


def best_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbp", type=float, default=8.0, help="input size, Mbp")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = int(args.mbp * 1e6)
    seq = soft_masked_input(n)
    loop_seq = seq[:200_000]

    results: dict[str, float] = {}  # MB/s
    results["dnacnn.sequence.encode"] = n / best_seconds(lambda: sequence.encode(seq), args.repeats) / 1e6
    results["tutorial per-character loop"] = len(loop_seq) / best_seconds(lambda: tutorial_loop(loop_seq), 1) / 1e6
    try:
        from tangermeme.utils import one_hot_encode

        results["tangermeme one_hot_encode (+ upper)"] = n / best_seconds(
            lambda: one_hot_encode(seq.upper(), ignore=["N"]), args.repeats
        ) / 1e6
    except ImportError:
        print("tangermeme not installed (pip install -e '.[bench]'): skipped")

    def fill() -> None:
        np.empty(n * 4, dtype=np.uint8).fill(1)

    results["memory fill of the output (hardware limit)"] = n / best_seconds(fill, args.repeats) / 1e6

    ours = results["dnacnn.sequence.encode"]
    fill_rate = results["memory fill of the output (hardware limit)"]
    print(f"input: {n / 1e6:.1f} Mbp soft-masked real chr20 with N runs (loop timed on 0.2 Mbp)")
    print(f"{'method':<45} {'MB/s':>10} {'dnacnn / this':>14}")
    for name, rate in results.items():
        print(f"{name:<45} {rate:>10.1f} {ours / rate:>14.2f}")
    print(f"dnacnn reaches {100 * ours / fill_rate:.0f}% of the fill bandwidth")


if __name__ == "__main__":
    main()
