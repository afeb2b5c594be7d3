"""Genome tiles through Ray Data to Parquet: throughput per core and peak memory.

    .venv/bin/python bench/pipeline.py [--mbp 16 63] [--cpus 2] [--repeats 3]

Input: real GRCh37 chr20 (../shared/data, else Debian's vt-examples fetched into
data/), tiled into 600 bp windows (stride 600) over its first 16 Mbp and whole
(63 Mbp); every window becomes an Arrow row (one-hot (600, 4) uint8 as
``arrow.fixed_shape_tensor``) written to Parquet.

Measured in the same run, best of ``--repeats``:
- ``ray``: what ``dnacnn data`` runs, ``write_read_dataset(read_genome_tiles(...))``
  (the Ray Data source into :mod:`dnacnn.data.parquet_sink`) on a local Ray cluster
  of ``--cpus`` CPUs (workers warmed up by a first small run);
- ``single (fetch loop)``: one process, ``Genome.fetch`` per window +
  ``sequence.encode_batch`` per 2,048 windows + ``pyarrow.parquet.write_table``;
- ``single (run tiler)``: one process, the tiler the Ray source runs
  (``windows.iter_run_blocks``: one fetch per 2,048 windows) + the same writes;
- ``ray write_parquet``: for comparison, the same source into Ray's own
  ``Dataset.write_parquet``;
- ``ray core tasks``: for comparison, the same read tasks as plain Ray tasks (no
  Ray Data), each writing its own Parquet part.

Throughput is Mbp of genome per second; "per core" divides Ray's by ``--cpus``.
Peak memory is sampled every 20 ms with psutil: for Ray, the sum of the RSS of the
driver and every process under it (GCS, raylet, workers, agents; shared
object-store pages count once per process that maps them, so this overcounts);
for the single-process runs, that process's RSS.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from dnacnn import sequence
from dnacnn.data.dataset_io import make_table
from dnacnn.data.windows import iter_run_blocks, plan_tile_runs
from dnacnn.genome import Genome

REPO = Path(__file__).resolve().parents[1]
SHARED_FASTA = REPO.parent / "shared" / "data" / "grch37_chr20" / "20.fa.gz"
LENGTH = 600
BLOCK = 2048


class PeakRSS:
    """Peak of the summed RSS (every 20 ms) and PSS (every 10th sample) of this
    process and, with ``tree``, all its descendants."""

    def __init__(self, tree: bool, interval: float = 0.02):
        self.tree, self.interval, self.peak, self.peak_pss = tree, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self) -> list[psutil.Process]:
        me = psutil.Process()
        return [me] + (me.children(recursive=True) if self.tree else [])

    def sample(self) -> int:
        total = 0
        for p in self._procs():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def sample_pss(self) -> int:
        """Proportional set size: shared pages split among the processes mapping them."""
        total = 0
        for p in self._procs():
            try:
                total += p.memory_full_info().pss
            except (psutil.Error, AttributeError):
                pass
        return total

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            if n % 10 == 0:
                self.peak_pss = max(self.peak_pss, self.sample_pss())
            n += 1
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def regions_of(contig: str, size: int, contig_length: int) -> list[tuple[str, int, int]]:
    """``size`` bp of the contig; beyond its length the contig is tiled again (a stand-in
    for a longer genome: same work per window, more windows)."""
    regions = []
    while size > 0:
        regions.append((contig, 0, min(size, contig_length)))
        size -= contig_length
    return regions


def single_fetch_loop(fasta: str, regions: list[tuple[str, int, int]], out: Path) -> None:
    """The plain single-process encoder: fetch each window, encode a batch, write it."""
    genome = Genome(fasta)
    part = 0
    for contig, start, end in regions:
        starts = np.arange(start, end, LENGTH, dtype=np.int64)
        for lo in range(0, len(starts), BLOCK):
            batch = starts[lo : lo + BLOCK]
            seqs = [genome.fetch(contig, int(s), int(s) + LENGTH) for s in batch]
            onehot = sequence.encode_batch(seqs, LENGTH)
            table = make_table(onehot, None, [contig] * len(batch), batch, batch + LENGTH)
            pq.write_table(table, out / f"part-{part:05d}.parquet")
            part += 1
    genome.close()


def single_run_tiler(fasta: str, regions: list[tuple[str, int, int]], out: Path) -> None:
    """The Ray source's own tiler, in this process (no Ray)."""
    genome = Genome(fasta)
    runs = plan_tile_runs(regions, LENGTH, LENGTH, BLOCK)
    for part, (chrom, onehot, starts) in enumerate(iter_run_blocks(genome, runs, LENGTH, LENGTH)):
        table = make_table(onehot, None, [chrom] * len(starts), starts, starts + LENGTH)
        pq.write_table(table, out / f"part-{part:05d}.parquet")
    genome.close()


TASK_ROWS = 16384


def ray_pipeline(fasta: str, regions: list[tuple[str, int, int]], out: Path) -> None:
    """What ``dnacnn data`` runs: the Ray Data source into the streaming Parquet sink."""
    from dnacnn.data.parquet_sink import write_read_dataset
    from dnacnn.data.tile_source import read_genome_tiles

    write_read_dataset(read_genome_tiles(fasta, LENGTH, regions=regions, task_rows=TASK_ROWS,
                                         block_rows=BLOCK), out)


