"""Reading the sites of a VCF with many samples: ``read_alleles`` against pysam's own parse.

    PYTHONPATH=platform .venv/bin/python bench/vcf_samples.py [--snvs 10000] [--samples 1000]

Writes one bgzipped, indexed VCF of ``--snvs`` SNVs at real positions of GRCh37 chr20 (the
``bench/score_job.py`` generator; a random 10 Mb contig without ``../shared/data``) with
``--samples`` genotype columns (GT:DP), and the same sites without samples. Times, best of
``--repeats``: ``read_alleles`` on each (the scoring feed's reader: parse, allele rules, REF
check against the genome), and the baseline, iterating pysam's ``VariantFile`` over the
samples file with every column parsed (what any reader that opens the file plainly pays,
and what ``read_alleles`` did before it skipped the samples). Reports records/s and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pysam

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_job import SHARED, real_snvs, synthetic_genome  # noqa: E402

from dnacnn.genome import Genome  # noqa: E402
from dnacnn.variants import read_alleles  # noqa: E402


def write_vcfs(folder: Path, rows: list[tuple], samples: int, seed: int = 0) -> tuple[Path, Path]:
    """(with samples, sites only): bgzipped and tabix-indexed."""
    rng = np.random.default_rng(seed)
    calls = np.array(["0/0:10", "0/1:12", "1/1:8"])
    header = ["##fileformat=VCFv4.2", f"##contig=<ID={rows[0][0]}>",
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">']
    columns = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    paths = []
    for name, n in (("samples.vcf", samples), ("sites.vcf", 0)):
        with open(folder / name, "w") as out:
            out.write("\n".join(header if n else header[:2]) + "\n" + columns
                      + ("\tFORMAT\t" + "\t".join(f"S{i}" for i in range(n)) if n else "") + "\n")
            for chrom, pos, ref, alt in (row[:4] for row in rows):
                site = f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t."
                out.write(site + ("\tGT:DP\t" + "\t".join(calls[rng.integers(0, 3, n)]) if n else "") + "\n")
        packed = pysam.tabix_index(str(folder / name), preset="vcf", force=True)
        paths.append(Path(packed))
    return paths[0], paths[1]


def best_of(repeats: int, run) -> tuple[float, int]:
    """(best seconds, what ``run`` counted)."""
    best, count = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snvs", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.snvs < 1 or args.samples < 1 or args.repeats < 1:
        parser.error("--snvs, --samples and --repeats must be 1 or more")

    with tempfile.TemporaryDirectory(prefix="bench-vcf-samples-") as tmp:
        chr20 = SHARED / "grch37_chr20" / "20.fa.gz"
        genome = Genome(chr20 if chr20.exists() else synthetic_genome(Path(tmp), 10))
        contig = genome.contigs[0]
        rows = real_snvs(genome, contig, args.snvs)
        with_samples, sites_only = write_vcfs(Path(tmp), rows, args.samples)
        print(f"{args.snvs:,} SNVs on {contig} ({genome.path}); {args.samples:,} samples: "
              f"{with_samples.stat().st_size / 1e6:.1f} MB bgzipped")

        def parse_all() -> int:
            with pysam.VariantFile(str(with_samples)) as vcf:
                return sum(len(record.samples) > 0 for record in vcf)

        def read(path: Path):
            return lambda: sum(1 for _ in read_alleles(path, genome))

        naive, _ = best_of(args.repeats, parse_all)
        samples_s, n = best_of(args.repeats, read(with_samples))
        sites_s, _ = best_of(args.repeats, read(sites_only))
        print(f"pysam VariantFile, every column parsed (baseline): {args.snvs / naive:,.0f} records/s")
        print(f"read_alleles, {args.samples:,} samples: {n / samples_s:,.0f} records/s "
              f"= {naive / samples_s:.2f}x the baseline")
        print(f"read_alleles, sites only: {n / sites_s:,.0f} records/s; samples cost "
              f"{samples_s / sites_s:.2f}x the sites-only time")


if __name__ == "__main__":
    main()
