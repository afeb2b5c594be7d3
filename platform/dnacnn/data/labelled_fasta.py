"""A dataset from one FASTA file per class (e.g. Oct4 peaks vs Mafk peaks).

Each record becomes one row. Headers of the form ``chrN:start-end`` (0-based,
as janggu's resources write them) give the coordinates; the split is by
chromosome (default ``chr8`` valid, ``chr9`` test, the rest train), which keeps
nearby peaks out of different splits. A header without coordinates is split
by a seeded hash of the whole header (``split.valid_fraction`` /
``split.test_fraction``), its ``chrom`` column is the header and its ``start``
the record's index in its file.

Sequences are brought to one length L: centred, cut or padded with N on both
sides (the window of L around the record's centre, as for intervals). With two
classes the task is binary (label 1 = the first class); with ``multiclass`` or
more than two files the labels are one-hot over the classes.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

from dnacnn import sequence
from dnacnn.compression import CR_ONLY, cr_only_lines, open_bytes
from dnacnn.data.dataset_io import DatasetDescription
from dnacnn.data.splits import SplitConfig, assign_split, block_split
from dnacnn.data.writer import write_arrays

log = logging.getLogger(__name__)

#: ``chrN:start-end`` at the start of a header, or after a name and ``::`` (``bedtools getfasta
#: -name`` writes ``peak7::chr9:1000-1100``); digits may be grouped by commas (1,000).
_COORDS = re.compile(r"^(?:[^\s:]+::)?(?P<chrom>[^:\s]+):(?P<start>\d[\d,]*)-(?P<end>\d[\d,]*)")


@dataclass(frozen=True)
class LabelledFastaConfig:
    """A dataset from labelled FASTA files.

    Attributes:
        length: L; None takes the longest record's length.
        multiclass: one-hot over classes even with two files.
        split: chromosome split (the hash fallback uses its fractions and seed).
    """

    length: int | None = None
    multiclass: bool = False
    split: SplitConfig = field(default_factory=lambda: SplitConfig(
        method="chrom", valid_chroms=("chr8",), test_chroms=("chr9",)))


def parse_header(name: str) -> tuple[str, int, int] | None:
    """``chrN:start-end`` (or ``NAME::chrN:start-end``) -> (chrom, start, end); None when the
    header has no coordinates."""
    match = _COORDS.match(name)
    if match is None:
        return None
    return match["chrom"], int(match["start"].replace(",", "")), int(match["end"].replace(",", ""))


def centre_resize(seq: str, length: int) -> str:
    """The ``length`` bases around the centre of ``seq`` (N-padded on both sides if shorter).

    The centre is index ``len(seq) // 2``, which lands at index ``length // 2``.
    """
    offset = len(seq) // 2 - length // 2
    if offset >= 0 and offset + length <= len(seq):
        return seq[offset : offset + length]
    left = "N" * max(0, -offset)
    core = seq[max(0, offset) : offset + length]
    return (left + core).ljust(length, "N")


def read_fasta_records(path: str | Path) -> list[tuple[str, str]]:
    """(header name, upper-case sequence) of every record."""
    if not Path(path).exists():
        raise FileNotFoundError(f"FASTA not found: {path}")
    if not Path(path).is_file():  # htslib crashes the process on a folder
        raise ValueError(f"{path} is not a file; give a FASTA file")
    with open_bytes(path) as handle:  # refuses bzip2, xz, ... by name
        if cr_only_lines(handle.read(1 << 16)):  # htslib would read one record, named by all of it
            raise ValueError(f"{path}: {CR_ONLY}")
    try:
        with pysam.FastxFile(str(path)) as handle:
            records = [(r.name + (f" {r.comment}" if r.comment else ""), (r.sequence or "").upper())
                       for r in handle]
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{path} cannot be read as FASTA ({err})") from None
    if not records:
        raise ValueError(f"{path} holds no FASTA records (lines starting with '>')")
    unnamed = next((i for i, (name, _) in enumerate(records, start=1) if not name.strip()), None)
    if unnamed is not None:
        raise ValueError(f"{path}: record {unnamed} has a '>' line without a name; name every record")
    first = _first_line(path)
    if first and not first.startswith(b">"):  # htslib skips text before the first header
        raise ValueError(f"{path}: its first line is not a '>' header ({first[:40]!r}...): that "
                         "sequence would belong to no record; add a header or remove it")
    return records


def _first_line(path: str | Path) -> bytes:
    """The first non-blank line of a (possibly gzipped) text file, stripped, without a
    byte-order mark (Windows editors write one; htslib reads past it)."""
    with open_bytes(path) as handle:
        for line in handle:
            if line.strip():
                return line.strip().removeprefix(b"\xef\xbb\xbf")
    return b""


def labelled_fasta_dataset(
    classes: dict[str, str | Path],
    out_dir: str | Path,
    config: LabelledFastaConfig = LabelledFastaConfig(),
) -> DatasetDescription:
    """Write the dataset of one FASTA per class.

    Every record is accounted for in the description's ``records``: written, or
    skipped as ``empty`` (no sequence), ``invalid_characters`` (a character that is not
    a base or an IUPAC code: '-', '*', digits) or ``all_n`` (no A/C/G/T in its window of L);
    record names seen before (in any of the files) are counted as ``duplicates``
    and written, with a warning.

    Args:
        classes: class name -> FASTA, e.g. ``{"Oct4": "sample.fa", "Mafk": "sample2.fa"}``.
        out_dir: dataset folder.
    Raises:
        ValueError: fewer than two classes, or a class left without a record to write.
    """
    if len(classes) < 2:
        raise ValueError(f"give at least two classes (got {list(classes)}): name=FASTA pairs")
    names = list(classes)
    records = {name: read_fasta_records(path) for name, path in classes.items()}
    longest = max(len(s) for recs in records.values() for _, s in recs)
    length = config.length or longest
    if length == 0:
        raise ValueError("every record of " + ", ".join(str(p) for p in classes.values())
                         + " is empty; give FASTA records with sequence")
    hash_split = dataclasses.replace(config.split, method="block")
    seqs, cls, chroms, starts, splits = [], [], [], [], []
    skipped: Counter = Counter()
    first: dict[str, str] = {}
    seen: set[str] = set()
    duplicates, uncoordinated = [], 0
    for c, name in enumerate(names):
        for index, (header, seq) in enumerate(records[name]):
            record = header.split()[0] if header.split() else header
            if record in seen:
                duplicates.append(f"{classes[name]}: {record}")
            seen.add(record)
            window = centre_resize(seq, length)
            reason = ("empty" if not seq else "invalid_characters" if sequence.non_dna(seq)
                      else "" if _CALLED.search(window) else "all_n")
            if reason:
                skipped[reason] += 1
                first.setdefault(reason, f"{classes[name]}: record {index} {record!r}")
                continue
            coords = parse_header(header)
            if coords is None:
                uncoordinated += 1
                chrom, start = record, index
                split = block_split(header, 0, hash_split, key="header")
            else:
                chrom, s, e = coords
                start = (s + e) // 2 - length // 2
                split = assign_split(chrom, start, config.split, start + length)
            seqs.append(window)
            cls.append(c)
            chroms.append(chrom)
            starts.append(start)
            splits.append(split)
    _warn(skipped, first, duplicates, uncoordinated)
    cls = np.asarray(cls, dtype=np.int64)
    for c, name in enumerate(names):
        if not np.any(cls == c):
            raise ValueError(f"{classes[name]}: no record of class {name!r} has sequence to "
                             f"write ({len(records[name])} record(s), all empty or all N)")
    if len(names) == 2 and not config.multiclass:
        labels, tasks, task_type = (cls == 0).astype(np.float32)[:, None], [names[0]], "binary"
    else:
        labels, tasks, task_type = np.eye(len(names), dtype=np.float32)[cls], names, "multiclass"
    description = DatasetDescription(
        name="labelled_fasta", task_type=task_type, tasks=tasks, seq_len=length,
        splits={**config.split.to_dict(),
                "no_coordinates": "hash of the header with valid_fraction/test_fraction"},
        sources={"classes": {k: str(v) for k, v in classes.items()}},
        records={"read": sum(len(r) for r in records.values()), "written": len(seqs),
                 "skipped": dict(skipped), "first_skipped": first,
                 "duplicates": len(duplicates)},
        extra={"classes": names, "records": {n: len(records[n]) for n in names},
               "without_coordinates": uncoordinated},
    )
    return write_arrays(out_dir, description, sequence.encode_batch(seqs, length), labels,
                        np.asarray(splits, dtype=object), chroms, np.asarray(starts),
                        np.asarray(starts) + length)


_CALLED = re.compile("[ACGT]")


def _warn(skipped: Counter, first: dict[str, str], duplicates: list[str], uncoordinated: int) -> None:
    why = {"empty": "with no sequence", "all_n": "whose window holds only N",
           "invalid_characters": "holding characters that are not bases or IUPAC codes ('-', '*', digits)"}
    for reason, n in skipped.items():
        log.warning("skipped %d FASTA record(s) %s (%s; first: %s)", n, why[reason], reason,
                    first[reason])
    if duplicates:
        log.warning("%d FASTA record(s) repeat an earlier record's name (first: %s); each is "
                    "written as its own row", len(duplicates), duplicates[0])
    if uncoordinated:
        log.info("%d records have no chrN:start-end header: split by a hash of the header",
                 uncoordinated)
