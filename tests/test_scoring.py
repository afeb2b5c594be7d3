"""VariantScorer: scores, RC averaging, checks with reasons, the Ray Data callable class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import FIXTURE_FASTA
from dnacnn import models
from dnacnn.genome import Genome
from dnacnn.scoring import VariantScorer, variant_windows
from dnacnn.sequence import reverse_complement_onehot

REAL = 150_000  # 0-based, inside the fixture's real chr20 sequence
TASKS = ["HepG2", "K562", "GM12878 ", "H1-hESC"]  # a trailing space, as in Basset's Roadmap names


def tiny_model(seed: int = 0, seq_len: int = 100, n_tasks: int = 4) -> torch.nn.Module:
    """A small randomly initialised CNN with weights large enough for deltas far from 0."""
    torch.manual_seed(seed)
    model = models.build("simple", dict(
        seq_len=seq_len, n_tasks=n_tasks, filters=8, width=7, pool_width=4, hidden_units=16,
        conv_dropout=0.0, hidden_dropout=0.0,
    ))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.4)
    return model.eval()


def save_tiny(directory, seed: int = 0, seq_len: int = 100, tasks=TASKS):
    models.save(tiny_model(seed, seq_len, len(tasks)), directory, tasks, task_type="multitask")
    return directory


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(FIXTURE_FASTA)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("model"))


def real_snvs(genome: Genome, n: int, start: int = REAL, step: int = 37) -> pd.DataFrame:
    rows = []
    for i in range(n):
        p = start + i * step
        ref = genome.fetch("20", p, p + 1)
        rows.append({"chrom": "20", "pos": p + 1, "ref": ref, "alt": "ACGT"[("ACGT".index(ref) + 1 + i % 3) % 4]})
    return pd.DataFrame(rows)


def test_score_onehot_definitions(genome):
    scorer = VariantScorer(tiny_model(), genome, tasks=TASKS)
    df = real_snvs(genome, 10)
    ref, alt = variant_windows(genome, df.chrom, df.pos - 1, df.ref, df.alt, scorer.seq_len)
    out = scorer.score_onehot(ref, alt)
    assert {k: v.shape for k, v in out.items()} == {k: (10, 4) for k in ("p_ref", "p_alt", "delta", "logit_delta")}
    np.testing.assert_allclose(out["delta"], out["p_alt"] - out["p_ref"], atol=1e-7)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    p_ref, p_alt = out["p_ref"].astype(np.float64), out["p_alt"].astype(np.float64)
    unsaturated = (np.minimum(p_ref, p_alt) > 1e-3) & (np.maximum(p_ref, p_alt) < 1 - 1e-3)
    assert unsaturated.mean() > 0.5
    np.testing.assert_allclose(out["logit_delta"][unsaturated], (logit(p_alt) - logit(p_ref))[unsaturated], atol=1e-3)
    assert np.abs(out["delta"]).max() > 0.01  # the model does react to single bases
    same = scorer.score_onehot(ref, ref)
    assert np.all(same["delta"] == 0) and np.all(same["logit_delta"] == 0)
    small = VariantScorer(tiny_model(), genome, tasks=TASKS, batch_size=3).score_onehot(ref, alt)
    np.testing.assert_allclose(small["delta"], out["delta"], atol=1e-6)  # batching changes nothing
    with pytest.raises(ValueError, match="length 99"):
        scorer.score_onehot(ref[:, :99], alt[:, :99])


def test_rc_averaging_makes_delta_strand_symmetric(genome):
    df = real_snvs(genome, 12)
    model = tiny_model(seed=3)
    plain = VariantScorer(model, genome, tasks=TASKS)
    both = VariantScorer(model, genome, tasks=TASKS, rc=True)
    ref, alt = variant_windows(genome, df.chrom, df.pos - 1, df.ref, df.alt, plain.seq_len)
    ref_rc, alt_rc = reverse_complement_onehot(ref), reverse_complement_onehot(alt)

    forward, reverse = plain.score_onehot(ref, alt), plain.score_onehot(ref_rc, alt_rc)
    assert np.abs(forward["delta"] - reverse["delta"]).max() > 1e-3  # one strand alone is not symmetric

    a, b = both.score_onehot(ref, alt), both.score_onehot(ref_rc, alt_rc)
    for key in ("p_ref", "p_alt", "delta", "logit_delta"):
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)
    # probabilities (not logits) are averaged over the strands
    np.testing.assert_allclose(a["p_ref"], (forward["p_ref"] + reverse["p_ref"]) / 2, atol=1e-6)
    np.testing.assert_allclose(a["delta"], (forward["delta"] + reverse["delta"]) / 2, atol=1e-6)
    np.testing.assert_allclose(a["logit_delta"], (forward["logit_delta"] + reverse["logit_delta"]) / 2, atol=1e-5)


def test_score_dataframe_scores_good_rows_and_rejects_bad_ones_with_reasons(genome, model_dir):
    scorer = VariantScorer(str(model_dir), genome)  # a checkpoint folder: loaded by the scorer
    assert scorer.tasks == TASKS and scorer.seq_len == 100
    base = genome.fetch("20", REAL, REAL + 1)
    other = "A" if base != "A" else "C"
    two = genome.fetch("20", REAL, REAL + 2)
    df = pd.DataFrame([
        ("20", REAL + 1, "rs1", base, other),  # SNV
        ("chr20", REAL + 1, "rs2", two, two[0]),  # deletion, alias chr20 -> 20
        ("20", REAL + 1, "rs3", base, base + "GG"),  # insertion
        ("21", REAL + 1, "rs4", base, other),  # unknown_contig
        ("20", REAL + 1, "rs5", other, base),  # ref_mismatch
        ("20", REAL + 1, "rs6", base, "<DEL>"),  # symbolic_allele
        ("20", REAL + 1, "rs7", base, "."),  # missing_alt
        ("20", REAL + 1, "rs8", base, "AXG"),  # invalid_allele
        ("20", REAL + 1, "rs9", base, "A,T"),  # invalid_allele: one row per ALT
        ("20", 0, "rs10", base, other),  # malformed POS
    ], columns=["chrom", "pos", "id", "ref", "alt"])
    out = scorer.score_dataframe(df)
    assert list(out["id"]) == list(df["id"])  # same rows, same order
    assert list(out["reason"]) == [None, None, None, "unknown_contig", "ref_mismatch", "symbolic_allele",
                                   "missing_alt", "invalid_allele", "invalid_allele", "malformed"]
    assert list(out["kind"][:3]) == ["SNV", "deletion", "insertion"]
    for i in range(3):
        assert out["delta"][i].shape == (4,) and out["delta"][i].dtype == np.float32
        assert out["max_task"][i] == TASKS[int(np.abs(out["delta"][i]).argmax())]
        assert out["max_abs_delta"][i] == pytest.approx(np.abs(out["delta"][i]).max())
    assert "21:" in out["message"][3] and "genome build" in out["message"][4]
    assert "REF" in out["message"][4] and f"20:{REAL + 1}" in out["message"][4]
    assert out["max_abs_delta"][3:].isna().all() and all(np.isnan(d).all() for d in out["delta"][3:])
    with pytest.raises(ValueError, match="alt"):
        scorer.score_dataframe(df.drop(columns=["alt"]))
    with pytest.raises(TypeError, match="score_dataframe takes a pandas DataFrame, got a dict"):
        scorer.score_dataframe(df.to_dict("list"))  # was AttributeError: 'dict' ... 'columns'


def test_a_dataframe_with_an_input_column_twice_is_refused(genome):
    """Two 'alt' columns: AttributeError: 'DataFrame' object has no attribute 'tolist' from
    score_dataframe and from __call__; now a ValueError naming the column."""
    scorer = VariantScorer(tiny_model(), genome, tasks=TASKS)
    df = real_snvs(genome, 2)
    twice = pd.concat([df, df[["alt"]]], axis=1)
    for score in (scorer.score_dataframe, scorer):
        with pytest.raises(ValueError, match="the DataFrame has column\\(s\\) alt more than once"):
            score(twice)
    extra = pd.concat([df, pd.DataFrame({"note": ["a", "b"]}), pd.DataFrame({"note": ["c", "d"]})], axis=1)
    assert list(scorer.score_dataframe(extra)["kind"]) == ["SNV", "SNV"]  # other repeated columns pass through


def test_a_module_with_names_or_a_length_it_contradicts_is_refused(genome):
    """VariantScorer(model with 4 outputs, tasks=['a']) was built, then scoring failed with
    numpy's 'cannot reshape array of size 4 into shape (1,1,1)'; seq_len=50 for a 100 bp
    model with torch's 'mat1 and mat2 shapes cannot be multiplied'."""
    with pytest.raises(ValueError, match="1 task name\\(s\\) for a model with 4 outputs"):
        VariantScorer(tiny_model(), genome, tasks=["a"])
    with pytest.raises(ValueError, match="seq_len 50 for a model built for 100 bp windows"):
        VariantScorer(tiny_model(), genome, tasks=TASKS, seq_len=50)
    assert VariantScorer(tiny_model(), genome, tasks=TASKS, seq_len=100).seq_len == 100


