"""DNA one-hot encoding and reverse complement: pure, vectorised functions.

Conventions (used across the whole package):
- alphabet order A, C, G, T;
- ``N`` and every other IUPAC code encode as an all-zero row;
- lower case (soft-masked) encodes as upper case;
- ``onehot`` arrays are uint8 of shape (L, 4) for one sequence, (N, L, 4) for a batch.

Encoding is one gather from a 256-entry lookup table: each byte of the
sequence indexes a 4-byte row, read as one uint32. The gather is a compiled
loop (numba): numpy's fancy indexing first widens every uint8 index to an
8-byte intp, which costs 4x (see bench/onehot.py and BENCHMARKS.md). numba is
imported on the first encoding, not with this module: a quarter of a second that
processes which encode nothing (the score job's driver, the CLI's start) skip.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

ALPHABET = "ACGT"

# (256, 4) uint8: row b is the one-hot row of the byte b.
_LUT = np.zeros((256, 4), dtype=np.uint8)
for _i, _base in enumerate(ALPHABET):
    _LUT[ord(_base), _i] = 1
    _LUT[ord(_base.lower()), _i] = 1
# The same table with each row packed into one little-endian uint32: a 1-D gather.
_LUT32 = _LUT.view(np.uint32).reshape(256)

_IUPAC_COMPLEMENT = str.maketrans(
    "ACGTRYSWKMBDHVNacgtryswkmbdhvn",
    "TGCAYRSWMKVHDBNtgcayrswmkvhdbn",
)
_DECODE = np.frombuffer(b"NACGT", dtype=np.uint8)
#: A character that is neither a base nor an IUPAC code (either case).
_NOT_IUPAC = re.compile(r"[^ACGTNRYSWKMBDHVacgtnryswkmbdhv]")


def _gather_loop(codes: np.ndarray, lut32: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """out[i] = lut32[codes[i]]: codes (n,) uint8, lut32 (256,) uint32, out (n,) uint32."""
    for i in range(codes.shape[0]):
        out[i] = lut32[codes[i]]


@functools.cache
def _gather():
    """:func:`_gather_loop` compiled (numba; its machine code cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True, boundscheck=False)(_gather_loop)


def _onehot_of_codes(codes: np.ndarray) -> np.ndarray:
    """(n,) uint8 ASCII codes -> (n, 4) uint8 one-hot."""
    out = np.empty(codes.shape[0], dtype=np.uint32)
    _gather()(codes, _LUT32, out)
    return out.view(np.uint8).reshape(codes.shape[0], 4)


def _as_bytes(seq: str | bytes | bytearray | memoryview) -> np.ndarray:
    """(L,) uint8 view of a sequence's ASCII bytes."""
    if isinstance(seq, str):
        try:
            seq = seq.encode("ascii")
        except UnicodeEncodeError as err:
            raise ValueError(
                f"sequence has a non-ASCII character at position {err.start}: "
                f"{seq[err.start]!r}; DNA must be ASCII (A, C, G, T, N or IUPAC codes)"
            ) from None
    return np.frombuffer(seq, dtype=np.uint8)


def non_dna(seq: str) -> str | None:
    """Why ``seq`` is not DNA, or None: the first character that is neither a base nor an
    IUPAC code (either case), which :func:`encode` would read as N without a word.

    Returns:
        e.g. ``"has 'X' at base 61 (1-based): ..."``, to follow a sequence's name.
    """
    bad = _NOT_IUPAC.search(seq)
    if bad is None:
        return None
    return (f"has {bad.group()!r} at base {bad.start() + 1} (1-based): a sequence holds A, C, G, T "
            "(either case) and IUPAC codes such as N, which are read as unknown")


def encode(seq: str | bytes) -> np.ndarray:
    """One-hot encode one sequence.

    Args:
        seq: DNA as ``str`` or ``bytes``; any case; non-ACGT codes allowed.
    Returns:
        onehot: (L, 4) uint8, rows in A, C, G, T order; all-zero for N/IUPAC.
    """
    return _onehot_of_codes(_as_bytes(seq))


def encode_batch(seqs: Sequence[str | bytes], length: int | None = None) -> np.ndarray:
    """One-hot encode many sequences of one length.

    Args:
        seqs: N sequences. With ``length`` given, shorter ones are padded at the
            end with N (all-zero rows) and longer ones raise ``ValueError``.
        length: L; defaults to the length of the first sequence, and then all
            sequences must have it.
    Returns:
        onehot: (N, L, 4) uint8.
    """
    if length is None:
        length = len(seqs[0]) if len(seqs) else 0
    raw = [s.encode("ascii") if isinstance(s, str) else bytes(s) for s in seqs]
    for i, s in enumerate(raw):
        if len(s) > length:
            raise ValueError(f"sequence {i} has length {len(s)}, longer than {length}")
    buf = b"".join(s.ljust(length, b"N") for s in raw)
    return _onehot_of_codes(np.frombuffer(buf, dtype=np.uint8)).reshape(len(raw), length, 4)


def decode(onehot: np.ndarray) -> str | list[str]:
    """Decode one-hot back to DNA (all-zero rows become ``N``).

    Args:
        onehot: (L, 4) or (N, L, 4), any integer or float dtype holding 0/1.
    Returns:
        a string for (L, 4) input, a list of N strings for (N, L, 4).
    """
    arr = np.asarray(onehot)
    if arr.shape[-1] != 4 or arr.ndim not in (2, 3):
        raise ValueError(f"expected shape (L, 4) or (N, L, 4), got {arr.shape}")
    if (arr.sum(axis=-1) > 1).any():
        raise ValueError("one-hot rows may hold at most one 1 (a base) or none (N)")
    index = (arr.astype(np.uint8) @ np.arange(1, 5, dtype=np.uint8)).astype(np.uint8)
    letters = _DECODE[index]
    if arr.ndim == 2:
        return letters.tobytes().decode("ascii")
    return [row.tobytes().decode("ascii") for row in letters]


def reverse_complement_onehot(onehot: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot DNA.

    With channels in A, C, G, T order, complementing is reversing the channel
    axis, so this is a flip of the last two axes.

    Args:
        onehot: (..., L, 4).
    Returns:
        (..., L, 4), a contiguous copy.
    """
    onehot = np.asarray(onehot)
    if onehot.dtype == np.uint8 and onehot.ndim >= 2 and onehot.shape[-1] == 4 and onehot.flags.c_contiguous:
        # a position's 4 bytes as one word: reversing the channels is swapping its bytes
        # (2.5x faster than the strided copy of the flip)
        words = onehot.view(np.uint32)[..., ::-1, :]
        return np.ascontiguousarray(words.byteswap()).view(np.uint8)
    return np.ascontiguousarray(onehot[..., ::-1, ::-1])


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA string, IUPAC codes and case kept."""
    return seq.translate(_IUPAC_COMPLEMENT)[::-1]
