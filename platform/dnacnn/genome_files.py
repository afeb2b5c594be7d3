"""A reference FASTA and its indexes (``.fai``, and ``.gzi`` for bgzip) checked before and after
htslib opens them, so that what htslib would misread is said in one line naming the file.

htslib trusts an index: one written for another version of the FASTA, or not a faidx index
at all, gives other bases (or a crash) instead of an error. :func:`check_indexes` looks at
the index files before ``pysam.FastaFile`` opens the genome (a link to nothing, a folder, an
index older than its FASTA, lines that are no faidx record, a bgzipped FASTA without its
``.gzi`` in a folder htslib cannot write it to: pysam 0.24 crashes there);
:func:`check_contig_names` and, when htslib has just built the index,
:func:`check_names_once_each` the contigs' names (none empty, none twice);
:func:`check_index_covers` after (the index's contigs laid out where the file has them);
:func:`fasta_advice` says why htslib could not open a file.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from dnacnn.compression import CR_ONLY, cr_only_lines, is_bgzf, is_gzip, lines_starting_with, open_bytes
from dnacnn.job_paths import inside_job_copy

#: An index older than its FASTA by more than this (seconds) was written for another version
#: of it (copies and checkouts write a file and its index within a moment of each other).
STALE_AFTER_S = 1.0

REBUILD = "rebuild it (`samtools faidx {path}`; delete it and pysam rebuilds it where the folder can be written)"


def check_indexes(path: str) -> None:
    """Refuse index files beside a FASTA that htslib would misread or crash on.

    Raises:
        ValueError: naming the index and what is wrong with it.
    """
    fai, gzi = Path(f"{path}.fai"), Path(f"{path}.gzi")
    for index in (fai, gzi) if is_bgzf(path) else (fai,):
        if index.is_symlink() and not index.exists():
            raise ValueError(f"the index {index} is a link to nothing ({os.readlink(index)}): "
                             "remove it or point it at the index")
        if index.exists() and not index.is_file():
            raise ValueError(f"the index {index} is a folder, not an index file: remove it")
        if index.is_file() and not inside_job_copy(path) and \
                index.stat().st_mtime < Path(path).stat().st_mtime - STALE_AFTER_S:
            raise ValueError(f"the index {index} is older than {path}: the FASTA changed after indexing, and "
                             f"the index would read other bases; {REBUILD.format(path=path)}")
    if fai.is_file():
        _check_fai_lines(fai, path)
    if is_bgzf(path) and fai.is_file() and not gzi.exists() and not os.access(gzi.parent, os.W_OK):
        raise ValueError(f"{path} is bgzipped and has no {gzi.name} beside it, which reading it needs, in a folder "
                         f"that cannot be written to build one: build its indexes where they can be written "
                         f"(`samtools faidx`) and put the {gzi.name} beside it")


def _check_fai_lines(fai: Path, path: str) -> None:
    """Each line of a faidx index: NAME, LENGTH, OFFSET, LINEBASES, LINEWIDTH (non-negative
    whole numbers; a sixth field for FASTQ); at least one line."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"the index {fai} is not a faidx index of {path} ({why}); {REBUILD.format(path=path)}")

    try:
        lines = fai.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as err:
        raise refuse(f"it cannot be read as text: {err}") from None
    if not any(line.strip() for line in lines):
        raise refuse("it lists no contig")
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if not fields[0] and len(fields) > 1:  # htslib indexes a nameless '>' line so
            check_contig_names(path, [line.split("\t")[0] for line in lines[:number]])
        if len(fields) not in (5, 6) or not fields[0] or not all(f.isdigit() for f in fields[1:]):
            raise refuse(f"line {number} is not NAME, LENGTH, OFFSET, LINEBASES, LINEWIDTH, tab-separated, "
                         f"as whole numbers: {line[:80]!r}")


def check_names_once_each(path: str) -> None:
    """Refuse a FASTA naming one contig twice (htslib's index keeps the first, without a word:
    the second's bases could not be read), read through once when htslib has just built its
    index (its headers found in 4 MiB pieces of text: seconds for a whole genome). The index
    built is removed, so that the next open says it again.

    Raises:
        ValueError: naming the contig and its two places among the contigs.
    """
    first: dict[bytes, int] = {}
    for number, name in enumerate(_header_names(path), start=1):
        if name in first:
            Path(f"{path}.fai").unlink(missing_ok=True)
            raise ValueError(f"{path} names contig {name.decode('latin-1')!r} twice (its contigs {first[name]} "
                             f"and {number}): the second's bases cannot be read by name; rename or remove one")
        first[name] = number


def _header_names(path: str) -> Iterator[bytes]:
    """The name (up to the first blank) of each '>' line of a (possibly gzipped) FASTA, in order."""
    with open_bytes(path) as handle:
        for _, line in lines_starting_with(handle, b">"):
            yield _BLANK.split(line[1:], maxsplit=1)[0]


_BLANK = re.compile(rb"\s")


def check_contig_names(path: str, names: list[str]) -> None:
    """Refuse a FASTA with a contig named by nothing (a '>' line with no name: htslib indexes
    it as ``''``, a name no VCF or BED can give)."""
    if "" in names:
        raise ValueError(f"{path}: its contig {names.index('') + 1} has a '>' line with no name; "
                         "name it ('>NAME', the name up to the first space)")


def fasta_advice(path: str) -> str:
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
    if len(head) < 1 << 16 and all(not line.strip() or line.startswith(b">") for line in head.splitlines()):
        return "it holds no bases (only '>' lines)"
    if (problem := _layout_problem(path)) is not None:
        return problem
    if Path(f"{path}.fai").is_file():
        return f"its index {path}.fai does not fit it; {REBUILD.format(path=path)}"
    return "index it with `samtools faidx` (pysam builds the index when the folder can be written)"


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


def check_index_covers(path: str) -> None:
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
    ``bases`` bases (or blanks there, which htslib reads past). A file rewritten at another line width after indexing fails this, where
    reading it would give shifted bases and line ends as sequence."""
    text.seek(max(offset - 1, 0))
    head = text.read(bases + 2)
    if offset and head[:1] != b"\n":
        return False
    line = head[1:] if offset else head
    # the line's end: its line break, or spaces htslib reads past (trailing blanks)
    return length <= bases or (len(line) > bases and line[bases:bases + 1].isspace())