def test_columns_of_different_lengths_are_refused_not_cut_to_the_shortest(genome):
    """scorer({'chrom': 2 values, 'pos'/'ref'/'alt': 1}) returned 1 score beside 2 chroms
    (zip cut the rows); score_alleles raised numpy's 'cannot reshape array of size 1'. A single
    value for a column was "TypeError: 'int' object is not iterable"."""
    scorer = VariantScorer(tiny_model(), genome, tasks=TASKS)
    df = real_snvs(genome, 2)
    ragged = {"chrom": list(df["chrom"]), **{k: list(df[k][:1]) for k in ("pos", "ref", "alt")}}
    for score in (lambda: scorer(ragged), lambda: scorer.score_columns(*ragged.values())):
        with pytest.raises(ValueError, match="chrom, pos, ref, alt have 2, 1, 1, 1 rows"):
            score()
    with pytest.raises(TypeError, match=r"pos is a single value \(150001\); give a column"):
        scorer.score_columns(["20"], 150001, ["C"], ["A"])


def test_series_are_read_by_position_and_the_callers_index_is_kept(genome):
    """Series of a sorted or filtered frame (index not 0..N-1) were read by label after being
    checked by position: a reversed frame got each other's scores, an index [5] a KeyError;
    score_dataframe returned an index 0..N-1, so its scores joined back to nothing. A contig
    column of numbers with a missing one (float in pandas) was 'CHROM 20.0 is missing'."""
    scorer = VariantScorer(tiny_model(), genome, tasks=TASKS)
    df = real_snvs(genome, 3)
    forward = scorer.score_dataframe(df)["max_abs_delta"].to_numpy()
    backward = df.iloc[::-1]
    got = scorer.score_columns(backward["chrom"], backward["pos"], backward["ref"], backward["alt"])
    np.testing.assert_array_equal(got["max_abs_delta"], forward[::-1])
    labelled = df.set_index(pd.Index([42, 7, 5]))
    out = scorer.score_dataframe(labelled)
    assert out.index.tolist() == [42, 7, 5]
    np.testing.assert_array_equal(labelled.join(out[["max_abs_delta"]])["max_abs_delta"], forward)
    numbers = df.assign(chrom=[20.0, 20.0, np.nan])
    verdicts = scorer.score_dataframe(numbers)
    assert verdicts["reason"].tolist()[:2] == [None, None] and verdicts["reason"].iloc[2] == "malformed"
    np.testing.assert_array_equal(verdicts["max_abs_delta"].to_numpy()[:2], forward[:2])


