"""Reading BED files and label tables, whole or by byte range (for sharded reads).

A *label table* is a tab-separated file whose first line is a header naming the
columns: ``chrom start end TASK1 TASK2 ...`` (a leading ``#`` is allowed); each
task column holds 0/1 or a probability in [0, 1]. A *BED* has no header (``track``/``browser``/
``#`` lines are skipped) and its first three columns are chrom, start, end
(0-based half-open); further columns are ignored. Plain or gzipped.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from dnacnn.data.windows import merge_intervals
from dnacnn.compression import CR_ONLY, cr_only_lines, is_gzip, open_bytes

_SKIP_PREFIXES = (b"#", b"track", b"browser")


def _open(path: str | Path):
    return open_bytes(path)


@dataclass(frozen=True)
class LabelHeader:
    """The header of a label table: the task names and where data lines begin."""

    tasks: list[str]
    data_offset: int  # byte offset of the first data line (plain files)


def read_label_header(path: str | Path) -> LabelHeader:
    """Parse the header line of a label table.

    Raises:
        ValueError: fewer than four columns, or a header that looks like data.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"label table not found: {path}")
    with _open(path) as handle:
        line = handle.readline()
    if cr_only_lines(line[: 1 << 16]):
        raise ValueError(f"{path}: {CR_ONLY}")
    text = line.decode("utf-8", errors="replace").rstrip("\r\n").lstrip("#")
    columns = text.split("\t")
    if len(columns) < 4:
        raise ValueError(
            f"{path}: the header {text!r} has {len(columns)} tab-separated column(s); a label "
            "table needs `chrom<TAB>start<TAB>end<TAB>TASK...` with one column per task"
        )
    if columns[1].strip().isdigit():
        raise ValueError(
            f"{path}: the first line {text[:60]!r} looks like data, not a header; add a header "
            "line `chrom<TAB>start<TAB>end<TAB>TASK1<TAB>TASK2...` naming the tasks"
        )
    _check_coordinate_names(path, [c.strip().lower() for c in columns[:3]])
    tasks = [c.strip() for c in columns[3:]]
    for i, task in enumerate(tasks):
        if not task:
            raise ValueError(f"{path}: header column {i + 4} has no task name; name every task column")
        if task in tasks[:i]:
            raise ValueError(f"{path}: the header names task {task!r} twice (columns {tasks.index(task) + 4} "
                             f"and {i + 4}); each task column needs its own name")
    return LabelHeader(tasks=tasks, data_offset=len(line))


#: Header names of the coordinate columns, by the column they name (0 chrom, 1 start, 2 end).
_COORDINATE_NAMES = ({"chrom", "chr", "chromosome", "contig", "seqname", "seqnames"},
                     {"start", "chromstart", "begin"}, {"end", "chromend", "stop"})


def _check_coordinate_names(path: str | Path, names: list[str]) -> None:
    """Refuse a header whose first three columns name the coordinates in another order
    (``start chrom end``): the columns are read by place, chrom, start, end."""
    for place, name in enumerate(names):
        other = next((k for k, known in enumerate(_COORDINATE_NAMES) if name in known and k != place), None)
        if other is not None:
            raise ValueError(f"{path}: header column {place + 1} is {name!r}, which names column {other + 1}; "
                             "a label table's columns are chrom, start, end, then the tasks, in that order")


def byte_ranges(path: str | Path, start: int, target_bytes: int) -> list[tuple[int, int]]:
    """Cut ``[start, size)`` of a plain text file into ranges of about ``target_bytes``.

    A gzipped file cannot be entered in the middle: it gets one range ``(0, -1)``.
    """
    if is_gzip(path):
        return [(0, -1)]
    size = os.path.getsize(path)
    if size <= start:
        return []
    cuts = list(range(start, size, max(1, target_bytes))) + [size]
    return list(zip(cuts[:-1], cuts[1:]))


