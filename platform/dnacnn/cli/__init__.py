"""The ``dnacnn`` command. Each capability registers its subcommands from its own module."""

from __future__ import annotations

import logging
import os

import typer

from dnacnn.cli.errors import OneLineErrorsTyper

app = OneLineErrorsTyper(
    help="dnacnn: train CNNs on DNA sequence and score variants genome-wide, on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:  # MLflow's own progress ("Creating initial MLflow database tables", "Validating
        # input example against model signature"): the job says what it logged and registered.
        # By module: importing mlflow sets its root "mlflow" logger's level again.
        for name in ("mlflow.store.db.utils", "mlflow.pyfunc", "mlflow.models"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # and Ray's "Started a local Ray instance." (the job says it starts one, and how many CPUs)
        logging.getLogger("ray._private.worker").setLevel(logging.WARNING)
        # and Ray Data's lines per dataset ("Execution plan", "execution finished", "Data sink
        # Parquet finished"): the commands say what they wrote (read when Ray Data configures
        # its loggers, on import and at each dataset's execution)
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")


# Registration: importing each module adds its commands to `app`.
from dnacnn.cli import cluster_commands, data_commands, genome_commands, main_job, score_commands, serve_commands, train_commands  # noqa: E402,F401
from dnacnn.cli import interpret_commands  # noqa: E402,F401
