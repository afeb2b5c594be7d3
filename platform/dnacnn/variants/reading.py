"""Reading a VCF as one row per (site, ALT allele), each checked by the allele rules.

Read through ``pysam.VariantFile`` (plain, bgzipped or BCF; tabix/CSI-indexed for
region queries). Every record comes out: either as scorable alleles, or as
rejects carrying a reason from :data:`~dnacnn.variants.alleles.REJECT_REASONS`
and a message that says what is wrong and where. Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pysam

from dnacnn.compression import open_bytes
from dnacnn.genome import Genome
from dnacnn.variants.alleles import Allele, check_allele
from dnacnn.variants.file_diagnosis import diagnose_line
from dnacnn.variants.files import (
    VcfFormatError, closing_quietly, open_tabix, open_vcf_sites, raw_line_before, until_cut,
)

log = logging.getLogger(__name__)

#: Malformed records logged per :func:`read_alleles` call; every one is in its rejects anyway.
LOGGED_MALFORMED = 10


class _MalformedLog:
    """Log the first ``limit`` malformed-record messages of one read, then say how many more."""

    def __init__(self, path: str, limit: int):
        self.path, self.limit, self.count = path, limit, 0

    def __call__(self, message: str) -> None:
        self.count += 1
        if self.count <= self.limit:
            log.warning(message)

    def close(self) -> None:
        if self.limit and self.count > self.limit:
            log.warning("%s: %d more malformed VCF record(s) in this read, not logged; each is a "
                        "'malformed' reject with its line and reason", self.path, self.count - self.limit)


def _text_lines(path: str) -> Iterator[str]:
    """A (possibly gzipped) text file's lines, as :func:`open_bytes` reads it (a cut BGZF file:
    its whole blocks, as htslib reads it); ``EOFError`` where its compressed data is cut."""
    with io.TextIOWrapper(open_bytes(path), encoding="utf-8", errors="replace") as handle:
        yield from handle


def _raw_lines(path: str, wanted: set[int]) -> tuple[dict[int, str], bool]:
    """The 1-based lines ``wanted`` of a (possibly gzipped) text file, and whether the file
    is cut (its compressed data ends inside a line: that line is not among them)."""
    found: dict[int, str] = {}
    try:
        for number, line in enumerate(_text_lines(path), start=1):
            if number in wanted:
                found[number] = line
                if len(found) == len(wanted):
                    break
    except EOFError:
        return found, True
    return found, False


def _count_header_lines(path: str) -> int:
    """Number of header lines of a (possibly gzipped) VCF: up to its first '#CHROM' line, where
    htslib's header ends ('#' lines after it are read as records), else its leading '#' lines;
    blank lines among them (htslib skips them) counted."""
    count = 0
    try:
        for line in _text_lines(path):
            if not line.startswith("#") and line.strip():
                break
            count += 1
            if line.startswith("#CHROM"):
                break
    except EOFError:
        pass
    return count


def read_alleles(
    path: str | Path,
    genome: Genome | None = None,
    region: tuple[str, int, int] | None = None,
    max_consecutive_errors: int = 1000,
    log_malformed: int = LOGGED_MALFORMED,
    head_bytes: int | None = None,
    source: str | None = None,
) -> Iterator[Allele]:
    """Every (site, ALT allele) of a VCF, scorable or rejected with a reason.

    Args:
        path: VCF (plain, gzip, bgzip) or BCF. Region queries need a tabix index.
        genome: when given, contigs are resolved against it and REF is checked.
        region: (chrom, start, end), 0-based half-open in the VCF's contig naming;
            only records whose POS - 1 falls in it are read, so each record of a file
            is read by exactly one of several adjacent regions (a malformed line too:
            see :func:`_owned_malformed`).
        max_consecutive_errors: this many unparseable lines in a row means the
            file is not a VCF or is truncated: :class:`VcfFormatError`.
        log_malformed: malformed records logged as warnings (then one line with how
            many more); 0 logs none. Each is yielded as a reject either way.
        head_bytes: only a look at the first records is wanted (:func:`open_vcf`): a
            plain-gzip file is not copied whole.
        source: the file the messages name (the user's, when ``path`` is an indexed copy
            of it); default ``path``.
    Yields:
        :class:`Allele`, in file order (in region mode, malformed lines last).
    """
    path = str(path)
    vcf = open_vcf_sites(path, head_bytes)
    text = vcf.format == "VCF"
    header_lines = _count_header_lines(path) if region is None and text else 0
    if region is not None:
        chrom, start, end = region
        if not vcf.index:
            vcf.close()
            raise VcfFormatError(f"{path} has no index: region queries need `tabix -p vcf`")
        try:  # a record at POS 0 (malformed, yet a record) lies before 0: the first region reads from the contig's start
            records = vcf.fetch(chrom) if start == 0 else vcf.fetch(chrom, start, end)
        except ValueError:  # contig absent from this VCF: no records there
            vcf.close()
            return
    else:
        records = iter(vcf)

    pending_malformed: list[tuple[int, int]] = []  # (record, line)
    index = 0
    errors_in_row = 0
    warn = _MalformedLog(source or path, log_malformed)
    with closing_quietly(vcf):
        while True:
            line = header_lines + index + 1 if header_lines else 0
            at = vcf.tell()
            try:
                rec = next(records)
            except StopIteration:
                break
            except (OSError, ValueError) as err:
                if vcf.tell() == at:
                    break  # no step forward: the end of what a cut file holds (inspect_vcf said it may be cut)
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
            if region is not None and not (region[1] <= max(rec.start, 0) < region[2]):
                if region[1] == 0 and rec.start >= region[2]:
                    break  # the contig's records come sorted: the rest lie past this region
                continue
            try:  # pysam decodes CHROM, ID, REF, ALT as UTF-8 when they are read
                alleles = list(_record_alleles(rec, index, line, genome))
            except UnicodeDecodeError:
                where = f"line {line}" if line else f"record at {region[0] if region else '?'}:{rec.pos}"
                alleles = [_undecodable_allele(rec, index, line, f"{source or path}, {where}")]
                warn(alleles[0].message)
            yield from alleles
            index += 1
    if region is not None:
        if pending_malformed:
            yield from _owned_malformed(path, region, warn, source or path)
    else:
        yield from _malformed_alleles(path, pending_malformed, warn)
    warn.close()


def _owned_malformed(path: str, region: tuple[str, int, int], warn: _MalformedLog,
                     source: str) -> Iterator[Allele]:
    """Malformed lines whose POS lies in ``region``, with a diagnosis.

    In region mode htslib cannot say where an unparseable line is, and a line whose
    span crosses a region boundary comes back from both regions' queries; pairing the
    raw tabix lines with the parser's attempts, one by one, finds each malformed line
    and gives it to the one region its POS falls in.
    """
    chrom, start, end = region
    with open_tabix(path) as tbx, open_vcf_sites(path) as parsed, pysam.BGZFile(path, "rb") as raw:
        records = parsed.fetch(chrom, start, end)
        for number, text in enumerate(until_cut(tbx.fetch(chrom, start, end))):
            try:
                next(records)
                continue
            except StopIteration:  # cannot happen: both iterate the same lines
                break
            except (OSError, ValueError):
                pass  # this raw line is the one htslib could not parse
            whole = raw_line_before(raw, parsed.tell())  # tabix hands the line over cut at a NUL byte
            if "\x00" in whole and whole.split("\x00", 1)[0] == text:
                text = whole
            allele = _malformed_allele(text, record=-1 - number, line=0, message="")
            if not start <= allele.pos - 1 < end:
                continue
            message = f"{source}, record at {chrom}:{allele.pos}: malformed VCF record: {diagnose_line(text)}"
            warn(message)
            yield dataclasses.replace(allele, chrom=chrom, message=message)


def _malformed_alleles(path: str, pending: list[tuple[int, int]], warn: _MalformedLog) -> Iterator[Allele]:
    raw, cut = _raw_lines(path, {line for _, line in pending if line}) if pending else ({}, False)
    for index, line in pending:
        text = raw.get(line, "")
        if cut and not text and (index, line) == pending[-1]:  # the line the file's cut ends in: no record
            log.warning("%s: the file ends inside line %d (it is truncated): the records before it are read",
                        path, line)
            continue
        why = diagnose_line(text) if text else "htslib could not parse it"
        message = f"{path}, line {line}: malformed VCF record: {why}"
        warn(message)
        yield _malformed_allele(text, record=index, line=line, message=message)


def _malformed_allele(text: str, record: int, line: int, message: str) -> Allele:
    """The reject of an unparseable data line: CHROM, POS, ID, REF, ALT as far as its
    tab-separated columns give them (else '.', POS 0), whichever way the file is read."""
    fields = text.rstrip("\r\n").split("\t")
    if len(fields) < 2:  # not tab-separated: no column is known to be CHROM
        fields = []

    def column(k: int) -> str:
        return fields[k] if len(fields) > k and fields[k] else "."

    pos = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    return Allele(
        chrom=column(0), pos=pos, id=column(2), ref=column(3), alt=column(4), kind="unknown",
        record=record, line=line, reject="malformed", message=message,
    )


def _undecodable_allele(rec, index: int, line: int, where: str) -> Allele:
    """The one reject of a record with a CHROM, ID, REF or ALT that is not UTF-8 text (a
    Latin-1 'é', say): what can be read of it, '.' for the rest."""
    fields, bad = {}, []
    for name, read in (("CHROM", lambda: rec.chrom), ("ID", lambda: rec.id or "."),
                       ("REF", lambda: rec.ref or "."), ("ALT", lambda: ",".join(rec.alts or (".",)))):
        try:
            fields[name] = read()
        except UnicodeDecodeError:
            fields[name] = "."
            bad.append(name)
    message = (f"{where}: malformed VCF record: {' and '.join(bad)} not UTF-8 text; "
               "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")
    return Allele(chrom=fields["CHROM"], pos=rec.pos, id=fields["ID"], ref=fields["REF"].upper(),
                  alt=fields["ALT"].upper(), kind="unknown", record=index, line=line, reject="malformed",
                  message=message)


def _record_alleles(rec, index: int, line: int, genome: Genome | None) -> Iterator[Allele]:
    ref = rec.ref or ""
    for alt in rec.alts or (".",):
        kind, reason, message = check_allele(genome, rec.chrom, rec.pos, ref, alt)
        yield Allele(
            chrom=rec.chrom, pos=rec.pos, id=rec.id or ".", ref=ref.upper(),
            alt=alt if kind == "symbolic" else alt.upper(), kind=kind,  # a breakend names a contig: as written
            record=index, line=line, reject=reason, message=message,
        )
