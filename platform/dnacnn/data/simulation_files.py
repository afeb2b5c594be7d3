"""The files of a simulated accessibility task besides its dataset: the genome with the
planted instances, the variants VCF and the planted truth (see ``simulate_accessibility``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pysam

from dnacnn.data.dataset_io import labels_column
from dnacnn.data.motifs import Motif, write_meme
from dnacnn.variants.writing import write_vcf


def write_fasta_bgzip(contigs: dict[str, bytes | bytearray], path: Path, line: int = 60) -> Path:
    """Write contigs as a bgzipped FASTA with .fai and .gzi."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "genome.fa"
        with open(plain, "wb") as out:
            for name, seq in contigs.items():
                out.write(f">{name}\n".encode())
                view = memoryview(seq)
                out.write(b"\n".join(view[i : i + line] for i in range(0, len(seq), line)))
                out.write(b"\n")
        pysam.tabix_compress(str(plain), str(path), force=True)
    pysam.faidx(str(path))
    return path


def write_variants_vcf(variants: pd.DataFrame, lengths: dict[str, int], path_gz: Path) -> Path:
    """Write sorted variants as bgzipped, tabix-indexed VCF ``path_gz`` (FILTER PASS)."""
    order = {c: i for i, c in enumerate(lengths)}
    variants = variants.assign(_o=variants["chrom"].map(order)).sort_values(["_o", "pos"])
    rows = ((r.chrom, int(r.pos), r.id, r.ref, r.alt, {}) for r in variants.itertuples())
    meta = {"source": "dnacnn.data.simulate_accessibility", "reference": "genome.fa.gz"}
    write_vcf(path_gz, lengths, rows, meta=meta, filter_pass=True)
    return path_gz


def write_truth(
    out_dir: Path, windows: pd.DataFrame, instances: pd.DataFrame, tasks: list[str],
    cell_factors: dict[str, list[str]], motifs: dict[str, Motif],
    labels_clean: np.ndarray, labels: np.ndarray,
) -> None:
    """The planted truth: instances.parquet (one row per implanted motif instance, genome
    coordinates), windows.parquet (per window: split, factors, clean and noisy labels),
    cell_factors.tsv (each cell type's factors) and motifs.meme (the factors' matrices)."""
    cells_of = {f: [t for t in tasks if f in cell_factors[t]] for f in motifs}
    inst = instances.copy()
    inst.insert(0, "instance", np.arange(len(inst), dtype=np.int64))
    inst["chrom"] = windows["chrom"].to_numpy()[inst["window"]]
    inst["start"] = windows["start"].to_numpy()[inst["window"]] + inst["offset"]
    inst["end"] = inst["start"] + inst["sequence"].str.len()
    inst["cell_types"] = [",".join(cells_of[f]) for f in inst["factor"]]
    inst["split"] = windows["split"].to_numpy()[inst["window"]]
    inst.to_parquet(out_dir / "instances.parquet", index=False)

    factors = instances.groupby("window")["factor"].agg(lambda s: ",".join(s))
    table = pa.table({
        "window": pa.array(np.arange(len(windows)), pa.int64()),
        "chrom": pa.array(windows["chrom"].tolist(), pa.string()),
        "start": pa.array(windows["start"].to_numpy(), pa.int64()),
        "end": pa.array(windows["end"].to_numpy(), pa.int64()),
        "split": pa.array(windows["split"].tolist(), pa.string()),
        "factors": pa.array(factors.reindex(range(len(windows)), fill_value="").tolist(), pa.string()),
        "n_instances": pa.array(instances["window"].value_counts().reindex(
            range(len(windows)), fill_value=0).to_numpy(), pa.int64()),
        "labels_clean": labels_column(labels_clean),
        "labels": labels_column(labels),
    })
    pq.write_table(table, out_dir / "windows.parquet")
    pd.DataFrame({"cell_type": tasks, "factors": [",".join(cell_factors[t]) for t in tasks]}).to_csv(
        out_dir / "cell_factors.tsv", sep="\t", index=False)
    named = [Motif(m.id, name, m.probs, m.nsites) for name, m in motifs.items()]
    write_meme(named, out_dir / "motifs.meme")
