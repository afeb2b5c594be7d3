"""Matching motifs against a database with TomTom (``memelite.tomtom``).

TomTom's p-value of a query against a target is for the best alignment (offset
and strand) of the two; the q-value here is the Benjamini-Hochberg estimate over
the query's p-values against every target, as MEME's tomtom reports it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dnacnn.data.motifs import Motif

MATCH_COLUMNS = ["query", "match_id", "match_name", "p_value", "q_value", "strand", "offset", "overlap"]


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


def tomtom_best_matches(queries: Sequence[Motif], targets: Sequence[Motif]) -> pd.DataFrame:
    """The best TomTom match of each query among ``targets``.

    Args:
        queries: Q motifs (e.g. filter PFMs); targets: the database (e.g.
            :func:`dnacnn.data.motifs.jaspar_collection`), at least 25 for stable p-values.
    Returns:
        one row per query, columns :data:`MATCH_COLUMNS`: the target with the lowest
        p-value, its p and q value, strand ("+" or "-": the target's strand aligned to
        the query), offset (TomTom's offset of the alignment) and overlap (columns).
    """
    from memelite import tomtom

    if not queries:
        return pd.DataFrame(columns=MATCH_COLUMNS)
    p, _scores, offsets, overlaps, strands = tomtom(
        [m.probs.T for m in queries], [t.probs.T for t in targets], n_jobs=1)  # each (Q, M)
    q = benjamini_hochberg(p)
    best = p.argmin(axis=1)
    rows = np.arange(len(queries))
    return pd.DataFrame({
        "query": [m.id for m in queries],
        "match_id": [targets[j].id for j in best],
        "match_name": [targets[j].name for j in best],
        "p_value": p[rows, best],
        "q_value": q[rows, best],
        "strand": np.where(strands[rows, best] == 0, "+", "-"),
        "offset": offsets[rows, best].astype(int),
        "overlap": overlaps[rows, best].astype(int),
    })


def recovered_factors(
    matches: pd.DataFrame, implanted: Sequence[Motif], q_max: float = 0.05
) -> dict[str, list[str]]:
    """Implanted factors that are the best match (q < ``q_max``) of at least one query.

    A best match recovers an implanted matrix when it is that matrix (any version)
    or another matrix of the same factor (name, case-insensitive: JASPAR has
    several CTCF matrices).

    Args:
        matches: :func:`tomtom_best_matches` rows.
        implanted: the implanted matrices.
    Returns:
        implanted id -> the queries (filters) recovering it ([] when none).
    """
    found: dict[str, list[str]] = {m.id: [] for m in implanted}
    hits = matches[matches["q_value"] < q_max]
    for query, match_id, match_name in zip(hits["query"], hits["match_id"], hits["match_name"]):
        for m in implanted:
            if m.id.split(".")[0] == match_id.split(".")[0] or m.name.upper() == match_name.upper():
                found[m.id].append(query)
    return found
