"""``dnacnn serve``: score variants over HTTP (Ray Serve) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os

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
    port: int = typer.Option(8000, help="HTTP port."),
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
        from dnacnn.ray_cluster import ask_for_default_auth

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
