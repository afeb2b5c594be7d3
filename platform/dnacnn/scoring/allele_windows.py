"""Variant (site, ALT allele) -> reference and alternative one-hot windows of a model's input length.

The window rule (quoted in the README; one code path for every caller: the
Python API, the batch job and the HTTP service):

    For a variant at 0-based position ``p`` (VCF ``POS - 1``) with alleles REF
    (``r`` bases) and ALT (``a`` bases), a model of input length ``L`` and
    ``c = L // 2``:

    - reference window = genome[p - c, p - c + L): the variant's first base
      sits at index ``c`` of the window.
    - alternative window = genome[p - c, p)  +  ALT  +  genome[p + r, ...),
      cut to exactly ``L`` bases: the left flank is the same ``c`` bases as in
      the reference window, ALT starts at index ``c`` (replacing REF), and the
      right flank is read from the genome after REF's end, as far as needed to
      fill the window. So after a deletion (r > a) the right flank reaches
      ``r - a`` bases further into the genome than the reference window does;
      after an insertion (a > r) it stops ``a - r`` bases earlier; an ALT longer
      than ``L - c`` bases is cut after its first ``L - c`` bases.
    - Positions before the contig's start or past its end are N (all-zero
      rows), in both windows alike.

    An SNV's two windows differ at index ``c`` only; an MNV's at ``c .. c+r-1``;
    for an indel, the windows agree on the first ``c`` bases (plus any shared
    leading anchor base of the VCF alleles) and differ from there on.

The pure core, :func:`window_codes`, builds the windows of a whole batch from
one slice of genome sequence with numpy gathers (no Python loop over
variants); :func:`variant_windows` fetches those slices from a :class:`Genome`,
one per cluster of nearby variants.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnacnn import sequence
from dnacnn.genome import Genome

#: Variants closer than this (bp) share one genome fetch in :func:`variant_windows`.
MAX_GAP = 65_536
#: The most sequence (bp) fetched at once in :func:`variant_windows`.
MAX_SPAN = 1 << 21

_N = ord("N")


def window_start(pos0: int | np.ndarray, seq_len: int) -> int | np.ndarray:
    """First 0-based genome position of the window of a variant at 0-based ``pos0``: ``pos0 - L // 2``."""
    return pos0 - seq_len // 2


