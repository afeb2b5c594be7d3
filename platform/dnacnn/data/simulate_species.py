"""Species of origin of short genome fragments (the human-vs-mouse write-up).

Windows of L bp (default 200) on the grid ``0, L, 2L, ...`` of every contig of
each species' FASTA files (non-overlapping, at most ``max_n_fraction`` N), are
labelled by species. With two species the task is binary (label 1 = the first
species named); with more it is multi-class.

Split by genomic block (:class:`SplitConfig` ``block``) with the species and
file as hash key, so that no window is shared between splits and two genome
pieces with the same contig name split independently. Each split is then
balanced by down-sampling every species to the smallest one's count (seeded).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dnacnn import sequence
from dnacnn.data.dataset_io import SPLITS, DatasetDescription
from dnacnn.data.splits import SplitConfig, assign_splits
from dnacnn.data.windows import candidate_windows
from dnacnn.data.writer import write_arrays
from dnacnn.genome import Genome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeciesConfig:
    """The species task.

    Attributes:
        length: L, bp per fragment.
        n_per_species: at most this many windows per species before splitting
            (None: all); each split is then balanced.
        max_n_fraction: windows with more N are skipped.
        split: a block split (blocks of 10 kb suit the small genome pieces).
        seed: numpy Generator seed.
    """

    length: int = 200
    n_per_species: int | None = None
    max_n_fraction: float = 0.0
    split: SplitConfig = field(default_factory=lambda: SplitConfig(
        method="block", block_size=10_000, valid_fraction=0.15, test_fraction=0.15))
    seed: int = 0


def species_windows(
    species: str, fastas: Sequence[str | Path], config: SpeciesConfig
) -> pd.DataFrame:
    """Grid windows of one species' FASTA files, with their split.

    Returns:
        DataFrame species, source (file path), chrom, start, end, split (None: dropped).
    """
    parts = []
    for path in fastas:
        genome = Genome(path)
        try:
            found = candidate_windows(genome, config.length, config.max_n_fraction)
        finally:
            genome.close()
        found["species"], found["source"] = species, str(path)
        found["end"] = found["start"] + config.length
        found["split"] = assign_splits(found["chrom"].to_numpy(), found["start"].to_numpy(),
                                       config.split, found["end"].to_numpy(),
                                       key=f"{species}/{Path(path).name}")
        parts.append(found)
    return pd.concat(parts, ignore_index=True)


def balance(windows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Down-sample each split so every species has the same count (the smallest)."""
    keep = []
    for split in SPLITS:
        part = windows[windows["split"] == split]
        groups = [g for _, g in part.groupby("species")]
        if len(groups) < windows["species"].nunique():
            continue
        n = min(len(g) for g in groups)
        keep += [g.iloc[np.sort(rng.choice(len(g), n, replace=False))] for g in groups]
    return pd.concat(keep, ignore_index=True) if keep else windows.iloc[:0]


def simulate_species(
    genomes: dict[str, Sequence[str | Path]],
    out_dir: str | Path,
    config: SpeciesConfig = SpeciesConfig(),
) -> DatasetDescription:
    """Write the species-of-origin dataset.

    Args:
        genomes: species name -> its FASTA files (indexed), e.g.
            ``{"human": [hg19.fa], "mouse": [piece1.fa, piece2.fa]}``; the first
            species is the positive class of the binary task.
        out_dir: dataset folder.
    """
    if len(genomes) < 2:
        raise ValueError(f"give at least two species (got {list(genomes)}): name=FASTA pairs")
    rng = np.random.default_rng(config.seed)
    names = list(genomes)
    tables = []
    for name in names:
        found = species_windows(name, genomes[name], config)
        if config.n_per_species is not None and len(found) > config.n_per_species:
            found = found.iloc[np.sort(rng.choice(len(found), config.n_per_species, replace=False))]
        log.info("%s: %d windows of %d bp", name, len(found), config.length)
        tables.append(found)
    windows = balance(pd.concat(tables, ignore_index=True), rng)
    if len(windows) == 0:
        raise ValueError("no split has windows of every species; lower split.block_size or give "
                         "longer genomes")
    onehot = np.zeros((len(windows), config.length, 4), dtype=np.uint8)
    for source, rows in windows.groupby("source").groups.items():
        genome = Genome(source)
        try:
            rows = np.asarray(rows)  # positions: windows has a RangeIndex
            seqs = [genome.fetch(c, s, s + config.length) for c, s in
                    zip(windows["chrom"].to_numpy()[rows], windows["start"].to_numpy()[rows])]
            onehot[rows] = sequence.encode_batch(seqs, config.length)
        finally:
            genome.close()
    cls = windows["species"].map({n: i for i, n in enumerate(names)}).to_numpy()
    if len(names) == 2:
        labels, tasks, task_type = (cls == 0).astype(np.float32)[:, None], [names[0]], "binary"
    else:
        labels, tasks, task_type = np.eye(len(names), dtype=np.float32)[cls], names, "multiclass"
    description = DatasetDescription(
        name="species", task_type=task_type, tasks=tasks, seq_len=config.length,
        splits={"method": "block", "key": "species/file", **config.split.to_dict(),
                "balanced": "each split down-sampled to equal counts per species"},
        sources={"genomes": {k: [str(p) for p in v] for k, v in genomes.items()},
                 "config": {**asdict(config), "split": config.split.to_dict()}},
        extra={"species": names, "positive": names[0] if len(names) == 2 else None},
    )
    return write_arrays(out_dir, description, onehot, labels, windows["split"].to_numpy(),
                        windows["chrom"].to_numpy(), windows["start"].to_numpy(),
                        windows["end"].to_numpy())
