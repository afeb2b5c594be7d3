"""Sequences to interpret: a dataset split (with known motif sites when the simulator
recorded them), FASTA records, BED intervals, a genomic region or the window around a variant."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from dnacnn import sequence
from dnacnn.data.bed import read_bed
from dnacnn.data.dataset_io import SPLITS, DatasetDescription, column_to_numpy, split_dir
from dnacnn.data.motifs import Motif, read_meme
from dnacnn.genome import Genome
from dnacnn.variants.alleles import check_allele

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """A variant as ``--variant`` gave it, and where it lies in its window.

    Attributes:
        chrom: the contig as given; pos: its 1-based position.
        ref, alt: the alleles, upper case.
        kind: SNV, MNV, insertion or deletion (:func:`dnacnn.variants.allele_kind`).
        index: the 0-based position of ``pos`` in the window (L // 2).
    """

    chrom: str
    pos: int
    ref: str
    alt: str
    kind: str
    index: int


@dataclass
class Sequences:
    """Sequences with names, and what is known about them.

    Attributes:
        names: N names (``chrom:start-end`` or a FASTA id).
        onehot: (N, L, 4) uint8.
        labels: (N, T) float32 when known.
        sites: known motif sites, (sequence index, start, end, motif) rows, 0-based half-open.
        marks: positions to mark (e.g. a variant), (sequence index, position, label) rows.
        variant: the variant whose reference window the one sequence is, else None.
    """

    names: list[str]
    onehot: np.ndarray
    labels: np.ndarray | None = None
    sites: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["sequence", "start", "end", "motif"]))
    marks: list[tuple[int, int, str]] = field(default_factory=list)
    variant: Variant | None = None


def dataset_sequences(dataset: str | Path, split: str = "test", max_sequences: int | None = None,
                      seed: int = 0, tasks: Sequence[str] | None = None,
                      seq_len: int | None = None) -> Sequences:
    """The sequences, labels and (when recorded) motif sites of a dataset split.

    Args:
        max_sequences: keep a random subset of this many rows (seeded); None keeps all.
        tasks: the model's T task names, when its outputs are compared with the labels
            (the filters' influence): the dataset's tasks must be these, in this order.
        seq_len: the model's window, when it takes only one: the dataset's must be it.
    Raises:
        ValueError: a folder that is not a dataset, an empty split, other tasks or
            another window length.
    """
    dataset = Path(dataset)
    description = DatasetDescription.load(dataset)  # refuses a folder that is not a dataset
    if tasks is not None and list(description.tasks) != list(tasks):
        raise ValueError(
            f"{dataset}: its labels are for the task(s) {_listed(description.tasks)}, the model "
            f"predicts {_listed(tasks)}; give the dataset the model was trained on (or --fasta "
            "or --bed, which have no labels)")
    if seq_len is not None and description.seq_len != seq_len:
        raise ValueError(f"{dataset} holds {description.seq_len} bp windows; this model takes exactly "
                         f"{seq_len} bp: give a dataset of its window length")
    if split not in SPLITS:
        raise ValueError(f"--split {split!r} is not a split of a dataset ({dataset}): one of {', '.join(SPLITS)}")
    folder = split_dir(dataset, split)
    if not folder.is_dir():
        raise FileNotFoundError(f"{dataset} has no {split} split (no folder {folder})")
    table = pq.read_table(folder)
    if table.num_rows == 0:
        raise ValueError(f"{dataset}: split {split!r} has no rows")
    rows = np.arange(table.num_rows)
    if max_sequences is not None and max_sequences < table.num_rows:
        rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, max_sequences, replace=False))
        table = table.take(rows)
    chrom = table.column("chrom").to_pylist()
    start = np.asarray(table.column("start"))
    end = np.asarray(table.column("end"))
    return Sequences(
        names=[f"{c}:{s}-{e}" for c, s, e in zip(chrom, start, end)],
        onehot=column_to_numpy(table.column("onehot")),
        labels=column_to_numpy(table.column("labels")) if "labels" in table.column_names else None,
        sites=_known_sites(dataset, chrom, start),
    )


def _listed(names: Sequence[str], most: int = 5) -> str:
    """``a, b, c`` (the first ``most``, then how many more)."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _known_sites(dataset: Path, chrom: list[str], start: np.ndarray) -> pd.DataFrame:
    """Motif sites the simulators recorded: the tutorial's ground_truth.parquet (keyed by
    the row's start = sample index) or the accessibility task's instances.parquet."""
    key = {(c, int(s)): i for i, (c, s) in enumerate(zip(chrom, start))}
    rows = []
    if (dataset / "ground_truth.parquet").exists():
        truth = pd.read_parquet(dataset / "ground_truth.parquet")
        truth = truth[truth["position"] >= 0]
        for index, pos, seq, motif in zip(truth["index"], truth["position"], truth["motif_seq"],
                                          truth["motif"]):
            if ("synthetic", int(index)) in key:
                rows.append((key["synthetic", int(index)], int(pos), int(pos) + len(seq), motif))
    elif (dataset / "instances.parquet").exists():
        instances = pd.read_parquet(dataset / "instances.parquet")
        windows = pd.read_parquet(dataset / "windows.parquet", columns=["window", "start"])
        instances = instances.merge(windows, on="window", suffixes=("", "_window"))
        for c, s, e, w0, factor in zip(instances["chrom"], instances["start"], instances["end"],
                                       instances["start_window"], instances["factor"]):
            if (c, int(w0)) in key:
                rows.append((key[c, int(w0)], int(s) - int(w0), int(e) - int(w0), factor))
    return pd.DataFrame(rows, columns=["sequence", "start", "end", "motif"])


def implanted_motifs(dataset: str | Path) -> list[Motif] | None:
    """The JASPAR matrices a simulator implanted (its ``motifs.meme``), or None when the
    dataset records none (e.g. the tutorial's literal patterns)."""
    description = DatasetDescription.load(dataset)
    name = description.extra.get("motifs")
    if isinstance(name, str) and (Path(dataset) / name).exists():
        return read_meme(Path(dataset) / name)
    return None


def fasta_sequences(path: str | Path, seq_len: int | None, limit: int | None = None) -> Sequences:
    """The records of a FASTA file (the first ``limit`` of them, said when there are more; each
    record is checked); each must have bases, ``seq_len`` of them when given (else the first
    record's length), only bases and IUPAC codes (read as unknown), never other characters
    read as N, and a name no other record has (the outputs are keyed by it)."""
    from dnacnn.data.labelled_fasta import read_fasta_records

    names, seqs, number = [], [], {}
    for name, seq in read_fasta_records(path):
        if not seq:
            raise ValueError(f"{path}: record {name} is empty (a header without bases); remove it or add its sequence")
        length = seq_len if seq_len is not None else len(seqs[0]) if seqs else len(seq)
        if len(seq) != length:
            takes = "this model takes exactly" if seq_len is not None else f"record {names[0]} has"
            raise ValueError(f"{path}: record {name} has {len(seq)} bases; {takes} {length}: "
                             f"cut or pad it to {length} bp")
        if problem := sequence.non_dna(seq):
            raise ValueError(f"{path}: record {name} {problem}")
        if name in number:
            raise ValueError(f"{path}: record {name} is the name of record {number[name]} too "
                             f"(record {len(names) + 1}); give each record its own name")
        number[name] = len(names) + 1
        names.append(name)
        seqs.append(seq)
    if limit is not None and len(seqs) > limit:
        log.warning("%s: using its first %d of %d records (--max-sequences)", path, limit, len(seqs))
        names, seqs = names[:limit], seqs[:limit]
    return Sequences(names, sequence.encode_batch(seqs, len(seqs[0])))


def _check_on_contig(g: Genome, chrom: str, start: int, end: int, what: str) -> None:
    """Refuse ``[start, end)`` (0-based) unless it lies on its contig: a window around a
    place past the contig's end (or before its start) would be all N, and read as data.

    Raises:
        ValueError: ``what`` (the option or file and the place, as given) is not within
            the contig, whose extent it names.
    """
    size = g.length(chrom)
    if start < 0 or end > size:
        raise ValueError(f"{what} is not within contig {g.resolve(chrom)!r} (1-based 1-{size}); "
                         "check the coordinates and the genome build")


def bed_sequences(genome: str | Path, bed: str | Path, seq_len: int) -> Sequences:
    """A ``seq_len`` window centred on each interval of a BED file (N where the window,
    not the interval, runs past a contig's end)."""
    g = Genome(genome)
    names, onehot = [], []
    for chrom, start, end in read_bed(bed):
        _check_on_contig(g, chrom, start, end, f"{bed}: interval {chrom}:{start}-{end}")
        lo = (start + end) // 2 - seq_len // 2
        names.append(f"{chrom}:{lo}-{lo + seq_len}")
        onehot.append(g.fetch_onehot(chrom, lo, lo + seq_len))
    if not onehot:
        raise ValueError(f"{bed} holds no intervals")
    return Sequences(names, np.stack(onehot))


_REGION = re.compile(r"^([^:\s]+):(\d[\d,]*)-(\d[\d,]*)$")
_VARIANT = re.compile(r"^([^:\s]+):(\d+):([ACGTNacgtn]+)>([ACGTNacgtn]+)$")


def region_sequence(genome: str | Path, region: str, seq_len: int) -> Sequences:
    """The ``seq_len`` window centred on ``chr:start-end`` (1-based inclusive, as genome
    browsers write it); the region is marked."""
    match = _REGION.match(region)
    if match is None:
        raise ValueError(f"--region {region!r} is not chr:start-end (e.g. chr20:1000000-1000600)")
    chrom, start, end = match.group(1), int(match.group(2).replace(",", "")) - 1, \
        int(match.group(3).replace(",", ""))
    if end <= start:
        raise ValueError(f"--region {region}: its end comes before its start (chr:start-end, 1-based inclusive)")
    if end - start > seq_len:
        raise ValueError(f"--region {region}: needs 1 to {seq_len} bp (the model's window), "
                         f"got {end - start}")
    g = Genome(genome)
    _check_on_contig(g, chrom, start, end, f"--region {region}")
    lo = (start + end) // 2 - seq_len // 2
    onehot = g.fetch_onehot(chrom, lo, lo + seq_len)
    sites = pd.DataFrame([(0, start - lo, end - lo, region)], columns=["sequence", "start", "end", "motif"])
    return Sequences([f"{chrom}:{lo}-{lo + seq_len}"], onehot[None], sites=sites)


def variant_sequence(genome: str | Path, variant: str, seq_len: int) -> Sequences:
    """The reference window around ``chr:pos:ref>alt`` (1-based pos; window start = p - L//2,
    as the scorer's); the alleles must pass the scorer's rules (:func:`dnacnn.variants.check_allele`:
    REF matches the genome, N matching any base; ALT differs from REF). The variant's position
    is marked, and the variant kept with the window."""
    match = _VARIANT.match(variant)
    if match is None:
        raise ValueError(f"--variant {variant!r} is not chr:pos:ref>alt (e.g. chr20:1000000:A>G)")
    chrom, pos, ref, alt = match.group(1), int(match.group(2)) - 1, match.group(3).upper(), match.group(4).upper()
    g = Genome(genome)
    _check_on_contig(g, chrom, pos, pos + len(ref), f"--variant {variant}")
    kind, reject, message = check_allele(g, chrom, pos + 1, ref, alt)
    if reject:
        raise ValueError(f"--variant {variant} (genome {genome}): {message}")
    lo = pos - seq_len // 2
    onehot = g.fetch_onehot(chrom, lo, lo + seq_len)
    return Sequences([f"{chrom}:{lo}-{lo + seq_len}"], onehot[None], marks=[(0, pos - lo, variant)],
                     variant=Variant(chrom, pos + 1, ref, alt, kind, pos - lo))
