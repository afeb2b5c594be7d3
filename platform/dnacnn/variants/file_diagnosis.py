"""Why a VCF file cannot be read, in words: the usual slips behind htslib's refusals.

htslib says a file "does not have valid header" or fails on every record without saying
why; these read the file's first bytes (through gzip when it is compressed) and name the
slip (a byte-order mark, old-Mac line ends, a missing '##fileformat' or '#CHROM' line,
spaces for tabs, a cut file, binary content), for :mod:`dnacnn.variants.files` to say in one
line; :func:`diagnose_line` names what is wrong with one record line.
"""

from __future__ import annotations

from dnacnn.compression import CR_ONLY, cr_only_lines, open_bytes


#: The fixed columns of a VCF record, by position.
VCF_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
#: What :func:`diagnose_line` says when it finds none of the usual slips.
UNPARSED = "htslib could not parse it (see the INFO/FORMAT fields against the header)"
#: Text read for the header's '#CHROM' line at most (a header of many contigs runs to megabytes).
HEADER_SCAN_BYTES = 16 << 20


def header_problem(path: str) -> str | None:
    """What is wrong with the start of a (possibly gzipped) text file that htslib cannot read
    as a VCF, when it is one of the usual slips (a byte-order mark, old-Mac line ends, a
    missing or misplaced '##fileformat' or '#CHROM' line, a '#CHROM' line without its eight
    tab-separated columns or naming a sample twice, a file cut before its header ends);
    None when it is none of them."""
    lines, cut = _header_lines(path, HEADER_SCAN_BYTES)
    if not lines and not cut:
        return "it is empty once decompressed"
    first = lines[0] if lines else b""
    if first.startswith(b"\xef\xbb\xbf"):
        return "it starts with a UTF-8 byte-order mark, which editors do not show: save it without one"
    if cr_only_lines(first[: 1 << 16]):
        return CR_ONLY
    if first.startswith(b"BCF"):
        return None
    if lines and not first.startswith(b"##fileformat=VCF"):
        shown = first.rstrip(b"\r\n")[:60].decode("latin-1")
        return f"its first line is {shown!r}, not '##fileformat=VCFv4.x'"
    for number, line in enumerate(lines, start=1):
        line = line.rstrip(b"\r\n")
        if not line.startswith(b"##"):
            if line.startswith(b"#CHROM"):
                return _chrom_line_problem(line)
            return f"line {number}, {line[:60].decode('latin-1')!r}, comes where the '#CHROM' header line should, after the '##' lines"
    if cut:
        return "it ends inside its compressed data before its header does: the file is truncated"
    return None


def _header_lines(path: str, size: int) -> tuple[list[bytes], bool]:
    """A VCF's text lines up to its '#CHROM' line (or the first line that is not '##'), within
    its first ``size`` bytes; and whether its compressed data ended before (a cut file)."""
    lines, read = [], 0
    try:
        with open_bytes(path) as handle:
            while read < size:
                line = handle.readline(1 << 20)
                if not line:
                    break
                lines.append(line)
                read += len(line)
                if not line.startswith(b"##"):
                    break
    except EOFError:
        return lines, True
    except OSError:
        pass
    return lines, False


def _chrom_line_problem(line: bytes) -> str | None:
    """What is wrong with a VCF's '#CHROM' header line, if anything htslib refuses."""
    columns = line.split(b"\t")
    if len(columns) < len(VCF_COLUMNS):
        if len(line.split()) >= len(VCF_COLUMNS):
            return "its '#CHROM' line's columns are separated by spaces, not tabs (VCF columns are tab-separated)"
        return (f"its '#CHROM' line has {len(columns)} column(s); a VCF has the 8 fixed ones (#"
                f"{' '.join(VCF_COLUMNS)}), tab-separated, even with no INFO data ('.' in each record)")
    if len(columns) == len(VCF_COLUMNS) + 1 and columns[-1].strip() in (b"", b"FORMAT"):
        what = "FORMAT and names no sample" if columns[-1].strip() else "a tab after INFO"
        return (f"its '#CHROM' line ends with {what}; htslib reads a 9th column only as FORMAT before sample "
                "names: end the line after INFO (a VCF without genotypes)")
    seen: set[bytes] = set()
    for sample in columns[9:]:
        if sample in seen:
            return f"its '#CHROM' line names the sample {sample[:60].decode('latin-1')!r} twice (sample names are unique)"
        seen.add(sample)
    return None


def diagnose_line(line: str) -> str:
    """Why a raw VCF data line cannot be parsed, in words."""
    fields = line.rstrip("\r\n").split("\t")
    if line.startswith("#"):
        return "a header line among the records (the '##' lines and '#CHROM' come before the first record)"
    if "\x00" in line:  # htslib reads a line as a C string: it ends there
        k = next(i for i, field in enumerate(fields) if "\x00" in field)
        name = VCF_COLUMNS[k] if k < len(VCF_COLUMNS) else "FORMAT or a sample"
        return f"column {k + 1} ({name}) holds a NUL byte, where htslib's reading of the line stops"
    if len(fields) < 8:
        return (
            f"has {len(fields)} tab-separated column(s); a VCF record needs at least "
            f"{len(VCF_COLUMNS)} ({' '.join(VCF_COLUMNS)})"
        )
    if not fields[0].strip() or any(c.isspace() for c in fields[0]):
        return f"CHROM {fields[0][:60]!r} holds a space or is blank (contig names have no whitespace)"
    if not fields[1].isdigit():
        return f"POS {fields[1]!r} is not a positive integer"
    if not fields[3] or fields[3] == ".":
        return "REF is empty"
    return UNPARSED


def why_records_unreadable(path: str) -> str:
    """Why none of a VCF's first records can be read, as far as its first record line tells."""
    found = _first_record_line(path)
    if found is not None:
        number, line = found
        if b"\t" not in line and len(line.split()) >= 8:
            return "its columns are separated by spaces, not tabs (VCF columns are tab-separated)"
        why = diagnose_line(line.decode("latin-1"))
        if why != UNPARSED and b"\x00" not in line:  # NUL bytes: binary content, said below
            return f"the first, line {number}, {why}"
    return "the file is not a VCF (binary content after the header) or its header does not describe its records"


def _first_record_line(path: str, size: int = 1 << 20) -> tuple[int, bytes] | None:
    """The first line after the header within the first ``size`` bytes of the text, with its
    1-based number; None if none."""
    try:
        with open_bytes(path) as handle:
            read = 0
            for number, line in enumerate(iter(lambda: handle.readline(size), b""), start=1):
                read += len(line)
                if read > size:
                    return None
                if line.strip() and not line.startswith(b"#"):
                    return number, line.rstrip(b"\r\n")
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
