"""Rebuild the committed test fixtures from Debian's `vt-examples` (run from the repo root):

    .venv/bin/python tests/data/make_fixtures.py

Writes, in tests/data/:
- chr20_sparse.fa.gz (+ .fai, .gzi): contig `20` at its full GRCh37 length
  (63,025,520 bp), holding the real sequence of 20:0-300,000 and of +-1 kb around
  every variant of `normalize/01_IN.vcf.gz`, and N elsewhere (N runs bgzip to
  almost nothing, so the real coordinates are kept at a small size).
- normalize_01_IN.vcf.gz (+ .tbi): that VCF (194 real 1000 Genomes indels), recompressed
  with bgzip (it ships as plain gzip) and tabix-indexed.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import pysam

from dnacnn.reference_data import fetch_vt_examples
from dnacnn.variants import open_vcf

HERE = Path(__file__).resolve().parent
CONTIG = "20"
DENSE_END = 300_000
FLANK = 1_000
LINE = 60


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vt = fetch_vt_examples(tmp)
        fasta = pysam.FastaFile(str(vt.chr20_fasta))
        size = fasta.get_reference_length(CONTIG)
        keep = [(0, DENSE_END)]
        with open_vcf(vt.normalize_vcf) as vcf:
            keep += [(max(0, r.start - FLANK), min(size, r.stop + FLANK)) for r in vcf]
        seq = bytearray(b"N" * size)
        for start, end in keep:
            seq[start:end] = fasta.fetch(CONTIG, start, end).encode()
        plain = Path(tmp) / "chr20_sparse.fa"
        with open(plain, "wb") as out:
            out.write(f">{CONTIG}\n".encode())
            for i in range(0, size, LINE):
                out.write(seq[i : i + LINE] + b"\n")
        target = HERE / "chr20_sparse.fa.gz"
        pysam.tabix_compress(str(plain), str(target), force=True)
        pysam.faidx(str(target))
        # Shipped as plain gzip: recompress as BGZF so that tabix can index it.
        vcf_plain = Path(tmp) / "normalize_01_IN.vcf"
        with gzip.open(vt.normalize_vcf, "rb") as src, open(vcf_plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        pysam.tabix_index(str(vcf_plain), preset="vcf", force=True)
        for suffix in (".gz", ".gz.tbi"):
            shutil.copyfile(f"{vcf_plain}{suffix}", HERE / f"normalize_01_IN.vcf{suffix}")
    print(f"wrote fixtures to {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
