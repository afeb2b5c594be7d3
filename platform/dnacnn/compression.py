"""What compression a file has, from its first bytes: plain gzip or BGZF (bgzip), or
another that is refused by name (bzip2, xz, zstd, zip); and text whose lines end in a
carriage return alone, which line readers take for one long line.

htslib reads BGZF by record or region, and plain gzip only from the start (FASTA:
not at all); every reader of a genome, a VCF or a FASTA of records asks here.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    """Whether a file starts with the gzip magic bytes (plain gzip or BGZF)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


#: Compressions dnacnn does not read, by their magic bytes, with the command that undoes each
#: (htslib reads none of them here; an xz file made it abort the process).
OTHER_COMPRESSIONS = ((re.compile(rb"BZh[1-9]"), "bzip2", "bunzip2"), (re.compile(rb"\xfd7zXZ\x00"), "xz", "unxz"),
                      (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd", "unzstd"), (re.compile(rb"PK\x03\x04"), "zip", "unzip"))


def check_compression(path: str | Path) -> None:
    """Refuse a file compressed other than by gzip or bgzip, naming the compression.

    Raises:
        ValueError: ``path`` starts with bzip2, xz, zstd or zip magic bytes, or is a folder.
    """
    if Path(path).is_dir():  # open() would say "[Errno 21] Is a directory", naming no input
        raise ValueError(f"{path} is a folder, not a file")
    with open(path, "rb") as handle:
        head = handle.read(6)
    for magic, name, undo in OTHER_COMPRESSIONS:
        if magic.match(head):
            raise ValueError(f"{path} is {name}-compressed; dnacnn reads plain text, gzip or bgzip: "
                             f"decompress it (`{undo}`), then bgzip it if it should stay compressed")


def open_bytes(path: str | Path) -> BinaryIO:
    """A file's bytes, decompressed when it is gzip (plain or BGZF), from its start.

    Raises:
        ValueError: another compression (:func:`check_compression`).
    """
    check_compression(path)
    if is_bgzf(path):
        return io.BufferedReader(BgzfText(path), 1 << 16)
    return io.BufferedReader(GzipText(path), 1 << 16) if is_gzip(path) else open(path, "rb")


class GzipText(io.RawIOBase):
    """A plain-gzip file's text, whose ``EOFError`` at a cut names the file (gzip's own,
    "Compressed file ended before the end-of-stream marker was reached", names none)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.name = str(path)
        self._gzip = gzip.open(path, "rb")

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        """Text bytes read so far."""
        return self._gzip.tell()

    def close(self) -> None:
        self._gzip.close()
        super().close()

    def readinto(self, buffer) -> int:
        try:  # read1: one step of the stream at a time, so that a cut loses only the step it ends in
            data = self._gzip.read1(len(buffer))
            buffer[:len(data)] = data
            return len(data)
        except EOFError:
            raise EOFError(f"{self.name} ends inside its gzip data: it is truncated") from None


class BgzfText(io.RawIOBase):
    """A BGZF file's text, block by block, as htslib reads it: a file cut inside a block
    gives its whole blocks' text, then ``EOFError`` (as ``gzip`` does at a cut); so every
    reader of a cut file (htslib's, and this for copies and raw lines) sees the same text.

    Raises (from reads):
        EOFError: the file ends inside a block (it is truncated).
        OSError: bytes that are no BGZF block, or a block that does not decompress.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.name = str(path)
        self._file = open(path, "rb")
        self._pending = memoryview(b"")
        self._read = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        """Text bytes read so far."""
        return self._read

    def close(self) -> None:
        self._file.close()
        super().close()

    def readinto(self, buffer) -> int:
        while not self._pending:
            block = self._next_block()
            if block is None:
                return 0
            self._pending = memoryview(block)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._read += n
        return n

    def _next_block(self) -> bytes | None:
        """The next block's text (b"" for an empty block), None at the file's end."""
        at = self._file.tell()
        head = self._file.read(12)
        if not head:
            return None
        cut = EOFError(f"{self.name} ends inside a BGZF block at byte {at:,}: it is truncated")
        if len(head) < 12:
            raise cut
        if head[:4] != b"\x1f\x8b\x08\x04":
            raise OSError(f"{self.name}: the bytes at {at:,} are not a BGZF block (the file is damaged)")
        extra = self._file.read(struct.unpack("<H", head[10:12])[0])
        size = _bgzf_block_size(extra)
        if size is None:
            raise OSError(f"{self.name}: the gzip member at byte {at:,} is not BGZF (no block size)")
        rest = self._file.read(size - 12 - len(extra))
        if len(rest) < size - 12 - len(extra):
            raise cut
        try:
            return zlib.decompress(rest[:-8], wbits=-15)
        except zlib.error as err:
            raise OSError(f"{self.name}: the BGZF block at byte {at:,} does not decompress ({err})") from None


def bgzf_tail_text(path: str | Path, blocks: int = 2) -> bytes:
    """The text of a BGZF file's last ``blocks`` blocks that hold any (the empty end-of-file
    block left out), found by walking the blocks' headers from the start (18 bytes read per
    block); b"" for a file without text, or one whose blocks cannot be walked (cut, damaged)."""
    starts: list[tuple[int, int]] = []  # (offset, size) of the last blocks with text
    with open(path, "rb") as handle:
        at = 0
        while True:
            handle.seek(at)
            head = handle.read(18)
            if len(head) < 18 or head[:4] != b"\x1f\x8b\x08\x04" or head[12:14] != b"BC":
                break
            size = struct.unpack("<H", head[16:18])[0] + 1
            handle.seek(at + size - 4)
            if handle.read(4) != bytes(4):  # ISIZE: the block holds text
                starts = (starts + [(at, size)])[-blocks:]
            at += size
        texts = []
        for offset, size in starts:
            handle.seek(offset)
            block = handle.read(size)
            xlen = struct.unpack("<H", block[10:12])[0]
            try:
                texts.append(zlib.decompress(block[12 + xlen:-8], wbits=-15))
            except zlib.error:
                return b""
    return b"".join(texts)


def _bgzf_block_size(extra: bytes) -> int | None:
    """A BGZF block's total size from its gzip extra field (subfield 'BC': size - 1)."""
    k = 0
    while k + 4 <= len(extra):
        length = struct.unpack("<H", extra[k + 2:k + 4])[0]
        if extra[k:k + 2] == b"BC" and length == 2:
            return struct.unpack("<H", extra[k + 4:k + 6])[0] + 1
        k += 4 + length
    return None


def is_bgzf(path: str | Path) -> bool:
    """BGZF is gzip with an extra field 'BC' (SAM/BAM spec, section 4.1)."""
    with open(path, "rb") as handle:
        head = handle.read(14)
    return len(head) == 14 and head[:2] == GZIP_MAGIC and bool(head[3] & 4) and head[12:14] == b"BC"


#: What to say of text whose lines end in a carriage return alone.
CR_ONLY = "its lines end in a carriage return alone (old Mac text): end them with line feeds (`tr '\\r' '\\n'`)"


def cr_only_lines(head: bytes) -> bool:
    """Whether text (its first bytes, decompressed) ends its lines in a carriage return alone."""
    return b"\r" in head and b"\n" not in head


def lines_starting_with(handle: BinaryIO, marker: bytes, piece: int = 4 << 20) -> Iterator[tuple[int, bytes]]:
    """The lines that begin with ``marker`` in the text ``handle`` reads from where it is (a line
    start): (the line's 1-based number counted from there, the line without its line break).

    The text is searched in pieces of ``piece`` bytes, not line by line (about 0.2 s per million
    lines); a line is held whole only when it begins with ``marker`` (a long line of bases is not).
    ``marker`` holds no line break.
    """
    # newlines before `data`: the line break `pending` stands for first, a virtual one at the start
    newlines, pending, found = -1, b"\n", b"\n" + marker
    for chunk in iter(lambda: handle.read(piece), b""):
        data = pending + chunk
        end = data.rfind(b"\n")  # the last line break: lines before it are whole
        at = data.find(found, 0, max(end, 0))
        while at >= 0:
            stop = data.index(b"\n", at + 1)
            yield newlines + data.count(b"\n", 0, at + 1) + 1, data[at + 1:stop]
            at = data.find(found, stop, end)
        tail = data[end + 1:]  # the start of the line the next piece goes on with
        if end >= 0 and (marker.startswith(tail) or tail.startswith(marker)):
            newlines, pending = newlines + data.count(b"\n", 0, end), data[end:]
        else:  # mid-line: no line begins before the next line break
            newlines, pending = newlines + data.count(b"\n"), b""
    if pending.startswith(found):  # the last line, without a line break
        yield newlines + 2, pending[1:]

