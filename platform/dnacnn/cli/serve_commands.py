"""``dnacnn serve``: score variants over HTTP (Ray Serve) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import logging
import os
import socket

import typer
from pydantic import ValidationError

from dnacnn.cli import app
from dnacnn.cli.errors import user_errors

log = logging.getLogger(__name__)


@app.command("serve")
def serve(
    model: str = typer.Option(
        ..., help="A registry URI (models:/NAME@champion, models:/NAME/3, runs:/...) or a checkpoint folder."
    ),
    genome: str = typer.Option(..., help="Indexed FASTA the variants are called on (.fai; bgzipped also .gzi)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000, min=1, max=65535, help="HTTP port."),
    replicas: int = typer.Option(1, min=1, help="Replicas of the scoring deployment."),
    num_cpus: float = typer.Option(1.0, help="CPUs per replica (torch threads follow)."),
    device: str = typer.Option("cpu", help="cpu, or cuda for one GPU per replica."),
    rc: bool = typer.Option(False, "--rc", help="Average both strands by default (a request may override)."),
    precision: str = typer.Option("fp32", help="fp32 (exact) or bf16 (the fast path), as for dnacnn score."),
    token: str = typer.Option(
        None, envvar="DNACNN_API_TOKEN", show_envvar=True,
        help="Require 'Authorization: Bearer TOKEN' on /v1/* (default: $DNACNN_API_TOKEN).",
    ),
    address: str = typer.Option(None, help="Ray cluster to join (default: RAY_ADDRESS, else a local cluster)."),
) -> None:
    """Serve POST /v1/score, /v1/predict, GET /v1/model, /healthz and a page at /."""
    with user_errors():
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"--device {device!r}: use cpu or cuda")
        from dnacnn.precision import check_precision
        from dnacnn.ray_cluster import ask_for_default_auth, cluster_to_join

        check_host(host)  # a joined cluster's proxy retried a bogus one for good, tracebacks looping
        if cluster_to_join(address) is None:  # a joined cluster's proxy runs on its nodes (maybe there already)
            check_listen(host, port)
            check_local_cpus(replicas, num_cpus, os.cpu_count() or 1)

        ask_for_default_auth(address)  # before Ray is imported
        from dnacnn.serve.app import ServiceArgs
        from dnacnn.serve.runner import is_loopback, serve_until_signalled

        check_precision(precision, "--precision")
        try:
            args = ServiceArgs(model=model, genome=genome, rc=rc, device=device, precision=precision, token=token,
                               num_replicas=replicas, num_cpus=num_cpus)
        except ValidationError as err:  # pydantic's words, for the option that gave the value
            first = err.errors(include_url=False)[0]
            option = _OPTIONS.get(str(first["loc"][0]), str(first["loc"][0]))
            raise ValueError(f"{option}: {first['msg'].removeprefix('Value error, ')}") from None
        if not token and not is_loopback(host):
            log.warning("--host %s: every machine that reaches this one may use the service, with no token; "
                        "set DNACNN_API_TOKEN (or --token) to require one", host)
        serve_until_signalled(
            args, host, port, address=address or os.environ.get("RAY_ADDRESS"),
            on_ready=lambda url: typer.echo(f"serving {model} at {url} (API docs: {url}docs); "
                                            "Ctrl-C to stop", err=False),
        )


#: The command's option for each :class:`~dnacnn.serve.app.ServiceArgs` field it sets.
_OPTIONS = {"num_cpus": "--num-cpus", "num_replicas": "--replicas", "model": "--model", "genome": "--genome",
            "device": "--device", "precision": "--precision", "token": "--token"}


def check_host(host: str) -> None:
    """Refuse a ``--host`` that is no address (``999.1.1.1``) and no name that resolves.

    Raises:
        OSError: naming it.
    """
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise OSError(f"cannot listen on --host {host}: {err.strerror or err}") from None


def check_listen(host: str, port: int) -> None:
    """Refuse a ``--host``/``--port`` this machine cannot listen on (a port in use, an address
    that is not this machine's) before Ray starts: Serve's proxy would fail with a page of
    tracebacks from its actors.

    Raises:
        OSError: naming the address and the reason.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise OSError(f"cannot listen on --host {host}: {err.strerror or err}") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Serve's own proxy binds
        try:
            sock.bind(sockaddr)
        except OSError as err:
            raise OSError(f"cannot listen on --host {host} --port {port}: {err.strerror or err}"
                          f"{' (another process listens there)' if err.errno == errno.EADDRINUSE else ''}") from None


def check_local_cpus(replicas: int, num_cpus: float, cpus: int) -> None:
    """Refuse replicas that a local cluster of ``cpus`` CPUs could never place (Serve would
    wait for them forever)."""
    if replicas * num_cpus > cpus:
        raise ValueError(f"--replicas {replicas} x --num-cpus {num_cpus:g} need {replicas * num_cpus:g} CPUs; "
                         f"the local Ray cluster has {cpus}; lower them, or join a bigger cluster (--address)")
