"""A dataset from one FASTA file per class (e.g. Oct4 peaks vs Mafk peaks).

Each record becomes one row. Headers of the form ``chrN:start-end`` (0-based,
as janggu's resources write them) give the coordinates; the split is by
chromosome (default ``chr8`` valid, ``chr9`` test, the rest train), which keeps
nearby peaks out of different splits. A header without coordinates is split
by a seeded hash of the whole header (``split.valid_fraction`` /
``split.test_fraction``), its ``chrom`` column is the header and its ``start``
the record's index in its file. So is a header whose coordinates are no place
(start after end, or past :data:`MAX_COORDINATE`), with a warning naming it.

Sequences are brought to one length L: centred, cut or padded with N on both
sides (the window of L around the record's centre, as for intervals). L is at
most :data:`MAX_LENGTH`; by default it is the length of the longest record
that is written (a skipped record does not count). With two classes the task
is binary (label 1 = the first class); with ``multiclass`` or more than two
files the labels are one-hot over the classes.

The files are read line by line here, not by htslib (whose records are C
strings: a NUL byte ended the sequence there, silently): a line starting with
``>`` starts a record, the text after it its header; lines starting with ``;``
are comments (old Pearson FASTA) and skipped wherever they are, as are blank
lines; whitespace inside a sequence line (spaces, tabs, a Windows line end) is
removed, as Biopython does. Any other text before the first header is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnacnn import sequence
from dnacnn.compression import CR_ONLY, cr_only_lines, open_bytes
from dnacnn.data.dataset_io import DatasetDescription
from dnacnn.data.splits import SplitConfig, assign_split, block_split
from dnacnn.data.writer import write_arrays

log = logging.getLogger(__name__)

#: ``chrN:start-end`` at the start of a header, or after a name and ``::`` (``bedtools getfasta
#: -name`` writes ``peak7::chr9:1000-1100``); digits may be grouped by commas (1,000).
_COORDS = re.compile(r"^(?:[^\s:]+::)?(?P<chrom>[^:\s]+):(?P<start>\d[\d,]*)-(?P<end>\d[\d,]*)")

#: The longest L, bp (2**20): the input of the longest-reaching published models (AlphaGenome's
#: 1 Mb); one row of it is 4 MiB of one-hot. Longer lengths are refused before any work.
MAX_LENGTH = 1 << 20

#: Header coordinates must be below this (2**62): past any genome, and the start and end of a
#: window of :data:`MAX_LENGTH` around them still fit the dataset's int64 columns.
MAX_COORDINATE = 1 << 62

#: The bytes a sequence line may hold between its bases, removed (ASCII whitespace).
_WHITESPACE = b" \t\r\n\v\f"
_BOM = b"\xef\xbb\xbf"  # the UTF-8 byte-order mark Windows editors write


@dataclass(frozen=True)
class LabelledFastaConfig:
    """A dataset from labelled FASTA files.

    Attributes:
        length: L, at most :data:`MAX_LENGTH`; None takes the length of the longest record
            that is written.
        multiclass: one-hot over classes even with two files.
        split: chromosome split (the hash fallback uses its fractions and seed).
    Raises:
        ValueError: ``length`` past :data:`MAX_LENGTH`.
    """

    length: int | None = None
    multiclass: bool = False
    split: SplitConfig = field(default_factory=lambda: SplitConfig(
        method="chrom", valid_chroms=("chr8",), test_chroms=("chr9",)))

    def __post_init__(self) -> None:
        if self.length is not None and self.length > MAX_LENGTH:
            raise ValueError(f"length {self.length:,} bp is more than {MAX_LENGTH:,}, the longest "
                             "a dataset row may be; give a shorter length (--length)")


def parse_header(name: str) -> tuple[str, int, int] | None:
    """``chrN:start-end`` (or ``NAME::chrN:start-end``) -> (chrom, start, end); None when the
    header has no coordinates.

    Raises:
        ValueError: coordinates that are no place: past :data:`MAX_COORDINATE`, or a start
            after the end (the message follows the record's name).
    """
    match = _COORDS.match(name)
    if match is None:
        return None
    start, end = _coordinate(match["start"]), _coordinate(match["end"])
    if start is None or end is None:
        raise ValueError("has coordinates past 2**62, beyond any genome")
    if start > end:
        raise ValueError(f"has its start {start:,} after its end {end:,}")
    return match["chrom"], start, end


def _coordinate(digits: str) -> int | None:
    """A header's coordinate (digits, maybe grouped by commas); None from :data:`MAX_COORDINATE`
    on (checked by length first: Python refuses int() of over 4,300 digits)."""
    digits = digits.replace(",", "").lstrip("0") or "0"
    if len(digits) > len(str(MAX_COORDINATE)):
        return None
    value = int(digits)
    return value if value < MAX_COORDINATE else None


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
    """(header, upper-case sequence) of every record of a (maybe gzipped) FASTA file.

    The header is the text after ``>`` (name and description), the sequence the record's
    lines joined, without whitespace; ``;`` comment lines and blank lines are skipped. Every
    byte of a sequence is kept (a NUL too), for the caller to judge.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, text that is not UTF-8, lines ending in a carriage return alone,
            text before the first header, no record, or a record without a name.
        EOFError, OSError: a compressed file that is cut or damaged (named by
            :func:`dnacnn.compression.open_bytes`).
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"FASTA not found: {path}")
    if not Path(path).is_file():
        raise ValueError(f"{path} is not a file; give a FASTA file")
    with open_bytes(path) as handle:  # refuses bzip2, xz, ... by name
        if cr_only_lines(handle.read(1 << 16)):  # every record would be one line
            raise ValueError(f"{path}: {CR_ONLY}")
    records: list[tuple[str, list[bytes]]] = []  # (header, sequence lines)
    with open_bytes(path) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                text = line.removeprefix(_BOM if number == 1 else b"").decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path} cannot be read as FASTA: line {number} is not UTF-8 text "
                                 f"({err.reason} at byte {err.start + 1})") from None
            if text.startswith(">"):
                records.append((text[1:].strip(), []))
            elif text.startswith(";") or not text.strip():
                continue
            elif not records:
                raise ValueError(f"{path}: its first line is not a '>' header (line {number}: "
                                 f"{text.strip()[:40]!r}...): that sequence would belong to no "
                                 "record; add a header or remove it")
            else:
                records[-1][1].append(line)
    if not records:
        raise ValueError(f"{path} holds no FASTA records (lines starting with '>')")
    unnamed = next((i for i, (name, _) in enumerate(records, start=1) if not name), None)
    if unnamed is not None:
        raise ValueError(f"{path}: record {unnamed} has a '>' line without a name; name every record")
    return [(header, b"".join(lines).translate(None, _WHITESPACE).decode("utf-8").upper())
            for header, lines in records]


