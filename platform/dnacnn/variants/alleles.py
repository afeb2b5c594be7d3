"""The allele rules: what kind a (REF, ALT) pair is, whether it can be scored, and why not.

One set of rules for every caller: VCF records (:mod:`dnacnn.variants.reading`),
tables handed to ``VariantScorer`` (a DataFrame, an Arrow batch, an HTTP request).
A rejected allele carries a reason from :data:`REJECT_REASONS` and a message that
says what is wrong and where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dnacnn.genome import Genome, UnknownContigError

#: Why an allele was not scored.
REJECT_REASONS = (
    "malformed",  # htslib could not parse the line; CHROM, POS or REF missing (REF '.' in a VCF)
    "missing_alt",  # ALT is '.'
    "symbolic_allele",  # <DEL>, <*>, <NON_REF>, breakends (G]20:5], single: G. or .G), '*' (spanning deletion)
    "invalid_allele",  # REF or ALT with characters outside A, C, G, T, N; ALT equal to REF
    "unknown_contig",  # CHROM not in the genome under any alias
    "ref_mismatch",  # REF differs from the genome (or runs past the contig end)
)

KINDS = ("SNV", "MNV", "insertion", "deletion", "symbolic", "missing", "unknown")

_BASES = re.compile(r"[ACGTN]+")  # fullmatch: "$" would let a final newline through
_BREAKEND = re.compile(r"[\[\]]")


@dataclass(frozen=True)
class Allele:
    """One (site, ALT allele) of a VCF.

    Attributes:
        chrom: CHROM as written in the VCF.
        pos: 1-based POS.
        id: ID ('.' when missing).
        ref, alt: alleles, upper case (a symbolic ALT as written: a breakend names a contig);
            ``alt`` is '.' for a record without ALT.
        kind: one of :data:`KINDS`.
        record: index of the record among those read in this call (0-based; negative
            for a malformed line found by a region query, see ``reading``).
        line: 1-based line number in the file, when read from the start (else 0).
        reject: ``None`` for a scorable allele, else a reason from :data:`REJECT_REASONS`.
        message: for rejects, what is wrong, naming the record.
    """

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    kind: str
    record: int
    line: int = 0
    reject: str | None = None
    message: str = ""


def shown(allele: object, keep: int = 24) -> str:
    """An allele as a message quotes it: ``repr`` up to ``keep`` characters, longer ones cut.

    A 100 kb deletion's REF would otherwise fill the console and every reject row:
    ``'ACGTACGT...' (100,001 bp)`` keeps its start and states its length.
    """
    if not isinstance(allele, str) or len(allele) <= keep:
        return repr(allele)
    return f"{allele[:keep]!r}... ({len(allele):,} bp)"


def _single_breakend(alt: str) -> bool:
    """VCF's single breakend: bases with a '.' before or after them (``G.``, ``.G``)."""
    return len(alt) > 1 and (alt[0] == "." or alt[-1] == ".") and "," not in alt


def allele_kind(ref: str, alt: str) -> str:
    """SNV, MNV, insertion, deletion, symbolic or missing for a REF/ALT pair."""
    if alt in (".", ""):
        return "missing"
    if alt.startswith("<") or alt == "*" or _BREAKEND.search(alt) or _single_breakend(alt):
        return "symbolic"
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNV"
    return "insertion" if len(alt) > len(ref) else "deletion"


