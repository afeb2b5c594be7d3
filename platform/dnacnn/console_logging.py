"""The console of every dnacnn entrypoint (the ``dnacnn`` command, the Ray job scripts in
``jobs/``): the job's own progress lines, one format, without the libraries' routine notices."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


def setup(verbose: bool = False) -> None:
    """Log INFO (DEBUG when ``verbose``) to stderr as ``HH:MM:SS LEVEL logger: message``, and
    quiet what libraries say of their own routine (unless ``verbose``):

    - MLflow's ("Creating initial MLflow database tables", "Validating input example against
      model signature", "Waiting up to 300 seconds for model version to finish creation", and
      a tracking server's "View run ... at" links on stdout): the job says what it logged and
      registered. By module: importing mlflow sets its root "mlflow" logger's level again.
    - Ray's "Started a local Ray instance." and "Connected to Ray cluster": the job says it
      starts or joins one, and how many CPUs.
    - Ray Data's lines per dataset ("Execution plan", "execution finished", "Data sink Parquet
      finished"): the commands say what they wrote (read when Ray Data configures its
      loggers, on import and at each dataset's execution).

    Workers' lines that Ray forwards carry no colour codes when stderr is not a terminal.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not sys.stderr.isatty():  # workers' lines forwarded by Ray: no colour codes in a log file
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    if verbose:
        return
    for name in ("mlflow.store.db.utils", "mlflow.pyfunc", "mlflow.models", "mlflow.store.model_registry.abstract_store",
                 "ray._private.worker"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # "🏃 View run ... at", to stdout


def quiet_ray_serve() -> None:
    """Quiet Ray Serve's driver lines ("Started Serve in namespace", "Application ... is ready
    at"): the service says where it listens. Importing ``ray.serve`` sets its logger to INFO,
    so this runs after that import; ``dnacnn -v`` (the root logger at DEBUG) keeps them."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("ray.serve").setLevel(logging.WARNING)


@contextlib.contextmanager
def warnings_of(*loggers: str) -> Iterator[list[str]]:
    """The messages of the WARNING (and worse) records that ``loggers`` (names) emit inside the
    block, in order, for a job's summary; logged to the console as ever."""
    said: list[str] = []
    keep = logging.Handler(logging.WARNING)
    keep.emit = lambda record: said.append(record.getMessage())
    for name in loggers:
        logging.getLogger(name).addHandler(keep)
    try:
        yield said
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(keep)
