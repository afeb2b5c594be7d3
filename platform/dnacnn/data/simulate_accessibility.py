"""A simulated many-cell-type accessibility task on a real genome, with planted truth.

The task Basset learns, made with a known answer so that variant scores can be
checked against it:

1. **Windows.** Non-overlapping windows of L bp (default 600) on the grid
   ``0, L, 2L, ...`` of every contig, without N (``max_n_fraction``), are
   sampled from a real genome (e.g. GRCh37 chr20 from ``vt-examples``).
2. **Factors and cell types.** Each factor is a real JASPAR matrix (from
   ``pyjaspar``, offline, or a MEME file); each cell type (``tasks``, e.g. the
   164 Basset names) activates a random 2-5 of the factors.
3. **Instances.** A share (``motif_fraction``, default 40%) of the windows get
   1-3 motif instances, each *sampled* base by base from its factor's matrix
   (redrawn while it scores under ``min_match`` of the consensus), on a random
   strand, at random non-overlapping positions; they are written into the genome.
4. **Labels.** A window is accessible (1) in a cell type when it carries an
   instance of a factor active there; then each label flips with probability
   ``label_noise`` (default 2%).
5. **Variants** on the modified genome: ``n_breaking`` substitute the
   ``break_bases`` most informative bases of an instance with their least
   likely base under the matrix (one MNV/SNV record per instance, only
   instances whose loss changes at least one cell type's label); ``n_neutral``
   SNVs lie at least ``neutral_min_distance`` bp from every instance.

Files written to the output folder::

    dataset.json, train/ valid/ test/   the dataset (dataset_io), noisy labels,
                                        split by genomic block
    genome.fa.gz (+ .fai, .gzi)         the genome WITH the instances (bgzip + faidx);
                                        same contigs and coordinates as the input
    variants.vcf.gz (+ .tbi)            simulated variants; REF matches genome.fa.gz
    variant_effects.tsv                 id, chrom, pos, ref, alt, breaks_motif (0/1),
                                        motif, motif_id, instance, window, split,
                                        distance (bp to the nearest instance),
                                        affected_cell_types (comma-separated),
                                        n_affected
    instances.parquet                   instance, window, chrom, start, end, offset,
                                        strand, factor, motif_id, sequence (+ strand of
                                        the genome), cell_types, split
    windows.parquet                     window, chrom, start, end, split, factors,
                                        n_instances, labels_clean (T,), labels (T,)
    cell_factors.tsv                    cell_type, factors (comma-separated)
    motifs.meme                         the matrices used

A breaking variant's ``affected_cell_types`` are the cell types whose clean
label of that window goes from 1 to 0 when the instance is lost (an instance of
another factor active in the same cell type keeps it accessible).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dnacnn import sequence
from dnacnn.data.dataset_io import DatasetDescription
from dnacnn.data.motifs import Motif, find_motif, jaspar_motifs, read_meme
from dnacnn.data.simulate_variants import plan_variants
from dnacnn.data.simulation_files import write_fasta_bgzip, write_truth, write_variants_vcf
from dnacnn.data.splits import SplitConfig, assign_splits
from dnacnn.data.windows import candidate_windows
from dnacnn.data.writer import write_arrays
from dnacnn.genome import Genome

log = logging.getLogger(__name__)

#: Well-known vertebrate factors with long, distinct, high-information motifs (11-23
#: bits; short ones such as FOXA1 or GATA1 alone, 7-8 bp, also match at random in
#: real DNA and blur the labels): name -> JASPAR matrix (latest version).
DEFAULT_FACTORS: dict[str, str] = {
    "CTCF": "MA0139", "REST": "MA0138", "ZNF143": "MA0088", "TP53": "MA0106",
    "NR3C1": "MA0113", "ESR1": "MA0112", "HNF1A": "MA0046", "HNF4A": "MA1494",
    "NRF1": "MA0506", "CEBPB": "MA0466", "NFKB1": "MA0105", "SPI1": "MA0080",
    "SP1": "MA0079", "IRF1": "MA0050", "FOS::JUN": "MA0099", "GATA1::TAL1": "MA0140",
    "RFX1": "MA0509", "SRF": "MA0083", "POU5F1::SOX2": "MA0142", "THAP11": "MA1573",
}


@dataclass(frozen=True)
class AccessibilityConfig:
    """The simulated accessibility task.

    Attributes:
        n_windows: windows in the dataset (fewer if the genome has fewer).
        length: L, bp per window.
        factors: factor names of :data:`DEFAULT_FACTORS`, JASPAR ids, or names in
            the MEME file passed.
        factors_per_cell: (min, max) active factors per cell type, inclusive.
        motif_fraction: share of windows carrying instances.
        instances_per_window: (min, max) instances in such a window, inclusive.
        min_match: a sampled instance is kept when its log-odds score is at least
            this share of the consensus's (else resampled): weak draws, which a
            factor would not bind, would only blur the signal.
        label_noise: probability that a label is flipped.
        max_n_fraction: windows with more N are never used (0: only all-ACGT windows).
        n_breaking, n_neutral: simulated variants of each kind.
        break_bases: bases substituted per breaking variant (the most informative).
        neutral_min_distance: bp between a neutral variant and any instance.
        split: block split (chromosome splits need several chromosomes).
        seed: numpy Generator seed.
        jaspar_release: pyjaspar release when no MEME file is given.
    """

    n_windows: int = 40_000
    length: int = 600
    factors: tuple[str, ...] = tuple(DEFAULT_FACTORS)
    factors_per_cell: tuple[int, int] = (2, 5)
    motif_fraction: float = 0.4
    instances_per_window: tuple[int, int] = (1, 3)
    min_match: float = 0.8
    label_noise: float = 0.02
    max_n_fraction: float = 0.0
    n_breaking: int = 200
    n_neutral: int = 200
    break_bases: int = 3
    neutral_min_distance: int = 50
    split: SplitConfig = field(default_factory=lambda: SplitConfig(
        method="block", block_size=500_000, valid_fraction=0.1, test_fraction=0.1))
    seed: int = 0
    jaspar_release: str = "JASPAR2024"

    def __post_init__(self) -> None:
        for name in ("n_windows", "length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_breaking", "n_neutral", "neutral_min_distance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.max_n_fraction <= 1 or not 0 <= self.min_match <= 1:
            raise ValueError(f"max_n_fraction and min_match are shares in [0, 1], got "
                             f"{self.max_n_fraction} and {self.min_match}")
        lo, hi = self.factors_per_cell
        if not 1 <= lo <= hi <= len(self.factors):
            raise ValueError(
                f"factors_per_cell {self.factors_per_cell} must satisfy 1 <= min <= max <= "
                f"{len(self.factors)} (the number of factors)"
            )
        lo, hi = self.instances_per_window
        if not 1 <= lo <= hi:
            raise ValueError(f"instances_per_window {self.instances_per_window} must be 1 <= min <= max")
        if not 0 <= self.label_noise < 0.5 or not 0 < self.motif_fraction <= 1:
            raise ValueError("label_noise must be in [0, 0.5) and motif_fraction in (0, 1]")
        if self.break_bases < 1:
            raise ValueError(f"break_bases must be >= 1, got {self.break_bases}")


# ---------------------------------------------------------------- pure steps


def load_factor_motifs(
    factors: Sequence[str], meme: str | Path | None = None, release: str = "JASPAR2024"
) -> dict[str, Motif]:
    """Factor name -> matrix, from a MEME file or pyjaspar.

    A factor named in :data:`DEFAULT_FACTORS` is looked up by its JASPAR id;
    any other key by id or by name.
    """
    keys = [DEFAULT_FACTORS.get(f, f) for f in factors]
    if meme is not None:
        pool = read_meme(meme)
        found = [find_motif(pool, k) for k in keys]
    else:
        found = jaspar_motifs(keys, release=release)
    return dict(zip(factors, found))


def assign_cell_factors(
    tasks: Sequence[str], factors: Sequence[str], per_cell: tuple[int, int], rng: np.random.Generator
) -> dict[str, list[str]]:
    """Each cell type's active factors: between ``per_cell[0]`` and ``per_cell[1]`` of them.

    A factor that no cell type drew is then added to a random cell type that
    has room (fewer than ``per_cell[1]``), so that every factor matters somewhere.
    """
    lo, hi = per_cell
    active = {}
    for task in tasks:
        k = int(rng.integers(lo, hi + 1))
        active[task] = sorted(rng.choice(len(factors), size=k, replace=False).tolist())
    used = {f for picks in active.values() for f in picks}
    for f in range(len(factors)):
        if f in used:
            continue
        roomy = [t for t in tasks if len(active[t]) < hi]
        if roomy:
            active[roomy[int(rng.integers(len(roomy)))]].append(f)
    return {t: [factors[f] for f in sorted(picks)] for t, picks in active.items()}


def plan_instances(
    n_windows: int,
    length: int,
    motifs: dict[str, Motif],
    config: AccessibilityConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Motif instances to implant: which windows, where, which factor, which sequence.

    Returns:
        DataFrame window, offset (0-based in the window), strand (+/-), factor,
        motif_id, sequence (as it reads on the genome's + strand).
    """
    names = list(motifs)
    rows = []
    carriers = np.flatnonzero(rng.random(n_windows) < config.motif_fraction)
    lo, hi = config.instances_per_window
    for window in carriers:
        k = int(rng.integers(lo, hi + 1))
        picks = rng.choice(len(names), size=min(k, len(names)), replace=False)
        taken: list[tuple[int, int]] = []
        for f in picks:
            motif = motifs[names[f]]
            for _ in range(100):  # non-overlapping positions, 1 bp apart at least
                offset = int(rng.integers(0, length - motif.width + 1))
                if all(offset + motif.width < a or b < offset for a, b in taken):
                    break
            else:
                continue
            taken.append((offset, offset + motif.width))
            strand = "+" if rng.random() < 0.5 else "-"
            seq = sample_strong(motif, config.min_match, rng)
            if strand == "-":
                seq = sequence.reverse_complement(seq)
            rows.append((int(window), offset, strand, names[f], motif.id, seq))
    return pd.DataFrame(rows, columns=["window", "offset", "strand", "factor", "motif_id", "sequence"])


