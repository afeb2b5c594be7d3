"""Train/valid/test splits that never put overlapping sequence in two splits.

Two genomic methods, both pure functions of a window's coordinates and a
:class:`SplitConfig` (so any process, any shard, computes the same answer):

- ``chrom``: whole chromosomes are held out (``valid_chroms``, ``test_chroms``);
  everything else is train. Names match across the ``chr`` prefix (``chr8`` in a
  config matches contig ``8``); nothing is renamed.
- ``block``: the genome is cut into blocks of ``block_size`` bp; each
  (key, chromosome, block) goes to a split by a seeded hash, with probabilities
  ``valid_fraction`` / ``test_fraction`` / the rest train. A window that spans
  blocks of two different splits is dropped (``None``), so windows of different
  splits never overlap.

:func:`random_split` is for synthetic i.i.d. sequences only (no genome to leak).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from dnacnn.data.dataset_io import SPLITS

METHODS = ("chrom", "block")


def canonical_chrom(chrom: str) -> str:
    """The name used to compare chromosomes: ``chr`` prefix removed, ``M``/``MT`` unified."""
    name = chrom[3:] if chrom.lower().startswith("chr") else chrom
    return "MT" if name in ("M", "MT") else name


@dataclass(frozen=True)
class SplitConfig:
    """How windows are assigned to train/valid/test.

    Attributes:
        method: ``chrom`` (hold out chromosomes) or ``block`` (hash genomic blocks).
        valid_chroms, test_chroms: held-out chromosomes for ``chrom``.
        block_size: bp per block for ``block`` (should be >= the window length).
        valid_fraction, test_fraction: expected share of blocks per split for ``block``.
        seed: changes the block assignment for ``block``.
    """

    method: str = "chrom"
    valid_chroms: tuple[str, ...] = ()
    test_chroms: tuple[str, ...] = ()
    block_size: int = 1_000_000
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"split method {self.method!r} is not one of {METHODS}")
        object.__setattr__(self, "valid_chroms", tuple(self.valid_chroms))
        object.__setattr__(self, "test_chroms", tuple(self.test_chroms))
        both = {canonical_chrom(c) for c in self.valid_chroms} & {
            canonical_chrom(c) for c in self.test_chroms
        }
        if both:
            raise ValueError(
                f"chromosomes {sorted(both)} are in both valid_chroms and test_chroms; "
                "give each held-out chromosome to one split"
            )
        if self.block_size <= 0:
            raise ValueError(f"block_size must be positive, got {self.block_size}")
        if not (0 <= self.valid_fraction and 0 <= self.test_fraction
                and self.valid_fraction + self.test_fraction <= 1):
            raise ValueError(
                f"valid_fraction {self.valid_fraction} and test_fraction {self.test_fraction} "
                "must be >= 0 and sum to at most 1"
            )

    @classmethod
    def from_dict(cls, values: dict) -> SplitConfig:
        """Build from a config mapping, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown split config key(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["valid_chroms"] = list(self.valid_chroms)
        out["test_chroms"] = list(self.test_chroms)
        return out


def check_split_choice(splits: SplitConfig | None, split: str | None) -> None:
    """Check a source's (``splits``, ``split``) pair: ``split`` a split name, given with ``splits``.

    Raises:
        ValueError: an unknown split name, or a split without a ``SplitConfig``.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    if split is not None and splits is None:
        raise ValueError("pass `splits` (a SplitConfig) together with `split`")


def _block_uniform(key: str, chrom: str, block: int, seed: int) -> float:
    """A uniform [0, 1) number fixed by (seed, key, chromosome, block)."""
    digest = hashlib.blake2b(
        f"{seed}|{key}|{canonical_chrom(chrom)}|{block}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def block_split(chrom: str, block: int, config: SplitConfig, key: str = "") -> str:
    """The split of one genomic block (``block`` = start // block_size)."""
    u = _block_uniform(key, chrom, block, config.seed)
    if u < config.test_fraction:
        return "test"
    if u < config.test_fraction + config.valid_fraction:
        return "valid"
    return "train"


def assign_split(
    chrom: str, start: int, config: SplitConfig, end: int | None = None, key: str = ""
) -> str | None:
    """The split of the window ``[start, end)`` on ``chrom`` (0-based).

    Args:
        end: the window's end; with ``block``, a window whose blocks fall in
            different splits gets ``None`` (drop it). Without ``end`` only the
            start's block counts.
        key: extra hash input for ``block`` (e.g. a species name, so two genomes
            with the same contig names split independently).
    Returns:
        ``"train"``, ``"valid"``, ``"test"``, or ``None`` for a dropped window.
    """
    if config.method == "chrom":
        name = canonical_chrom(chrom)
        if name in {canonical_chrom(c) for c in config.test_chroms}:
            return "test"
        if name in {canonical_chrom(c) for c in config.valid_chroms}:
            return "valid"
        return "train"
    first = start // config.block_size
    last = first if end is None else max(first, (end - 1) // config.block_size)
    split = block_split(chrom, first, config, key)
    for block in range(first + 1, last + 1):
        if block_split(chrom, block, config, key) != split:
            return None
    return split


def assign_splits(
    chroms: Sequence[str],
    starts: np.ndarray,
    config: SplitConfig,
    ends: np.ndarray | None = None,
    key: str = "",
) -> np.ndarray:
    """Vectorised :func:`assign_split`.

    Args:
        chroms: N chromosome names; starts, ends: (N,) int, 0-based half-open.
    Returns:
        (N,) object array of ``"train"``/``"valid"``/``"test"``/``None``.
    """
    starts = np.asarray(starts, dtype=np.int64)
    n = len(starts)
    out = np.empty(n, dtype=object)
    chroms = np.asarray(chroms, dtype=object)
    if config.method == "chrom":
        for chrom in np.unique(chroms) if n else []:
            out[chroms == chrom] = assign_split(chrom, 0, config)
        return out
    first = starts // config.block_size
    last = first if ends is None else np.maximum(first, (np.asarray(ends) - 1) // config.block_size)
    cache: dict[tuple[str, int], str] = {}

    def split_of(chrom: str, block: int) -> str:
        got = cache.get((chrom, block))
        if got is None:
            got = cache[(chrom, block)] = block_split(chrom, block, config, key)
        return got

    for i in range(n):
        chrom = chroms[i]
        split = split_of(chrom, int(first[i]))
        for block in range(int(first[i]) + 1, int(last[i]) + 1):
            if split_of(chrom, block) != split:
                split = None
                break
        out[i] = split
    return out


def random_split(
    n: int,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: np.ndarray | None = None,
) -> np.ndarray:
    """A seeded random split of ``n`` i.i.d. samples (synthetic data only).

    Args:
        stratify: (n,) class labels; when given, each class is split in the
            same proportions (as the tutorial's stratified ``train_test_split``).
    Returns:
        (n,) object array of split names; round(n_class * fraction) per split.
    """
    rng = np.random.default_rng(seed)
    out = np.full(n, "train", dtype=object)
    groups = [np.arange(n)] if stratify is None else [
        np.flatnonzero(np.asarray(stratify) == c) for c in np.unique(stratify)
    ]
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test_fraction))
        n_valid = int(round(len(idx) * valid_fraction))
        out[idx[:n_test]] = "test"
        out[idx[n_test : n_test + n_valid]] = "valid"
    return out
