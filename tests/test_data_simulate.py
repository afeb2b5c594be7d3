"""Simulators: the ground truth agrees with the sequences, the genome and the VCF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest
from conftest import FIXTURE_FASTA, shared

from dnacnn import sequence
from dnacnn.data.dataset_io import DatasetDescription, column_to_numpy
from dnacnn.data.labelled_fasta import LabelledFastaConfig, centre_resize, labelled_fasta_dataset
from dnacnn.data.motifs import read_meme
from dnacnn.data.simulate_accessibility import AccessibilityConfig, clean_labels, simulate_accessibility
from dnacnn.data.simulate_species import SpeciesConfig, simulate_species
from dnacnn.data.simulate_tutorial import (
    CLASS_MOTIFS,
    DECOY_MOTIFS,
    POSITIVE_MOTIFS,
    TutorialConfig,
    write_tutorial,
)
from dnacnn.data.splits import SplitConfig
from dnacnn.genome import Genome
from dnacnn.variants import read_alleles


def read_split_rows(directory) -> pd.DataFrame:
    """Every split of a dataset folder as one frame with decoded sequences."""
    frames = []
    for split in ("train", "valid", "test"):
        table = pq.read_table(directory / split)
        assert isinstance(table.schema.field("onehot").type, pa.FixedShapeTensorType)
        onehot = column_to_numpy(table.column("onehot")) if table.num_rows else np.zeros((0, 1, 4))
        frames.append(pd.DataFrame({
            "split": split, "chrom": table.column("chrom").to_pylist(),
            "start": table.column("start").to_pylist(), "end": table.column("end").to_pylist(),
            "seq": sequence.decode(onehot) if table.num_rows else [],
            "labels": list(column_to_numpy(table.column("labels"))) if table.num_rows else [],
        }))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- tutorial


@pytest.mark.parametrize("multiclass", [False, True])
def test_tutorial_truth_is_in_the_sequences(tmp_path, multiclass):
    config = TutorialConfig(n_samples=1000, seed=7)
    description = write_tutorial(tmp_path, config, multiclass=multiclass)
    assert sum(description.rows.values()) == 1000
    rows = read_split_rows(tmp_path).set_index("start").sort_index()
    truth = pd.read_parquet(tmp_path / "ground_truth.parquet").set_index("index")
    assert (rows["split"] == truth["split"]).all()
    for i, t in truth.iterrows():
        seq = rows.at[i, "seq"]
        assert len(seq) == 200 and set(seq) <= set("ACGT")
        if t["position"] >= 0:
            assert seq[t["position"] : t["position"] + len(t["motif_seq"])] == t["motif_seq"]
            assert len(t["motif_seq"]) == len(t["motif"])
    labels = np.stack(rows["labels"].to_numpy())
    if multiclass:
        assert description.tasks == ["promoter", "splice_site", "regulatory", "background"]
        assert (labels.sum(axis=1) == 1).all() and (labels.sum(axis=0) == 250).all()
        for cls, motifs in CLASS_MOTIFS.items():
            kinds = truth.loc[truth["label"] == cls]
            if motifs:
                assert (kinds["kind"] == "positive").all()
                assert all(_matches(m, p) for m, p in zip(kinds["motif_seq"], kinds["motif"]))
                assert set(kinds["motif"]) == set(motifs)
            else:
                assert set(kinds["kind"]) == {"none", "decoy"}
    else:
        assert labels.shape == (1000, 1) and labels.sum() == 500
        positives = truth[truth["label"] == 1]
        assert set(positives["motif"]) == set(POSITIVE_MOTIFS)
        negatives = truth[truth["label"] == 0]
        assert set(negatives["motif"]) - {""} == set(DECOY_MOTIFS)
        assert 0.24 < (negatives["kind"] == "decoy").mean() < 0.36
        assert abs(description.rows["test"] - 200) <= 1
        # the same seed gives the same data
        again = write_tutorial(tmp_path / "again", config)
        assert again.rows == description.rows
        assert read_split_rows(tmp_path / "again")["seq"].tolist() == read_split_rows(tmp_path)["seq"].tolist()


def _matches(seq: str, pattern: str) -> bool:
    return len(seq) == len(pattern) and all(p in ("N", s) for s, p in zip(seq, pattern))


# ---------------------------------------------------------------- accessibility


@pytest.fixture(scope="module")
def accessibility(tmp_path_factory):
    from dnacnn.models import basset_cell_types

    out = tmp_path_factory.mktemp("accessibility")
    config = AccessibilityConfig(
        n_windows=300, n_breaking=40, n_neutral=40, label_noise=0.03, seed=3,
        split=SplitConfig(method="block", block_size=40_000, valid_fraction=0.2, test_fraction=0.2),
    )
    description = simulate_accessibility(FIXTURE_FASTA, out, basset_cell_types(), config)  # pyjaspar
    return out, description, config


def test_accessibility_dataset_layout_and_labels(accessibility):
    out, description, config = accessibility
    for name in ("genome.fa.gz", "genome.fa.gz.fai", "genome.fa.gz.gzi", "variants.vcf.gz",
                 "variants.vcf.gz.tbi", "variant_effects.tsv", "instances.parquet",
                 "windows.parquet", "cell_factors.tsv", "motifs.meme", "dataset.json"):
        assert (out / name).exists(), name
    assert DatasetDescription.load(out).tasks == description.tasks
    assert len(description.tasks) == 164 and description.task_type == "multitask"
    windows = pq.read_table(out / "windows.parquet").to_pandas()
    assert len(windows) == 300
    # non-overlapping grid windows of real (no-N) sequence
    starts = np.sort(windows["start"].to_numpy())
    assert (starts % 600 == 0).all() and (np.diff(starts) >= 600).all()
    instances = pd.read_parquet(out / "instances.parquet")
    assert 0.2 < instances["window"].nunique() / 300 < 0.5
    cells = pd.read_csv(out / "cell_factors.tsv", sep="\t")
    active = {r.cell_type: set(r.factors.split(",")) for r in cells.itertuples()}
    assert all(2 <= len(f) <= 5 for f in active.values())
    table = pq.read_table(out / "windows.parquet")
    clean = column_to_numpy(table.column("labels_clean"))
    noisy = column_to_numpy(table.column("labels"))
    # a clean label is 1 exactly where the window has an instance of a factor active there
    for w in range(0, 300, 7):
        factors = set(instances.loc[instances["window"] == w, "factor"])
        expected = [1.0 if active[c] & factors else 0.0 for c in description.tasks]
        assert clean[w].tolist() == expected
    flips = (clean != noisy).mean()
    assert 0.02 < flips < 0.04
    rows = read_split_rows(out)
    assert sum(description.rows.values()) == len(rows) >= 290
    merged = rows.merge(windows[["start", "split"]], on="start", suffixes=("", "_truth"))
    assert (merged["split"] == merged["split_truth"]).all()
    assert set(rows["split"]) == {"train", "valid", "test"}


def test_implanted_instances_are_in_the_genome_and_the_windows(accessibility):
    out, _, _ = accessibility
    instances = pd.read_parquet(out / "instances.parquet")
    modified = pysam.FastaFile(str(out / "genome.fa.gz"))
    original = pysam.FastaFile(str(FIXTURE_FASTA))
    assert modified.references == original.references and modified.lengths == original.lengths
    for inst in instances.itertuples():
        assert modified.fetch(inst.chrom, inst.start, inst.end) == inst.sequence
    # the implanted sequence was sampled from the matrix: it scores well above chance
    motifs = {m.id: m for m in read_meme(out / "motifs.meme")}
    for inst in instances.head(60).itertuples():
        motif = motifs[inst.motif_id]
        seq = inst.sequence if inst.strand == "+" else sequence.reverse_complement(inst.sequence)
        assert motif.log_odds(seq) >= 0.8 * motif.log_odds(motif.consensus) - 1e-9
    # outside the instances the genome is unchanged
    rows = read_split_rows(out)
    changed = 0
    for row in rows.head(120).itertuples():
        assert row.seq == modified.fetch(row.chrom, row.start, row.end)
        before = original.fetch(row.chrom, row.start, row.end)
        mask = np.ones(600, bool)
        for inst in instances[(instances["start"] >= row.start) & (instances["end"] <= row.end)].itertuples():
            mask[inst.start - row.start : inst.end - row.start] = False
        a, b = np.frombuffer(row.seq.encode(), np.uint8), np.frombuffer(before.encode(), np.uint8)
        assert (a[mask] == b[mask]).all()
        changed += int((a != b).any())
    assert changed > 0


def test_vcf_matches_the_written_genome_and_breaks_motifs(accessibility):
    out, description, config = accessibility
    genome = Genome(out / "genome.fa.gz")
    alleles = list(read_alleles(out / "variants.vcf.gz", genome))
    assert len(alleles) == 80 and all(a.reject is None for a in alleles)
    effects = pd.read_csv(out / "variant_effects.tsv", sep="\t", keep_default_na=False,
                          dtype={"chrom": str})
    assert effects["id"].tolist() == [a.id for a in alleles]  # VCF order = table order
    assert effects["breaks_motif"].sum() == 40
    instances = pd.read_parquet(out / "instances.parquet").set_index("instance")
    motifs = {m.id: m for m in read_meme(out / "motifs.meme")}
    cells = pd.read_csv(out / "cell_factors.tsv", sep="\t")
    active = {r.cell_type: set(r.factors.split(",")) for r in cells.itertuples()}
    for v in effects.itertuples():
        p = v.pos - 1
        if v.breaks_motif:
            inst = instances.loc[v.instance]
            assert inst.start <= p and p + len(v.ref) <= inst.end  # inside the instance
            assert inst.factor == v.motif
            # after the substitution the instance matches its matrix much worse
            offset = p - inst.start
            broken = inst.sequence[:offset] + v.alt + inst.sequence[offset + len(v.alt):]
            motif = motifs[inst.motif_id]
            fwd = (lambda s: s) if inst.strand == "+" else sequence.reverse_complement
            assert motif.log_odds(fwd(broken)) < motif.log_odds(fwd(inst.sequence)) - 4
            affected = v.affected_cell_types.split(",")
            assert len(affected) == v.n_affected > 0
            assert all(v.motif in active[c] for c in affected)
        else:
            assert len(v.ref) == len(v.alt) == 1 and v.ref != v.alt
            same = instances[instances["chrom"] == v.chrom]
            gap = np.maximum(same["start"].to_numpy() - p, p - same["end"].to_numpy() + 1)
            assert gap.min() >= config.neutral_min_distance == 50
            assert v.affected_cell_types == "" and v.n_affected == 0
    # against the ORIGINAL genome the breaking variants' REF no longer matches everywhere:
    # the VCF is on genome.fa.gz, as documented
    original = list(read_alleles(out / "variants.vcf.gz", Genome(FIXTURE_FASTA)))
    assert all(a.reject is None for a, e in zip(original, effects.itertuples()) if not e.breaks_motif)


# ---------------------------------------------------------------- species, labelled FASTA


def test_species_fragments_are_balanced_and_real(tmp_path):
    human = shared("genome_pieces", "human", "hisat2_22_20-21M.fa")
    mouse = sorted(shared("genome_pieces", "mouse").glob("bcftools_csq_*.fa"))
    description = simulate_species({"human": [human], "mouse": mouse}, tmp_path, SpeciesConfig())
    assert description.tasks == ["human"] and description.task_type == "binary"
    rows = read_split_rows(tmp_path)
    labels = np.stack(rows["labels"].to_numpy())[:, 0]
    for split in ("train", "valid", "test"):
        part = labels[rows["split"] == split]
        assert len(part) > 0 and part.sum() * 2 == len(part)  # balanced in every split
    fasta = pysam.FastaFile(str(human))
    for row in rows[labels == 1].head(30).itertuples():
        assert row.seq == fasta.fetch(row.chrom, row.start, row.end).upper()
    assert "N" not in "".join(rows["seq"])


def test_labelled_fasta_split_by_chromosome(tmp_path):
    folder = shared("seq_classification", "janggu_oct4_vs_mafk")
    description = labelled_fasta_dataset(
        {"Oct4": folder / "sample.fa", "Mafk": folder / "sample2.fa"}, tmp_path)
    assert description.rows == {"train": 7091, "valid": 403, "test": 303}
    rows = read_split_rows(tmp_path)
    assert set(rows.loc[rows["split"] == "valid", "chrom"]) == {"chr8"}
    assert set(rows.loc[rows["split"] == "test", "chrom"]) == {"chr9"}
    assert np.stack(rows["labels"].to_numpy()).sum() == 3897  # Oct4 = 1
    first = next(iter(pysam.FastxFile(str(folder / "sample.fa"))))
    match = rows[(rows["chrom"] == "chr1") & (rows["start"] == 15710957)]
    assert match["seq"].tolist() == [first.sequence.upper()]


def test_labelled_fasta_reads_bedtools_names_and_grouped_digits_as_coordinates(tmp_path):
    """`bedtools getfasta -name` writes `peak7::chr9:1000-1100`, and some tools group digits
    (chr9:1,000-1,100): such records of a held-out chromosome were split by a hash of the
    header, most into train (the held-out chromosome leaked into training)."""
    from dnacnn.data.labelled_fasta import parse_header

    assert parse_header("peak7::chr9:1000-1100") == ("chr9", 1000, 1100)
    assert parse_header("chr9:1,000-1,100(+)") == ("chr9", 1000, 1100)
    assert parse_header("seq1") is None and parse_header("a::b::chr1:1-2") is None
    records = {"a": [f"peak{i}::chr9:{i * 1000}-{i * 1000 + 50}" for i in range(8)],
               "b": [f"chr8:{i * 1000:,}-{i * 1000 + 50:,}" for i in range(1, 9)] + ["chr1:0-50"]}
    files = {}
    for name, headers in records.items():
        files[name] = tmp_path / f"{name}.fa"
        files[name].write_text("".join(f">{h}\n{'ACGT' * 12}AC\n" for h in headers))
    description = labelled_fasta_dataset(files, tmp_path / "out")
    assert description.rows == {"train": 1, "valid": 8, "test": 8}
    rows = read_split_rows(tmp_path / "out")
    assert set(rows.loc[rows["split"] == "test", "chrom"]) == {"chr9"}
    assert sorted(rows.loc[rows["split"] == "valid", "start"]) == [i * 1000 for i in range(1, 9)]


def test_labelled_fasta_without_coordinates_and_uneven_lengths(tmp_path):
    a = tmp_path / "a.fa"
    a.write_text(">seqA one\nACGTACGTAC\n>seqB\nACG\n")
    b = tmp_path / "b.fa"
    b.write_text(">x\nTTTTTTTT\n")
    description = labelled_fasta_dataset(
        {"a": a, "b": b}, tmp_path / "out", LabelledFastaConfig(length=6, multiclass=True))
    assert description.tasks == ["a", "b"] and description.task_type == "multiclass"
    assert sum(description.rows.values()) == 3
    assert centre_resize("ACGTACGTAC", 6) == "GTACGT" and centre_resize("ACG", 6) == "NNACGN"
    rows = read_split_rows(tmp_path / "out")
    assert sorted(rows["seq"]) == ["GTACGT", "NNACGN", "TTTTTT"]


def test_accessibility_window_shorter_than_a_motif_is_named(tmp_path):
    # Was "ValueError: high <= 0" from numpy, naming neither the length nor the motif.
    from dnacnn.models import basset_cell_types

    with pytest.raises(ValueError, match=r"^length 12 is shorter than the widest motif \(MA\S+, \d+ bp\)"):
        simulate_accessibility(FIXTURE_FASTA, tmp_path / "out", basset_cell_types(),
                               AccessibilityConfig(n_windows=50, length=12))
    assert not (tmp_path / "out").exists()


def test_clean_labels_of_windows_without_instances_are_all_zero():
    """A tiny simulation (--n-windows 1) can place no instance: the labels are zero, not an
    IndexError from an empty, untyped window column."""
    none = pd.DataFrame({"factor": pd.Series([], dtype=object), "window": pd.Series([], dtype=object)})
    labels = clean_labels(3, none, ["a", "b"], {"a": ["F1"], "b": []})
    assert labels.shape == (3, 2) and not labels.any()
    some = pd.DataFrame({"factor": ["F1", "F2"], "window": [2, 0]})
    np.testing.assert_array_equal(clean_labels(3, some, ["a", "b"], {"a": ["F1"], "b": ["F2", "F1"]}),
                                  [[0, 1], [0, 0], [1, 1]])


def test_a_fasta_saved_with_a_byte_order_mark_reads_as_written(tmp_path):
    """htslib reads past the mark; the check that the first line is a header took the mark
    for text before it ("its first line is not a '>' header (b'\\xef\\xbb\\xbf>r1')")."""
    from dnacnn.data.labelled_fasta import read_fasta_records

    path = tmp_path / "bom.fa"
    path.write_bytes(b"\xef\xbb\xbf>chr1:0-8 peak\nACGTacgt\n>r2\nGGNN\n")
    assert read_fasta_records(path) == [("chr1:0-8 peak", "ACGTACGT"), ("r2", "GGNN")]
