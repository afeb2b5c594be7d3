"""Turning input errors into one clear line and exit code 2, never a stack trace."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from dnacnn.genome import UnknownContigError
from dnacnn.output_folder import OutputFolderError
from dnacnn.ray_cluster import ClusterResourceError, Interrupted, RayConnectionError
from dnacnn.reference_data import ReferenceDataError
from dnacnn.scoring.shards import ShardFailure
from dnacnn.variants import VcfFormatError
from dnacnn.variants.genome_agreement import GenomeMismatchError

#: Errors that mean "the input is wrong" (OSError: a file that cannot be read or written,
#: naming it; EOFError: a compressed file cut short, named by :mod:`dnacnn.compression`), as
#: opposed to a bug.
USER_ERRORS = (
    OSError, EOFError, ValueError, UnknownContigError, VcfFormatError, ReferenceDataError, KeyError,
    OutputFolderError, GenomeMismatchError, RayConnectionError, ClusterResourceError, ShardFailure,
)


def non_empty_path(value: str | Path) -> Path:
    """The parser of the commands' path options: ``--out ""`` (an unset shell variable) is
    refused as a usage error, where ``Path("")`` would quietly be the current folder."""
    if not str(value).strip():
        raise typer.BadParameter("is empty (an unset shell variable?): give a path")
    return Path(value)


def path_option(default, *names: str, **kwargs):
    """``typer.Option`` for a path: ``--out ""`` is a usage error (see :func:`non_empty_path`)."""
    return typer.Option(default, *names, parser=non_empty_path, **kwargs)


def report(err: Interrupted | Exception) -> int:
    """Print an input error on one line (an interruption: what was kept and how to go on)
    to stderr, as every entrypoint does (the commands, the Ray job scripts in ``jobs/``);
    return the exit status: 2, or 130 (the shell's SIGINT status) for an interruption."""
    if isinstance(err, Interrupted):  # Ctrl-C
        typer.secho(str(err), fg=typer.colors.YELLOW, err=True)
        return 130
    logging.getLogger("dnacnn").debug("input error", exc_info=err)
    message = " ".join(str(err).split())  # one line, whatever the message holds
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return 2


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print the message of an input error on one line and exit 2 (an interruption: exit 130)."""
    try:
        yield
    except (Interrupted, *USER_ERRORS) as err:
        raise typer.Exit(report(err)) from None
    except KeyboardInterrupt:  # Ctrl-C where the command has nothing of its own to say (Ray starting)
        raise typer.Exit(report(Interrupted("interrupted (Ctrl-C)"))) from None


class OneLineErrorsTyper(typer.Typer):
    """A ``typer.Typer`` whose usage errors (a bad option value, a missing option) are one line.

    Click prints them as a usage block (several lines, with rich a box); here the same
    message, which names the option and the reason, is printed as ``error: ...`` and
    the exit code stays Click's (2). Run as a program (``app()``), it leaves the heap
    frozen for the exit that follows (see ``__call__``).
    """

    def __call__(self, *args, **kwargs):
        if kwargs.get("standalone_mode", True) is False:
            return super().__call__(*args, **kwargs)
        try:
            result = super().__call__(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        except typer.TyperException as err:  # Click's usage errors (typer's public base class)
            message = " ".join(err.format_message().split())
            typer.secho(f"error: {message} (see --help)", fg=typer.colors.RED, err=True)
            sys.exit(getattr(err, "exit_code", 2))
        finally:
            # The command is over and the process exits next: the interpreter's last garbage
            # collection, over everything torch and Ray created, would take most of a second
            # (0.65 s of `dnacnn score`'s exit); frozen objects are skipped by it.
            gc.freeze()
        sys.exit(result if isinstance(result, int) else 0)
