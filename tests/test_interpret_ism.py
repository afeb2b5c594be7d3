"""In-silico saturation mutagenesis: exact against brute force, strand-symmetric for RCAverage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FIXTURE_FASTA

from dnacnn.interpret import importance, ism
from dnacnn.interpret.plots import plot_importance_logo, plot_ism_heatmap
from dnacnn.models import BassetConfig, MultiScaleConfig, RCAverage, build, link, predict, predict_logits
from dnacnn.sequence import reverse_complement_onehot


def _basset(n_tasks=3, seq_len=64):
    torch.manual_seed(0)
    cfg = BassetConfig(seq_len=seq_len, n_tasks=n_tasks, conv_filters=(8, 8), conv_widths=(7, 3),
                       pool_widths=(2, 2), hidden_units=(16,), hidden_dropouts=(0.1,))
    return build("basset", cfg).eval()


def _onehot(n, length, seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, length))]


@pytest.mark.parametrize("task_type,scale", [("multitask", "probability"), ("multitask", "link"),
                                             ("multiclass", "probability")])
def test_ism_equals_brute_force_single_mutants(task_type, scale):
    model = _basset()
    onehot = _onehot(2, 64)
    onehot[1, 10] = 0  # an N: every base is a substitution there
    effects = ism(model, onehot, task_type, scale=scale, batch_size=37)
    assert effects.shape == (2, 64, 4, 3)
    for i in range(2):
        ref = onehot[i:i + 1]
        ref_score = (predict(model, ref, task_type) if scale == "probability"
                     else link(task_type, predict_logits(model, ref)))[0]
        for pos in (0, 10, 33, 63):
            for base in range(4):
                mutant = ref.copy()
                mutant[0, pos] = 0
                mutant[0, pos, base] = 1
                one = (predict(model, mutant, task_type) if scale == "probability"
                       else link(task_type, predict_logits(model, mutant)))[0]
                expected = np.zeros(3) if ref[0, pos, base] else one - ref_score
                np.testing.assert_allclose(effects[i, pos, base], expected, atol=1e-6)
    assert (effects[0][onehot[0] == 1] == 0).all()  # reference bases: exactly 0
    assert np.abs(effects[1, 10]).sum() > 0  # the N row: all four bases are mutants


def test_ism_of_strand_averaged_model_is_the_same_from_either_strand():
    torch.manual_seed(1)
    model = RCAverage(build("multiscale", MultiScaleConfig(seq_len=50, filters=4, dense=(8,),
                                                           dense_dropouts=(0.1,), n_tasks=2))).eval()
    onehot = _onehot(1, 50, seed=3)
    forward = ism(model, onehot, "multitask")[0]  # (L, 4, T)
    reverse = ism(model, reverse_complement_onehot(onehot), "multitask")[0]
    # Position l, base b on the forward strand is position L-1-l, base 3-b on the reverse.
    np.testing.assert_allclose(reverse[::-1, ::-1], forward, atol=1e-6)
    assert np.abs(forward).max() > 1e-4
    # The plain model is not symmetric: the check can fail.
    plain = ism(model.model, onehot, "multitask")[0]
    plain_rev = ism(model.model, reverse_complement_onehot(onehot), "multitask")[0]
    assert np.abs(plain_rev[::-1, ::-1] - plain).max() > 1e-4


def test_importance_is_the_mean_loss_of_mutating_away_and_plots_have_axes():
    onehot = _onehot(1, 4)
    effects = np.zeros((1, 4, 4, 1))
    effects[0, 2, :, 0] = [-0.3, -0.3, -0.3, -0.3]
    effects[0, 2][onehot[0, 2] == 1] = 0
    imp = importance(effects, onehot)
    assert imp.shape == (1, 4, 1)
    np.testing.assert_allclose(imp[0, :, 0], [0, 0, 0.3, 0])
    ax = plot_ism_heatmap(effects[0, :, :, 0], onehot[0], title="ISM t0")
    assert ax.get_title() == "ISM t0" and [t.get_text() for t in ax.get_yticklabels()] == list("ACGT")
    ax = plot_importance_logo(imp[0, :, 0], onehot[0], title="importance")
    assert ax.get_ylabel() == "importance" and ax.get_xlabel() == "position (bp)"


def test_ism_command_for_a_variant_window_writes_tables_plots_and_page(tmp_path):
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save


    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    out = tmp_path / "ism"
    # 20:60101 (1-based) is G on the fixture genome (an all-ACGT stretch from 60,000).
    done = CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--genome",
                                    str(FIXTURE_FASTA), "--variant", "20:60101:G>A", "--task", "t1",
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    table = pd.read_parquet(out / "ism.parquet")
    assert list(table.columns) == ["sequence", "position", "ref", "base", "t1"] and len(table) == 64 * 4
    assert table["sequence"].iloc[0] == "20:60068-60132"  # window start = p - L//2
    assert table.loc[table["position"] == 32, "ref"].iloc[0] == "G"  # the variant at the window's L//2
    assert (table.loc[table["ref"] == table["base"], "t1"] == 0).all()
    assert (out / "ism_0_0.png").exists() and "'ism_0_0.png'" in (out / "index.html").read_text()
    bad = CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--genome",
                                   str(FIXTURE_FASTA), "--variant", "20:60101:C>A", "--out", str(out)])
    assert bad.exit_code == 2 and "does not match the reference 'G'" in bad.output


def test_ism_command_refuses_a_fasta_record_with_characters_that_are_not_dna(tmp_path):
    """'XZ*1' in a record was read as four N bases and the mutagenesis reported without a word."""
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(f">ok\n{'ACGT' * 16}\n>lower_iupac\n{'acgtRYKMN' * 7}A\n>junk\n{'ACGT' * 15}XZ*1\n")
    done = CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--fasta",
                                    str(fasta), "--out", str(tmp_path / "ism")])
    assert done.exit_code == 2 and "Traceback" not in done.output
    assert f"{fasta}: record junk has 'X' at base 61 (1-based)" in " ".join(done.output.split())
    assert not (tmp_path / "ism").exists()
    # --genome does nothing with --fasta: said, not ignored (ism here; filters and attention the same)
    for command in ("ism", "filters"):
        both = CliRunner().invoke(app, ["interpret", command, "--model", str(tmp_path / "model"), "--fasta",
                                        str(fasta), "--genome", str(FIXTURE_FASTA), "--out", str(tmp_path / "o")])
        assert both.exit_code == 2 and "--genome is read only with" in both.output, both.output


@pytest.mark.parametrize("command", ["ism", "filters", "attention"])
def test_interpret_commands_refuse_an_out_that_is_a_file_before_any_work(tmp_path, command):
    """--out naming a file: '[Errno 17] File exists' after the model and sequences were read
    (for filters, before TomTom); now the one output-folder check, first."""
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(f">a\n{'ACGT' * 16}\n")
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for out, reason in ((taken, "is a file, not a folder"), (taken / "sub", f"cannot be created: {taken} is a file")):
        done = CliRunner().invoke(app, ["interpret", command, "--model", str(tmp_path / "model"), "--fasta",
                                        str(fasta), "--out", str(out)])
        assert done.exit_code == 2 and f"--out {out} {reason}" in " ".join(done.output.split()), done.output


def test_a_place_off_its_contig_is_refused_not_read_as_an_all_n_window(tmp_path):
    """--region 20:99999999-100000009 (contig 20 has 63,025,520 bp), --region 20:0-10 (no
    base 0 in 1-based coordinates) and a BED interval past the contig's end were
    interpreted as windows of N, exit 0; a variant there was said not to match 'N'."""
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    from conftest import FIXTURE_FASTA

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    bed = tmp_path / "past.bed"
    bed.write_text("20\t60000\t60100\n20\t99999999\t100000100\n")
    contig = "is not within contig '20' (1-based 1-63025520)"
    for args, what in (
        (["ism", "--region", "20:99999999-100000009"], "--region 20:99999999-100000009"),
        (["ism", "--region", "20:0-10"], "--region 20:0-10"),
        (["ism", "--variant", "20:0:A>G"], "--variant 20:0:A>G"),
        (["ism", "--variant", "20:63025520:AC>A"], "--variant 20:63025520:AC>A"),
        (["filters", "--bed", str(bed)], f"{bed}: interval 20:99999999-100000100"),
    ):
        done = CliRunner().invoke(app, ["interpret", *args, "--model", str(tmp_path / "model"), "--genome",
                                        str(FIXTURE_FASTA), "--out", str(tmp_path / "out")])
        assert done.exit_code == 2 and f"{what} {contig}" in " ".join(done.output.split()), done.output
    assert not (tmp_path / "out").exists()


def test_a_reversed_or_digitless_region_is_named_in_its_error():
    """--region 20:100099-100000 said "needs 1 to 100 bp, got -98"; 20:,-, failed in int()
    with "invalid literal for int() with base 10: ''", naming nothing."""
    from dnacnn.interpret.inputs import region_sequence

    from conftest import FIXTURE_FASTA

    with pytest.raises(ValueError, match="--region 20:100099-100000: its end comes before its start"):
        region_sequence(FIXTURE_FASTA, "20:100099-100000", 100)
    with pytest.raises(ValueError, match="--region '20:,-,' is not chr:start-end"):
        region_sequence(FIXTURE_FASTA, "20:,-,", 100)
    assert region_sequence(FIXTURE_FASTA, "20:60,001-60,100", 100).names == ["20:60000-60100"]


def test_fasta_records_with_one_name_or_of_two_lengths_are_named_in_the_error(tmp_path):
    """Two records named 'a' were both reported under 'a' (ism.parquet could not tell them
    apart); records of two lengths (a model of any length) were refused without a name."""
    from dnacnn.interpret.inputs import fasta_sequences

    fasta = tmp_path / "seqs.fa"
    fasta.write_text(f">a\n{'ACGT' * 16}\n>b\n{'ACGT' * 16}\n>a\n{'TGCA' * 16}\n")
    with pytest.raises(ValueError, match="seqs.fa: record a is the name of record 1 too \\(record 3\\)"):
        fasta_sequences(fasta, 64)
    fasta.write_text(f">a\n{'ACGT' * 16}\n>b\n{'ACGT' * 20}\n")
    with pytest.raises(ValueError, match="seqs.fa: record b has 80 bases; record a has 64"):
        fasta_sequences(fasta, None)
    fasta.write_text(f">a x\n{'ACGT' * 16}\n>a y\n{'ACGT' * 16}\n")  # names with their descriptions
    assert fasta_sequences(fasta, 64).names == ["a x", "a y"]


def test_an_empty_fasta_record_is_refused_for_a_model_of_any_length(tmp_path):
    """For the multi-scale model (any length), FASTA records without bases reached the first
    convolution: torch's 'Kernel size can't be greater than actual input size' stack trace,
    exit 1; an empty first record gave 'record b has 4 bases; record a has 0: cut or pad it
    to 0 bp'."""
    from dnacnn.interpret.inputs import fasta_sequences

    fasta = tmp_path / "seqs.fa"
    for text in (">a\n>b\n", ">a\n\n>b\nACGT\n"):
        fasta.write_text(text)
        with pytest.raises(ValueError, match="seqs.fa: record a is empty"):
            fasta_sequences(fasta, None)


