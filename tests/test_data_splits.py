"""Splits, windowing and overlap helpers, batch transforms: pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from dnacnn import sequence
from dnacnn.data.splits import SplitConfig, assign_split, assign_splits, random_split
from dnacnn.data.transforms import AugmentConfig, augment, random_shift, reverse_complement_rows
from dnacnn.data.windows import merge_intervals, overlap_bp, plan_tile_runs, tile_count


def test_chromosome_split_matches_across_the_chr_prefix():
    config = SplitConfig(valid_chroms=("chr8",), test_chroms=("9", "chrX"))
    assert assign_split("8", 0, config) == "valid"
    assert assign_split("chr9", 10, config) == "test"
    assert assign_split("X", 10, config) == "test"
    assert assign_split("chr1", 10, config) == "train"
    out = assign_splits(["chr8", "1", "chr9"], np.array([0, 5, 9]), config)
    assert out.tolist() == ["valid", "train", "test"]


def test_split_config_rejects_bad_input():
    with pytest.raises(ValueError, match="both valid_chroms and test_chroms"):
        SplitConfig(valid_chroms=("chr8",), test_chroms=("8",))
    with pytest.raises(ValueError, match="unknown split config key"):
        SplitConfig.from_dict({"method": "chrom", "valid_chromosomes": ["chr8"]})
    with pytest.raises(ValueError, match="sum to at most 1"):
        SplitConfig(method="block", valid_fraction=0.6, test_fraction=0.6)
    assert SplitConfig.from_dict(SplitConfig(valid_chroms=("chr8",)).to_dict()).valid_chroms == ("chr8",)


def test_block_split_is_deterministic_and_never_overlaps():
    config = SplitConfig(method="block", block_size=1000, valid_fraction=0.2, test_fraction=0.2, seed=3)
    starts = np.arange(0, 200_000, 150)  # overlapping windows of 400 bp
    ends = starts + 400
    got = assign_splits(["chr1"] * len(starts), starts, config, ends)
    assert got.tolist() == assign_splits(["1"] * len(starts), starts, config, ends).tolist()
    assert {"train", "valid", "test", None} == set(got.tolist())
    fractions = {s: np.mean(got == s) for s in ("valid", "test")}
    assert 0.1 < fractions["valid"] < 0.3 and 0.1 < fractions["test"] < 0.3
    for a in ("train", "valid", "test"):
        for b in ("train", "valid", "test"):
            if a != b:
                sa, sb = starts[got == a], starts[got == b]
                # no window of split a overlaps any window of split b
                j = np.searchsorted(sb, sa)
                for k in (j - 1, j):
                    ok = (k >= 0) & (k < len(sb))
                    assert not ((np.abs(sb[k[ok]] - sa[ok]) < 400)).any()
    other_seed = assign_splits(["chr1"] * len(starts), starts,
                               SplitConfig(method="block", block_size=1000, seed=4), ends)
    assert other_seed.tolist() != got.tolist()


def test_random_split_is_stratified():
    labels = np.array([0] * 600 + [1] * 400)
    split = random_split(1000, 0.16, 0.2, seed=1, stratify=labels)
    for cls, n in ((0, 600), (1, 400)):
        assert (split[labels == cls] == "test").sum() == round(0.2 * n)
        assert (split[labels == cls] == "valid").sum() == round(0.16 * n)
    assert split.tolist() == random_split(1000, 0.16, 0.2, seed=1, stratify=labels).tolist()


def test_tile_counts_and_runs():
    assert tile_count(1000, 600, 600) == 2  # the second window runs past the end
    assert tile_count(1000, 600, 600, cover_end=False) == 1
    assert tile_count(600, 600, 100) == 1 and tile_count(0, 600, 100) == 0
    runs = plan_tile_runs([("a", 100, 1100), ("b", 0, 5000)], 600, 200, max_windows=10)
    assert [(r.chrom, r.first, r.count) for r in runs] == [("a", 100, 3), ("b", 0, 10), ("b", 2000, 10), ("b", 4000, 3)]


def test_overlap_bp_against_brute_force():
    rng = np.random.default_rng(0)
    p_starts = rng.integers(0, 10_000, 60)
    p_ends = p_starts + rng.integers(1, 300, 60)
    merged = merge_intervals(p_starts, p_ends)
    covered = np.zeros(11_000, bool)
    for s, e in zip(p_starts, p_ends):
        covered[s:e] = True
    starts = rng.integers(0, 10_000, 300)
    ends = starts + rng.integers(1, 500, 300)
    got = overlap_bp(starts, ends, *merged)
    assert got.tolist() == [int(covered[s:e].sum()) for s, e in zip(starts, ends)]
    assert (np.diff(merged[0]) > 0).all() and (merged[0][1:] > merged[1][:-1]).all()


def batch(n=64, length=50, seed=0):
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGTN"), length)) for _ in range(n)]
    return {"onehot": sequence.encode_batch(seqs), "labels": rng.random((n, 3)).astype(np.float32)}


def test_reverse_complement_rows():
    b = batch()
    before = b["onehot"].copy()
    out = reverse_complement_rows(b, np.random.default_rng(1), fraction=0.5)
    assert np.array_equal(b["onehot"], before)  # input untouched
    assert out["labels"] is b["labels"]
    rc = sequence.reverse_complement_onehot(before)
    same = (out["onehot"] == before).all(axis=(1, 2))
    flipped = (out["onehot"] == rc).all(axis=(1, 2))
    assert (same | flipped).all() and 16 < flipped.sum() < 48
    for i in np.flatnonzero(flipped & ~same)[:5]:
        assert sequence.decode(out["onehot"][i]) == sequence.reverse_complement(sequence.decode(before[i]))
    again = reverse_complement_rows(b, np.random.default_rng(1), fraction=0.5)
    assert np.array_equal(again["onehot"], out["onehot"])  # seeded
    assert np.array_equal(reverse_complement_rows(b, np.random.default_rng(2), 1.0)["onehot"], rc)


def test_random_shift_pads_with_n_and_keeps_length():
    b = batch(n=32, length=40)
    out = random_shift(b, np.random.default_rng(0), max_shift=3)
    assert out["onehot"].shape == b["onehot"].shape and out["onehot"].dtype == np.uint8
    seen = set()
    for x, y in zip(b["onehot"], out["onehot"]):
        matches = [k for k in range(-3, 4)
                   if np.array_equal(y, np.roll(x, k, axis=0) * _mask(40, k)[:, None])]
        assert matches, "each row is its input shifted by -3..3 with N fill"
        seen.update(matches)
    assert len(seen) > 3
    assert np.array_equal(random_shift(b, np.random.default_rng(0), 0)["onehot"], b["onehot"])
    both = augment(b, AugmentConfig(rc_fraction=0.5, max_shift=2), np.random.default_rng(0))
    assert both["onehot"].shape == b["onehot"].shape


def _mask(length: int, k: int) -> np.ndarray:
    m = np.ones(length, np.uint8)
    if k > 0:
        m[:k] = 0
    elif k < 0:
        m[k:] = 0
    return m
