"""``dnacnn main``: the platform's main job, end to end on bundled real data."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import user_errors
from dnacnn.genome import Genome
from dnacnn.reference_data import fetch_vt_examples


@app.command("main")
def main(data_dir: Path = typer.Option(Path("data"), help="Data and results folder.")) -> None:
    """Get the real genome and summarise it."""
    with user_errors():
        vt = fetch_vt_examples(data_dir)
        genome = Genome(vt.chr20_fasta)
        typer.echo(json.dumps({"fasta": str(vt.chr20_fasta), "contigs": genome.lengths}, indent=2))
