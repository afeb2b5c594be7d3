"""``dnacnn serve``: score variants over HTTP (Ray Serve) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import os
import socket

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import user_errors


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

        if cluster_to_join(address) is None:  # a joined cluster's proxy runs on its nodes (maybe there already)
            check_listen(host, port)
            check_local_cpus(replicas, num_cpus, os.cpu_count() or 1)

        ask_for_default_auth(address)  # before Ray is imported
        from dnacnn.serve.app import ServiceArgs
        from dnacnn.serve.runner import serve_until_signalled

        check_precision(precision, "--precision")
        args = ServiceArgs(model=model, genome=genome, rc=rc, device=device, precision=precision, token=token,
                           num_replicas=replicas, num_cpus=num_cpus)
        serve_until_signalled(
            args, host, port, address=address or os.environ.get("RAY_ADDRESS"),
            on_ready=lambda url: typer.echo(f"serving {model} at {url} (API docs: {url}docs); "
                                            "Ctrl-C to stop", err=False),
        )


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