def sample_strong(motif: Motif, min_match: float, rng: np.random.Generator, tries: int = 1000) -> str:
    """One instance sampled from the matrix, resampled until it scores at least
    ``min_match`` times the consensus's log-odds (the consensus if none does)."""
    floor = min_match * motif.log_odds(motif.consensus)
    for _ in range(max(1, tries // 50)):
        for seq in motif.sample(rng, 50):
            if motif.log_odds(seq) >= floor:
                return seq
    return motif.consensus


def clean_labels(
    n_windows: int, instances: pd.DataFrame, tasks: Sequence[str], cell_factors: dict[str, list[str]]
) -> np.ndarray:
    """(N, T) float32: 1 where a window carries an instance of a factor active in the cell type."""
    labels = np.zeros((n_windows, len(tasks)), dtype=np.float32)
    for t, task in enumerate(tasks):
        active = set(cell_factors[task])
        hit = instances.loc[instances["factor"].isin(active), "window"].to_numpy(dtype=np.int64)
        labels[hit, t] = 1.0
    return labels


# ---------------------------------------------------------------- the whole task


def simulate_accessibility(
    fasta: str | Path,
    out_dir: str | Path,
    tasks: Sequence[str],
    config: AccessibilityConfig = AccessibilityConfig(),
    meme: str | Path | None = None,
) -> DatasetDescription:
    """Simulate the task on a real genome and write everything to ``out_dir``.

    Args:
        fasta: indexed FASTA of the real genome (e.g. GRCh37 chr20 from vt-examples).
        out_dir: output folder (layout in the module docstring).
        tasks: cell-type names, e.g. ``dnacnn.models.basset_cell_types()``; no commas.
        config: :class:`AccessibilityConfig`.
        meme: a MEME file to take the matrices from; default pyjaspar.
    Returns:
        the saved :class:`DatasetDescription` (``extra`` lists the truth files).
    """
    tasks = list(tasks)
    bad = [t for t in tasks if "," in t or not t.strip()]
    if bad or len(set(tasks)) != len(tasks):
        raise ValueError(f"task names must be unique, non-empty and without commas; check {bad[:5]}")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(config.seed)
    motifs = load_factor_motifs(config.factors, meme, config.jaspar_release)
    widest = max(motifs.values(), key=lambda m: m.width)
    if config.length < widest.width:
        raise ValueError(f"length {config.length} is shorter than the widest motif "
                         f"({widest.id}, {widest.width} bp): no window could carry it")
    genome = Genome(fasta)
    lengths = dict(genome.lengths)

    candidates = candidate_windows(genome, config.length, config.max_n_fraction)
    if len(candidates) == 0:
        raise ValueError(f"{fasta} has no {config.length} bp window with at most "
                         f"{config.max_n_fraction:.0%} N; pass a genome with real sequence")
    if len(candidates) < config.n_windows:
        log.warning("%s has %d usable windows; using all of them (asked for %d)",
                    fasta, len(candidates), config.n_windows)
    pick = np.sort(rng.choice(len(candidates), size=min(config.n_windows, len(candidates)),
                              replace=False))
    windows = candidates.iloc[pick].reset_index(drop=True)
    windows["end"] = windows["start"] + config.length
    windows["split"] = assign_splits(windows["chrom"].to_numpy(), windows["start"].to_numpy(),
                                     config.split, windows["end"].to_numpy())
    windows["split"] = windows["split"].fillna("")  # "" = spans blocks of two splits: not in the dataset
    n = len(windows)
    log.info("simulating %d windows x %d cell types, %d factors", n, len(tasks), len(motifs))

    cell_factors = assign_cell_factors(tasks, list(motifs), config.factors_per_cell, rng)
    instances = plan_instances(n, config.length, motifs, config, rng)
    labels_clean = clean_labels(n, instances, tasks, cell_factors)
    flips = rng.random(labels_clean.shape) < config.label_noise
    labels = np.where(flips, 1.0 - labels_clean, labels_clean).astype(np.float32)

    # the modified genome: every contig, with the instances written in
    genome_seq: dict[str, bytearray] = {}
    onehot = np.zeros((n, config.length, 4), dtype=np.uint8)
    for chrom in lengths:
        seq = bytearray(genome.fetch(chrom, 0, lengths[chrom]).encode("ascii"))
        rows = np.flatnonzero(windows["chrom"].to_numpy() == chrom)
        here = instances[instances["window"].isin(rows)]
        for inst in here.itertuples():
            g0 = int(windows.at[inst.window, "start"]) + inst.offset
            seq[g0 : g0 + len(inst.sequence)] = inst.sequence.encode()
        for w in rows:
            s = int(windows.at[w, "start"])
            onehot[w] = sequence.encode(bytes(seq[s : s + config.length]))
        genome_seq[chrom] = seq
    genome.close()
    out_dir.mkdir(parents=True, exist_ok=True)  # inputs all read: nothing is made on bad input
    write_fasta_bgzip(genome_seq, out_dir / "genome.fa.gz")

    variants = plan_variants(windows, instances, motifs, tasks, cell_factors, genome_seq, config, rng)
    write_variants_vcf(variants, lengths, out_dir / "variants.vcf.gz")
    variants.to_csv(out_dir / "variant_effects.tsv", sep="\t", index=False)

    write_truth(out_dir, windows, instances, tasks, cell_factors, motifs, labels_clean, labels)
    description = DatasetDescription(
        name="accessibility_sim",
        task_type="multitask",
        tasks=tasks,
        seq_len=config.length,
        splits={"method": "block", **config.split.to_dict()},
        sources={"genome": str(fasta), "simulator": __name__,
                 "config": json.loads(json.dumps(asdict(config), default=str)),
                 "motifs": meme and str(meme) or f"pyjaspar {config.jaspar_release}"},
        extra={
            "genome": "genome.fa.gz", "variants": "variants.vcf.gz",
            "variant_effects": "variant_effects.tsv", "instances": "instances.parquet",
            "windows": "windows.parquet", "cell_factors": "cell_factors.tsv",
            "motifs": "motifs.meme",
            "n_instances": int(len(instances)),
            "windows_with_motif": float(instances["window"].nunique() / max(n, 1)),
            "positive_rate": float(labels_clean.mean()),
            "label_flips": int(flips.sum()),
            "n_breaking": int(variants["breaks_motif"].sum()) if len(variants) else 0,
            "n_neutral": int((variants["breaks_motif"] == 0).sum()) if len(variants) else 0,
        },
    )
    keep = windows["split"].to_numpy() != ""
    split = np.where(keep, windows["split"].to_numpy(), None)
    return write_arrays(out_dir, description, onehot, labels, split,
                        windows["chrom"].to_numpy(), windows["start"].to_numpy(),
                        windows["end"].to_numpy())