def test_rows_checked_already_score_as_rows_checked_here(genome):
    """The batch job's reader checks each allele; handing their kinds over skips the second
    check and gives the same table. A count of kinds that is not the rows' is refused."""
    import pyarrow as pa

    scorer = VariantScorer(tiny_model(), genome, tasks=TASKS)
    table = pa.Table.from_pandas(real_snvs(genome, 5))
    checked = scorer(table, kinds=["SNV"] * 5)
    assert checked.equals(scorer(table))
    with pytest.raises(ValueError, match="4 kinds for 5 rows"):
        scorer(table, kinds=["SNV"] * 4)


def test_checkpoint_folder_and_module_score_alike(genome, model_dir):
    df = real_snvs(genome, 6)
    from_dir = VariantScorer(str(model_dir), genome).score_dataframe(df)
    from_module = VariantScorer(tiny_model(), genome, tasks=TASKS).score_dataframe(df)
    np.testing.assert_allclose(np.stack(from_dir["delta"]), np.stack(from_module["delta"]), atol=1e-6)


def test_call_keeps_the_batch_format(genome):
    import pyarrow as pa

    scorer = VariantScorer(tiny_model(), genome, tasks=TASKS)
    df = real_snvs(genome, 5)
    arrow = scorer(pa.Table.from_pandas(df))
    assert arrow.schema.field("delta").type == pa.list_(pa.float32(), 4)
    assert arrow.schema.metadata[b"dnacnn.tasks"].decode().count('"') == 8
    numpy_out = scorer({k: df[k].to_numpy() for k in df.columns})
    assert numpy_out["delta"].shape == (5, 4)
    pandas_out = scorer(df)
    np.testing.assert_allclose(np.stack(arrow.column("delta").to_pylist()), numpy_out["delta"], atol=0)
    np.testing.assert_allclose(np.stack(pandas_out["delta"]), numpy_out["delta"], atol=0)


