"""``dnacnn interpret``: what a model learned, as motifs, attention maps and mutagenesis."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import path_option, user_errors

interpret_app = typer.Typer(help="What a model learned: filters as motifs, attention maps, ISM.",
                            no_args_is_help=True)
app.add_typer(interpret_app, name="interpret")

MODEL_HELP = "A registry URI (models:/NAME@alias, models:/NAME/3, runs:/...) or a checkpoint folder."


@interpret_app.command("filters")
def filters(
    model: str = typer.Option(..., help=MODEL_HELP),
    out: Path = path_option(..., help="Output folder (index.html, filters.tsv, filters.meme, plots)."),
    dataset: Path = path_option(None, help="Dataset folder (dnacnn format); its --split is used."),
    split: str = typer.Option(None, help="train, valid or test (default test); with --dataset."),
    fasta: Path = path_option(None, help="FASTA of sequences of the model's length (instead of --dataset)."),
    genome: Path = path_option(None, help="Indexed FASTA, with --bed."),
    bed: Path = path_option(None, help="BED intervals; a window of the model's length centred on each."),
    max_sequences: int = typer.Option(None, min=1, help="A random subset of this many dataset rows; the first "
                                                         "records of a --fasta."),
    influence_sequences: int = typer.Option(2000, min=1, help="Sequences used for the influence (the filter at its mean, per filter)."),
    motifs: Path = path_option(None, help="MEME file to match against (default: JASPAR 2024 CORE vertebrates)."),
    max_logos: int = typer.Option(None, min=0, help="Logos for this many filters, most influential first (default all)."),
) -> None:
    """First-layer filters as motifs: PFMs, influence, TomTom matches against JASPAR, logos."""
    from dnacnn.interpret.run import interpret_filters

    with user_errors():
        summary = interpret_filters(model, out, dataset=dataset, split=split, fasta=fasta, genome=genome,
                                    bed=bed, max_sequences=max_sequences,
                                    influence_sequences=influence_sequences, motifs=motifs, max_logos=max_logos)
    typer.echo(json.dumps(summary, indent=2))


@interpret_app.command("attention")
def attention(
    model: str = typer.Option(..., help=MODEL_HELP),
    out: Path = path_option(..., help="Output folder."),
    dataset: Path = path_option(None, help="Dataset folder; known motif sites are marked when recorded."),
    split: str = typer.Option(None, help="train, valid or test (default test); with --dataset."),
    fasta: Path = path_option(None, help="FASTA of sequences (instead of --dataset)."),
    max_sequences: int = typer.Option(500, min=1, help="A random subset of this many dataset rows; the first "
                                                        "records of a --fasta."),
    pad: int = typer.Option(3, min=0, help="bp around a motif site counted as the site."),
    max_plots: int = typer.Option(12, min=0, help="Sequences plotted."),
) -> None:
    """Attention maps of a multi-scale model, one track per branch width."""
    from dnacnn.interpret.run import interpret_attention

    with user_errors():
        summary = interpret_attention(model, out, dataset=dataset, split=split, fasta=fasta,
                                      max_sequences=max_sequences, pad=pad, max_plots=max_plots)
    typer.echo(json.dumps(summary, indent=2))


@interpret_app.command("ism")
def ism(
    model: str = typer.Option(..., help=MODEL_HELP),
    out: Path = path_option(..., help="Output folder."),
    genome: Path = path_option(None, help="Indexed FASTA, with --region or --variant."),
    region: str = typer.Option(None, help="chr:start-end (1-based, inclusive); the model's window centred on it."),
    variant: str = typer.Option(None, help="chr:pos:ref>alt; ISM of the reference window centred on it (REF "
                                                "checked; ALT not applied, an SNV's effect recorded in summary.json)."),
    fasta: Path = path_option(None, help="FASTA of sequences of the model's length."),
    task: list[str] = typer.Option([], help="Task(s) to report (repeatable; default the first 4)."),
    scale: str = typer.Option("probability", help="probability, or link (logits / log-probabilities)."),
    max_plots: int = typer.Option(12, min=0, help="Sequences plotted (the first ones; the tables hold all)."),
) -> None:
    """In-silico saturation mutagenesis: (L, 4, T) mutant - reference, heat map and importance logo."""
    from dnacnn.interpret.run import interpret_ism

    with user_errors():
        summary = interpret_ism(model, out, genome=genome, region=region, variant=variant, fasta=fasta,
                                tasks=task or None, scale=scale, max_plots=max_plots)
    typer.echo(json.dumps(summary, indent=2))
