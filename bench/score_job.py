"""The whole `dnacnn score` run against its own scoring step, and its memory (summed PSS).

    DNACNN_PROGRESS=0 .venv/bin/python bench/score_job.py --snvs 10000

Scores N SNVs at real positions of GRCh37 chr20 (``../shared/data/grch37_chr20/20.fa.gz``;
positions drawn with a fixed seed among non-N bases, REF the genome's base, ALT another
base) with an untrained full Basset (600 bp, 164 tasks), by running the command a user
runs (``dnacnn score``, a private local Ray cluster of the machine's CPUs) in a subprocess.
``--synthetic-genome MB`` scores a random contig of that many megabases instead (the device
machine has no genome; the rate does not depend on the sequence). Reports:

- whole run: SNVs / wall time of the command (Ray start-up, model loads, shards, outputs);
- scoring step: SNVs / the job's ``scoring_seconds`` (the Ray part: actors scoring shards),
  measured in the same run; the ratio of the two is the job's overhead;
- peak summed PSS (proportional set size; shared pages split among the processes mapping
  them) and summed RSS of the command and every process under it, sampled every 0.5 s;
- processes of the run still alive after the command returned (its own Ray session,
  found by a private RAY_TMPDIR): must be 0.

With ``--joined`` the command joins a running 1-node, 2-CPU cluster
(``dnacnn.cluster.local.up``, as ``dnacnn cluster up`` starts one) given by RAY_ADDRESS,
as a user who scores batch after batch runs it: the whole run then pays no Ray start
or stop. Memory then sums the command and the cluster's processes; "left" counts
scoring actors still running on the cluster when the command has returned.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from dnacnn import models
from dnacnn.genome import Genome
from dnacnn.variants import write_vcf

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DNACNN_SHARED_DATA", REPO.parent / "shared" / "data"))


def real_snvs(genome: Genome, contig: str, n: int, seed: int = 0) -> list[tuple]:
    """N SNVs at distinct non-N positions of ``contig``, sorted, as VCF rows."""
    rng = np.random.default_rng(seed)
    size = genome.length(contig)
    rows, seen = [], set()
    while len(rows) < n:
        for pos0 in rng.integers(1_000, size - 1_000, size=2 * n):
            if pos0 in seen:
                continue
            base = genome.fetch(contig, int(pos0), int(pos0) + 1)
            if base not in "ACGT":
                continue
            alt = "ACGT"[(("ACGT".index(base)) + int(rng.integers(1, 4))) % 4]
            seen.add(pos0)
            rows.append((contig, int(pos0) + 1, f"snv{len(rows)}", base, alt, {}))
            if len(rows) == n:
                break
    return sorted(rows, key=lambda r: r[1])


class TreeMemory:
    """Peak summed RSS and PSS of processes and all their descendants."""

    def __init__(self, *pids: int, interval: float = 0.5):
        self.roots = [psutil.Process(pid) for pid in pids]
        self.interval, self.peak_rss, self.peak_pss, self.peak_procs = interval, 0, 0, 0
        self.breakdown: list[tuple[int, str]] = []  # (PSS bytes, command) per process at the peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            procs = []
            for root in self.roots:
                try:
                    procs += [root] + root.children(recursive=True)
                except psutil.Error:
                    pass
            if not procs:
                break
            rss = pss = 0
            parts = []
            for p in procs:
                try:
                    info = p.memory_full_info()
                    rss, pss = rss + info.rss, pss + info.pss
                    parts.append((info.pss, " ".join(p.cmdline())[:60]))
                except psutil.Error:
                    pass
            if pss > self.peak_pss:
                self.breakdown = sorted(parts, reverse=True)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(procs))
            time.sleep(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def leftovers(ray_tmp: str) -> list[str]:
    """Processes of the run's Ray session still alive: they inherited its private RAY_TMPDIR."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("RAY_TMPDIR") == ray_tmp:
                found.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return found


def shard_workers(pids: list[int]) -> list[str]:
    """Scoring actors still running under a joined cluster's processes."""
    found = []
    for pid in pids:
        try:
            for p in psutil.Process(pid).children(recursive=True):
                if "ShardWorker" in " ".join(p.cmdline()):
                    found.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return found