#: The bases an IUPAC code of the reference genome stands for (NC-IUB 1984).
_GENOME_CODES = {"R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
                 "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}


def check_ref(genome: Genome, chrom: str, pos: int, ref: str) -> str | None:
    """``None`` if REF matches the genome at ``chrom:pos`` (1-based), else a message.

    ``N`` in REF matches any base; an IUPAC ambiguity code in the genome (GRCh38 has a
    few: ``M``, ``R``...) matches the bases it stands for (``M``: A or C; ``N``: any).

    Raises:
        UnknownContigError: ``chrom`` is not in the genome under any alias.
    """
    start = pos - 1
    size = genome.length(chrom)
    if start + len(ref) > size:
        return (
            f"REF {shown(ref)} at {chrom}:{pos} runs past the end of contig "
            f"{genome.resolve(chrom)!r} ({size} bp); check the genome build"
        )
    actual = genome.fetch(chrom, start, start + len(ref))
    for i, (a, b) in enumerate(zip(ref.upper(), actual)):
        if a != b and a != "N" and a not in _GENOME_CODES.get(b, ""):
            first = f" (first at base {i + 1}: {a!r} where the genome has {b!r})" if len(ref) > 1 else ""
            return (
                f"REF {shown(ref)} at {chrom}:{pos} does not match the reference {shown(actual)}{first}; "
                "check the genome build (e.g. GRCh37 vs GRCh38)"
            )
    return None


def _position(pos: object) -> int | None:
    """A 1-based POS as an int (from an int, an integral float or a decimal string), or None."""
    if isinstance(pos, (bool, np.bool_)):
        return None
    if isinstance(pos, (float, np.floating)):
        value = int(pos) if np.isfinite(pos) and float(pos).is_integer() else None
    else:
        try:
            value = int(pos)
        except (TypeError, ValueError):
            return None
    return value if value is not None and value >= 1 else None


def _telomere_breakend(pos: object, alt: object) -> bool:
    """Whether a POS 0 row is what VCF 4.3 (5.4.9) allows there: a breakend at the telomere."""
    zero = isinstance(pos, (int, np.integer)) and not isinstance(pos, bool) and pos == 0
    return zero and isinstance(alt, str) and allele_kind("N", alt.upper()) == "symbolic"


def contig_text(chrom: object) -> object:
    """A contig read as a number as its text (20 or 20.0: "20"; a column of contig numbers
    with a missing one is float in pandas); anything else unchanged."""
    if isinstance(chrom, (float, np.floating)) and np.isfinite(chrom) and float(chrom).is_integer():
        chrom = int(chrom)
    if isinstance(chrom, (int, np.integer)) and not isinstance(chrom, (bool, np.bool_)):
        return str(chrom)
    return chrom


def check_allele(
    genome: Genome | None, chrom: object, pos: object, ref: object, alt: object
) -> tuple[str, str | None, str]:
    """Whether one (site, ALT allele) can be scored: the one set of allele rules.

    Args:
        genome: the reference; ``None`` checks the alleles only (no contig or REF check).
        chrom, pos, ref, alt: one row; ``pos`` is the 1-based VCF POS. A contig read
            as a number (20 or 20.0 for "20") is taken as its text.
    Returns:
        (kind, reason, message): ``reason`` is ``None`` for a scorable row, else one
        of :data:`REJECT_REASONS`, and ``message`` says what is wrong, naming the row.
    """
    chrom = contig_text(chrom)
    where = f"{chrom}:{pos}"
    missing = chrom is None or (isinstance(chrom, (float, np.floating)) and np.isnan(chrom))
    if missing or chrom in ("", "."):
        return "unknown", "malformed", f"row {where}: CHROM {chrom!r} is missing"
    if not isinstance(chrom, str):
        return "unknown", "malformed", f"row {where}: CHROM {chrom!r} (type {type(chrom).__name__}) is not a contig name"
    position = _position(pos)
    if position is None:
        if _telomere_breakend(pos, alt):
            return "symbolic", "symbolic_allele", (
                f"ALT {shown(alt)} at {where} is a breakend at a telomere (POS 0); only sequence alleles are scored")
        return "unknown", "malformed", f"row {where}: POS {pos} is not a 1-based position (integer >= 1)"
    pos = position
    if ref is None or ref in ("", "."):  # a VCF's '.', a table's None or empty text: one verdict
        return "unknown", "malformed", f"row {where}: REF is missing ({shown(ref)}); a variant needs its reference base(s)"
    if not isinstance(ref, str) or not (alt is None or isinstance(alt, str)):  # rare: one test per row
        name, value = ("REF", ref) if not isinstance(ref, str) else ("ALT", alt)  # a DataFrame's NaN, a list
        return "unknown", "malformed", f"row {where}: {name} {shown(value)} (type {type(value).__name__}) is not a string of bases"
    for name, value in (("REF", ref), ("ALT", alt)):  # before upper(): 'ı' would become 'I', 'ﬀ' 'FF'
        if isinstance(value, str) and not value.isascii():
            return "unknown", "invalid_allele", f"{name} {shown(value)} at {where} has characters outside A, C, G, T, N"
    ref = ref.upper()
    written, alt = alt, alt.upper() if isinstance(alt, str) else "."  # None: no ALT, as VCF's '.'
    kind = allele_kind(ref, alt)
    if kind == "missing":
        return kind, "missing_alt", f"{where} has no ALT allele ('.'): nothing to score"
    if kind == "symbolic":
        return kind, "symbolic_allele", f"ALT {shown(written)} at {where} is symbolic; only sequence alleles are scored"
    if "," in alt:
        return "unknown", "invalid_allele", (
            f"ALT {shown(alt)} at {where} lists several alleles; give one row per ALT allele"
        )
    if not _BASES.fullmatch(alt):
        return kind, "invalid_allele", f"ALT {shown(alt)} at {where} has characters outside A, C, G, T, N"
    if not _BASES.fullmatch(ref):
        return kind, "invalid_allele", f"REF {shown(ref)} at {where} has characters outside A, C, G, T, N"
    if genome is not None:  # a REF off the genome says more (the build) than ALT = REF
        try:
            mismatch = check_ref(genome, chrom, pos, ref)
        except UnknownContigError as err:
            return kind, "unknown_contig", f"{where}: {err}"
        if mismatch:
            return kind, "ref_mismatch", mismatch
    if alt == ref:  # VCF: ALT lists non-reference alleles
        return kind, "invalid_allele", f"ALT {shown(alt)} at {where} is the REF allele itself: nothing to score"
    return kind, None, ""
