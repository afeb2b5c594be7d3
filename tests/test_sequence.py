"""One-hot encoding and reverse complement: properties that hold for every sequence."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnacnn import sequence

acgt = st.text(alphabet="ACGT", min_size=0, max_size=300)
dna = st.text(alphabet="ACGTNacgtnRYSWKMBDHV", min_size=0, max_size=300)


@given(acgt)
def test_decode_inverts_encode(seq):
    assert sequence.decode(sequence.encode(seq)) == seq


@given(dna)
def test_reverse_complement_twice_is_identity(seq):
    assert sequence.reverse_complement(sequence.reverse_complement(seq)) == seq
    onehot = sequence.encode(seq)
    np.testing.assert_array_equal(
        sequence.reverse_complement_onehot(sequence.reverse_complement_onehot(onehot)), onehot
    )


@given(st.lists(dna.map(sequence.encode), min_size=1, max_size=4).map(
    lambda rows: np.stack([np.resize(r, (7, 4)) if len(r) else np.zeros((7, 4), np.uint8) for r in rows])))
def test_reverse_complement_onehot_is_the_flip_of_both_axes_for_any_layout(batch):
    """The byte-swap path (uint8, contiguous) and the strided path give the flip itself."""
    expected = batch[..., ::-1, ::-1]
    for x in (batch, batch[:, ::-1], batch.astype(np.float32), batch[0]):
        want = x[..., ::-1, ::-1]
        got = sequence.reverse_complement_onehot(x)
        assert got.dtype == x.dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(sequence.reverse_complement_onehot(batch), expected)


@given(dna)
def test_encoding_commutes_with_reverse_complement(seq):
    np.testing.assert_array_equal(
        sequence.encode(sequence.reverse_complement(seq)),
        sequence.reverse_complement_onehot(sequence.encode(seq)),
    )


@given(dna)
def test_lower_case_encodes_as_upper_and_non_acgt_as_zero(seq):
    onehot = sequence.encode(seq)
    assert onehot.dtype == np.uint8 and onehot.shape == (len(seq), 4)
    np.testing.assert_array_equal(onehot, sequence.encode(seq.upper()))
    is_base = np.array([c in "ACGT" for c in seq.upper()], dtype=bool)
    np.testing.assert_array_equal(onehot.sum(axis=1), is_base.astype(np.uint8))


def test_alphabet_order_is_acgt():
    np.testing.assert_array_equal(sequence.encode("ACGTN"), np.vstack([np.eye(4), np.zeros(4)]))
    assert sequence.encode(b"acgt").tolist() == np.eye(4, dtype=np.uint8).tolist()


@given(st.lists(acgt, min_size=1, max_size=8))
def test_batch_pads_with_n_to_the_longest(seqs):
    length = max(len(s) for s in seqs)
    batch = sequence.encode_batch(seqs, length=length)
    assert batch.shape == (len(seqs), length, 4)
    for row, seq in zip(batch, seqs):
        np.testing.assert_array_equal(row[: len(seq)], sequence.encode(seq))
        assert row[len(seq) :].sum() == 0
    assert sequence.decode(batch) == [s.ljust(length, "N") for s in seqs]


def test_batch_rejects_a_sequence_longer_than_length():
    with pytest.raises(ValueError, match="sequence 1 has length 5"):
        sequence.encode_batch(["ACG", "ACGTA"], length=4)


def test_non_ascii_input_is_a_clear_error():
    with pytest.raises(ValueError, match="non-ASCII character at position 2"):
        sequence.encode("ACé")


def test_decode_rejects_rows_with_two_bases():
    with pytest.raises(ValueError, match="at most one 1"):
        sequence.decode(np.array([[1, 1, 0, 0]]))


@given(dna)
def test_dna_and_iupac_codes_in_either_case_are_dna(seq):
    assert sequence.non_dna(seq) is None and sequence.non_dna(seq.lower()) is None


def test_non_dna_names_the_first_character_that_is_not_a_base_or_iupac_code():
    for text, found in (("ACGX*", "'X' at base 4 (1-based)"), ("AC-G", "'-' at base 3 (1-based)"),
                        ("A1", "'1' at base 2 (1-based)"), ("AC\nG", "'\\n' at base 3 (1-based)")):
        assert sequence.non_dna(text).startswith(f"has {found}:"), text
