"""The three interpretation commands as library calls: resolve the model and the
sequences, write the report, log it beside a registry model."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from dnacnn.data.motifs import read_meme
from dnacnn.interpret import inputs
from dnacnn.interpret.artifacts import log_beside_model, model_run_id
from dnacnn.interpret.report import attention_report, filter_report, ism_report
from dnacnn.models import LoadedModel
from dnacnn.output_folder import check_output_folder
from dnacnn.registry import is_model_uri, load_model

log = logging.getLogger(__name__)


def _model(spec: str | Path) -> tuple[LoadedModel, str | None]:
    """The model, and for a registry URI the run that produced it (the report is logged
    there), found before any work: a URI whose run cannot be found fails here."""
    if not is_model_uri(str(spec)):
        if not Path(spec).is_dir():
            raise FileNotFoundError(f"--model {spec}: neither a registry URI (models:/..., runs:/...) "
                                    "nor a checkpoint folder")
        return load_model(Path(spec)), None
    loaded = load_model(str(spec))  # sets the tracking store that model_run_id reads
    return loaded, model_run_id(str(spec))


def _fixed_len(loaded: LoadedModel) -> int | None:
    """The input length a model requires (None: the multi-scale model takes any)."""
    return None if loaded.name == "multiscale" else loaded.seq_len


def _sequences(loaded: LoadedModel, dataset=None, split=None, fasta=None, genome=None, bed=None,
               max_sequences=None, labelled: bool = False, takes_bed: bool = True) -> inputs.Sequences:
    """The sequences of the one source given; ``split``: of the dataset (None: test);
    ``max_sequences``: a random subset of a dataset's rows, the first records of a FASTA;
    ``labelled``: a dataset's labels will be compared with the model's outputs, so its tasks
    must be the model's; ``takes_bed``: the command has --bed and --genome (a message names
    only the options it has)."""
    given = [name for name, v in (("--dataset", dataset), ("--fasta", fasta), ("--bed", bed)) if v]
    if len(given) != 1:
        options = "--dataset, --fasta, --bed (with --genome)" if takes_bed else "--dataset or --fasta"
        raise ValueError(f"give exactly one of {options}; got {given or 'none'}")
    if genome and not bed:
        raise ValueError(f"--genome is read only with --bed; {given[0]} needs no genome: leave --genome out")
    if split is not None and not dataset:
        raise ValueError(f"--split chooses a split of a --dataset; {given[0]} has none: leave --split out")
    if dataset:
        return inputs.dataset_sequences(dataset, split or "test", max_sequences, seq_len=_fixed_len(loaded),
                                        tasks=loaded.tasks if labelled else None)
    if fasta:
        return inputs.fasta_sequences(fasta, _fixed_len(loaded), max_sequences)
    if not genome:
        raise ValueError("--bed needs --genome (the indexed FASTA its intervals are on)")
    return inputs.bed_sequences(genome, bed, loaded.seq_len)


def _publish(run_id: str | None, out: Path, what: str, summary: dict) -> dict:
    """Log the report beside the model, in a folder of its own (``interpretation/WHAT/UTC time``:
    an earlier report's figures are not mixed with it), and say where it is."""
    at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    try:
        logged = log_beside_model(run_id, out, f"interpretation/{what}/{at}")
    except Exception as err:  # MLflow's or the store's own error: said with what was done before
        raise ValueError(f"the report is written in full in {out}, but logging it to the model's run {run_id} "
                         f"failed: {type(err).__name__}: {' '.join(str(err).split())[:300]}") from None
    if logged:
        log.info("logged %s to %s", out, logged)
        summary["logged_to"] = logged
    summary["index"] = str(out / "index.html")
    return summary


def interpret_filters(model: str | Path, out: str | Path, dataset=None, split=None, fasta=None,
                      genome=None, bed=None, max_sequences: int | None = None,
                      influence_sequences: int | None = 2000, motifs: str | Path | None = None,
                      max_logos: int | None = None, batch_size: int = 128) -> dict:
    """``dnacnn interpret filters``: the filter report (see ``report.filter_report``).

    ``motifs``: a MEME file to match against (default JASPAR 2024 CORE vertebrates).
    For a simulated dataset that recorded its implanted motifs, the summary counts
    the recovered ones.
    """
    check_output_folder(out, "--out")
    targets = read_meme(motifs) if motifs else None
    loaded, run_id = _model(model)
    seqs = _sequences(loaded, dataset, split, fasta, genome, bed, max_sequences, labelled=True)
    implanted = inputs.implanted_motifs(dataset) if dataset else None
    out = Path(out)
    summary = filter_report(loaded, seqs, out, targets=targets, implanted=implanted,
                            batch_size=batch_size, influence_sequences=influence_sequences,
                            max_logos=max_logos)
    return _publish(run_id, out, "filters", summary)


def interpret_attention(model: str | Path, out: str | Path, dataset=None, split=None, fasta=None,
                        max_sequences: int | None = 500, pad: int = 3, max_plots: int = 12) -> dict:
    """``dnacnn interpret attention``: attention maps of a multi-scale model."""
    check_output_folder(out, "--out")
    loaded, run_id = _model(model)
    if loaded.name != "multiscale":
        raise ValueError(f"--model {model} is a {loaded.name} model; attention maps need a "
                         "multi-scale model (MultiScaleCNN)")
    seqs = _sequences(loaded, dataset, split, fasta, max_sequences=max_sequences, takes_bed=False)
    out = Path(out)
    return _publish(run_id, out, "attention", attention_report(loaded, seqs, out, pad, max_plots))


def interpret_ism(model: str | Path, out: str | Path, genome=None, region=None, variant=None,
                  fasta=None, tasks: list[str] | None = None, scale: str = "probability",
                  max_plots: int = 12) -> dict:
    """``dnacnn interpret ism``: saturation mutagenesis of a region, a variant's window or
    FASTA records (tables of all, plots of the first ``max_plots``)."""
    given = [n for n, v in (("--region", region), ("--variant", variant), ("--fasta", fasta)) if v]
    if len(given) != 1:
        raise ValueError(f"give exactly one of --region, --variant (both with --genome) or --fasta; "
                         f"got {given or 'none'}")
    if (region or variant) and not genome:
        raise ValueError(f"{given[0]} needs --genome (an indexed FASTA)")
    if fasta and genome:
        raise ValueError("--genome is read only with --region or --variant; leave it out with --fasta")
    check_output_folder(out, "--out")
    loaded, run_id = _model(model)
    if fasta:
        seqs = inputs.fasta_sequences(fasta, _fixed_len(loaded))
    elif region:
        seqs = inputs.region_sequence(genome, region, loaded.seq_len)
    else:
        seqs = inputs.variant_sequence(genome, variant, loaded.seq_len)
    out = Path(out)
    return _publish(run_id, out, "ism", ism_report(loaded, seqs, out, tasks, scale, max_plots=max_plots))


def main_job_filter_report(model_uri: str, dataset: str | Path, out: str | Path,
                           max_sequences: int = 2000, influence_sequences: int = 300,
                           max_logos: int = 50) -> dict:
    """The main job's last step: the filter report of its trained model over (the first
    ``max_sequences`` windows of) the test split of its simulated task, logged beside the model; logs how many implanted
    factors the filters recover."""
    summary = interpret_filters(model_uri, out, dataset=dataset, split="test", max_sequences=max_sequences,
                                influence_sequences=influence_sequences, max_logos=max_logos)
    if "implanted" in summary:
        log.info("filters recover %d of %d implanted factors (TomTom best match, q < 0.05): %s",
                 summary["recovered"], summary["implanted"], out)
    return summary
