"""Variants with known effects for the simulated accessibility task (pure functions).

On the genome with the motif instances written in (see
:mod:`dnacnn.data.simulate_accessibility`): ``n_breaking`` variants substitute the
``break_bases`` most informative bases of an instance with their least likely base
under the matrix (one SNV/MNV record per instance, only instances whose loss changes
at least one cell type's label), and ``n_neutral`` SNVs lie at least
``neutral_min_distance`` bp from every instance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dnacnn.data.motifs import Motif

if TYPE_CHECKING:
    from dnacnn.data.simulate_accessibility import AccessibilityConfig

log = logging.getLogger(__name__)

_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


def breaking_substitutions(
    motif: Motif, strand: str, sequence_plus: str, n_bases: int
) -> list[tuple[int, str, str]]:
    """The ``n_bases`` most informative positions of an instance and their breaking bases.

    Args:
        sequence_plus: the instance as it reads on the genome's + strand.
    Returns:
        (offset in the instance on the + strand, ref base, alt base), by offset;
        alt is the least likely base of the matrix there (on the motif's strand).
    """
    ic = motif.information_content()
    order = np.argsort(-ic, kind="stable")[:n_bases]
    subs = []
    for j in order:
        worst = "ACGT"[int(np.argmin(motif.probs[j]))]
        if strand == "+":
            offset, alt = int(j), worst
        else:
            offset, alt = motif.width - 1 - int(j), _COMPLEMENT[worst]
        ref = sequence_plus[offset]
        if alt == ref:  # a sampled base can be the least likely one: take another
            alt = next(b for b in "ACGT" if b != ref)
        subs.append((offset, ref, alt))
    return sorted(subs)


def plan_variants(
    windows: pd.DataFrame,
    instances: pd.DataFrame,
    motifs: dict[str, Motif],
    tasks: Sequence[str],
    cell_factors: dict[str, list[str]],
    genome_seq: dict[str, bytearray],
    config: AccessibilityConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Breaking and neutral variants on the modified genome, with their expected effects."""
    cells_of = {f: {t for t in tasks if f in cell_factors[t]} for f in motifs}
    rows = []
    # breaking: instances whose loss changes at least one label
    in_window: dict[int, list[tuple[int, str]]] = {}
    for i, w, f in zip(instances.index, instances["window"], instances["factor"]):
        in_window.setdefault(int(w), []).append((int(i), f))
    order = {t: k for k, t in enumerate(tasks)}
    candidates = []
    for i, w, f in zip(instances.index, instances["window"], instances["factor"]):
        kept = set().union(*(cells_of[g] for j, g in in_window[int(w)] if j != i))
        affected = sorted(cells_of[f] - kept, key=order.__getitem__)
        if affected:
            candidates.append((int(i), affected))
    if len(candidates) < config.n_breaking:
        log.warning("only %d instances can be broken with an effect (asked for %d)",
                    len(candidates), config.n_breaking)
    chosen = rng.permutation(len(candidates))[: config.n_breaking]
    for c in sorted(chosen):
        i, affected = candidates[c]
        inst = instances.loc[i]
        win = windows.loc[inst["window"]]
        subs = breaking_substitutions(motifs[inst["factor"]], inst["strand"], inst["sequence"],
                                      config.break_bases)
        first, last = subs[0][0], subs[-1][0]
        g0 = int(win["start"]) + int(inst["offset"])  # genome position of the instance
        ref = genome_seq[win["chrom"]][g0 + first : g0 + last + 1].decode()
        alt = list(ref)
        # ``ref`` is read from the genome that holds the instance, so ref[offset - first]
        # is each substitution's ref base (tests check the instances in the genome)
        for offset, _, base_alt in subs:
            alt[offset - first] = base_alt
        rows.append(dict(chrom=win["chrom"], pos=g0 + first + 1, ref=ref, alt="".join(alt),
                         breaks_motif=1, motif=inst["factor"], motif_id=inst["motif_id"],
                         instance=int(i), window=int(inst["window"]), split=win["split"],
                         distance=0, affected_cell_types=",".join(affected),
                         n_affected=len(affected)))
    # neutral: SNVs far from every instance, inside sampled windows
    spans: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    genomic = instances.assign(
        chrom=windows["chrom"].to_numpy()[instances["window"]],
        gstart=windows["start"].to_numpy()[instances["window"]] + instances["offset"].to_numpy(),
    )
    genomic["gend"] = genomic["gstart"] + genomic["sequence"].str.len()
    for chrom, part in genomic.groupby("chrom"):
        part = part.sort_values("gstart")
        spans[chrom] = (part["gstart"].to_numpy(), part["gend"].to_numpy())
    used = {(r["chrom"], r["pos"]) for r in rows}
    n_neutral = 0
    for _ in range(100 * config.n_neutral + 1000):
        if n_neutral >= config.n_neutral:
            break
        w = int(rng.integers(len(windows)))
        chrom, wstart = windows.at[w, "chrom"], int(windows.at[w, "start"])
        p = wstart + int(rng.integers(0, config.length))  # 0-based
        starts, ends = spans.get(chrom, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        distance = _distance(p, starts, ends)
        if distance < config.neutral_min_distance or (chrom, p + 1) in used:
            continue
        ref = chr(genome_seq[chrom][p])
        if ref not in _COMPLEMENT:
            continue
        alt = "ACGT"[(("ACGT".index(ref)) + int(rng.integers(1, 4))) % 4]
        used.add((chrom, p + 1))
        n_neutral += 1
        rows.append(dict(chrom=chrom, pos=p + 1, ref=ref, alt=alt, breaks_motif=0, motif="",
                         motif_id="", instance=-1, window=w, split=windows.at[w, "split"],
                         distance=int(min(distance, 10**9)), affected_cell_types="", n_affected=0))
    contig_order = {c: k for k, c in enumerate(genome_seq)}
    variants = pd.DataFrame(rows)
    if len(variants):  # ids in genome order, so that an id says nothing about the kind
        variants = variants.sort_values(["chrom", "pos"], key=lambda col: col.map(
            contig_order) if col.name == "chrom" else col).reset_index(drop=True)
    variants.insert(0, "id", [f"sim{i:06d}" for i in range(len(variants))])
    return variants


def _distance(p: int, starts: np.ndarray, ends: np.ndarray) -> int:
    """bp from position ``p`` to the nearest interval (0 inside one); large if none."""
    if len(starts) == 0:
        return 1 << 40
    i = int(np.searchsorted(starts, p, side="right"))
    best = 1 << 40
    for j in (i - 1, i):
        if 0 <= j < len(starts):
            if starts[j] <= p < ends[j]:
                return 0
            best = min(best, starts[j] - p if p < starts[j] else p - ends[j] + 1)
    # an earlier, longer interval may still be closer; intervals here do not nest, so
    # the neighbours suffice
    return int(best)


__all__ = ["breaking_substitutions", "plan_variants"]
