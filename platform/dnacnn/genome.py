"""Reference genome access: an indexed FASTA (plain or bgzipped) through ``pysam.FastaFile``.

Coordinates are 0-based, half-open. Windows that run past a contig's ends come
back padded with ``N`` to their full length. Contig names are resolved
explicitly: ``chr20`` finds ``20`` (and back), ``chrM`` finds ``MT``; each alias
is logged once, never applied silently; an unknown contig raises
:class:`UnknownContigError` naming the contigs that exist.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

import numpy as np
import pysam

from dnacnn import sequence
from dnacnn.compression import CR_ONLY, check_compression, cr_only_lines, is_bgzf, is_gzip, open_bytes

log = logging.getLogger(__name__)

#: RefSeq accessions of the human chromosomes (NC_000001-NC_000024: 1-22, X, Y; any version,
#: GRCh37 .10 or GRCh38 .11, say) and of the mitochondrion (rCRS), as dbSNP's VCFs name them.
_REFSEQ_CHROMOSOME = re.compile(r"^NC_0000(0[1-9]|1[0-9]|2[0-4])\.\d+$")
_REFSEQ_MITO = re.compile(r"^NC_012920\.\d+$")


class UnknownContigError(KeyError):
    """A contig that the genome does not have (under any alias)."""

    def __init__(self, chrom: str, available: list[str], path: str):
        shown = ", ".join(available[:10]) + (", ..." if len(available) > 10 else "")
        self.chrom = chrom
        super().__init__(
            f"contig {chrom!r} is not in the genome {path} (contigs: {shown}); "
            "check that the VCF/BED and the FASTA use the same genome build"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def _fasta_advice(path: str) -> str:
    """What to do about a FASTA that htslib cannot open, from its first bytes."""
    if is_gzip(path) and not is_bgzf(path):
        return "it is plain gzip: a gzipped FASTA must be bgzip-compressed (`gzip -d` then `bgzip`)"
    try:  # a bgzip file's text, read through gzip (a bgzipped VCF given as the genome, say)
        with open_bytes(path) as handle:
            head = handle.read(1 << 16)
    except (OSError, EOFError):
        head = b">"  # damaged compression: the index advice below
    if not head.lstrip().startswith(b">"):
        return "it is not a FASTA (the first line must be a '>name' header)"
    if cr_only_lines(head):
        return CR_ONLY
    return _layout_problem(path) or "index it with `samtools faidx` (pysam builds the index when the folder can be written)"


def _layout_problem(path: str, scan_bytes: int = 1 << 28) -> str | None:
    """Why faidx cannot index a FASTA's text, when its first ``scan_bytes`` show it: a line of
    a contig longer than the contig's first, or shorter (or blank) and not its last (faidx
    finds a base by arithmetic on one line length per contig)."""
    def problem(number: int, length: int) -> str:
        return (f"contig {name!r}: line {number} has {length} base(s) where its lines have {width}; faidx needs "
                "every line of a contig but its last to have one length; rewrap the FASTA (e.g. `seqkit seq -w 60`)")

    read = 0
    name, width, before = "", None, None  # the contig, its first line's length, (number, length) of the line before
    try:
        with open_bytes(path) as handle:
            for number, raw in enumerate(handle, start=1):
                read += len(raw)
                if read > scan_bytes:
                    return None
                line = raw.rstrip(b"\r\n")
                if line.startswith(b">"):
                    name, width, before = (line[1:].split() or [b""])[0].decode("latin-1"), None, None
                    continue
                width = len(line) if width is None else width
                if before is not None and before[1] < width:  # shorter, and not the contig's last line
                    return problem(*before)
                if len(line) > width:
                    return problem(number, len(line))
                before = (number, len(line))
    except (OSError, EOFError):  # damaged compression: the caller's index advice
        return None
    return None


def _bgzf_size(path: str, gzi: Path) -> int | None:
    """Uncompressed bytes of a bgzipped file, from its ``.gzi`` (the last block it lists) and
    the sizes the blocks from there on state in their headers and footers; None when the
    ``.gzi`` does not point at a BGZF block of ``path`` (it belongs to another file)."""
    data = gzi.read_bytes()
    count = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if count < 0 or len(data) != 8 + 16 * count:
        return None
    at, total = (0, 0) if count == 0 else (int.from_bytes(data[-16:-8], "little"),
                                           int.from_bytes(data[-8:], "little"))
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        while True:
            handle.seek(at)
            head = handle.read(18)
            if not head:
                return total if at == size else None
            # a BGZF block: gzip with FEXTRA, its 'BC' subfield giving the block's size - 1
            if len(head) < 18 or head[:4] != b"\x1f\x8b\x08\x04" or head[12:14] != b"BC":
                return None
            end = at + int.from_bytes(head[16:18], "little") + 1
            handle.seek(end - 4)
            footer = handle.read(4)  # ISIZE: the block's uncompressed bytes
            if len(footer) < 4:
                return None
            total += int.from_bytes(footer, "little")
            at = end


def _check_index_covers(path: str) -> None:
    """Refuse a FASTA whose ``.fai`` points past the file's end (the FASTA was rewritten after
    indexing): reads there would fail or give other bases. A bgzipped FASTA's end is its
    uncompressed size (see :func:`_bgzf_size`)."""
    fai, gzi = Path(f"{path}.fai"), Path(f"{path}.gzi")
    if not fai.is_file():
        return
    if not is_gzip(path):
        size = Path(path).stat().st_size
    elif gzi.is_file():
        size = _bgzf_size(path, gzi)
        if size is None:
            raise ValueError(f"the index {gzi} does not fit {path} (the FASTA changed after indexing); "
                             "rebuild its indexes (`samtools faidx`)")
    else:
        return
    changed = "the FASTA changed after indexing; rebuild the index (`samtools faidx`)"
    with contextlib.ExitStack() as stack:
        text = None if is_gzip(path) else stack.enter_context(open(path, "rb"))
        for line in fai.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) < 5 or not all(f.isdigit() for f in fields[1:5]) or int(fields[2]) == 0:
                continue
            length, offset, bases, width = (int(f) for f in fields[1:5])
            end = offset + (length // bases) * width + length % bases if bases else offset
            if end > size:
                raise ValueError(f"the index {fai} describes {fields[0]!r} past the end of {path} "
                                 f"({end} > {size} bytes{' uncompressed' if is_gzip(path) else ''}): {changed}")
            if text is not None and not _layout_fits(text, offset, length, bases):
                raise ValueError(f"the index {fai} does not fit {path}: {fields[0]!r} is not laid out there in "
                                 f"lines of {bases} bases from byte {offset} on; {changed}")


def _layout_fits(text, offset: int, length: int, bases: int) -> bool:
    """Whether an uncompressed FASTA has a contig's sequence where its ``.fai`` line says: a line
    end just before ``offset``, and (for a contig of several lines) just after its first line's
    ``bases`` bases. A file rewritten at another line width after indexing fails this, where
    reading it would give shifted bases and line ends as sequence."""
    text.seek(max(offset - 1, 0))
    head = text.read(bases + 2)
    if offset and head[:1] != b"\n":
        return False
    line = head[1:] if offset else head
    return length <= bases or (len(line) > bases and line[bases:bases + 1] in (b"\n", b"\r"))


def alias_message(chrom: str, alias: str, path: str) -> str:
    """What is said (once) of a contig read under another name."""
    return f"contig {chrom!r} is named {alias!r} in {path}; using {alias!r}"


def contig_key(name: str) -> str:
    """One key for the names a contig goes by: ``chr20``, ``Chr20``, ``20`` and ``NC_000020.11``
    give ``20``; ``chrM``, ``M``, ``MT`` and ``NC_012920.1`` give ``MT``; ``chrX``, ``X`` and
    ``NC_000023.10`` give ``X``. Other names keep their text without a ``chr`` prefix."""
    if (refseq := _REFSEQ_CHROMOSOME.match(name)) is not None:
        number = int(refseq[1])
        return {23: "X", 24: "Y"}.get(number, str(number))
    if _REFSEQ_MITO.match(name):
        return "MT"
    bare = name[3:] if name[:3].lower() == "chr" and len(name) > 3 else name
    return "MT" if bare.upper() in ("M", "MT") else bare


class Genome:
    """An indexed reference FASTA.

    Args:
        path: FASTA file with a ``.fai`` index (bgzipped files also need ``.gzi``;
            pysam builds missing indexes when it can write beside the file).
    Picklable: the pysam handle is reopened in each process.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        if not Path(self.path).exists():
            raise FileNotFoundError(f"genome FASTA not found: {self.path}")
        if not Path(self.path).is_file():
            raise ValueError(f"genome {self.path} is a folder or a pipe, not a FASTA file")
        check_compression(self.path)
        pysam.set_verbosity(0)  # htslib's own stderr lines: the error below says what is wrong
        try:
            self._fasta = pysam.FastaFile(self.path)
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot open {self.path} as an indexed FASTA ({err}); {_fasta_advice(self.path)}") from None
        self.lengths: dict[str, int] = dict(zip(self._fasta.references, self._fasta.lengths))
        _check_index_covers(self.path)
        self._resolved: dict[str, str] = {name: name for name in self.lengths}
        self._by_key: dict[str, list[str]] = {}
        for name in self.lengths:
            self._by_key.setdefault(contig_key(name), []).append(name)

    def __reduce__(self):
        return (Genome, (self.path,))

    @property
    def contigs(self) -> list[str]:
        """Contig names in FASTA order."""
        return list(self.lengths)

    def resolve(self, chrom: str) -> str:
        """The genome's own name for ``chrom``, trying aliases; logs each alias once.

        Raises:
            UnknownContigError: no contig by that name or an alias of it.
        """
        name = self._resolved.get(chrom)
        if name is not None:
            return name
        name = self.find(chrom)
        if name is None:
            raise UnknownContigError(chrom, self.contigs, self.path)
        log.warning(alias_message(chrom, name, self.path))
        self._resolved[chrom] = name
        return name

    def find(self, chrom: str) -> str | None:
        """The genome's own name for ``chrom`` (itself, or the one contig of its
        :func:`contig_key`), or None; unlike :meth:`resolve` it says nothing."""
        if chrom in self.lengths:
            return chrom
        named = self._by_key.get(contig_key(chrom), [])
        return named[0] if len(named) == 1 else None  # two of one key (chr20 and 20): neither

    def aliases(self) -> dict[str, str]:
        """The names resolved to another contig name so far: asked -> the genome's name."""
        return {asked: name for asked, name in self._resolved.items() if asked != name}

    def has(self, chrom: str) -> bool:
        """Whether ``chrom`` (or an alias of it) is in the genome."""
        try:
            self.resolve(chrom)
        except UnknownContigError:
            return False
        return True

    def length(self, chrom: str) -> int:
        return self.lengths[self.resolve(chrom)]

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Sequence of ``[start, end)`` (0-based), upper case, N-padded past the contig's ends.

        Returns:
            a string of exactly ``end - start`` characters.
        """
        if end < start:
            raise ValueError(f"interval {chrom}:{start}-{end} has end before start")
        name = self.resolve(chrom)
        size = self.lengths[name]
        lo, hi = max(start, 0), min(end, size)
        core = self._fasta.fetch(name, lo, hi).upper() if hi > lo else ""
        left = min(max(0, -start), end - start)
        right = (end - start) - left - len(core)
        return "N" * left + core + "N" * right

    def fetch_onehot(self, chrom: str, start: int, end: int) -> np.ndarray:
        """One-hot of ``[start, end)``: (end - start, 4) uint8, N rows all-zero."""
        return sequence.encode(self.fetch(chrom, start, end))

    def close(self) -> None:
        self._fasta.close()
