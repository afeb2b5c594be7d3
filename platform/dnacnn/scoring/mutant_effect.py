"""The mutant-effect engine: logits of reference windows and of their mutants, sharing work.

A mutant window differs from its reference window in a few positions, so only
the receptive field of those positions changes through the conv tower (the idea
of fastISM, Nair et al. 2022). The engine runs each reference window through the
tower once, keeping every layer's map, then for each mutant recomputes only the
changed columns of each layer, as a *difference*: a conv is linear, so its new
output is the reference output plus the conv of the input change, which is
non-zero on the changed columns only (a transposed conv of that short slice);
the activation (ReLU or exponential) and max-pool are applied to the patched columns, and the dense head runs on
the patched, flattened tower output. Batch norm is folded into the weights
(:mod:`dnacnn.scoring.folded`). For Basset (600 bp) a single-base mutant costs
about 1/15 of a whole window.

- :class:`MutantEffect`, ``pair_logits(onehot_ref, onehot_alt, starts)``: one reference
  per pair (variant scoring). The changed span of each pair is found from the
  two windows; pairs whose windows differ over more than ``max_span`` positions
  (indels, whose alt window shifts the flank) run whole alt windows. Given where
  the reference windows start, those that overlap (variants a few bases apart, as
  in a dense VCF) share their conv tower (:mod:`dnacnn.scoring.shared_reference`).
- :func:`ism`: every single-base mutant of each window, against one shared
  reference computation: ``(N, L, 4, T)``.

Models that :func:`~dnacnn.scoring.folded.fold` cannot express (the multi-scale
model's attention pooling spans the whole window) run whole windows through
:func:`dnacnn.models.predict_logits`: the same numbers, no saving. A model wrapped
in :class:`~dnacnn.models.RCAverage` runs its inner model on both strands and
averages the logits, as the wrapper does.

Precision: "fp32" (deltas match the naive whole-window forward to float
rounding), or "bf16": the convs and the first dense layer in bfloat16 (weights
and inputs cast, as ``torch.autocast(dtype=bfloat16)`` does), the sums of
reference columns and changes, and the dense layers after the first, in float32;
a conv stage with an exponential activation stays float32 (as ``Basset.forward``
runs it at inference).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dnacnn.models import RCAverage, predict_logits, probabilities
from dnacnn.models.prediction import fp32_convolutions, model_device, onehot_to_x
from dnacnn.precision import check_precision
from dnacnn.scoring.folded import FoldedModel, fold
from dnacnn.scoring.shared_reference import reference_chunks, reverse_strand_starts, shared_tower, union_segments
from dnacnn.scoring.tower_map import TowerMap
from dnacnn.sequence import reverse_complement_onehot

#: Reference windows per tower pass on a CPU (their maps are kept: ~1.2 MB a Basset window
#: in float32) and on a GPU, where small passes leave it waiting on kernel launches.
REF_CHUNK = {"cpu": 128, "cuda": 2048}
#: Mutants per incremental pass, likewise.
MUTANT_CHUNK = {"cpu": 1024, "cuda": 8192}


class MutantEffect:
    """Logits of windows and their mutants, for one model.

    Args:
        model: a model of the family (eval mode), input (N, 4, L) float.
        precision: "fp32" or "bf16".
        device: where to run; default: where the model's weights are.
        max_span: pairs whose windows differ over a longer span than this (bp) run
            whole alt windows; default ``L // 4``.
        share_towers: whether reference windows given with their starts share their conv
            tower; default: on a CPU only, where it is measured (BENCHMARKS.md, dense variants).
    Attributes:
        incremental: whether mutants are recomputed in part (False: whole windows).
    """

    def __init__(
        self,
        model: nn.Module,
        precision: str = "fp32",
        device: torch.device | str | None = None,
        max_span: int | None = None,
        share_towers: bool | None = None,
    ) -> None:
        check_precision(precision)
        self.model = model.eval()
        self.precision = precision
        self.device = torch.device(device) if device is not None else model_device(model)
        self.share_towers = self.device.type == "cpu" if share_towers is None else share_towers
        self.ref_chunk = REF_CHUNK.get(self.device.type, REF_CHUNK["cpu"])
        self.mutant_chunk = MUTANT_CHUNK.get(self.device.type, MUTANT_CHUNK["cpu"])
        self.rc_average = isinstance(model, RCAverage)
        inner = model.model if self.rc_average else model
        folded = fold(inner)
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.folded: FoldedModel | None = None if folded is None else folded.to(self.device, self.dtype)
        # dense layers after the first run in float32 (cheap): bf16 rounding of the ref's and the
        # mutant's hidden units apart would swamp small differences between them
        self._dense_fp32 = None if folded is None else folded.to(self.device, torch.float32).dense
        self.incremental = self.folded is not None
        if self.incremental:
            # (C_in, w * C_out), taps reversed: row c, block j is W[:, c, w - 1 - j], the weight by
            # which an input column changes the conv output j columns to the right of its first one
            self._spread = [s.weight.flip(2).permute(1, 2, 0).reshape(s.weight.shape[1], -1).contiguous()
                            for s in self.folded.stages]
            self._weights_2d = [s.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
                                for s in self.folded.stages]  # (C_out, C_in, 1, w)
            first = self.folded.dense[0].weight  # (O, C * P), channel-major input
            channels = self.folded.stages[-1].weight.shape[0]
            # (P, C, O): the first dense layer's weights by tower position
            self._dense_by_position = first.reshape(first.shape[0], channels, -1).permute(2, 1, 0).contiguous()
        self.max_span = max_span

    # ---- public -------------------------------------------------------------------------

    @torch.inference_mode()
    def pair_logits(self, onehot_ref: np.ndarray, onehot_alt: np.ndarray,
                    starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits of N (ref, alt) window pairs.

        Args:
            onehot_ref, onehot_alt: (N, L, 4) uint8 (or 0/1) windows.
            starts: (N,) int, optional: where each reference window starts in one coordinate
                system (windows of different sequences far apart, e.g. a contig's index times
                2**40 plus the genome position): overlapping reference windows then share their
                conv tower (:mod:`dnacnn.scoring.shared_reference`; see ``share_towers``). The
                same numbers either way.
        Returns:
            (logits_ref, logits_alt): (N, T) float32 each.
        """
        onehot_ref, onehot_alt = np.asarray(onehot_ref), np.asarray(onehot_alt)
        if starts is not None:
            starts = np.asarray(starts, dtype=np.int64).reshape(len(onehot_ref))
        if not self.incremental:
            both = predict_logits(self.model, np.concatenate([onehot_ref, onehot_alt]),
                                  batch_size=2 * max(1, len(onehot_ref)), device=self.device,
                                  precision=self.precision)
            return both[: len(onehot_ref)], both[len(onehot_ref):]
        if self.rc_average:
            n = len(onehot_ref)
            ref = np.concatenate([onehot_ref, reverse_complement_onehot(onehot_ref)])
            alt = np.concatenate([onehot_alt, reverse_complement_onehot(onehot_alt)])
            logits_ref, logits_alt = self._pair_logits(ref, alt, reverse_strand_starts(starts, onehot_ref.shape[1]))
            return (logits_ref[:n] + logits_ref[n:]) / 2, (logits_alt[:n] + logits_alt[n:]) / 2
        return self._pair_logits(onehot_ref, onehot_alt, starts)

    # ---- incremental core ---------------------------------------------------------------

    def _pair_logits(self, onehot_ref: np.ndarray, onehot_alt: np.ndarray,
                     window_starts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        n, length = onehot_ref.shape[:2]
        max_span = self.max_span if self.max_span is not None else max(1, length // 4)
        changed = changed_positions(onehot_ref, onehot_alt)  # (N, L)
        any_change = changed.any(axis=1)
        lo = changed.argmax(axis=1)
        span = np.where(any_change, length - changed[:, ::-1].argmax(axis=1) - lo, 0)  # (N,)
        t = self.folded.dense[-1].weight.shape[0]
        logits_ref = np.empty((n, t), dtype=np.float32)
        logits_alt = np.empty((n, t), dtype=np.float32)
        share = window_starts if self.share_towers else None
        for chunk, shared in reference_chunks(share, n, length, self.ref_chunk):
            ref, alt = onehot_ref[chunk], onehot_alt[chunk]
            if shared:
                segments = union_segments(ref, window_starts[chunk])
                maps = shared_tower(self.folded.stages, self._weights_2d, segments, len(ref), length, self.device)
                logits = self._dense_first(maps, maps[-1].windows().transpose(1, 2).flatten(1))
            else:
                maps, logits = self._reference(onehot_to_x(ref, self.device))
            logits_ref[chunk] = logits
            logits_alt[chunk] = logits  # pairs without a change keep these
            whole = np.flatnonzero(span[chunk] > max_span)
            if len(whole):
                _, logits_whole = self._reference(onehot_to_x(alt[whole], self.device))
                logits_alt[chunk[whole]] = logits_whole
            for width in np.unique(span[chunk]):
                if width == 0 or width > max_span:
                    continue
                rows = np.flatnonzero(span[chunk] == width)
                starts = lo[chunk][rows]
                values = alt[rows[:, None], starts[:, None] + np.arange(width)]  # (B, d, 4)
                logits_alt[chunk[rows]] = self._mutants(maps, rows, starts, values)
        return logits_ref, logits_alt

    def _reference(self, x: torch.Tensor) -> tuple[list, np.ndarray]:
        """Tower maps and logits of windows x (N, 4, L).

        Returns:
            maps: per stage k its input (N, L_k, C_in) and pre-activation (N, Lc_k, C_out),
            then the tower output (N, P, C), each a :class:`TowerMap` (channels last, in
            the compute dtype: sums with them are made in float32), then the first dense
            layer's output before its ReLU, a tensor (N, O) float32.
            logits: (N, T) float32.
        """
        maps = []
        # convs as 2-D convs on channels-last (N, C, 1, L) tensors: the maps come out with
        # channels last, as the mutant pass reads them, without a transposing copy
        h = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (N, 4, 1, L)
        with fp32_convolutions(self.device):  # no TF32 on a GPU: see fp32_convolutions
            for stage, weight in zip(self.folded.stages, self._weights_2d):
                h = h.to(weight.dtype)  # each stage in its own dtype (exp stages: float32)
                maps.append(TowerMap.of_windows(_channels_last(h)))
                z = F.conv2d(h, weight, stage.bias)  # (N, C_out, 1, Lc)
                pre = _channels_last(z)  # (N, Lc, C_out)
                maps.append(TowerMap.of_windows(pre))
                if stage.pool > 1:  # a max over channels-last windows: no index map, no layout change
                    q = pre.shape[1] // stage.pool
                    # (N, Lc // pool, C_out)
                    pre = pre[:, :q * stage.pool].reshape(len(pre), q, stage.pool, -1).amax(dim=2)
                # after the pool: they commute, and the pooled map is smaller
                h = stage.activate(pre).permute(0, 2, 1).unsqueeze(2)  # (N, C_out, 1, Lc // pool), channels last
        maps.append(TowerMap.of_windows(_channels_last(h)))
        return maps, self._dense_first(maps, h.flatten(1))

    def _dense_first(self, maps: list, flat: torch.Tensor) -> np.ndarray:
        """The first dense layer on the channel-major tower output ``flat`` (N, C * P): its
        pre-ReLU output is appended to ``maps``; returns the (N, T) logits."""
        first = self.folded.dense[0]
        z = F.linear(flat.to(first.weight.dtype), first.weight, first.bias)  # (N, O)
        maps.append(z.float())
        return self._head(z)

    def _head(self, z: torch.Tensor) -> np.ndarray:
        """The first dense layer's output before its ReLU (B, O) -> (B, T) float32 logits."""
        h = z.float()
        for k, layer in enumerate(self._dense_fp32):
            if k:
                h = F.linear(h, layer.weight, layer.bias)
            if layer.relu:
                h = torch.relu(h)
        return h.float().cpu().numpy()

    def _mutants(self, maps: list, rows: np.ndarray, starts: np.ndarray,
                 values: np.ndarray) -> np.ndarray:
        """Logits of mutants of reference windows, ``mutant_chunk`` at a time.

        Args:
            maps: :meth:`_reference`'s maps of the reference windows.
            rows: (B,) int, the reference window of each mutant.
            starts: (B,) int, first changed position (bp) of each mutant.
            values: (B, d, 4) one-hot of positions ``starts .. starts + d - 1`` in the mutant.
        Returns:
            (B, T) float32 logits.
        """
        out = []
        for a in range(0, len(rows), self.mutant_chunk):
            b = min(len(rows), a + self.mutant_chunk)
            out.append(self._mutant_chunk(
                maps,
                torch.as_tensor(rows[a:b], dtype=torch.long, device=self.device),
                torch.as_tensor(starts[a:b], dtype=torch.long, device=self.device),
                torch.as_tensor(np.asarray(values[a:b], dtype=np.float32), device=self.device),
            ))
        return np.concatenate(out)

    def _mutant_chunk(self, maps, rows, start, new):
        # new (B, d, C_in): the mutant's changed input columns; start (B,): the first one's position
        b = len(rows)
        for k, stage in enumerate(self.folded.stages):
            ref_in, ref_pre = maps[2 * k], maps[2 * k + 1]  # TowerMaps: (R, L_k, C_in), (R, Lc, C_out)
            d, w, p = new.shape[1], stage.width, stage.pool
            c_out = ref_pre.data.shape[1]
            change = new - ref_in.columns(rows, start, d).float()  # (B, d, C_in)
            spread = (change.reshape(b * d, -1).to(self._spread[k].dtype) @ self._spread[k]).float()
            delta = _overlap_add(spread.reshape(b, d, w, c_out))  # (B, d + w - 1, C_out)
            pooled_len = ref_pre.length // p
            n_pooled = min(pooled_len, (d + w + p - 3) // p + 1)  # the most pools d + w - 1 columns touch
            first = start - (w - 1)  # (B,)
            q0 = torch.div(first, p, rounding_mode="floor").clamp(0, pooled_len - n_pooled)  # (B,)
            size = n_pooled * p
            region = ref_pre.columns(rows, q0 * p, size).float()  # (B, size, C_out): reference pre-activation
            at = (first - q0 * p)[:, None] + torch.arange(d + w - 1, device=rows.device)  # (B, d+w-1)
            inside = (at >= 0) & (at < size)
            region = region.scatter_add(
                1, at.clamp(0, size - 1)[:, :, None].expand(-1, -1, c_out), delta * inside[:, :, None]
            )
            if p > 1:
                region = region.reshape(b, n_pooled, p, c_out).amax(dim=2)  # (B, n_pooled, C_out)
            new, start = stage.activate(region), q0
        # the first dense layer changes by its weights at the changed tower columns
        tower, first = maps[-2], maps[-1]  # TowerMap (R, P, C), tensor (R, O)
        width = new.shape[1]
        change = (new - tower.columns(rows, start, width).float()).reshape(b, -1).to(self.dtype)  # (B, D * C)
        z = first[rows]  # (B, O)
        for s in torch.unique(start).tolist():
            sel = torch.nonzero(start == s).squeeze(1)
            weight = self._dense_by_position[s:s + width].reshape(change.shape[1], -1)  # (D * C, O)
            z[sel] += (change[sel] @ weight).float()
        return self._head(z)


def changed_positions(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, L) bool: where windows ``a`` and ``b`` (N, L, 4) differ. uint8 windows compare a
    position's 4 bytes as one word (30x faster than ``(a != b).any(axis=2)``, the largest
    part of a GPU call's host time before: BENCHMARKS.md, "On a GPU")."""
    if a.dtype == b.dtype == np.uint8 and a.shape[-1] == 4:
        words = [np.ascontiguousarray(x).view(np.uint32)[..., 0] for x in (a, b)]
        return words[0] != words[1]
    return (a != b).any(axis=2)


def _overlap_add(parts: torch.Tensor) -> torch.Tensor:
    """Sum of shifted blocks: input column t changes conv outputs t .. t + w - 1.

    Args:
        parts: (B, d, w, C); ``parts[:, t, j]`` is input column t's change to output column t + j.
    Returns:
        (B, d + w - 1, C): each output column's change, summed over the input columns.
    """
    b, d, w, c = parts.shape
    if d == 1:
        return parts[:, 0]
    out = parts.new_zeros(b, d + w - 1, c)
    if d <= w:  # as many slice additions as the shorter of the two: a few, not a col2im
        for t in range(d):
            out[:, t:t + w] += parts[:, t]
    else:
        for j in range(w):
            out[:, j:j + d] += parts[:, :, j]
    return out


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, L) channels-last -> (N, L, C), a view."""
    return t.permute(0, 2, 3, 1).flatten(1, 2)


@torch.inference_mode()
def ism(
    model: nn.Module,
    onehot: np.ndarray,
    task_type: str | None = None,
    diff: bool = False,
    precision: str = "fp32",
    device: torch.device | str | None = None,
) -> np.ndarray:
    """In-silico saturation mutagenesis: the output of every single-base mutant of each window.

    Args:
        model: a model of the family, input (N, 4, L) float.
        onehot: (N, L, 4) uint8 windows.
        task_type: None for logits; else probabilities by this task type
            (:func:`dnacnn.models.probabilities`).
        diff: subtract the unmutated window's output (0 at each window's own base).
        precision, device: as :class:`MutantEffect`.
    Returns:
        (N, L, 4, T) float32: ``[n, i, b]`` is window n with position i set to base b
        (A, C, G, T); where b is the window's own base, the window itself.
    """
    onehot = np.asarray(onehot)
    engine = MutantEffect(model, precision=precision, device=device)
    if engine.rc_average:  # mutant (i, b) of the reverse strand is (L-1-i, 3-b) of the forward one
        inner = MutantEffect(model.model, precision=precision, device=device)
        ref_fwd, out_fwd = _ism_logits(inner, onehot)
        ref_rev, out_rev = _ism_logits(inner, onehot[:, ::-1, ::-1])
        logits_ref, out = (ref_fwd + ref_rev) / 2, (out_fwd + out_rev[:, ::-1, ::-1]) / 2
    else:
        logits_ref, out = _ism_logits(engine, onehot)
    if task_type is not None:
        out = probabilities(task_type, out).astype(np.float32)
        logits_ref = probabilities(task_type, logits_ref).astype(np.float32)
    if diff:
        out = out - logits_ref[:, None, None, :]
    return out


def _ism_logits(engine: MutantEffect, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits of the N windows (N, T), logits of every single-base mutant (N, L, 4, T))."""
    n, length = onehot.shape[:2]
    windows, positions, bases = np.nonzero(onehot == 0)  # every mutant: (M,) each
    base_rows = np.eye(4, dtype=np.uint8)
    if engine.incremental:
        parts_ref, parts_alt = [], []
        for a in range(0, n, engine.ref_chunk):
            b = min(n, a + engine.ref_chunk)
            maps, logits = engine._reference(onehot_to_x(onehot[a:b], engine.device))
            parts_ref.append(logits)
            sel = np.flatnonzero((windows >= a) & (windows < b))
            if len(sel):
                values = base_rows[bases[sel]][:, None, :]  # (M, 1, 4)
                parts_alt.append(engine._mutants(maps, windows[sel] - a, positions[sel], values))
        logits_ref = np.concatenate(parts_ref)
        logits_alt = np.concatenate(parts_alt) if parts_alt else np.zeros((0, logits_ref.shape[1]), np.float32)
    else:  # whole mutant windows
        logits_ref = predict_logits(engine.model, onehot, device=engine.device, precision=engine.precision)
        logits_alt = np.empty((len(windows), logits_ref.shape[1]), dtype=np.float32)
        for a in range(0, len(windows), engine.mutant_chunk):
            b = min(len(windows), a + engine.mutant_chunk)
            mutants = onehot[windows[a:b]].copy()  # (B, L, 4)
            mutants[np.arange(b - a), positions[a:b]] = base_rows[bases[a:b]]
            logits_alt[a:b] = predict_logits(engine.model, mutants, batch_size=b - a, device=engine.device,
                                             precision=engine.precision)
    out = np.repeat(np.repeat(logits_ref[:, None, None, :], length, axis=1), 4, axis=2)  # (N, L, 4, T)
    out[windows, positions, bases] = logits_alt
    return logits_ref, out