def test_ism_command_plots_the_first_max_plots_sequences_and_tabulates_all(tmp_path):
    """A FASTA of 40 records drew 40 x 3 figures (92 s here; 10,000 records, 30,000 figures
    in one page); now the tables hold every record and --max-plots (default 12) are drawn."""
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    rng = np.random.default_rng(0)
    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 64))}\n" for i in range(5)))
    out = tmp_path / "ism"
    done = CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--fasta", str(fasta),
                                    "--task", "t0", "--task", "t2", "--max-plots", "2", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.glob("*.png")) == ["ism_0_0.png", "ism_0_1.png", "ism_1_0.png", "ism_1_1.png"]
    assert list(pd.read_parquet(out / "importance.parquet")["sequence"].unique()) == [f"r{i}" for i in range(5)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sequences"] == 5 and summary["plotted"] == 2


def test_a_second_report_in_the_same_folder_leaves_none_of_the_firsts_figures(tmp_path):
    """Re-running into one --out kept the figures of a longer earlier run (ism_2_0.png ...
    of other sequences, or of another model) beside the new page, and for a registry model
    logged them to its run as its own. A bad --task no longer creates or clears the folder."""
    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    rng = np.random.default_rng(0)
    fasta = tmp_path / "seqs.fa"
    out = tmp_path / "ism"

    def run(records: int, *more: str, task: str = "t0", where: Path = out):
        fasta.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 64))}\n" for i in range(records)))
        return CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--fasta", str(fasta),
                                        "--task", task, "--out", str(where), *more])

    assert run(3).exit_code == 0 and len(list(out.glob("ism_*.png"))) == 3
    (out / "notes.txt").write_text("mine")
    assert run(1).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["importance.parquet", "index.html", "ism.parquet", "ism_0_0.png",
                                                    "notes.txt", "summary.json"]
    assert run(1, task="nope").exit_code == 2 and (out / "ism_0_0.png").exists()
    assert run(1, task="nope", where=tmp_path / "new").exit_code == 2 and not (tmp_path / "new").exists()
    # a --scale it does not know: refused before the folder is cleared (was: the report gone)
    refused = run(1, "--scale", "logits")
    assert refused.exit_code == 2 and "--scale 'logits' is not one of probability, link" in refused.output
    assert (out / "ism_0_0.png").exists() and (out / "ism.parquet").exists()
    twice = run(1, "--task", "t0")  # t0 twice: reported once (was: "tasks": ["t0", "t0"], two figures of it)
    assert twice.exit_code == 0 and json.loads((out / "summary.json").read_text())["tasks"] == ["t0"]