def context_bounds(
    pos0: np.ndarray, ref_len: np.ndarray, alt_len: np.ndarray, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """The genome interval each variant's two windows read, 0-based half-open.

    Args:
        pos0, ref_len, alt_len: (N,) int: 0-based position, REF and ALT lengths.
        seq_len: L.
    Returns:
        lo, hi: (N,) int64; ``hi - lo = L + max(0, r - min(a, L - c))``.
    """
    c = seq_len // 2
    pos0 = np.asarray(pos0, dtype=np.int64)
    kept_alt = np.minimum(np.asarray(alt_len, dtype=np.int64), seq_len - c)
    extra = np.maximum(0, np.asarray(ref_len, dtype=np.int64) - kept_alt)
    return pos0 - c, pos0 - c + seq_len + extra


def window_codes(
    context: np.ndarray,
    context_start: int,
    pos0: np.ndarray,
    ref_len: np.ndarray,
    alts: Sequence[bytes | str],
    seq_len: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and alternative windows as ASCII codes, by the module's window rule.

    Pure: no genome access. ``context`` must cover every variant's
    :func:`context_bounds`.

    Args:
        context: (S,) uint8 ASCII bases of genome[context_start, context_start + S),
            N-padded where it runs past the contig.
        context_start: 0-based genome position of ``context[0]`` (may be negative).
        pos0: (N,) int, 0-based variant positions.
        ref_len: (N,) int, REF lengths (>= 1).
        alts: N ALT alleles (ASCII bases).
        seq_len: L.
    Returns:
        codes_ref, codes_alt: (N, L) uint8 ASCII.
    """
    c = seq_len // 2
    n = len(pos0)
    pos0 = np.asarray(pos0, dtype=np.int64)
    ref_len = np.asarray(ref_len, dtype=np.int64)
    raw = [a.encode("ascii") if isinstance(a, str) else bytes(a) for a in alts]
    raw = [a[: seq_len - c] for a in raw]  # only the first L - c bases can fit
    alt_len = np.fromiter((len(a) for a in raw), dtype=np.int64, count=n)
    lo, hi = context_bounds(pos0, ref_len, alt_len, seq_len)
    if n and (lo.min() < context_start or hi.max() > context_start + len(context)):
        raise ValueError(
            f"context [{context_start}, {context_start + len(context)}) does not cover the "
            f"windows [{lo.min()}, {hi.max()}); fetch it with context_bounds()"
        )
    if n == 0:
        empty = np.zeros((0, seq_len), dtype=np.uint8)
        return empty, empty.copy()

    j = np.arange(seq_len, dtype=np.int64)[None, :]  # (1, L)
    ref_idx = (lo - context_start)[:, None] + j  # (N, L)
    codes_ref = context[ref_idx]  # (N, L)

    width = max(1, int(alt_len.max()))
    alt_mat = np.frombuffer(b"".join(a.ljust(width, b"N") for a in raw), dtype=np.uint8)
    alt_mat = alt_mat.reshape(n, width)  # (N, maxA)
    a = alt_len[:, None]  # (N, 1)
    in_alt = (j >= c) & (j < c + a)  # (N, L)
    alt_part = np.take_along_axis(alt_mat, np.clip(j - c, 0, width - 1).repeat(n, 0), axis=1)
    right_idx = (pos0 + ref_len - context_start)[:, None] + (j - c - a)  # (N, L)
    right_part = context[np.clip(right_idx, 0, len(context) - 1)]
    codes_alt = np.where(j < c, codes_ref, np.where(in_alt, alt_part, right_part))
    return codes_ref, codes_alt.astype(np.uint8, copy=False)


def codes_to_onehot(codes: np.ndarray) -> np.ndarray:
    """(N, L) uint8 ASCII -> (N, L, 4) uint8 one-hot (A, C, G, T; others all-zero)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, length = codes.shape
    return sequence.encode(codes.tobytes()).reshape(n, length, 4)


def variant_windows(
    genome: Genome,
    chrom: Sequence[str],
    pos0: Sequence[int] | np.ndarray,
    ref: Sequence[str],
    alt: Sequence[str],
    seq_len: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One-hot reference and alternative windows of a batch of variants.

    Implements the module's window rule. Variants are grouped by contig and
    sorted; each run of variants less than :data:`MAX_GAP` bp apart (and at most
    :data:`MAX_SPAN` bp in all) is served by one ``genome.fetch``.

    Args:
        genome: the reference; contig names are resolved through its aliases
            (``chr20`` finds ``20``); an unknown contig raises ``UnknownContigError``.
        chrom: N contig names.
        pos0: N 0-based positions (VCF POS - 1).
        ref: N REF alleles (only their lengths are used; check them against the
            genome beforehand with ``variants.check_ref``).
        alt: N ALT sequence alleles (A, C, G, T, N).
        seq_len: L, the model's input length.
    Returns:
        onehot_ref, onehot_alt: (N, L, 4) uint8.
    """
    n = len(chrom)
    pos0 = np.asarray(pos0, dtype=np.int64).reshape(n)
    ref_len = np.fromiter((len(r) for r in ref), dtype=np.int64, count=n)
    alt_len = np.fromiter((len(a) for a in alt), dtype=np.int64, count=n)
    lo, hi = context_bounds(pos0, ref_len, alt_len, seq_len)
    codes_ref = np.full((n, seq_len), _N, dtype=np.uint8)
    codes_alt = np.full((n, seq_len), _N, dtype=np.uint8)

    names = np.array([genome.resolve(ch) for ch in chrom], dtype=object)
    for name in dict.fromkeys(names):
        rows = np.flatnonzero(names == name)
        rows = rows[np.argsort(lo[rows], kind="stable")]
        for group in _clusters(lo[rows], hi[rows]):
            sel = rows[group]
            start, end = int(lo[sel].min()), int(hi[sel].max())
            context = np.frombuffer(genome.fetch(name, start, end).encode("ascii"), dtype=np.uint8)
            cr, ca = window_codes(
                context, start, pos0[sel], ref_len[sel], [alt[i] for i in sel], seq_len
            )
            codes_ref[sel], codes_alt[sel] = cr, ca
    return codes_to_onehot(codes_ref), codes_to_onehot(codes_alt)


def _clusters(lo: np.ndarray, hi: np.ndarray) -> list[slice]:
    """Runs of intervals (sorted by ``lo``) to fetch together: gaps < MAX_GAP, span <= MAX_SPAN."""
    groups: list[slice] = []
    first, run_lo, run_hi = 0, None, None
    for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
        if run_lo is not None and (a - run_hi >= MAX_GAP or max(run_hi, b) - run_lo > MAX_SPAN):
            groups.append(slice(first, i))
            first, run_lo, run_hi = i, None, None
        if run_lo is None:
            run_lo, run_hi = a, b
        else:
            run_hi = max(run_hi, b)
    if run_lo is not None:
        groups.append(slice(first, len(lo)))
    return groups