def labelled_fasta_dataset(
    classes: dict[str, str | Path],
    out_dir: str | Path,
    config: LabelledFastaConfig = LabelledFastaConfig(),
) -> DatasetDescription:
    """Write the dataset of one FASTA per class.

    Every record is accounted for in the description's ``records``: written, or
    skipped as ``empty`` (no sequence), ``invalid_characters`` (a character that is not
    a base or an IUPAC code: '-', '*', digits, a NUL byte) or ``all_n`` (no A/C/G/T in its
    window of L); record names seen before (in any of the files) are counted as
    ``duplicates`` and written, with a warning. Records whose header coordinates are no
    place are written without coordinates, counted in ``extra["bad_coordinates"]``.

    Args:
        classes: class name -> FASTA, e.g. ``{"Oct4": "sample.fa", "Mafk": "sample2.fa"}``.
        out_dir: dataset folder.
    Raises:
        ValueError: fewer than two classes, a longest record past :data:`MAX_LENGTH` (without
            ``config.length``), or a class left without a record to write.
    """
    if len(classes) < 2:
        raise ValueError(f"give at least two classes (got {list(classes)}): name=FASTA pairs")
    names = list(classes)
    records = {name: read_fasta_records(path) for name, path in classes.items()}
    # why each record cannot be written whatever L is ("" when it can)
    unusable = {name: [_unusable(seq) for _, seq in records[name]] for name in names}
    length = config.length or _longest(classes, records, unusable)
    hash_split = dataclasses.replace(config.split, method="block")
    seqs, cls, chroms, starts, splits = [], [], [], [], []
    skipped: Counter = Counter()
    first: dict[str, str] = {}
    seen: set[str] = set()
    duplicates, bad_coordinates, uncoordinated = [], [], 0
    for c, name in enumerate(names):
        for index, (header, seq) in enumerate(records[name]):
            record = header.split()[0]  # headers are never blank (refused)
            where = f"{classes[name]}: record {index} {record!r}"
            if record in seen:
                duplicates.append(f"{classes[name]}: {record}")
            seen.add(record)
            reason = unusable[name][index]
            if not reason:  # L is known: a record longer than L may hold bases only outside its window
                window = centre_resize(seq, length)
                reason = "" if _CALLED.search(window) else "all_n"
            if reason:
                skipped[reason] += 1
                first.setdefault(reason, where)
                continue
            try:
                coords = parse_header(header)
                uncoordinated += coords is None
            except ValueError as why:
                bad_coordinates.append(f"{where} {why}")
                coords = None
            if coords is None:
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
    _warn(skipped, first, duplicates, bad_coordinates, uncoordinated)
    cls = np.asarray(cls, dtype=np.int64)
    for c, name in enumerate(names):
        if not np.any(cls == c):
            raise ValueError(f"{classes[name]}: no record of class {name!r} has sequence to "
                             f"write ({len(records[name])} record(s), each empty, all N or "
                             "holding characters that are not bases)")
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
               "without_coordinates": uncoordinated, "bad_coordinates": len(bad_coordinates)},
    )
    return write_arrays(out_dir, description, sequence.encode_batch(seqs, length), labels,
                        np.asarray(splits, dtype=object), chroms, np.asarray(starts),
                        np.asarray(starts) + length)