def test_ism_report_keeps_only_the_chosen_tasks_of_a_few_sequences_at_a_time(tmp_path):
    """ism_report computed the (N, L, 4, T) effects of every task for all N sequences at once
    and then kept the chosen ones: for a Basset of 164 tasks and 600 bp, 3 MB per sequence
    and array, so a FASTA of 10,000 records needed about 100 GB. Now ISM_CHUNK sequences at a
    time; the numbers are those of one call."""
    import tracemalloc

    from dnacnn.interpret.inputs import Sequences
    from dnacnn.interpret.report import ISM_CHUNK, ism_report
    from dnacnn.models import LoadedModel

    model, n, length, tasks = _basset(n_tasks=164, seq_len=32), 4 * ISM_CHUNK, 32, [f"t{i}" for i in range(164)]
    loaded = LoadedModel(model, "basset", model.config, tasks, length, "multitask")
    onehot = _onehot(n, length)
    seqs = Sequences([f"s{i}" for i in range(n)], onehot)
    tracemalloc.start()
    try:
        ism_report(loaded, seqs, tmp_path / "ism", tasks=["t7"], max_plots=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = n * length * 4 * len(tasks) * 8  # one float64 (N, L, 4, T) array: 43 MB
    assert peak < whole, (peak, whole)
    table = pd.read_parquet(tmp_path / "ism" / "ism.parquet")
    expected = ism(model, onehot, "multitask")[..., 7]  # (N, L, 4)
    np.testing.assert_allclose(table["t7"].to_numpy().reshape(n, length, 4), expected, rtol=0, atol=1e-12)


def test_ism_of_models_name_latest_is_logged_to_the_run_of_that_version(tmp_path, mlflow_uri):
    """--model models:/NAME/latest (a URI MLflow loads) ran the whole report and then failed:
    "'models:/NAME/latest' is not a model URI", nothing logged. The run is now found right
    after the model loads (MLflow resolves 'latest'), before the work."""
    import mlflow
    from typer.testing import CliRunner

    from dnacnn import registry
    from dnacnn.cli import app
    from dnacnn.config import MlflowConfig
    from dnacnn.models import save

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    logged = registry.log_training_run(registry.TrainingRun(
        config={"model": {"name": "basset"}}, checkpoint_dir=tmp_path / "model",
        history=[{"epoch": 1, "val_loss": 0.2}], final_metrics={"best_val_loss": 0.2},
        tasks=["t0", "t1", "t2"], task_type="multitask", seq_len=64, model_name="basset",
        dataset_name="toy", example=["A" * 64, "C" * 64],
    ), MlflowConfig(experiment="interpret", registered_model="toy-ism"))
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(f">a\n{'ACGT' * 16}\n")
    done = CliRunner().invoke(app, ["interpret", "ism", "--model", "models:/toy-ism/latest", "--fasta", str(fasta),
                                    "--task", "t0", "--out", str(tmp_path / "ism")])
    assert done.exit_code == 0, done.output
    run_id = mlflow.MlflowClient().get_model_version("toy-ism", logged.version).run_id
    logged_to = json.loads(done.stdout)["logged_to"]
    assert logged_to.startswith(f"runs:/{run_id}/interpretation/ism/")
    names = {a.path.rsplit("/", 1)[-1] for a in mlflow.MlflowClient().list_artifacts(run_id, logged_to.split("/", 2)[2])}
    assert {"ism.parquet", "index.html"} <= names

    # logging that fails (the run's artifact folder cannot be written) says the report is whole
    artifacts = Path(mlflow.MlflowClient().get_run(run_id).info.artifact_uri.removeprefix("file://"))
    shutil.rmtree(artifacts / "interpretation")
    (artifacts / "interpretation").write_text("a file where the folder goes")
    failed = CliRunner().invoke(app, ["interpret", "ism", "--model", "models:/toy-ism/latest", "--fasta",
                                      str(fasta), "--task", "t0", "--out", str(tmp_path / "ism2")])
    assert failed.exit_code == 2 and (tmp_path / "ism2" / "index.html").exists()
    assert failed.output.startswith(f"error: the report is written in full in {tmp_path / 'ism2'}, but logging it to "
                                    f"the model's run {run_id} failed: "), failed.output


def test_a_variant_window_takes_the_variants_the_scorer_scores():
    """--variant had a REF rule of its own: REF 'N' at a G, or REF 'A' where the genome is N
    (scored by `dnacnn score`, N matching any base) was refused as not matching the
    reference; now the scorer's check (dnacnn.variants.check_ref) decides."""
    from conftest import FIXTURE_FASTA
    from dnacnn.genome import Genome
    from dnacnn.interpret.inputs import variant_sequence
    from dnacnn.variants import check_allele

    genome = Genome(FIXTURE_FASTA)
    assert genome.fetch("20", 60100, 60101) == "G" and genome.fetch("20", 99, 100) == "N"
    for chrom, pos, ref, alt in (("20", 60101, "N", "A"), ("20", 100, "A", "G"), ("chr20", 60101, "g", "A")):
        assert check_allele(genome, chrom, pos, ref, alt)[1] is None
        window = variant_sequence(FIXTURE_FASTA, f"{chrom}:{pos}:{ref}>{alt}", 64)
        assert window.names == [f"{chrom}:{pos - 1 - 32}-{pos - 1 + 32}"]
    with pytest.raises(ValueError, match="does not match the reference 'G'"):
        variant_sequence(FIXTURE_FASTA, "20:60101:C>A", 64)


def test_a_variant_is_recorded_in_the_summary_and_alt_equal_to_ref_refused(tmp_path):
    """--variant 20:60101:G>G ran (exit 0); any ALT gave the same summary.json, which did
    not name the variant: G>A and G>G + 72 bp were one report. ALT = REF is now refused in
    one line (the scorer's rule); the summary records the variant and, for an SNV, its
    effect, the ISM entry of ALT at its position."""
    import warnings

    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")

    def run(variant: str, out: str):
        return CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--genome",
                                        str(FIXTURE_FASTA), "--variant", variant, "--out", str(tmp_path / out)])

    same = run("20:60101:G>G", "same")
    assert same.exit_code == 2 and len(same.output.strip().splitlines()) == 1, same.output
    assert "--variant 20:60101:G>G" in same.output and "ALT 'G' at 20:60101 is the REF allele itself" in same.output
    assert not (tmp_path / "same").exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run("20:60101:g>a", "snv").exit_code == 0
    assert [str(w.message) for w in caught] == []
    snv = json.loads((tmp_path / "snv" / "summary.json").read_text())["variant"]
    table = pd.read_parquet(tmp_path / "snv" / "ism.parquet")
    at_alt = table[(table["position"] == 32) & (table["base"] == "A")].iloc[0]
    assert {k: snv[k] for k in ("chrom", "pos", "ref", "alt", "kind", "position")} == {
        "chrom": "20", "pos": 60101, "ref": "G", "alt": "A", "kind": "SNV", "position": 32}
    assert snv["effect"] == {t: at_alt[t] for t in ("t0", "t1", "t2")} and snv["effect"]["t0"] != 0
    insertion = "G" + "ACGTAAGG" * 9
    assert run(f"20:60101:G>{insertion}", "ins").exit_code == 0
    ins = json.loads((tmp_path / "ins" / "summary.json").read_text())["variant"]
    assert (ins["alt"], ins["kind"], "effect" in ins) == (insertion, "insertion", False)
    assert "ALT is not applied" in ins["ism"]


def test_an_all_n_window_is_plotted_without_warnings(tmp_path):
    """--region in an all-N stretch printed 4 logomaker 'identical low and high ylims'
    warnings (one per task's importance logo, all heights 0) with their source paths."""
    import warnings

    from typer.testing import CliRunner

    from dnacnn.cli import app
    from dnacnn.models import save

    save(_basset(), tmp_path / "model", ["t0", "t1", "t2"], task_type="multitask")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = CliRunner().invoke(app, ["interpret", "ism", "--model", str(tmp_path / "model"), "--genome",
                                        str(FIXTURE_FASTA), "--region", "20:101-164", "--out", str(tmp_path / "o")])
        ax = plot_importance_logo(np.zeros(64), np.zeros((64, 4), np.uint8))
    assert done.exit_code == 0, done.output
    assert pd.read_parquet(tmp_path / "o" / "importance.parquet")["ref"].eq("N").all()
    assert [str(w.message) for w in caught] == []
    assert ax.get_ylim() == (-1, 1) and ax.get_xlim() == (-0.5, 63.5)
