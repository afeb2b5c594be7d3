"""Opening and checking a VCF file: plain text, gzip, bgzip (BGZF), BCF, with or without an index.

:func:`inspect_vcf` is what a driver calls before any distributed work: it opens
the file, reads its header and first records, and either returns what the file
is (:class:`VcfFileInfo`, with warnings such as a missing BGZF end-of-file
block) or raises :class:`VcfFormatError` naming the file. Region reads of an
indexed file go through :func:`open_tabix`; :mod:`dnacnn.variants.indexed_copy`
makes such a file when the input is not one already.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pysam

from dnacnn.compression import check_compression, is_bgzf, is_gzip  # noqa: F401  (is_gzip: part of this module's API)
from dnacnn.variants.file_diagnosis import has_binary_text, header_problem, why_records_unreadable

log = logging.getLogger(__name__)

#: The empty BGZF block that ends every complete BGZF file (SAM/BAM spec, section 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


class VcfFormatError(ValueError):
    """A VCF that cannot be read at all (not a VCF, bad header, unreadable)."""


def has_bgzf_eof(path: str | Path) -> bool:
    """Whether a BGZF file ends with the empty end-of-file block (else it may be truncated)."""
    size = os.path.getsize(path)
    if size < len(BGZF_EOF):
        return False
    with open(path, "rb") as handle:
        handle.seek(size - len(BGZF_EOF))
        return handle.read() == BGZF_EOF


#: Text of a plain-gzip VCF that a look at its header and first records copies (bytes).
HEAD_BYTES = 16 << 20


def _as_bgzf(path: str, limit: int | None = None) -> str:
    """A BGZF copy of a plain-gzipped file (htslib cannot read plain gzip VCFs by record).

    Args:
        limit: copy the whole header and whole lines of records only up to about
            ``limit`` bytes of text: enough for a look at the first records, at a
            bounded cost whatever the file's size. None: the whole file.
    The caller opens it and then deletes it (:func:`open_vcf`)."""
    out = tempfile.NamedTemporaryFile(prefix="dnacnn-", suffix=".vcf.gz", delete=False)
    out.close()
    plain = out.name[: -len(".gz")]
    try:
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            if limit is None:
                copy_text(src, dst)
            else:  # whole lines, read a MiB at most at a time (a file with no line ends is no VCF)
                copied, line_start, header = 0, True, True
                while copied < 8 * limit:
                    try:
                        piece = src.readline(1 << 20)
                    except EOFError:  # truncated: what it holds
                        break
                    if not piece:
                        break
                    dst.write(piece)
                    copied += len(piece)
                    header = piece.startswith(b"#") if line_start else header
                    line_start = piece.endswith(b"\n")
                    if line_start and not header and copied >= limit:
                        break
        pysam.tabix_compress(plain, out.name, force=True)
    except BaseException:
        Path(out.name).unlink(missing_ok=True)
        raise
    finally:
        Path(plain).unlink(missing_ok=True)
    if limit is None:
        log.info("%s is plain gzip, not bgzip; reading a BGZF copy %s", path, out.name)
    return out.name


def copy_text(src, dst) -> None:
    """Copy a (decompressing) binary stream, 64 KiB at a time: memory bounded. A gzip
    stream cut short (a truncated file: :func:`inspect_vcf` says it) gives what it
    holds, up to its last whole line."""
    try:
        while piece := src.read1(1 << 16):  # read1: a cut stream's last read loses little
            dst.write(piece)
    except EOFError:
        log.warning("%s ends inside its compressed data: it is truncated; reading its whole lines "
                    "(check the file's size against its source)", getattr(src, "name", "the input"))
        dst.flush()
        end = dst.tell()
        with open(dst.name, "rb") as back:
            back.seek(max(0, end - (1 << 20)))
            tail = back.read()
        cut = tail.rfind(b"\n")
        dst.truncate(end - len(tail) + cut + 1 if cut >= 0 else max(0, end - len(tail)))
        dst.seek(0, os.SEEK_END)


@contextlib.contextmanager
def closing_quietly(vcf: pysam.VariantFile) -> Iterator[pysam.VariantFile]:
    """``vcf``, closed on the way out; the error htslib raises closing a file cut inside
    a BGZF block ("Closing failed") is dropped: the cut was said when the file was
    inspected (no end-of-file block), and what it held has been read."""
    try:
        yield vcf
    finally:
        try:
            vcf.close()
        except OSError:
            pass


def variant_file(path: str) -> pysam.VariantFile:
    """``pysam.VariantFile`` for reading, accepting a BGZF file without its end block.

    A missing end block is said once, by :func:`inspect_vcf` (console and summary);
    pysam's own Python warning about it, repeated at every open, is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no BGZF EOF marker")
        return pysam.VariantFile(path, ignore_truncation=True)


