"""``dnacnn cluster up|down|env|add-node``: a multi-node Ray cluster (and MLflow server) here.

``up`` prints ``export NAME=value`` lines on stdout, so ``eval "$(dnacnn cluster up --mlflow)"``
points ``ray job submit``, ``ray.init()`` and MLflow at the new cluster; progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import user_errors
from dnacnn.cluster import local

cluster_app = typer.Typer(help="A multi-node Ray cluster and an MLflow server on this machine.",
                          no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")

DEFAULT_STATE_DIR = Path(os.environ.get("DNACNN_CLUSTER_DIR", "/tmp/dnacnn-cluster"))
STATE_DIR = typer.Option(DEFAULT_STATE_DIR, "--state-dir",
                         help="The cluster's folder: ports, PIDs, logs, Ray's temp files, MLflow "
                              "stores (default: $DNACNN_CLUSTER_DIR or /tmp/dnacnn-cluster).")


@contextlib.contextmanager
def _cluster_errors() -> Iterator[None]:
    with user_errors():
        try:
            yield
        except local.ClusterError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None


@cluster_app.command("up")
def up(
    nodes: int = typer.Option(2, help="Ray nodes, the head included."),
    cpus_per_node: int = typer.Option(1, help="CPUs of each node."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Also start an MLflow tracking server."),
    object_store_mb: int = typer.Option(512, help="Object store of each node (MiB)."),
    timeout: float = typer.Option(120, help="Seconds each process may take to start."),
    state_dir: Path = STATE_DIR,
) -> None:
    """Start the cluster; print its environment as export lines."""
    with _cluster_errors():
        state = local.up(state_dir, nodes=nodes, cpus_per_node=cpus_per_node, mlflow=mlflow,
                         object_store_mb=object_store_mb, timeout=timeout)
        typer.echo(f"Ray dashboard and job server: {state.dashboard_url}", err=True)
        if state.mlflow_url:
            typer.echo(f"MLflow tracking server: {state.mlflow_url}", err=True)
        typer.echo(f"stop it with: dnacnn cluster down --state-dir {state.state_dir}", err=True)
        typer.echo(state.exports(), nl=False)


@cluster_app.command("env")
def env(state_dir: Path = STATE_DIR) -> None:
    """Print a running cluster's export lines again."""
    with _cluster_errors():
        typer.echo(local.ClusterState.load(state_dir).exports(), nl=False)


@cluster_app.command("add-node")
def add_node(state_dir: Path = STATE_DIR,
             timeout: float = typer.Option(120, help="Seconds the node may take to start.")) -> None:
    """Start one more worker node (to replace a lost one, or for capacity)."""
    with _cluster_errors():
        proc = local.add_worker_node(state_dir, timeout=timeout)
        typer.echo(f"started {proc.role} (pid {proc.pid})", err=True)


@cluster_app.command("down")
def down(state_dir: Path = STATE_DIR,
         timeout: float = typer.Option(30, min=0, help="Seconds to wait before SIGKILL.")) -> None:
    """Stop every process the cluster started (by recorded PID, never by name)."""
    with _cluster_errors():
        stopped = local.down(state_dir, timeout=timeout)
        typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}", err=True)
