"""The variant window rule (dnacnn.scoring.allele_windows) on the real chr20 sequence of the fixture."""

from __future__ import annotations

import numpy as np
import pytest

from dnacnn.genome import Genome, UnknownContigError
import dnacnn.scoring.allele_windows as window_rule
from dnacnn.scoring.allele_windows import variant_windows, window_codes
from dnacnn.sequence import decode, encode
from conftest import FIXTURE_FASTA

CHR20 = 63_025_520
REAL = 150_000  # 0-based position inside the fixture's real (non-N) sequence


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(FIXTURE_FASTA)


def reference_alt(genome: Genome, chrom: str, pos0: int, ref: str, alt: str, length: int) -> str:
    """The documented rule, written the slow and obvious way."""
    c = length // 2
    left = genome.fetch(chrom, pos0 - c, pos0)
    right = genome.fetch(chrom, pos0 + len(ref), pos0 + len(ref) + length)
    return (left + alt + right)[:length]


def one(genome, chrom, pos0, ref, alt, length):
    r, a = variant_windows(genome, [chrom], [pos0], [ref], [alt], length)
    return decode(r[0]), decode(a[0])


@pytest.mark.parametrize("length", [200, 201, 2])
def test_snv_windows_differ_exactly_at_the_centre(genome, length):
    base = genome.fetch("20", REAL, REAL + 1)
    alt = "A" if base != "A" else "G"
    r, a = variant_windows(genome, ["20"], [REAL], [base], [alt], length)
    assert r.shape == a.shape == (1, length, 4) and r.dtype == np.uint8
    differ = np.flatnonzero((r[0] != a[0]).any(axis=1))
    assert differ.tolist() == [length // 2]
    assert decode(r[0]) == genome.fetch("20", REAL - length // 2, REAL - length // 2 + length)
    assert decode(a[0])[length // 2] == alt


def test_insertion_keeps_left_flank_and_shortens_right_flank(genome):
    length, c = 100, 50
    anchor = genome.fetch("20", REAL, REAL + 1)
    ref_w, alt_w = one(genome, "20", REAL, anchor, anchor + "TTTT", length)
    assert ref_w[:c] == alt_w[:c]  # same left flank
    assert alt_w[c : c + 5] == anchor + "TTTT"  # ALT starts at the centre
    assert alt_w[c + 5 :] == genome.fetch("20", REAL + 1, REAL + 1 + (length - c - 5))
    assert alt_w == reference_alt(genome, "20", REAL, anchor, anchor + "TTTT", length)


def test_deletion_reads_further_right_flank(genome):
    length, c = 100, 50
    ref = genome.fetch("20", REAL, REAL + 7)  # delete 6 bases after the anchor
    ref_w, alt_w = one(genome, "20", REAL, ref, ref[0], length)
    assert ref_w[: c + 1] == alt_w[: c + 1]
    assert alt_w[c + 1 :] == genome.fetch("20", REAL + 7, REAL + 7 + length - c - 1)
    assert len(alt_w) == length and "N" not in alt_w  # filled from the genome, not padded


def test_alt_longer_than_half_window_is_cut(genome):
    length = 20
    base = genome.fetch("20", REAL, REAL + 1)
    ref_w, alt_w = one(genome, "20", REAL, base, base + "G" * 40, length)
    assert alt_w == ref_w[:10] + (base + "G" * 40)[:10]


def test_mnv_differs_only_inside_ref(genome):
    ref = genome.fetch("20", REAL, REAL + 3)
    alt = "".join({"A": "C", "C": "G", "G": "T", "T": "A"}[b] for b in ref)
    ref_w, alt_w = one(genome, "20", REAL, ref, alt, 50)
    assert [i for i in range(50) if ref_w[i] != alt_w[i]] == [25, 26, 27]


def test_windows_are_n_padded_past_both_contig_ends(genome):
    length = 40
    ref_w, alt_w = one(genome, "20", 3, "N", "A", length)  # chr20 starts with N
    assert ref_w == "N" * length and alt_w == "N" * 20 + "A" + "N" * 19
    last = CHR20 - 1
    ref_w, alt_w = one(genome, "20", last, "N", "AC", length)
    assert ref_w[21:] == "N" * 19  # past the end
    assert alt_w == ref_w[:20] + "AC" + "N" * 18
    ref_w, alt_w = one(genome, "20", last - 2, "NNN", "N", length)  # deletion at the end
    assert alt_w[21:] == "N" * 19


def test_chr_alias_gives_the_same_windows(genome):
    a = variant_windows(genome, ["20"], [REAL], ["A"], ["G"], 64)
    b = variant_windows(genome, ["chr20"], [REAL], ["A"], ["G"], 64)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(UnknownContigError, match="chr21"):
        variant_windows(genome, ["chr21"], [REAL], ["A"], ["G"], 64)


def test_batch_equals_one_at_a_time_and_the_slow_rule(genome, monkeypatch):
    """Mixed kinds, clustered and far apart, through several fetch groups."""
    monkeypatch.setattr(window_rule, "MAX_GAP", 500)
    rng = np.random.default_rng(0)
    pos0 = np.concatenate([rng.integers(100_000, 100_400, 20), rng.integers(200_000, 290_000, 20), [CHR20 - 5, 2]])
    refs, alts = [], []
    for p in pos0:
        r = genome.fetch("20", int(p), int(p) + int(rng.integers(1, 6)))
        a = "".join(rng.choice(list("ACGT"), int(rng.integers(1, 9))))
        refs.append(r)
        alts.append(a)
    length = 33
    batch_ref, batch_alt = variant_windows(genome, ["20"] * len(pos0), pos0, refs, alts, length)
    for i, p in enumerate(pos0):
        r, a = one(genome, "20", int(p), refs[i], alts[i], length)
        assert decode(batch_ref[i]) == r
        assert decode(batch_alt[i]) == a == reference_alt(genome, "20", int(p), refs[i], alts[i], length)


def test_window_codes_checks_its_context():
    context = np.frombuffer(b"ACGTACGTAC", dtype=np.uint8)
    ref, alt = window_codes(context, 100, np.array([105]), np.array([1]), ["T"], 4)
    assert ref.tobytes() == b"TACG" and alt.tobytes() == b"TATG"  # C>T at 105
    with pytest.raises(ValueError, match="does not cover"):
        window_codes(context, 100, np.array([101]), np.array([1]), ["T"], 8)


def test_onehot_matches_sequence_encode(genome):
    r, _ = variant_windows(genome, ["20"], [REAL], ["A"], ["G"], 30)
    assert np.array_equal(r[0], encode(genome.fetch("20", REAL - 15, REAL + 15)))
