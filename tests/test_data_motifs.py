"""MEME reading/writing, JASPAR through pyjaspar, sampling from matrices."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared

from dnacnn.data.motifs import MemeFormatError, Motif, find_motif, jaspar_motifs, read_meme, write_meme


def test_jaspar_meme_export_matches_pyjaspar():
    motifs = read_meme(shared("motifs", "JASPAR2024_CORE_vertebrates_pyjaspar.meme"))
    assert len(motifs) == 879
    ctcf = find_motif(motifs, "MA0139")
    assert (ctcf.id, ctcf.name, ctcf.width) == ("MA0139.2", "CTCF", 15)
    assert find_motif(motifs, "spi1").id.startswith("MA0080")  # names: case-insensitive
    (from_db,) = jaspar_motifs(["MA0139"])
    assert from_db.id == "MA0139.2"
    assert np.allclose(from_db.probs, ctcf.probs, atol=1e-6)
    with pytest.raises(KeyError, match="no motif 'NOTAFACTOR'"):
        find_motif(motifs, "NOTAFACTOR")


def test_cisbp_meme_with_blank_lines_and_long_names():
    motifs = read_meme(shared("basset", "Homo_sapiens.meme"))
    assert len(motifs) == 734
    assert all(np.allclose(m.probs.sum(axis=1), 1) for m in motifs)


def test_write_read_round_trip_and_errors(tmp_path):
    m = Motif("X1.1", "toy", np.array([[0.7, 0.1, 0.1, 0.1], [0, 0, 1, 0], [0.25] * 4]), nsites=10)
    path = write_meme([m, Motif("Y", "Y", np.eye(4))], tmp_path / "m.meme")
    back = read_meme(path)
    assert [b.id for b in back] == ["X1.1", "Y"] and back[0].name == "toy"
    assert np.allclose(back[0].probs, m.probs) and back[1].consensus == "ACGT"
    assert np.allclose(m.information_content(), [2 + 0.7 * np.log2(0.7) + 0.3 * np.log2(0.1), 2, 0])
    assert m.reverse_complement().consensus == "ACT"  # uniform row reads A; G -> C; A -> T
    bad = tmp_path / "bad.meme"
    bad.write_text("MEME version 4\n\nMOTIF A\nletter-probability matrix: alength= 4 w= 2\n0.1 0.2 0.7\n")
    with pytest.raises(MemeFormatError, match="line 5.*3 values"):
        read_meme(bad)
    bad.write_text("MEME version 4\nALPHABET= ACDEFGHIKLMNPQRSTVWY\n")
    with pytest.raises(MemeFormatError, match="not DNA"):
        read_meme(bad)
    # were both "holds no motifs": a gzipped MEME file, and a JASPAR-format one
    import gzip

    packed = tmp_path / "m.meme.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(MemeFormatError, match=r"m\.meme\.gz is gzip-compressed; MEME files are read as text"):
        read_meme(packed)
    bad.write_text(">MA0004.1 Arnt\nA  [ 4 19  0  0  0  0 ]\nC  [16  0 20  0  0  0 ]\n")
    with pytest.raises(MemeFormatError, match=r"bad\.meme is not a MEME file \(no `MEME version` line\).*jaspar2meme"):
        read_meme(bad)


def test_a_matrix_of_nan_or_negative_values_or_a_repeated_id_is_refused_naming_the_file(tmp_path):
    """A nan in a MEME matrix was read, and interpret filters --motifs died at its logo with
    logomaker's LogomakerError stack trace; a negative value said 'motif A: negative
    probabilities' without the file; two MOTIF lines of one id ('A a', 'A b') were both read,
    and matches (looked up by id) showed the second's matrix for the first."""
    head = "MEME version 4\n\nALPHABET= ACGT\n\n"
    row = "0.1 0.2 0.3 0.4\n"

    def matrix(first_row: str, motif: str = "A a") -> str:
        return f"MOTIF {motif}\nletter-probability matrix: alength= 4 w= 2\n{first_row}{row}"

    bad = tmp_path / "bad.meme"
    for text, reason in ((head + matrix("nan 0.2 0.3 0.5\n"), "motif A: a probability that is not a number"),
                         (head + matrix("-1 0.2 0.3 0.5\n"), "motif A: negative probabilities"),
                         (head + matrix(row) + matrix(row, "A b"), "motif id A occurs twice")):
        bad.write_text(text)
        with pytest.raises(MemeFormatError, match=f"{bad}: {reason}"):
            read_meme(bad)
    bad.write_text(head + matrix(row) + matrix(row, "B b"))
    assert [m.id for m in read_meme(bad)] == ["A", "B"]


def test_sampled_instances_follow_the_matrix():
    probs = np.array([[0.9, 0.1, 0, 0], [0, 0, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25]])
    motif = Motif("T", "T", probs)
    seqs = motif.sample(np.random.default_rng(0), 4000)
    counts = np.array([[sum(s[j] == b for s in seqs) for b in "ACGT"] for j in range(3)]) / 4000
    assert np.abs(counts - probs).max() < 0.03
    assert motif.log_odds("AGC") > motif.log_odds("CGC")


def test_a_meme5_dna_alphabet_block_is_read_and_other_blocks_or_widths_are_named(tmp_path):
    """MEME 5 files may define their alphabet in a block (`ALPHABET "DNA" DNA-LIKE` ... `END
    ALPHABET`, as the MEME suite writes for custom alphabets): a DNA one was refused as "alphabet
    'ALPHABET "DNA" DNA-LIKE' is not DNA". A matrix of `w= 0` failed in memelite with an
    IndexError naming no file."""
    block = ('MEME version 5\n\nALPHABET "DNA" DNA-LIKE\nA "Adenine" CC0000 ~ T "Thymine" 008000\n'
             'C "Cytosine" 0000CC ~ G "Guanine" FFB300\nN "Any base" = ACGT\nX = ACGT\nEND ALPHABET\n\n')
    motif = "MOTIF M1 one\nletter-probability matrix: alength= 4 w= 2\n0.1 0.7 0.1 0.1\n0.25 0.25 0.25 0.25\n"
    good = tmp_path / "dna.meme"
    good.write_text(block + motif)
    assert [(m.id, m.name, m.consensus) for m in read_meme(good)] == [("M1", "one", "CA")]
    bad = tmp_path / "bad.meme"
    for text, reason in (
            (block.replace('"DNA"', '"RNA"').replace("Thymine", "Uracil").replace("~ T", "~ U") + motif,
             "line 3: the alphabet defines A, C, G, U, not DNA"),
            (block.replace("END ALPHABET\n", "") + motif, "line 3: an alphabet definition without its `END ALPHABET`"),
            (block + motif.replace("w= 2", "w= 0"), "line 11: motif M1: width w= 0"),
            (block + motif.replace("w= 2", "w= two"), "line 11: motif M1: width w= two")):
        bad.write_text(text)
        with pytest.raises(MemeFormatError, match=f"{bad}, {reason}"):
            read_meme(bad)
