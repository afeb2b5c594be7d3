"""Why a VCF file cannot be read, in words: the usual slips behind htslib's refusals.

htslib says a file "does not have valid header" or fails on every record without saying
why; these read the file's first bytes (through gzip when it is compressed) and name the
slip (a byte-order mark, old-Mac line ends, a missing '##fileformat' or '#CHROM' line,
spaces for tabs, binary content), for :mod:`dnacnn.variants.files` to say in one line.
"""

from __future__ import annotations

from dnacnn.compression import CR_ONLY, cr_only_lines, open_bytes


def header_problem(path: str) -> str | None:
    """What is wrong with the start of a (possibly gzipped) text file that htslib cannot read
    as a VCF, when it is one of the usual slips (a byte-order mark, old-Mac line ends, a
    missing or misplaced '##fileformat' line); None when it is none of them."""
    try:
        with open_bytes(path) as handle:
            head = handle.read(1 << 16)
    except (OSError, EOFError):
        return None
    if head.startswith(b"\xef\xbb\xbf"):
        return "it starts with a UTF-8 byte-order mark, which editors do not show: save it without one"
    if cr_only_lines(head):
        return CR_ONLY
    lines = head.split(b"\n")
    first = lines[0].rstrip(b"\r")
    if first.startswith(b"BCF"):
        return None
    if not first.startswith(b"##fileformat=VCF"):
        return f"its first line is {first[:60].decode('latin-1')!r}, not '##fileformat=VCFv4.x'"
    for number, line in enumerate(lines[:-1], start=1):  # whole lines of the head only
        if not line.startswith(b"##"):
            if line.startswith(b"#CHROM"):
                return None
            text = line.rstrip(b"\r")[:60].decode("latin-1")
            return f"line {number}, {text!r}, comes where the '#CHROM' header line should, after the '##' lines"
    return None


def why_records_unreadable(path: str) -> str:
    """Why none of a VCF's first records can be read, as far as its first record line tells."""
    line = _first_record_line(path)
    if line is not None and b"\t" not in line and len(line.split()) >= 8:
        return "its columns are separated by spaces, not tabs (VCF columns are tab-separated)"
    return "the file is not a VCF (binary content after the header) or its header does not describe its records"


def _first_record_line(path: str, size: int = 1 << 20) -> bytes | None:
    """The first line after the header within the first ``size`` bytes of the text; None if none."""
    try:
        with open_bytes(path) as handle:
            read = 0
            while read < size:
                line = handle.readline(size)
                if not line:
                    return None
                read += len(line)
                if line.strip() and not line.startswith(b"#"):
                    return line.rstrip(b"\r\n")
    except (OSError, EOFError):
        return None
    return None


def has_binary_text(path: str, size: int = 1 << 16) -> bool:
    """Whether the first ``size`` bytes of a VCF's text hold NUL bytes (a text VCF never does)."""
    try:
        with open_bytes(path) as handle:
            return b"\x00" in handle.read(size)
    except (OSError, EOFError):
        return True
