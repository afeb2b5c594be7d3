"""VCF records as one row per (site, ALT allele), checked against the genome.

Read through ``pysam.VariantFile`` (plain, bgzipped, or tabix/CSI-indexed for
region queries). Every record comes out: either as scorable alleles, or as
rejects carrying a reason from :data:`REJECT_REASONS` and a message that says
what is wrong and where. Nothing is dropped silently.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pysam

from dnacnn.genome import Genome, UnknownContigError

log = logging.getLogger(__name__)

#: Why an allele was not scored.
REJECT_REASONS = (
    "malformed",  # htslib could not parse the line
    "missing_alt",  # ALT is '.'
    "symbolic_allele",  # <DEL>, <*>, <NON_REF>, breakends, '*' (spanning deletion)
    "invalid_allele",  # REF or ALT with characters outside A, C, G, T, N
    "unknown_contig",  # CHROM not in the genome under any alias
    "ref_mismatch",  # REF differs from the genome (or runs past the contig end)
)

KINDS = ("SNV", "MNV", "insertion", "deletion", "symbolic", "missing", "unknown")

_BASES = re.compile(r"^[ACGTN]+$", re.IGNORECASE)
_BREAKEND = re.compile(r"[\[\]]")


class VcfFormatError(ValueError):
    """A VCF that cannot be read at all (bad header, not a VCF, unreadable)."""


@dataclass(frozen=True)
class Allele:
    """One (site, ALT allele) of a VCF.

    Attributes:
        chrom: CHROM as written in the VCF.
        pos: 1-based POS.
        id: ID ('.' when missing).
        ref, alt: alleles, upper case; ``alt`` is '.' for a record without ALT.
        kind: one of :data:`KINDS`.
        record: 0-based index of the record among those read in this call.
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

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def where(self) -> str:
        return f"{self.chrom}:{self.pos}"


def allele_kind(ref: str, alt: str) -> str:
    """SNV, MNV, insertion, deletion or symbolic for a REF/ALT pair."""
    if alt in (".", ""):
        return "missing"
    if alt.startswith("<") or alt == "*" or _BREAKEND.search(alt):
        return "symbolic"
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNV"
    return "insertion" if len(alt) > len(ref) else "deletion"


def check_ref(genome: Genome, chrom: str, pos: int, ref: str) -> str | None:
    """``None`` if REF matches the genome at ``chrom:pos`` (1-based), else a message.

    ``N`` in REF or in the genome matches any base.
    """
    start = pos - 1
    size = genome.length(chrom)
    if start + len(ref) > size:
        return (
            f"REF {ref!r} at {chrom}:{pos} runs past the end of contig "
            f"{genome.resolve(chrom)!r} ({size} bp); check the genome build"
        )
    actual = genome.fetch(chrom, start, start + len(ref))
    for a, b in zip(ref.upper(), actual):
        if a != b and a != "N" and b != "N":
            return (
                f"REF {ref!r} at {chrom}:{pos} does not match the reference {actual!r}; "
                "check the genome build (e.g. GRCh37 vs GRCh38)"
            )
    return None


def diagnose_line(line: str) -> str:
    """Why a raw VCF data line cannot be parsed, in words."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 8:
        return (
            f"has {len(fields)} tab-separated column(s); a VCF record needs at least 8 "
            "(CHROM POS ID REF ALT QUAL FILTER INFO)"
        )
    if not fields[1].isdigit():
        return f"POS {fields[1]!r} is not a positive integer"
    if not fields[3] or fields[3] == ".":
        return "REF is empty"
    return "htslib could not parse it (see the INFO/FORMAT fields against the header)"


def _raw_lines(path: str, wanted: set[int]) -> dict[int, str]:
    """The 1-based lines ``wanted`` of a (possibly gzipped) text file."""
    opener = gzip.open if is_gzip(path) else open
    found: dict[int, str] = {}
    with opener(path, "rt", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number in wanted:
                found[number] = line
                if len(found) == len(wanted):
                    break
    return found


def _count_header_lines(path: str) -> int:
    """Number of leading '#' lines of a (possibly gzipped) VCF."""
    opener = gzip.open if is_gzip(path) else open
    count = 0
    with opener(path, "rt", errors="replace") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            count += 1
    return count


def is_gzip(path: str) -> bool:
    """Whether a file starts with the gzip magic bytes (plain gzip or BGZF)."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def is_bgzf(path: str) -> bool:
    """BGZF is gzip with an extra field 'BC' (SAM/BAM spec, section 4.1)."""
    with open(path, "rb") as handle:
        head = handle.read(14)
    return len(head) == 14 and head[:2] == b"\x1f\x8b" and head[3] & 4 and head[12:14] == b"BC"


def _as_bgzf(path: str) -> str:
    """A BGZF copy of a plain-gzipped file (htslib cannot read plain gzip VCFs by record)."""
    out = tempfile.NamedTemporaryFile(prefix="dnacnn-", suffix=".vcf.gz", delete=False)
    out.close()
    plain = out.name[: -len(".gz")]
    with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    pysam.tabix_compress(plain, out.name, force=True)
    os.unlink(plain)
    log.info("%s is plain gzip, not bgzip; reading a BGZF copy %s", path, out.name)
    return out.name


