"""The ``dnacnn`` command. Each capability registers its subcommands from its own module."""

from __future__ import annotations

import typer

from dnacnn import console_logging
from dnacnn.cli.errors import OneLineErrorsTyper

app = OneLineErrorsTyper(
    help="dnacnn: train CNNs on DNA sequence and score variants genome-wide, on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    console_logging.setup(verbose)


# Registration: importing each module adds its commands to `app`.
from dnacnn.cli import cluster_commands, data_commands, genome_commands, main_job, score_commands, serve_commands, train_commands  # noqa: E402,F401
from dnacnn.cli import interpret_commands  # noqa: E402,F401
