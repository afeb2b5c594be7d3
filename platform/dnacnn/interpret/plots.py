"""Thin plotting functions: each takes computed numbers and an optional ``ax``, returns the Axes.

Logos are drawn with ``logomaker``; everything else with matplotlib.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ALPHABET = list("ACGT")


@functools.cache
def _font_characters(path: str) -> frozenset[int]:
    """The code points the font file at ``path`` has glyphs for."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def label(text: object) -> str:
    """``text`` as a title or tick label can show it: control characters (a tab in a FASTA
    name) and characters the default font has no glyph for are written as escapes (``\\t``,
    ``\\U0001f9ec``); matplotlib would draw them as boxes and warn."""
    from matplotlib import font_manager

    drawable = _font_characters(font_manager.findfont(font_manager.FontProperties()))
    return "".join(c if c.isprintable() and ord(c) in drawable else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


def _logo(heights: np.ndarray, ax) -> None:
    """Letters of (W, 4) heights (A, C, G, T) drawn by logomaker on ``ax``. All-zero heights
    (an all-N window, a flat filter) have no letters: logomaker would set equal y limits,
    which matplotlib warns about and widens, so only the x range is set, as logomaker's."""
    import logomaker

    if np.any(heights):
        logomaker.Logo(pd.DataFrame(heights, columns=ALPHABET), ax=ax)
    else:
        ax.set_xlim(-0.5, len(heights) - 0.5)


def _axes(ax, figsize=(6, 2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def information_matrix(probs: np.ndarray) -> np.ndarray:
    """(W, 4) probabilities -> (W, 4) letter heights in bits (probability x information)."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1, keepdims=True)
    return p * (2.0 - entropy)


def plot_motif_logo(probs: np.ndarray, title: str = "", ax=None):
    """Information logo of a (W, 4) probability matrix (A, C, G, T); y in bits (0-2)."""
    ax = _axes(ax, (max(3, 0.3 * len(probs)), 1.6))
    _logo(information_matrix(probs), ax)
    ax.set_ylim(0, 2)
    ax.set_ylabel("bits")
    ax.set_title(label(title), fontsize=9)
    return ax


def plot_filter_logo(filter_probs: np.ndarray, title: str, match_probs: np.ndarray | None = None,
                     match_title: str = "", strand: str = "+", axes=None):
    """A filter's logo with its matched motif under it (reverse-complemented when it matched on
    the - strand). Returns the two Axes (the second None without a match)."""
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(4, 3.2), sharex=False)
    plot_motif_logo(filter_probs, title, axes[0])
    if match_probs is None:
        axes[1].set_axis_off()
        axes[1].set_title("no match", fontsize=9)
        return axes[0], None
    probs = match_probs[::-1, ::-1] if strand == "-" else match_probs
    plot_motif_logo(probs, match_title, axes[1])
    return axes[0], axes[1]


def plot_influence_heatmap(influence: np.ndarray, filters: Sequence[str], tasks: Sequence[str], ax=None):
    """Heat map of (F, T) influence (loss change) by filter and task, as Basset's figure 3.

    Rows are ordered by overall influence (largest first); colour limits are symmetric.
    """
    influence = np.asarray(influence, dtype=np.float64)
    order = np.argsort(-np.nanmean(influence, axis=1))  # NaN: a class without samples
    ax = _axes(ax, (min(16, 2 + 0.08 * len(tasks)), min(14, 2 + 0.05 * len(filters))))
    limit = float(np.nanmax(np.abs(influence))) or 1.0
    image = ax.imshow(influence[order], aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                      interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="loss change (filter at its mean)")
    if len(filters) <= 60:
        ax.set_yticks(range(len(filters)), [label(filters[i]) for i in order], fontsize=6)
    if len(tasks) <= 60:
        ax.set_xticks(range(len(tasks)), [label(t) for t in tasks], rotation=90, fontsize=6)
    ax.set_xlabel("task")
    ax.set_ylabel("filter (by overall influence)")
    ax.set_title("filter influence")
    return ax


def plot_attention(attention: np.ndarray, widths: Sequence[int], sites: Sequence[tuple[int, int]] = (),
                   title: str = "", axes=None):
    """One track per branch of a (B, L) attention map, the known motif sites shaded.

    Returns the B Axes (one per width, top to bottom).
    """
    attention = np.asarray(attention)
    if axes is None:
        _, axes = plt.subplots(len(widths), 1, figsize=(8, 1.1 * len(widths)), sharex=True)
    axes = np.atleast_1d(axes)
    positions = np.arange(attention.shape[1])
    for ax, width, track in zip(axes, widths, attention):
        ax.fill_between(positions, track, step="mid", color="tab:blue")
        for start, end in sites:
            ax.axvspan(start - 0.5, end - 0.5, color="tab:orange", alpha=0.3)
        ax.set_ylabel(f"w{width}", rotation=0, ha="right", va="center")
        ax.set_ylim(0, None)
    axes[0].set_title(label(title))
    axes[-1].set_xlabel("position (bp)")
    return list(axes)


def plot_ism_heatmap(effects: np.ndarray, onehot: np.ndarray, title: str = "", ax=None):
    """Heat map of (L, 4) ISM effects (mutant - reference) for one task, bases as rows;
    the reference base of each position is marked with a dot."""
    effects = np.asarray(effects, dtype=np.float64)
    ax = _axes(ax, (min(20, 2 + 0.05 * len(effects)), 2))
    limit = float(np.abs(effects).max()) or 1.0
    image = ax.imshow(effects.T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                      interpolation="nearest")
    pos, base = np.nonzero(np.asarray(onehot))
    ax.scatter(pos, base, s=2, c="k")
    ax.figure.colorbar(image, ax=ax, label="mutant - reference")
    ax.set_yticks(range(4), ALPHABET)
    ax.set_xlabel("position (bp)")
    ax.set_title(label(title))
    return ax


def plot_importance_logo(importance: np.ndarray, onehot: np.ndarray, title: str = "", ax=None):
    """Logo of per-position importance (L,): each reference base drawn with the height of
    its position's importance (negative below the axis; y from -1 to 1 when all are 0)."""
    heights = np.asarray(onehot, dtype=np.float64) * np.asarray(importance)[:, None]  # (L, 4)
    ax = _axes(ax, (min(20, 2 + 0.05 * len(heights)), 2))
    _logo(heights, ax)
    if not np.any(heights):
        ax.set_ylim(-1, 1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("position (bp)")
    ax.set_ylabel("importance")
    ax.set_title(label(title))
    return ax


def save(ax_or_axes, path) -> str:
    """Save the figure of an Axes (or of the first of several), close it, return the path."""
    ax = ax_or_axes[0] if isinstance(ax_or_axes, (list, tuple)) else ax_or_axes
    fig = ax.figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