_CALLED = re.compile("[ACGT]")


def _unusable(seq: str) -> str:
    """Why a record cannot be written whatever L is: ``empty``, ``invalid_characters`` or
    ``all_n`` (no A/C/G/T at all); "" when some window of it can."""
    return ("empty" if not seq else "invalid_characters" if sequence.non_dna(seq)
            else "" if _CALLED.search(seq) else "all_n")


def _longest(classes: dict[str, str | Path], records: dict[str, list[tuple[str, str]]],
             unusable: dict[str, list[str]]) -> int:
    """The length of the longest record that can be written (0 when none can): the default
    L, whose window of each such record is all of it.

    Raises:
        ValueError: that record is longer than :data:`MAX_LENGTH`, named.
    """
    longest, where = 0, ""
    for name, recs in records.items():
        for index, (header, seq) in enumerate(recs):
            if not unusable[name][index] and len(seq) > longest:
                longest, where = len(seq), f"{classes[name]}: record {index} {header.split()[0]!r}"
    if longest > MAX_LENGTH:
        raise ValueError(f"{where} has {longest:,} bases, more than {MAX_LENGTH:,}, the longest a "
                         "dataset row may be; give a length (--length) to take each record's "
                         "centre, or remove the record")
    return longest


def _warn(skipped: Counter, first: dict[str, str], duplicates: list[str], bad_coordinates: list[str],
          uncoordinated: int) -> None:
    why = {"empty": "with no sequence", "all_n": "whose window holds only N",
           "invalid_characters": "holding characters that are not bases or IUPAC codes ('-', '*', "
                                 "digits, NUL)"}
    for reason, n in skipped.items():
        log.warning("skipped %d FASTA record(s) %s (%s; first: %s)", n, why[reason], reason,
                    first[reason])
    if duplicates:
        log.warning("%d FASTA record(s) repeat an earlier record's name (first: %s); each is "
                    "written as its own row", len(duplicates), duplicates[0])
    if bad_coordinates:
        log.warning("%d FASTA record(s) have chrN:start-end coordinates that are no place (first: "
                    "%s); each is written as a record without coordinates, split by a hash of its "
                    "header", len(bad_coordinates), bad_coordinates[0])
    if uncoordinated:
        log.info("%d records have no chrN:start-end header: split by a hash of the header",
                 uncoordinated)
