"""The bgzipped, tabix-indexed VCF that region reads need: the input's own when its index can be
trusted, else a copy made once per job.

An index is trusted only when it is not older than its file and finds the file's last record
where it is (not another file's index). A VCF that cannot be indexed (unsorted, a CHROM/POS
tabix cannot read) is read whole, and so is one with a ``#`` line among the records, which
tabix skips, its own index or not.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pysam

from dnacnn.compression import bgzf_tail_text, is_bgzf, lines_starting_with, open_bytes
from dnacnn.job_paths import inside_job_copy
from dnacnn.variants.files import copy_text, index_path, open_tabix, open_vcf, until_cut, variant_file

log = logging.getLogger(__name__)


def has_index(path: str | Path) -> bool:
    """Whether ``path`` is a bgzipped VCF with a tabix or CSI index beside it, not older than it.

    An index older than its file (the file rewritten after indexing) may not hold the
    records added since: region queries would miss them without an error; it is said
    once and not used. So is an index dated after its file that does not find the file's
    last record where it is (another file's index, or one copied in later).
    """
    pysam.set_verbosity(0)
    if not is_bgzf(path):  # plain text or plain gzip: no index possible
        return False
    index = index_path(path)
    # (a file uploaded with a Ray job's working directory bears the time it was unpacked)
    if index is not None and os.path.getmtime(index) < os.path.getmtime(path) and not inside_job_copy(path):
        log.warning("%s: its index %s is older than the file (it may miss records); using a fresh index "
                    "(re-index it with `tabix -f -p vcf`)", path, index)
        return False
    try:
        with variant_file(str(path)) as vcf:
            if not (vcf.format == "VCF" and vcf.index is not None):
                return False
    except (OSError, ValueError):
        return False
    if (last := _last_record_unindexed(path)) is not None:
        log.warning("%s: its index %s does not find its last record (%s): the index is another file's or an "
                    "older one's (it would miss records); using a fresh index (re-index it with `tabix -f -p vcf`)",
                    path, index, last)
        return False
    return True


def _last_record_unindexed(path: str | Path) -> str | None:
    """``CHROM:POS`` of a bgzipped VCF's last record when its index does not find it there (an
    index of another file, or of the file before records were added, dated after it), else None
    (found, or no record line to look for)."""
    lines = bgzf_tail_text(path).decode("latin-1").splitlines()
    last = next((line for line in reversed(lines) if line.strip() and not line.startswith("#")), None)
    fields = last.split("\t") if last else []
    if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) < 1:
        return None  # a malformed line: region reads give it what they can
    chrom, pos = fields[0], int(fields[1])
    try:
        with open_tabix(path) as tbx:
            found = any(line.split("\t", 2)[1:2] == [fields[1]] for line in until_cut(tbx.fetch(chrom, pos - 1, pos)))
    except (OSError, ValueError):  # the contig is not in the index
        found = False
    return None if found else f"{chrom}:{pos}"


def indexed_copy(vcf: str | Path, work_dir: str | Path) -> tuple[str, bool]:
    """A bgzipped, tabix-indexed VCF to read by region: ``vcf`` itself, or a copy.

    Args:
        vcf: the input (VCF plain / gzip / bgzip, or BCF: converted to VCF text).
        work_dir: where the copy goes (``work_dir/input.vcf.gz`` + ``.tbi``); reused
            when already there from an earlier run of the same job.
    Returns:
        (path, indexed): ``indexed`` is False when the VCF cannot be indexed (unsorted,
        or a line whose CHROM/POS tabix cannot read) or has a '#' line among its records;
        it is then read whole.
    """
    vcf = str(vcf)
    if has_index(vcf):
        return vcf, not _said_comment_among_records(vcf, vcf)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "input.vcf.gz"
    if copy.exists() and Path(f"{copy}.tbi").exists():
        return str(copy), True
    plain = work / f"_tmp-input-{uuid.uuid4().hex}.vcf"
    if is_bgzf(vcf) and _is_bcf(vcf):
        with open_vcf(vcf) as src, pysam.VariantFile(str(plain), "w", header=src.header) as dst:
            for record in src:  # streamed: memory bounded
                dst.write(record)
    else:
        with open_bytes(vcf) as src, open(plain, "wb") as dst:
            copy_text(src, dst)
    if plain.exists() and _said_comment_among_records(plain, vcf):
        plain.unlink()
        return vcf, False
    try:
        pysam.tabix_index(str(plain), preset="vcf", force=True)  # -> plain.gz, plain.gz.tbi
        _check_indexed_contig_names(f"{plain}.gz")
    except OSError as err:
        log.warning(
            "cannot index %s (%s): it is unsorted or has a line whose CHROM/POS cannot be "
            "read; scoring it as one shard, from the start (sort it with `bcftools sort` "
            "to split the work by region)", vcf, str(err).replace(f"{plain}.gz", "its copy"),  # (removed below)
        )
        for leftover in (plain, Path(f"{plain}.gz"), Path(f"{plain}.gz.tbi")):
            leftover.unlink(missing_ok=True)
        return vcf, False
    os.replace(f"{plain}.gz", copy)
    os.replace(f"{plain}.gz.tbi", f"{copy}.tbi")  # last: the pair exists only when complete
    log.info("%s is not a tabix-indexed VCF; scoring a bgzipped, indexed copy %s", vcf, copy)
    return str(copy), True


#: Bytes of VCF text the scan for a '#' line among the records reads at a time.
SCAN_PIECE = 4 << 20


def _said_comment_among_records(text: str | Path, vcf: str) -> bool:
    """Whether the VCF text ``text`` (plain or gzipped) has a line starting with '#' after its
    first record, which tabix skips: read by region, it would be neither a record nor a reject.
    Said once, naming the line of ``vcf``; the file is then read whole, where each such line is
    a 'malformed' reject."""
    comment = _comment_among_records(text)
    if comment is not None:
        log.warning("%s, line %d: a '#' line among the records; scoring the file as one shard, from the "
                    "start, where each such line is a 'malformed' reject (remove them to split the work "
                    "by region)", vcf, comment)
    return comment is not None


def _comment_among_records(path: str | Path) -> int | None:
    """The 1-based number of the first line of a (possibly gzipped) VCF text that starts with
    '#' after a record line (blank lines are no record), or None; None too where the file is cut
    or damaged before one (its reads say so). The records are searched in pieces of
    :data:`SCAN_PIECE` bytes (:func:`~dnacnn.compression.lines_starting_with`)."""
    number = 0
    try:
        with open_bytes(path) as handle:
            for line in iter(handle.readline, b""):  # the header: a few lines
                number += 1
                if line.strip() and not line.startswith(b"#"):
                    break
            else:
                return None
            after, _ = next(lines_starting_with(handle, b"#", SCAN_PIECE), (None, None))
    except (OSError, EOFError):
        return None
    return None if after is None else number + after


def _check_indexed_contig_names(path: str) -> None:
    """htslib indexes any bytes as a CHROM, but pysam then cannot open the file (it reads the
    index's names as UTF-8): OSError saying so, so that such a VCF is read whole, where a record
    with such a CHROM is one 'malformed' reject."""
    try:
        pysam.VariantFile(path).close()
    except UnicodeDecodeError as err:
        raise OSError(f"a CHROM is not UTF-8 text: {err}") from None


def _is_bcf(path: str) -> bool:
    try:
        with variant_file(path) as handle:
            return handle.format == "BCF"
    except (OSError, ValueError):
        return False