def open_vcf(path: str | Path) -> pysam.VariantFile:
    """Open a VCF, raising :class:`VcfFormatError` naming the file when it is not one."""
    path = str(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"VCF not found: {path}")
    pysam.set_verbosity(0)  # htslib's own stderr lines; our rejects say the same, with the line
    if is_gzip(path) and not is_bgzf(path):
        path = _as_bgzf(path)
    try:
        return pysam.VariantFile(path)
    except (OSError, ValueError, NotImplementedError) as err:
        raise VcfFormatError(
            f"{path} is not a readable VCF ({err}); the file must start with a "
            "'##fileformat=VCFv4.x' header and a '#CHROM' line"
        ) from None


def read_alleles(
    path: str | Path,
    genome: Genome | None = None,
    region: tuple[str, int, int] | None = None,
    max_consecutive_errors: int = 1000,
) -> Iterator[Allele]:
    """Every (site, ALT allele) of a VCF, scorable or rejected with a reason.

    Args:
        path: VCF (plain or bgzipped). Region queries need a tabix/CSI index.
        genome: when given, contigs are resolved against it and REF is checked.
        region: (chrom, start, end), 0-based half-open in the VCF's contig naming;
            only records whose POS falls in it are read (a record is read by
            exactly one of several adjacent regions).
        max_consecutive_errors: this many unparseable lines in a row means the
            file is not a VCF or is truncated: :class:`VcfFormatError`.
    Yields:
        :class:`Allele`, in file order.
    """
    path = str(path)
    vcf = open_vcf(path)
    header_lines = _count_header_lines(path) if region is None else 0
    if region is not None:
        chrom, start, end = region
        if chrom not in vcf.header.contigs and not vcf.index:
            raise VcfFormatError(f"{path} has no index: region queries need `tabix -p vcf`")
        try:
            records = vcf.fetch(chrom, start, end)
        except ValueError:  # contig absent from this VCF: no records there
            return
    else:
        records = iter(vcf)

    pending_malformed: list[tuple[int, int]] = []  # (record, line)
    index = 0
    errors_in_row = 0
    with vcf:
        while True:
            line = header_lines + index + 1 if region is None else 0
            try:
                rec = next(records)
            except StopIteration:
                break
            except (OSError, ValueError) as err:
                errors_in_row += 1
                if errors_in_row >= max_consecutive_errors:
                    raise VcfFormatError(
                        f"{path}: {errors_in_row} unparseable records in a row up to line "
                        f"{line} ({err}); the file is truncated or not a VCF"
                    ) from None
                pending_malformed.append((index, line))
                index += 1
                continue
            errors_in_row = 0
            if region is not None and not (region[1] <= rec.start < region[2]):
                continue
            yield from _record_alleles(rec, index, line, genome)
            index += 1
    yield from _malformed_alleles(path, pending_malformed, region)


def _malformed_alleles(path: str, pending: list[tuple[int, int]], region) -> Iterator[Allele]:
    raw = _raw_lines(path, {line for _, line in pending if line}) if pending else {}
    for index, line in pending:
        text = raw.get(line, "")
        fields = text.split("\t")
        chrom = fields[0] if fields and fields[0] else (region[0] if region else ".")
        pos = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        why = diagnose_line(text) if text else "htslib could not parse it"
        where = f"line {line}" if line else f"record {index} of region {region}"
        message = f"{path}, {where}: malformed VCF record: {why}"
        log.warning(message)
        yield Allele(
            chrom=chrom, pos=pos, id=".", ref=".", alt=".", kind="unknown",
            record=index, line=line, reject="malformed", message=message,
        )


def _record_alleles(rec, index: int, line: int, genome: Genome | None) -> Iterator[Allele]:
    ref = (rec.ref or "").upper()
    chrom, pos, vid = rec.chrom, rec.pos, rec.id or "."
    alts = rec.alts or (".",)
    base = dict(chrom=chrom, pos=pos, id=vid, ref=ref, record=index, line=line)

    record_reject = None
    if not _BASES.match(ref):
        record_reject = ("invalid_allele", f"REF {ref!r} at {chrom}:{pos} has characters outside A, C, G, T, N")
    elif genome is not None:
        try:
            mismatch = check_ref(genome, chrom, pos, ref)
        except UnknownContigError as err:
            record_reject = ("unknown_contig", f"{chrom}:{pos}: {err}")
        else:
            if mismatch:
                record_reject = ("ref_mismatch", mismatch)

    for alt in alts:
        alt = alt.upper()
        kind = allele_kind(ref, alt)
        if kind == "missing":
            reject = ("missing_alt", f"{chrom}:{pos} has no ALT allele ('.'): nothing to score")
        elif kind == "symbolic":
            reject = ("symbolic_allele", f"ALT {alt!r} at {chrom}:{pos} is symbolic; only sequence alleles are scored")
        elif not _BASES.match(alt):
            reject = ("invalid_allele", f"ALT {alt!r} at {chrom}:{pos} has characters outside A, C, G, T, N")
        else:
            reject = record_reject
        yield Allele(
            **base, alt=alt, kind=kind,
            reject=reject[0] if reject else None,
            message=reject[1] if reject else "",
        )