def open_vcf(path: str | Path, head_bytes: int | None = None) -> pysam.VariantFile:
    """Open a VCF or BCF, raising :class:`VcfFormatError` naming the file when it is not one.

    Args:
        head_bytes: for a look at the header and first records only: of a plain-gzip
            file (read through a BGZF copy) the copy holds only the first ``head_bytes``
            of its text, whole lines. Other files are read in place either way.
    """
    path = str(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"VCF not found: {path}")
    if Path(path).is_dir():
        raise VcfFormatError(f"{path} is a folder, not a VCF file")
    if not Path(path).is_file():  # a pipe cannot be read twice (its header, then its records)
        raise VcfFormatError(f"{path} is not a regular file (a pipe or a device); write the VCF to a file first")
    try:
        check_compression(path)
    except ValueError as err:
        raise VcfFormatError(str(err)) from None
    pysam.set_verbosity(0)  # htslib's own stderr lines; our rejects say the same, with the line
    copy = None
    try:
        if is_gzip(path) and not is_bgzf(path):
            copy = _as_bgzf(path, head_bytes)
        return variant_file(copy or path)
    except (OSError, ValueError, NotImplementedError, EOFError) as err:
        why = "it is empty" if os.path.getsize(path) == 0 else header_problem(path)
        if why is None:  # htslib's words, naming the user's file (not a copy of it), with the rules
            said = str(err) or type(err).__name__
            said = "htslib cannot read its header" if "valid header" in said else said.replace(copy or path, path)
            why = (f"{said}; the file must start with a '##fileformat=VCFv4.x' header and a '#CHROM' line "
                   "with the 8 fixed columns, tab-separated")
        raise VcfFormatError(f"{path} is not a readable VCF ({why})") from None
    finally:
        if copy is not None:
            os.unlink(copy)  # the open handle keeps reading it; nothing is left behind


def open_vcf_sites(path: str | Path, head_bytes: int | None = None) -> pysam.VariantFile:
    """:func:`open_vcf` for reading sites only: htslib skips the samples' columns (a VCF of
    1,000 samples parses 4x faster; their genotypes are never read here)."""
    vcf = open_vcf(path, head_bytes)
    if len(vcf.header.samples):
        vcf.subset_samples([])
    return vcf


@dataclass
class VcfFileInfo:
    """What :func:`inspect_vcf` found.

    Attributes:
        path: the file as given.
        format: "VCF" or "BCF".
        compression: "none", "gzip" (plain) or "bgzf".
        indexed: a tabix (.tbi) or CSI (.csi) index is beside it.
        contigs: contigs of the header's ``##contig`` lines and the index, in order.
        lengths: the lengths the ``##contig`` lines declare (contigs without one left out).
        warnings: things to tell the user (each one sentence naming the file).
    """

    path: str
    format: str
    compression: str
    indexed: bool
    contigs: list[str] = field(default_factory=list)
    lengths: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def inspect_vcf(path: str | Path, records: int = 100, head_bytes: int = HEAD_BYTES) -> VcfFileInfo:
    """Open a VCF/BCF and read its header and first ``records`` records, in this process
    (a plain-gzip file through a copy of its first ``head_bytes`` of text: :func:`open_vcf`).

    Raises:
        FileNotFoundError: no such file.
        VcfFormatError: not a VCF/BCF, a bad header, or the first records cannot be
            read at all (binary noise after a header); the message names the file.
    """
    path = str(path)
    vcf = open_vcf(path, head_bytes)
    with closing_quietly(vcf):
        fmt = vcf.format if vcf.format in ("VCF", "BCF") else "VCF"
        compression = "bgzf" if is_bgzf(path) else "gzip" if is_gzip(path) else "none"
        contigs = list(vcf.header.contigs)
        lengths = {name: contig.length for name, contig in vcf.header.contigs.items() if contig.length}
        indexed = compression == "bgzf" and vcf.index is not None
        if indexed:
            contigs += [c for c in vcf.index if c not in contigs]
        tried = errors = 0
        for _ in range(records):
            try:
                next(vcf)
            except StopIteration:
                break
            except (OSError, ValueError) as err:
                if fmt == "BCF":
                    raise VcfFormatError(f"{path}: a BCF record cannot be read ({err}); the file is damaged") from None
                errors += 1
            tried += 1
        if tried and errors == tried and (tried == records or has_binary_text(path)):
            raise VcfFormatError(f"{path}: none of its first {tried} record(s) can be read; "
                                 + why_records_unreadable(path))
    info = VcfFileInfo(path, fmt, compression, indexed, contigs, lengths)
    if compression == "bgzf" and not has_bgzf_eof(path):
        info.warnings.append(
            f"{path} has no BGZF end-of-file block: it may be truncated (scoring what it holds; "
            "check the file's size against its source)"
        )
    return info


def index_path(path: str | Path) -> str | None:
    """The tabix (``.tbi``) or CSI (``.csi``) index beside ``path``, or None."""
    for suffix in (".tbi", ".csi"):
        if Path(f"{path}{suffix}").is_file():
            return f"{path}{suffix}"
    return None


def open_tabix(path: str | Path) -> pysam.TabixFile:
    """An indexed VCF's raw lines by region (its .tbi or .csi index), decoded as latin-1: any
    byte decodes (VCF 4.3 text is UTF-8) and the readers parse the fixed columns only."""
    return pysam.TabixFile(str(path), index=index_path(path), encoding="latin-1")


def raw_line_before(handle: pysam.BGZFile, end: int) -> str:
    """The line of an open bgzipped file that ends at BGZF virtual offset ``end`` (what
    ``VariantFile.tell()`` says after reading it, even when the reading failed), as far as
    ``end``'s block holds it; NUL bytes kept (htslib's readers end a line at the first);
    decoded as latin-1, as :func:`open_tabix` decodes; without its line end."""
    block, within = end & ~0xFFFF, end & 0xFFFF  # the block's file offset, the offset in it
    handle.seek(block)
    return handle.read(within).decode("latin-1").rstrip("\r\n").rsplit("\n", 1)[-1]


def until_cut(lines: Iterator[str], on_cut: Callable[[Exception], None] | None = None) -> Iterator[str]:
    """Raw lines up to where a cut or damaged file stops them (htslib then fails to read
    on); ``on_cut`` is told why, once."""
    try:
        yield from lines
    except (OSError, ValueError) as err:
        if on_cut is not None:
            on_cut(err)
