"""Reference windows that overlap share their conv tower: each stage runs once over their union.

Variants close together (a dense VCF: 1000 Genomes or gnomAD have a site every 10 to
50 bp) have reference windows cut from one stretch of the genome, shifted by a few
bases. A valid conv is shift-equivariant, so the conv output of a window is a slice
of the conv output of the windows' union: the first stage runs once over the union.
A max-pool of window p keeps this only between windows whose offsets agree modulo p,
so after each pool the windows split by that phase, and each phase's windows share
the next stage over their own union (with Basset's pools 3, 4, 4 the second conv,
nine tenths of the tower's work, is shared among the windows of each of 3 phases).
Windows that overlap nothing are computed as a batch, as whole windows are.

The maps come out as :class:`~dnacnn.scoring.tower_map.TowerMap` objects, as
:meth:`MutantEffect._reference` keeps them for the mutant pass: the unions' maps end to
end, each window a slice of its union's (no copy per window), holding the same numbers as
whole windows' maps: the same convs over the same columns.
:func:`reference_chunks` decides which windows of a batch share (dense runs) and
which run whole.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dnacnn.scoring.folded import ConvStage
from dnacnn.scoring.tower_map import TowerMap

#: A segment: its input map (len, C) channels last, and its windows' (index, offset) rows.
Segment = tuple[torch.Tensor, np.ndarray, np.ndarray]

#: Share a stage's conv among windows whose union is at most this share of their summed
#: lengths; above, the windows run alone (a long conv of little overlap costs more than it saves).
SHARE_BELOW = 0.8
#: Reference windows share their tower (``starts`` given) in runs of at least SHARE_RUN
#: windows each starting within SHARE_SPACING of L (300 bp for 600 bp) of the one before.
SHARE_SPACING = 1 / 2
SHARE_RUN = 8


def reference_chunks(starts: np.ndarray | None, n: int, length: int, chunk: int) -> list[tuple[np.ndarray, bool]]:
    """The reference windows' order of work: chunks of at most ``chunk`` row indices, and
    whether each shares its tower.

    Windows in runs of at least :data:`SHARE_RUN`, each starting within :data:`SHARE_SPACING`
    of L of the one before (by ``starts``), share, in start order; the rest, and all windows
    without ``starts``, run as whole windows in their own order (sparser or fewer, a shared
    tower's small convs and bookkeeping cost more than it saves; the thresholds are measured:
    BENCHMARKS.md, dense variants).
    """
    rows = np.arange(n) if starts is None else np.argsort(starts, kind="stable")
    dense = np.zeros(n, dtype=bool)  # by position in `rows`
    if starts is not None and n > 1:
        far = np.flatnonzero(np.diff(starts[rows]) > max(1, int(SHARE_SPACING * length))) + 1
        for run in np.split(np.arange(n), far):  # runs of near windows; only long ones pay
            dense[run] = len(run) >= SHARE_RUN
    return [(part[a:a + chunk], shared) for shared, part in ((True, rows[dense]), (False, np.sort(rows[~dense])))
            for a in range(0, len(part), chunk)]


def reverse_strand_starts(starts: np.ndarray | None, length: int) -> np.ndarray | None:
    """Starts of windows and then of their reverse complements, in one coordinate system:
    the reverse strand of a window at ``s`` starts at ``-(s + L)`` (position x is -x - 1
    there), so overlapping windows overlap on the reverse strand too. Forward starts must be
    positive (a contig's index + 1 times 2**40, say) to keep the strands apart."""
    return None if starts is None else np.concatenate([starts, -(starts + length)])


def union_segments(onehot: np.ndarray, starts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Runs of windows that overlap or touch, each as its union sequence.

    Args:
        onehot: (N, L, 4) windows.
        starts: (N,) int, where each window starts in one coordinate system (windows of
            one sequence overlap where their starts are less than L apart; the caller
            keeps windows of different sequences far apart).
    Returns:
        per run: (union (U, 4), window indices (n,), offsets of the windows in the union (n,)).
        A window whose bases differ from its run's where they overlap (it was not cut
        from the same sequence) is a run of its own.
    """
    n, length = onehot.shape[:2]
    segments: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    union = np.zeros((0, onehot.shape[2]), dtype=onehot.dtype)
    rows: list[int] = []
    offsets: list[int] = []
    u0 = end = 0

    def close() -> None:
        if rows:
            segments.append((union[:end].copy(), np.array(rows), np.array(offsets, dtype=np.int64)))

    for i in np.argsort(starts, kind="stable").tolist():
        off = int(starts[i]) - u0
        if rows and off <= end:
            seen = min(end - off, length)  # bases of the run this window overlaps
            if not np.array_equal(union[off:off + seen], onehot[i, :seen]):
                segments.append((onehot[i], np.array([i]), np.zeros(1, dtype=np.int64)))
                continue
            if off + length > len(union):  # grow by doubling: linear in the run's length
                union = np.concatenate([union, np.zeros_like(union, shape=(max(len(union), length), union.shape[1]))])
            union[end:off + length] = onehot[i, seen:]
            end = max(end, off + length)
        else:
            close()
            union, rows, offsets, u0, end = onehot[i].copy(), [], [], int(starts[i]), length
            off = 0
        rows.append(i)
        offsets.append(off)
    close()
    return segments


def shared_tower(stages: tuple[ConvStage, ...], weights_2d: list[torch.Tensor],
                 segments: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int, length: int,
                 device: torch.device) -> list[TowerMap]:
    """Tower maps of N windows given as union segments (:func:`union_segments`).

    Args:
        stages, weights_2d: the folded tower and its conv weights (C_out, C_in, 1, w).
        n, length: N windows of L bases.
    Returns:
        per stage k its input (N, L_k, C_in) and pre-activation (N, Lc_k, C_out), then the
        tower output (N, P, C): :class:`TowerMap` objects, channels last, in each stage's dtype.
    """
    segs: list[Segment] = [
        (torch.as_tensor(np.asarray(u, dtype=np.float32), device=device), rows, offs) for u, rows, offs in segments
    ]
    maps: list[TowerMap] = []
    for stage, weight in zip(stages, weights_2d):
        segs = [part for h, rows, offs in segs for part in _worth_sharing((h.to(weight.dtype), rows, offs), length)]
        maps.append(_as_map(segs, n, length))
        length = length - stage.width + 1
        pre, segs = _conv(segs, weight, stage, length)
        maps.append(_as_map(pre, n, length))
        length //= stage.pool
    maps.append(_as_map(segs, n, length))
    return maps


def _worth_sharing(seg: Segment, length: int) -> list[Segment]:
    """The segment, or, when its windows overlap too little for a shared conv to pay
    (its map longer than :data:`SHARE_BELOW` of their summed lengths), each window alone
    (windows alone are convolved as one batch)."""
    h, rows, offs = seg
    if len(rows) == 1 or h.shape[0] <= SHARE_BELOW * len(rows) * length:
        return [seg]
    zero = np.zeros(1, dtype=np.int64)
    return [(h[off:off + length], rows[k:k + 1], zero) for k, off in enumerate(offs.tolist())]


def _conv(segs: list[Segment], weight: torch.Tensor, stage: ConvStage,
          window_len: int) -> tuple[list[Segment], list[Segment]]:
    """Each segment's valid conv (its pre-activation), and that max-pooled and activated
    by phase (:func:`_pool_by_phase`). Segments of one length run as one batch; a batch of
    windows alone (all at offset 0: windows :func:`_worth_sharing` split) pools as one.

    Args:
        window_len: Lc, each window's conv output length.
    Returns:
        (pre-activation segments, in ``segs``' order; pooled segments).
    """
    by_length: dict[int, list[int]] = {}
    for k, (h, _, _) in enumerate(segs):
        by_length.setdefault(h.shape[0], []).append(k)
    pre: list[Segment] = list(segs)
    pooled: list[Segment] = []
    for ks in by_length.values():
        x = torch.stack([segs[k][0] for k in ks])  # (B, len, C_in)
        x = x.permute(0, 2, 1).unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C_in, 1, len)
        z = F.conv2d(x, weight, stage.bias).permute(0, 2, 3, 1).flatten(1, 2)  # (B, len - w + 1, C_out)
        for j, k in enumerate(ks):
            pre[k] = (z[j], segs[k][1], segs[k][2])
        if z.shape[1] == window_len and not any(segs[k][2].any() for k in ks):
            q, p = window_len // stage.pool, stage.pool
            act = stage.activate(z[:, :q * p].reshape(len(ks), q, p, -1).amax(dim=2) if p > 1 else z)
            pooled += [(act[j], segs[k][1], segs[k][2]) for j, k in enumerate(ks)]
        else:
            pooled += [part for k in ks for part in _pool_by_phase(pre[k], stage, window_len)]
    return pre, pooled


def _pool_by_phase(seg: Segment, stage: ConvStage, window_len: int) -> list[Segment]:
    """A segment's pre-activation max-pooled and activated, one segment per phase of its
    windows' offsets (windows whose offsets agree modulo the pool share pooled columns).

    Args:
        window_len: Lc, each window's conv output length; a window pools its first
            ``Lc // pool * pool`` columns.
    """
    z, rows, offs = seg
    p = stage.pool
    if p == 1:
        return [(stage.activate(z), rows, offs)]
    out = []
    for phase in np.unique(offs % p):
        sel = offs % p == phase
        m = (offs[sel] - phase) // p  # each window's first pooled column in the phase's grid
        lo, hi = int(m.min()), int(m.max()) + window_len // p
        cols = z[phase + p * lo: phase + p * hi]  # (p * (hi - lo), C)
        pooled = cols.reshape(hi - lo, p, -1).amax(dim=1)
        out.append((stage.activate(pooled), rows[sel], m - lo))
    return out


def _as_map(segs: list[Segment], n: int, length: int) -> TowerMap:
    """The N windows' map: the segments' maps end to end (one copy of the unions, not
    one per window), each window at its segment's row plus its offset there."""
    data = torch.cat([h for h, _, _ in segs]) if len(segs) > 1 else segs[0][0]
    base = np.empty(n, dtype=np.int64)
    row = 0
    for h, rows, offs in segs:
        base[rows] = row + offs
        row += h.shape[0]
    return TowerMap(data, torch.as_tensor(base, device=data.device), length)
