"""Matching motifs against a database with TomTom (``memelite.tomtom``).

TomTom's p-value of a query against a target is for the best alignment (offset
and strand) of the two; the q-value here is the Benjamini-Hochberg estimate over
the query's p-values against every target, as MEME's tomtom reports it.

TomTom scores columns by Euclidean distance, so two flat (uninformative) columns
match perfectly: a filter with flat columns aligned to the flat flanks of a long
matrix (the extended CTCF matrices MA1929.2 and MA1930.2 are 31 and 33 columns
with near-zero information between their two modules) gets a significant p-value
without sharing the matrix's motif. An untrained model's filters on random
sequence do exactly that. So each match also reports how much of each motif's
information content the alignment covers, and a factor counts as recovered only
when the alignment covers at least half of the information of both the filter
and the matched matrix, and the matrix's aligned columns are at least as
informative as its columns on average (its core, not its flanks).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnacnn.data.motifs import Motif, split_matrix_id

log = logging.getLogger(__name__)

MATCH_COLUMNS = ["query", "match_id", "match_name", "p_value", "q_value", "strand", "offset", "overlap",
                 "query_coverage", "match_coverage", "match_length_share"]


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """(..., M) p-values -> (..., M) q-values, Benjamini-Hochberg along the last axis."""
    p = np.asarray(p, dtype=np.float64)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1].clip(max=1.0)
    q = np.empty_like(ranked)
    np.put_along_axis(q, order, ranked, axis=-1)
    return q


def information_coverage(query: Motif, target: Motif, strand: str, offset: int) -> tuple[float, float]:
    """The share of each motif's information content within an alignment of the two.

    Args:
        query, target: the aligned motifs; strand: "+" or "-" (the target reverse-complemented);
            offset: TomTom's offset: query column i faces column i + offset of the
            (strand-oriented) target.
    Returns:
        (query share, target share), each in [0, 1]: bits of the aligned columns over all
        the motif's bits (0 for a motif without information).
    """
    q_ic = query.information_content()  # (Wq,)
    t_ic = target.information_content()[:: 1 if strand == "+" else -1]  # (Wt,), oriented
    lo, hi = max(0, offset), min(len(t_ic), offset + len(q_ic))  # aligned target columns
    if hi <= lo:
        return 0.0, 0.0
    shares = [ic[a:b].sum() / ic.sum() if ic.sum() > 0 else 0.0
              for ic, a, b in ((q_ic, lo - offset, hi - offset), (t_ic, lo, hi))]
    return float(shares[0]), float(shares[1])


@dataclass(frozen=True)
class TomtomResult:
    """TomTom of Q queries against M targets: every (query, target) pair's p-value,
    Benjamini-Hochberg q-value (per query, over the M targets), offset, overlap and
    strand (0: "+"), each (Q, M)."""

    queries: tuple[Motif, ...]
    targets: tuple[Motif, ...]
    p: np.ndarray
    q: np.ndarray
    offsets: np.ndarray
    overlaps: np.ndarray
    strands: np.ndarray

    def best(self) -> pd.DataFrame:
        """One row per query, its best (lowest p) target: :data:`MATCH_COLUMNS`."""
        return self._rows(np.arange(len(self.queries)), np.where(np.isnan(self.p), np.inf, self.p).argmin(axis=1))

    def to(self, target_ids: Sequence[str]) -> pd.DataFrame:
        """One row per (query, target) for the targets with these matrix IDs (any version:
        ``MA0466`` or ``MA0466.4``), best or not: :data:`MATCH_COLUMNS`."""
        wanted = {split_matrix_id(t)[0] for t in target_ids}
        cols = [j for j, t in enumerate(self.targets) if split_matrix_id(t.id)[0] in wanted]
        rows, cols = np.meshgrid(np.arange(len(self.queries)), np.asarray(cols, dtype=int), indexing="ij")
        return self._rows(rows.ravel(), cols.ravel())

    def _rows(self, rows: np.ndarray, cols: np.ndarray) -> pd.DataFrame:
        if len(rows) == 0:
            return pd.DataFrame(columns=MATCH_COLUMNS)
        targets = [self.targets[j] for j in cols]
        offsets, overlaps = self.offsets[rows, cols], self.overlaps[rows, cols]
        # memelite leaves a pair no alignment (NaN) where every offset scores alike (a uniform
        # target, say): no offset (NA), no overlap, no coverage; not a cast NaN (-2^63)
        aligned = np.isfinite(offsets) & np.isfinite(overlaps)
        table = pd.DataFrame({
            "query": [self.queries[i].id for i in rows],
            "match_id": [t.id for t in targets],
            "match_name": [t.name for t in targets],
            "p_value": self.p[rows, cols],
            "q_value": self.q[rows, cols],
            "strand": np.where(self.strands[rows, cols] == 0, "+", "-"),
            "offset": pd.array(np.where(aligned, offsets, 0).astype(int), dtype="Int64"),
            "overlap": np.where(aligned, overlaps, 0).astype(int),
        })
        table.loc[~aligned, "offset"] = pd.NA
        coverage = [information_coverage(self.queries[i], t, strand, int(offset)) if ok else (0.0, 0.0)
                    for i, t, strand, offset, ok in zip(rows, targets, table["strand"], table["offset"], aligned)]
        table["query_coverage"] = [c[0] for c in coverage]
        table["match_coverage"] = [c[1] for c in coverage]
        table["match_length_share"] = table["overlap"] / np.array([t.width for t in targets])
        return table


def run_tomtom(queries: Sequence[Motif], targets: Sequence[Motif]) -> TomtomResult:
    """TomTom (memelite) of every query against every target.

    Args:
        queries: Q motifs (e.g. filter PFMs); targets: the database (e.g.
            :func:`dnacnn.data.motifs.jaspar_collection`), at least 25 for stable p-values.
    """
    from memelite import tomtom

    if not queries:
        empty = np.zeros((0, len(targets)))
        return TomtomResult(tuple(queries), tuple(targets), empty, empty, empty, empty, empty)
    with warnings.catch_warnings(record=True) as said:  # memelite's few-targets warning: one line of ours
        warnings.simplefilter("always", UserWarning)
        p, _scores, offsets, overlaps, strands = tomtom(
            [m.probs.T for m in queries], [t.probs.T for t in targets], n_jobs=1)  # each (Q, M)
    if any("target motifs" in str(w.message) for w in said):
        log.warning("TomTom against %d motif(s) only: its p-values take the targets' columns as the background, "
                    "so with few targets they depend on which are given (a whole database, such as JASPAR's, "
                    "gives reliable ones)", len(targets))
    return TomtomResult(tuple(queries), tuple(targets), p, benjamini_hochberg(p), offsets, overlaps, strands)


def tomtom_best_matches(queries: Sequence[Motif], targets: Sequence[Motif]) -> pd.DataFrame:
    """The best TomTom match of each query among ``targets``.

    Returns:
        one row per query, columns :data:`MATCH_COLUMNS`: the target with the lowest
        p-value, its p and q value, strand ("+" or "-": the target's strand aligned to
        the query), offset (TomTom's offset: query column i faces target column i + offset,
        the target reverse-complemented for "-"), overlap (columns), and query_coverage /
        match_coverage: the share of the query's / the match's information content
        within the alignment (:func:`information_coverage`), and match_length_share:
        overlap / the match's width (what match_coverage would be were its columns
        equally informative).
    """
    return run_tomtom(queries, targets).best()


def significant_matches(matches: pd.DataFrame, q_max: float = 0.05,
                        min_coverage: float | None = 0.5) -> pd.DataFrame:
    """The rows of ``matches`` with q < ``q_max`` whose alignment covers at least
    ``min_coverage`` of the information content of both motifs, and at least the match's
    length share of its information (see the module docstring: a flat filter aligned with
    a long matrix gets a tiny q from flat columns alone). ``min_coverage=None``: q alone."""
    hits = matches[matches["q_value"] < q_max]
    if min_coverage is not None:
        hits = hits[(hits["query_coverage"] >= min_coverage) & (hits["match_coverage"] >= min_coverage)
                    & (hits["match_coverage"] >= hits["match_length_share"])]
    return hits


def recovered_factors(
    matches: pd.DataFrame, implanted: Sequence[Motif], q_max: float = 0.05,
    min_coverage: float | None = 0.5,
) -> dict[str, list[str]]:
    """Implanted factors that are a match (q < ``q_max``) of at least one query.

    Given best matches (:func:`tomtom_best_matches`), a factor counts when it is a
    query's best match ("recovered"); given every query's matches to the implanted
    matrices (:meth:`TomtomResult.to`), when it is a significant match of a query,
    best or not ("matched": a look-alike of the same family, such as CEBPE for an
    implanted CEBPB, may match the query a little better).

    A match recovers an implanted matrix when it is that matrix (any version)
    or another matrix of the same factor (name, case-insensitive: JASPAR has
    several CTCF matrices), and its alignment covers at least ``min_coverage`` of
    the information content of both the query and the match, and at least the
    match's length share of its information (see the module docstring: otherwise
    flat columns matching flat flanks would count). ``min_coverage=None``: the
    best match and its q-value alone decide.

    Args:
        matches: :func:`tomtom_best_matches` or :meth:`TomtomResult.to` rows.
        implanted: the implanted matrices.
    Returns:
        implanted id -> the queries (filters) recovering it ([] when none).
    """
    found: dict[str, list[str]] = {m.id: [] for m in implanted}
    hits = significant_matches(matches, q_max, min_coverage)
    for query, match_id, match_name in zip(hits["query"], hits["match_id"], hits["match_name"]):
        for m in implanted:
            if split_matrix_id(m.id)[0] == split_matrix_id(match_id)[0] or m.name.upper() == match_name.upper():
                found[m.id].append(query)
    return found
