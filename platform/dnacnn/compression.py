"""What compression a file has, from its first bytes: plain gzip or BGZF (bgzip), or
another that is refused by name (bzip2, xz, zstd, zip); and text whose lines end in a
carriage return alone, which line readers take for one long line.

htslib reads BGZF by record or region, and plain gzip only from the start (FASTA:
not at all); every reader of a genome, a VCF or a FASTA of records asks here.
"""

from __future__ import annotations

import gzip
import re
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
        ValueError: ``path`` starts with bzip2, xz, zstd or zip magic bytes.
    """
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
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


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