def iter_line_chunks(
    path: str | Path, start: int, end: int, max_lines: int, skip_first: bool = False
) -> Iterator[bytes]:
    """Complete lines whose first byte lies in ``[start, end)``, in chunks of <= ``max_lines``.

    With ``(0, -1)`` the whole file (plain or gzipped) is read. ``skip_first``
    drops the file's first line (a header). Comment/track lines are dropped.
    """
    with _open(path) as handle:
        if end == -1:
            end = None
        elif start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # the line in progress belongs to the previous range
        elif skip_first:
            handle.readline()
        if end is None and skip_first:
            handle.readline()
        lines: list[bytes] = []
        while True:
            at = handle.tell()
            if end is not None and at >= end:
                break
            line = handle.readline()
            if not line:
                break
            if at == 0:  # a byte-order mark (Windows editors) would hide a first '#' or 'track'
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line.strip() or line.startswith(_SKIP_PREFIXES):
                continue
            lines.append(line if line.endswith(b"\n") else line + b"\n")
            if len(lines) >= max_lines:
                yield b"".join(lines)
                lines = []
        if lines:
            yield b"".join(lines)


def parse_intervals(
    chunk: bytes, n_label_columns: int = 0, path: str = ""
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Parse tab-separated lines into coordinates (and labels).

    Args:
        chunk: complete lines.
        n_label_columns: T float columns expected after chrom/start/end (0 for a BED:
            extra columns are ignored).
    Returns:
        chroms (N,) object, starts (N,) int64, ends (N,) int64, labels (N, T) float32 or None.
    """
    if not chunk:
        return (np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0, np.int64),
                np.zeros((0, n_label_columns), np.float32) if n_label_columns else None)
    width = 3 + n_label_columns
    types = [pa.string(), pa.int64(), pa.int64()] + [pa.float32()] * n_label_columns
    try:
        table = pacsv.read_csv(
            io.BytesIO(chunk),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),  # a name may hold a '"'
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": t for i, t in enumerate(types)},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as err:
        if not n_label_columns and (trimmed := _first_three_columns(chunk)) != chunk:
            return parse_intervals(trimmed, 0, path)  # a BED of lines of several widths (BED3 and BED6)
        if (ragged := _line_of_other_width(chunk, width, exact=bool(n_label_columns))) is not None:
            err = ragged  # Arrow counts the columns of the chunk's first line, and blames a good line
        elif (value := _first_unreadable_value(chunk, width)) is not None:
            err = value  # Arrow numbers columns from 0 and names no line
        raise ValueError(
            f"{path}: cannot parse interval lines ({err}); each line needs chrom, start, end "
            "(integers, 0-based) separated by tabs"
            + (f", then {n_label_columns} numeric task column(s)" if n_label_columns else "")
        ) from None
    if table.num_columns < width:
        raise ValueError(
            f"{path}: lines have {table.num_columns} column(s), expected at least {width} "
            f"(chrom, start, end{', and one per task' if n_label_columns else ''})"
        )
    chroms = np.asarray(table.column(0).to_pylist(), dtype=object)
    starts = table.column(1).to_numpy().astype(np.int64)
    ends = table.column(2).to_numpy().astype(np.int64)
    bad = np.flatnonzero(starts < 0)
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: interval {chroms[i]}:{starts[i]}-{ends[i]} starts before 0; "
                         "BED coordinates are 0-based, from 0")
    bad = np.flatnonzero(ends < starts)  # end == start: a point between two bases, as BED allows
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{path}: interval {chroms[i]}:{starts[i]}-{ends[i]} ends before it starts; BED "
            "coordinates are 0-based half-open (end >= start)"
        )
    labels = None
    if n_label_columns:
        labels = np.stack(
            [table.column(i).to_numpy(zero_copy_only=False).astype(np.float32)
             for i in range(3, width)], axis=1)
        bad = np.argwhere(~np.isfinite(labels))
        if len(bad):  # NaN (empty, not a number) or infinite: a loss of NaN for the whole run
            row, col = (int(i) for i in bad[0])
            raise ValueError(f"{path}: record {chroms[row]}:{starts[row]}-{ends[row]} has a task value that is "
                             f"empty, not a number or infinite (column {col + 4}); labels must be finite numbers")
        bad = np.argwhere((labels < 0) | (labels > 1))
        if len(bad):  # the losses (BCE, cross-entropy) read a label as a class's probability
            row, col = (int(i) for i in bad[0])
            raise ValueError(f"{path}: record {chroms[row]}:{starts[row]}-{ends[row]} has the task value "
                             f"{labels[row, col]:g} (column {col + 4}); a label is a class's probability, "
                             "0 to 1 (1/0 for a peak or not)")
    return chroms, starts, ends, labels


def read_bed(path: str | Path) -> list[tuple[str, int, int]]:
    """All (chrom, start, end) of a BED, in file order."""
    out: list[tuple[str, int, int]] = []
    for chunk in iter_line_chunks(path, 0, -1, max_lines=1_000_000):
        chroms, starts, ends, _ = parse_intervals(chunk, 0, str(path))
        out.extend(zip(chroms.tolist(), starts.tolist(), ends.tolist()))
    return out


PeakSet = dict[str, tuple[np.ndarray, np.ndarray]]


def _first_three_columns(chunk: bytes) -> bytes:
    """Lines cut to their chrom, start and end columns."""
    return b"".join(b"\t".join(line.split(b"\t", 3)[:3]).rstrip(b"\r\n") + b"\n" for line in chunk.splitlines())


def _line_of_other_width(chunk: bytes, width: int, exact: bool) -> str | None:
    """The first line of ``chunk`` with other than ``width`` tab-separated columns (fewer, for
    a BED: ``exact`` False), said in words; None when every line has them."""
    for line in chunk.splitlines():
        n = line.count(b"\t") + 1
        if n < width or (exact and n != width):
            return f"the line {line[:80].decode('latin-1')!r} has {n} column(s), not {width}"
    return None


def _first_unreadable_value(chunk: bytes, width: int) -> str | None:
    """The first start or end that is not an integer, or task value that is not a number, in the
    first ``width`` columns of ``chunk``'s lines, said with its line and its column counted from 1;
    None when Python reads them all."""
    for line in chunk.splitlines():
        fields = line.rstrip(b"\r").split(b"\t")
        for column, field in enumerate(fields[1:width], start=2):
            try:
                int(field) if column <= 3 else float(field)
            except ValueError:
                kind = "an integer" if column <= 3 else "a number"
                return (f"the line {line[:80].decode('latin-1')!r} has {field[:40].decode('latin-1')!r} in "
                        f"column {column}, not {kind}")
    return None


def read_peaks(path: str | Path) -> PeakSet:
    """A peak BED as merged, sorted intervals per chromosome; a zero-length peak (start == end,
    a point before base ``start``) as the one base ``start``, so that it labels the windows
    over it."""
    by_chrom: dict[str, tuple[list, list]] = {}
    for chunk in iter_line_chunks(path, 0, -1, max_lines=1_000_000):
        chroms, starts, ends, _ = parse_intervals(chunk, 0, str(path))
        for chrom in np.unique(chroms) if len(chroms) else []:
            mask = chroms == chrom
            s, e = by_chrom.setdefault(chrom, ([], []))
            s.append(starts[mask])
            e.append(np.maximum(ends[mask], starts[mask] + 1))
    return {c: merge_intervals(np.concatenate(s), np.concatenate(e)) for c, (s, e) in by_chrom.items()}


@functools.lru_cache(maxsize=512)
def _cached_peaks(path: str, mtime: float) -> PeakSet:
    return read_peaks(path)


def cached_peaks(path: str | Path) -> PeakSet:
    """:func:`read_peaks`, cached per process (a Ray worker reuses it across read tasks)."""
    path = str(path)
    return _cached_peaks(path, os.path.getmtime(path))