def test_variant_scorer_is_a_ray_data_callable_class(ray_session, genome, model_dir):
    """The same class in map_batches on an actor pool, loading its model from a folder in the actor."""
    import ray

    df = real_snvs(genome, 40, step=101)
    ds = ray.data.from_pandas(df).map_batches(
        VariantScorer,
        fn_constructor_kwargs={"model": str(model_dir), "genome": str(FIXTURE_FASTA), "num_threads": 1},
        compute=ray.data.ActorPoolStrategy(size=1),
        batch_size=16,
        batch_format="pyarrow",
        num_cpus=1,
    )
    got = ds.to_pandas().sort_values("pos").reset_index(drop=True)
    want = VariantScorer(str(model_dir), genome).score_dataframe(df)
    assert got["reason"].isna().all()
    np.testing.assert_allclose(np.stack(got["delta"]), np.stack(want["delta"]), atol=1e-6)
    assert list(got["max_task"]) == list(want["max_task"])


def test_bad_scorer_arguments_are_value_errors_naming_them(genome):
    """Python callers: a batch size that is not a whole number, or a device this machine cannot
    run on, is refused by name (was: '<' not supported, 1.5 read as 1, torch's AssertionError)."""
    for batch_size in ("8", None, 1.5, True, 0):
        with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
            VariantScorer(tiny_model(), genome, tasks=TASKS, batch_size=batch_size)
    for rc in ("false", "no", 0, None):  # bool("false") turned strand averaging on
        with pytest.raises(ValueError, match="rc must be True or False"):
            VariantScorer(tiny_model(), genome, tasks=TASKS, rc=rc)
    with pytest.raises(ValueError, match="'gpu' is not a torch device"):
        VariantScorer(tiny_model(), genome, tasks=TASKS, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"'cuda': torch sees 0 CUDA device\(s\)"):
            VariantScorer(tiny_model(), genome, tasks=TASKS, device="cuda")
