"""Turning input errors into one clear line and exit code 2, never a stack trace."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import typer

from dnacnn.genome import UnknownContigError
from dnacnn.reference_data import ReferenceDataError
from dnacnn.variants import VcfFormatError

#: Errors that mean "the input is wrong", as opposed to a bug.
USER_ERRORS = (
    FileNotFoundError, ValueError, UnknownContigError, VcfFormatError, ReferenceDataError, KeyError,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print the message of an input error and exit 2."""
    try:
        yield
    except USER_ERRORS as err:
        logging.getLogger("dnacnn").debug("input error", exc_info=True)
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