def ray_write_parquet(fasta: str, regions: list[tuple[str, int, int]], out: Path) -> None:
    """For comparison: the same source into Ray's own ``Dataset.write_parquet``."""
    from dnacnn.data.tile_source import read_genome_tiles

    read_genome_tiles(fasta, LENGTH, regions=regions, task_rows=TASK_ROWS,
                      block_rows=BLOCK).write_parquet(str(out))


def ray_core_tasks(fasta: str, regions: list[tuple[str, int, int]], out: Path) -> None:
    """For comparison: the same tiler in plain Ray tasks (no Ray Data), each writing its
    own Parquet part: what Ray Data's scheduling and write path cost on top."""
    import ray

    from dnacnn.data.tile_source import GenomeTiles, TileConfig

    source = GenomeTiles(fasta, TileConfig(LENGTH, LENGTH, block_rows=BLOCK, task_rows=TASK_ROWS),
                         regions)
    tasks = source.get_read_tasks(source.default_num_tasks)

    @ray.remote(num_cpus=1)
    def run(i: int, task) -> int:
        blocks = list(task())
        pq.write_table(pa.concat_tables(blocks), out / f"part-{i:05d}.parquet")
        return sum(b.num_rows for b in blocks)

    ray.get([run.remote(i, t) for i, t in enumerate(tasks)])


def measure(fn, fasta: str, regions: list, tree: bool, repeats: int) -> tuple[float, int, int, int]:
    """(best seconds, peak RSS bytes, peak PSS bytes over the runs, rows written)."""
    best, peak, peak_pss, rows = float("inf"), 0, 0, 0
    for _ in range(repeats):
        out = Path(tempfile.mkdtemp(prefix="dnacnn-bench-"))
        try:
            with PeakRSS(tree) as mem:
                t0 = time.perf_counter()
                fn(fasta, regions, out)
                best = min(best, time.perf_counter() - t0)
            peak, peak_pss = max(peak, mem.peak), max(peak_pss, mem.peak_pss)
            rows = sum(pq.read_metadata(f).num_rows for f in out.glob("*.parquet"))
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return best, peak, peak_pss, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fasta", default=None, help="indexed FASTA (default: GRCh37 chr20)")
    parser.add_argument("--contig", default="20")
    parser.add_argument("--mbp", type=float, nargs="+", default=[16, 63.03, 126.06],
                        help="genome lengths to tile, Mbp (past the contig length the contig "
                             "is tiled again, as a stand-in for a longer genome)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task-rows", type=int, default=16384, help="windows per Ray read task")
    args = parser.parse_args()
    global TASK_ROWS
    TASK_ROWS = args.task_rows
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("DNACNN_PROGRESS", "0")

    fasta = args.fasta
    if fasta is None:
        if SHARED_FASTA.exists():
            fasta = str(SHARED_FASTA)
        else:
            from dnacnn.reference_data import fetch_vt_examples

            fasta = str(fetch_vt_examples(REPO / "data").chr20_fasta)
    contig_length = Genome(fasta).length(args.contig)

    import ray
    from ray.data import DataContext

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    DataContext.get_current().enable_progress_bars = False
    idle_probe = PeakRSS(tree=True)
    idle, idle_pss = idle_probe.sample(), idle_probe.sample_pss()
    # warm-up: start the workers, load the compiled encoder, open the FASTA once
    ray_pipeline(fasta, [(args.contig, 0, 5_000_000)], Path(tempfile.mkdtemp(prefix="dnacnn-warm-")))
    single_run_tiler(fasta, [(args.contig, 0, 2_000_000)], Path(tempfile.mkdtemp(prefix="dnacnn-warm-")))

    print(f"input: {fasta} contig {args.contig}; {LENGTH} bp windows, stride {LENGTH}; "
          f"Ray on {args.cpus} CPUs (os.cpu_count() = {os.cpu_count()}); best of {args.repeats}")
    print(f"idle Ray cluster (driver included): summed RSS {idle / 2**20:.0f} MiB, "
          f"summed PSS {idle_pss / 2**20:.0f} MiB")
    header = (f"{'Mbp':>6} {'method':<22} {'rows':>8} {'s':>7} {'Mbp/s':>7} {'Mbp/s/core':>10} "
              f"{'RSS MiB':>8} {'PSS MiB':>8}")
    print(header)
    print("-" * len(header))
    for mbp in args.mbp:
        size = int(mbp * 1e6)
        regions = regions_of(args.contig, size, contig_length)
        size = sum(end - start for _, start, end in regions)
        results = {}
        for name, fn, tree in (("single (fetch loop)", single_fetch_loop, False),
                               ("single (run tiler)", single_run_tiler, False),
                               ("ray", ray_pipeline, True),
                               ("ray write_parquet", ray_write_parquet, True),
                               ("ray core tasks", ray_core_tasks, True)):
            seconds, peak, peak_pss, rows = measure(fn, fasta, regions, tree, args.repeats)
            cores = args.cpus if name.startswith("ray") else 1
            rate = size / 1e6 / seconds
            results[name] = rate / cores
            print(f"{size / 1e6:>6.1f} {name:<22} {rows:>8} {seconds:>7.2f} {rate:>7.1f} "
                  f"{rate / cores:>10.1f} {peak / 2**20:>8.0f} {peak_pss / 2**20:>8.0f}")
        for base in ("single (fetch loop)", "single (run tiler)"):
            print(f"{'':>6} ray per core / {base}: {results['ray'] / results[base]:.2f}"
                  f"   (ray core tasks: {results['ray core tasks'] / results[base]:.2f})")
    ray.shutdown()


if __name__ == "__main__":
    main()