def run_score(model: Path, fasta: Path, vcf: Path, out: Path, extra: list[str], cluster=None) -> dict:
    """Run `dnacnn score` as a user does: its own local cluster, or (``cluster``, a
    ``dnacnn.cluster.local`` state) joining a running one, whose processes are then
    part of the memory measured."""
    ray_tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths have a length limit
    pythonpath = os.pathsep.join(p for p in (str(REPO / "platform"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath, "DNACNN_PROGRESS": "0", "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_MODE", None)
    cluster_pids = []
    if cluster is not None:
        env.update(cluster.env())
        cluster_pids = [p.pid for p in cluster.processes]
    cmd = [sys.executable, "-c", "import sys; from dnacnn.cli import app; sys.argv[0] = 'dnacnn'; app()",
           "score", "--model", str(model), "--genome", str(fasta), "--vcf", str(vcf), "--out", str(out),
           "--no-plot", *extra]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemory(proc.pid, *cluster_pids) as mem:
        stdout, stderr = proc.communicate()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dnacnn score failed ({proc.returncode}): {stderr[-3000:]}")
    left = shard_workers(cluster_pids) if cluster is not None else leftovers(ray_tmp)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    summary = json.loads(stdout)
    return {"wall": wall, "summary": summary, "pss": mem.peak_pss, "rss": mem.peak_rss,
            "procs": mem.peak_procs, "left": left, "breakdown": mem.breakdown}


def synthetic_genome(folder: Path, megabases: int, seed: int = 0) -> Path:
    """A random contig "1" of ``megabases`` Mb, a plain FASTA with its .fai."""
    import pysam

    rng = np.random.default_rng(seed)
    path = folder / "synthetic.fa"
    with open(path, "wb") as fh:
        fh.write(b">1\n")
        for _ in range(megabases):
            lines = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(10_000, 100))]
            fh.write(np.hstack([lines, np.full((10_000, 1), ord("\n"), np.uint8)]).tobytes())
    pysam.faidx(str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snvs", type=int, default=10_000)
    parser.add_argument("--rc", action="store_true")
    parser.add_argument("--options", default="", help='more `dnacnn score` options, e.g. "--batch-size 64"')
    parser.add_argument("--synthetic-genome", type=int, default=0, metavar="MB",
                        help="score a random contig of MB megabases instead of chr20")
    parser.add_argument("--joined", action="store_true",
                        help="join a running 1-node, 2-CPU cluster (dnacnn.cluster.local) instead of starting one")
    args = parser.parse_args()
    if args.synthetic_genome < 0 or args.snvs < 1:
        parser.error("--synthetic-genome takes megabases >= 1 (0: chr20), --snvs a count >= 1")
    fasta = SHARED / "grch37_chr20" / "20.fa.gz"
    if not args.synthetic_genome and not fasta.exists():
        raise SystemExit(f"needs {fasta} (../shared/data beside the clone), or --synthetic-genome MB")
    with tempfile.TemporaryDirectory(prefix="dnacnn-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.monotonic()
        if args.synthetic_genome:
            fasta = synthetic_genome(tmp, args.synthetic_genome)
        genome = Genome(fasta)
        contig = genome.contigs[0]
        rows = real_snvs(genome, contig, args.snvs)
        vcf = tmp / "snvs.vcf.gz"
        write_vcf(vcf, {contig: genome.length(contig)}, rows)
        print(f"inputs: {args.snvs} SNVs on {contig} of {fasta.name} ({time.monotonic() - t0:.0f} s)", flush=True)
        model = models.build("basset", dict(seq_len=600, n_tasks=164))
        tasks = [f"cell type {i}" for i in range(164)]
        models.save(model.eval(), tmp / "model", tasks, task_type="multitask")
        extra = (["--rc"] if args.rc else []) + shlex.split(args.options)
        if args.joined:
            from dnacnn.cluster import local

            state_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")
            try:
                cluster = local.up(state_dir, nodes=1, cpus_per_node=2)
                r = run_score(tmp / "model", fasta, vcf, tmp / "out", extra, cluster)
            finally:
                local.down(state_dir)
                shutil.rmtree(state_dir, ignore_errors=True)
        else:
            r = run_score(tmp / "model", fasta, vcf, tmp / "out", extra)
    s = r["summary"]
    n = s["alleles_scored"]
    whole, step = n / r["wall"], n / s["scoring_seconds"]
    where = "joining a running 1-node cluster" if args.joined else "its own local cluster"
    print(f"{n} SNVs, {s['shards']} shard(s), rc={args.rc} {args.options}, {where}")
    print("| measure | value |\n| --- | ---: |")
    print(f"| whole run (command wall time) | {r['wall']:.1f} s, {whole:.0f} SNVs/s |")
    print(f"| scoring step (the Ray part) | {s['scoring_seconds']:.1f} s, {step:.0f} SNVs/s |")
    print(f"| whole run / scoring step | {whole / step:.2f} |")
    print(f"| peak summed PSS | {r['pss'] / 2**20:.0f} MiB |")
    print(f"| peak summed RSS | {r['rss'] / 2**20:.0f} MiB ({r['procs']} processes at most) |")
    left = "shard workers left on the cluster" if args.joined else "processes left after the command"
    print(f"| {left} | {len(r['left'])} |")
    for line in r["left"]:
        print("  left:", line)
    print("PSS per process at the peak (MiB):")
    for pss, command in r["breakdown"]:
        print(f"  {pss / 2**20:7.0f}  {command}")


if __name__ == "__main__":
    main()
