"""What compression a file has, from its first bytes: plain gzip or BGZF (bgzip).

htslib reads BGZF by record or region, and plain gzip only from the start (FASTA:
not at all); every reader of a genome, a VCF or a FASTA of records asks here.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    """Whether a file starts with the gzip magic bytes (plain gzip or BGZF)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_bytes(path: str | Path) -> BinaryIO:
    """A file's bytes, decompressed when it is gzip (plain or BGZF), from its start."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def is_bgzf(path: str | Path) -> bool:
    """BGZF is gzip with an extra field 'BC' (SAM/BAM spec, section 4.1)."""
    with open(path, "rb") as handle:
        head = handle.read(14)
    return len(head) == 14 and head[:2] == GZIP_MAGIC and bool(head[3] & 4) and head[12:14] == b"BC"
