"""Reference genome access: an indexed FASTA (plain or bgzipped) through ``pysam.FastaFile``.

Coordinates are 0-based, half-open. Windows that run past a contig's ends come
back padded with ``N`` to their full length. Contig names are resolved
explicitly: ``chr20`` finds ``20`` (and back), ``chrM`` finds ``MT``; each alias
is logged once, never applied silently; an unknown contig raises
:class:`UnknownContigError` naming the contigs that exist. Bases that are no IUPAC
code, or fewer bases than asked (a NUL byte in the file), raise ``ValueError`` naming
where: a damaged FASTA is not read as N.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pysam

from dnacnn import sequence
from dnacnn.compression import check_compression
from dnacnn.genome_files import (
    check_contig_names, check_index_covers, check_indexes, check_names_once_each, fasta_advice,
)

log = logging.getLogger(__name__)

#: RefSeq accessions of the human chromosomes (NC_000001-NC_000024: 1-22, X, Y; any version,
#: GRCh37 .10 or GRCh38 .11, say) and of the mitochondrion (rCRS), as dbSNP's VCFs name them.
_REFSEQ_CHROMOSOME = re.compile(r"^NC_0000(0[1-9]|1[0-9]|2[0-4])\.\d+$")
_REFSEQ_MITO = re.compile(r"^NC_012920\.\d+$")


#: What a FASTA's sequence lines may hold (upper-cased): the IUPAC nucleotide codes, and '-' (a gap).
_NOT_A_BASE = re.compile(r"[^ACGTUNRYSWKMBDHV-]")


def _damaged(path: str, name: str, start: int, end: int, core: str) -> str:
    """What is wrong with the bases htslib read for ``name:[start, end)``: too few (a NUL byte
    ends its text there), or a character that is no base."""
    if (bad := _NOT_A_BASE.search(core)) is not None:
        return (f"the genome {path} holds {bad[0]!r} at {name}:{start + bad.start() + 1}, which is not a base "
                "(sequence lines hold IUPAC nucleotide codes): the FASTA is damaged there")
    return (f"the genome {path} gives {len(core)} of the {end - start} bases of {name}:{start + 1}-{end}: its "
            f"text stops at {name}:{start + len(core) + 1} (a NUL byte, or a damaged FASTA)")


class UnknownContigError(KeyError):
    """A contig that the genome does not have (under any alias)."""

    def __init__(self, chrom: str, available: list[str], path: str, among: list[str] | None = None):
        shown = ", ".join(available[:10]) + (", ..." if len(available) > 10 else "")
        self.chrom = chrom
        super().__init__(
            f"contig {chrom!r} could be any of {', '.join(among)} in the genome {path}, which names one "
            f"chromosome twice; name it as the genome does" if among else
            f"contig {chrom!r} is not in the genome {path} (contigs: {shown}); "
            "check that the VCF/BED and the FASTA use the same genome build"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def _is_refseq(name: str) -> bool:
    return _REFSEQ_CHROMOSOME.match(name) is not None or _REFSEQ_MITO.match(name) is not None


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
        check_indexes(self.path)
        building = not Path(f"{self.path}.fai").exists()  # pysam builds it, keeping a contig named twice once
        pysam.set_verbosity(0)  # htslib's own stderr lines: the error below says what is wrong
        try:
            self._fasta = pysam.FastaFile(self.path)
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot open {self.path} as an indexed FASTA ({err}); {fasta_advice(self.path)}") from None
        check_contig_names(self.path, list(self._fasta.references))
        if building:
            check_names_once_each(self.path)
        self.lengths: dict[str, int] = dict(zip(self._fasta.references, self._fasta.lengths))
        check_index_covers(self.path)
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
            among = self._by_key.get(contig_key(chrom), [])
            raise UnknownContigError(chrom, self.contigs, self.path, among if len(among) > 1 else None)
        log.warning(alias_message(chrom, name, self.path))
        self._resolved[chrom] = name
        return name

    def find(self, chrom: str) -> str | None:
        """The genome's own name for ``chrom`` (itself, or the one contig of its
        :func:`contig_key`, unless both are RefSeq accessions: two versions of one are two
        assemblies), or None; unlike :meth:`resolve` it says nothing."""
        if chrom in self.lengths:
            return chrom
        named = self._by_key.get(contig_key(chrom), [])
        if len(named) != 1:  # two of one key (chr20 and 20): neither
            return None
        if _is_refseq(chrom) and _is_refseq(named[0]):  # NC_000020.10 (GRCh37) is not NC_000020.11 (GRCh38)
            return None
        return named[0]

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
        if len(core) != max(hi - lo, 0) or _NOT_A_BASE.search(core) is not None:
            raise ValueError(_damaged(self.path, name, lo, hi, core))
        left = min(max(0, -start), end - start)
        right = (end - start) - left - len(core)
        return "N" * left + core + "N" * right

    def fetch_onehot(self, chrom: str, start: int, end: int) -> np.ndarray:
        """One-hot of ``[start, end)``: (end - start, 4) uint8, N rows all-zero."""
        return sequence.encode(self.fetch(chrom, start, end))

    def close(self) -> None:
        self._fasta.close()
