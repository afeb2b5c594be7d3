"""The tutorial's synthetic sequence task, binary and multi-class, with its ground truth.

Binary (as in the original tutorial): random 200 bp sequences (A, C, G, T
uniform); half are positives carrying one of TATAAA, CAAT, GGGCGG, TTGACA at a
random position; of the negatives, 30% carry a decoy homopolymer (AAAAAAA,
TTTTTTT, CCCCCCC or GGGGGGG). As in the original, the background is not
scrubbed of the short motifs (CAAT turns up by chance in most random 200 bp
sequences), so the task is noisy on purpose.

Multi-class (four classes, about a quarter of the samples each):

=============  =========================================================
class          motifs (one implanted per sample, at a random position)
=============  =========================================================
promoter       TATAAA (TATA box), CAAT (CAAT box), GGGCGG (GC box), TTGACA (-35 box)
splice_site    CAGGTAAGT (5' donor consensus MAG|GURAGU), TTTTTTTTTTCAGG
               (3' acceptor: polypyrimidine tract + YAG|G)
regulatory     CCGCGNGGNGGCAG (CTCF core; each N drawn uniformly per instance),
               TGACTCA (AP-1), CACGTG (E-box)
background     none; 30% carry a decoy homopolymer as in the binary task
=============  =========================================================

The ground truth (``ground_truth.parquet``) has one row per sample: its index
(= the ``start`` column of the dataset), split, class, the motif pattern and the
exact implanted sequence and 0-based position (-1 and "" for none).

Splits are random and stratified by class, which is sound here because the
synthetic sequences are i.i.d. (no genome, so nothing overlaps); defaults follow
the tutorial: 20% test, then 20% of the rest valid (64/16/20).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dnacnn import sequence
from dnacnn.data.dataset_io import DatasetDescription
from dnacnn.data.splits import random_split
from dnacnn.data.writer import write_arrays

log = logging.getLogger(__name__)

POSITIVE_MOTIFS = ("TATAAA", "CAAT", "GGGCGG", "TTGACA")
DECOY_MOTIFS = ("AAAAAAA", "TTTTTTT", "CCCCCCC", "GGGGGGG")
CLASS_MOTIFS: dict[str, tuple[str, ...]] = {
    "promoter": POSITIVE_MOTIFS,
    "splice_site": ("CAGGTAAGT", "TTTTTTTTTTCAGG"),
    "regulatory": ("CCGCGNGGNGGCAG", "TGACTCA", "CACGTG"),
    "background": (),
}
CLASSES = tuple(CLASS_MOTIFS)
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


@dataclass(frozen=True)
class TutorialConfig:
    """The synthetic task.

    Attributes:
        n_samples: sequences in all (split into train/valid/test).
        length: L, bp per sequence.
        decoy_fraction: share of negatives (binary) / background (multi-class)
            carrying a decoy homopolymer.
        valid_fraction, test_fraction: random stratified split.
        seed: numpy Generator seed; the same seed gives the same dataset.
    """

    n_samples: int = 10_000
    length: int = 200
    decoy_fraction: float = 0.3
    valid_fraction: float = 0.16
    test_fraction: float = 0.2
    seed: int = 42

    def __post_init__(self) -> None:
        longest = max(len(m) for ms in CLASS_MOTIFS.values() for m in ms)
        if self.length < longest:
            raise ValueError(f"length {self.length} is shorter than the longest motif ({longest} bp)")
        if self.n_samples < 4:
            raise ValueError(f"n_samples must be at least 4, got {self.n_samples}")


@dataclass
class SimulatedSequences:
    """A simulated set.

    Attributes:
        sequences: N strings of length L.
        labels: (N, T) float32 (binary: T=1; multi-class: one-hot over :data:`CLASSES`).
        tasks: T names.
        truth: one row per sample: index, label, kind (positive/decoy/none),
            motif (pattern), motif_seq (implanted), position (0-based, -1 if none).
    """

    sequences: list[str]
    labels: np.ndarray
    tasks: list[str]
    truth: pd.DataFrame


def random_sequences(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """(n, length) uint8 ASCII of uniform random A, C, G, T."""
    return _BASES[rng.integers(0, 4, size=(n, length))]


def _resolve(pattern: str, rng: np.random.Generator) -> str:
    """A pattern with each N replaced by a uniform random base."""
    return "".join(chr(_BASES[rng.integers(0, 4)]) if c == "N" else c for c in pattern)


def _implant(
    codes: np.ndarray, rows: np.ndarray, motifs: tuple[str, ...], rng: np.random.Generator
) -> list[tuple[int, str, str, int]]:
    """Write one random motif of ``motifs`` into each row; (row, pattern, seq, position)."""
    out = []
    length = codes.shape[1]
    for row in rows:
        pattern = motifs[rng.integers(0, len(motifs))]
        seq = _resolve(pattern, rng)
        pos = int(rng.integers(0, length - len(seq) + 1))
        codes[row, pos : pos + len(seq)] = np.frombuffer(seq.encode(), dtype=np.uint8)
        out.append((int(row), pattern, seq, pos))
    return out


def _truth(n: int, labels: list, implants: dict[str, list]) -> pd.DataFrame:
    kind = np.full(n, "none", dtype=object)
    motif = np.full(n, "", dtype=object)
    motif_seq = np.full(n, "", dtype=object)
    position = np.full(n, -1, dtype=np.int64)
    for name, rows in implants.items():
        for row, pattern, seq, pos in rows:
            kind[row], motif[row], motif_seq[row], position[row] = name, pattern, seq, pos
    return pd.DataFrame({
        "index": np.arange(n, dtype=np.int64), "label": labels, "kind": kind,
        "motif": motif, "motif_seq": motif_seq, "position": position,
    })


def simulate_binary(config: TutorialConfig = TutorialConfig()) -> SimulatedSequences:
    """The tutorial's binary task: balanced positives (motif) and negatives (30% decoys)."""
    rng = np.random.default_rng(config.seed)
    n = config.n_samples
    is_pos = np.zeros(n, dtype=bool)
    is_pos[rng.permutation(n)[: n // 2]] = True
    codes = random_sequences(n, config.length, rng)
    positives = _implant(codes, np.flatnonzero(is_pos), POSITIVE_MOTIFS, rng)
    negatives = np.flatnonzero(~is_pos)
    decoy_rows = negatives[rng.random(len(negatives)) < config.decoy_fraction]
    decoys = _implant(codes, decoy_rows, DECOY_MOTIFS, rng)
    truth = _truth(n, is_pos.astype(np.int64).tolist(), {"positive": positives, "decoy": decoys})
    seqs = [row.tobytes().decode("ascii") for row in codes]
    return SimulatedSequences(seqs, is_pos[:, None].astype(np.float32), ["motif"], truth)


def simulate_multiclass(config: TutorialConfig = TutorialConfig()) -> SimulatedSequences:
    """Four classes (promoter, splice site, regulatory element, background), balanced."""
    rng = np.random.default_rng(config.seed)
    n = config.n_samples
    classes = np.resize(np.arange(len(CLASSES)), n)[rng.permutation(n)]  # balanced, shuffled
    codes = random_sequences(n, config.length, rng)
    implants: dict[str, list] = {"positive": []}
    for c, name in enumerate(CLASSES):
        rows = np.flatnonzero(classes == c)
        if CLASS_MOTIFS[name]:
            implants["positive"] += _implant(codes, rows, CLASS_MOTIFS[name], rng)
        else:
            decoy_rows = rows[rng.random(len(rows)) < config.decoy_fraction]
            implants["decoy"] = _implant(codes, decoy_rows, DECOY_MOTIFS, rng)
    truth = _truth(n, [CLASSES[c] for c in classes], implants)
    labels = np.eye(len(CLASSES), dtype=np.float32)[classes]
    seqs = [row.tobytes().decode("ascii") for row in codes]
    return SimulatedSequences(seqs, labels, list(CLASSES), truth)


def write_tutorial(
    out_dir: str | Path, config: TutorialConfig = TutorialConfig(), multiclass: bool = False
) -> DatasetDescription:
    """Simulate and write the dataset folder (splits, dataset.json, ground_truth.parquet).

    Returns:
        the saved :class:`DatasetDescription`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sim = simulate_multiclass(config) if multiclass else simulate_binary(config)
    stratify = sim.labels.argmax(axis=1) if multiclass else sim.labels[:, 0]
    split = random_split(len(sim.sequences), config.valid_fraction, config.test_fraction,
                         config.seed, stratify=stratify)
    sim.truth["split"] = split.astype(str)
    sim.truth.to_parquet(out_dir / "ground_truth.parquet", index=False)
    onehot = sequence.encode_batch(sim.sequences, config.length)
    description = DatasetDescription(
        name="tutorial_multiclass" if multiclass else "tutorial_binary",
        task_type="multiclass" if multiclass else "binary",
        tasks=sim.tasks,
        seq_len=config.length,
        splits={"method": "random, stratified by label (i.i.d. synthetic sequences)",
                "valid_fraction": config.valid_fraction, "test_fraction": config.test_fraction,
                "seed": config.seed},
        sources={"simulator": __name__, "config": asdict(config)},
        extra={
            "ground_truth": "ground_truth.parquet",
            "motifs": {k: list(v) for k, v in CLASS_MOTIFS.items()} if multiclass
            else {"positive": list(POSITIVE_MOTIFS), "decoy": list(DECOY_MOTIFS)},
            "decoys": list(DECOY_MOTIFS),
        },
    )
    return write_arrays(out_dir, description, onehot, sim.labels, split)
