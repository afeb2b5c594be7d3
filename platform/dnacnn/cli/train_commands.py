"""``dnacnn train``: train a model on Ray Train, track it and register it in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import path_option, user_errors


def job_overrides(
    sets: list[str],
    epochs: int | None = None,
    num_workers: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    run_name: str | None = None,
    storage_path: str | None = None,
    dataset: str | None = None,
    use_gpu: bool | None = None,
) -> list[str]:
    """The shorthand flags as ``section.key=value`` overrides, after the ``--set`` ones."""
    out = list(sets)
    for key, value in (
        ("train.epochs", epochs), ("train.num_workers", num_workers),
        ("train.batch_size", batch_size), ("train.lr", lr), ("train.run_name", run_name),
        ("train.storage_path", storage_path), ("data.dataset", dataset),
        ("train.use_gpu", use_gpu),
    ):
        if value is not None:
            out.append(f"{key}={json.dumps(value)}")
    return out


@app.command("train")
def train(
    config: Path = path_option(..., help="Job config, e.g. jobs/configs/tutorial_multiscale.yaml."),
    address: str = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS or a local cluster)."),
    epochs: int = typer.Option(None, min=1, help="Override train.epochs."),
    num_workers: int = typer.Option(None, min=1, help="Override train.num_workers."),
    batch_size: int = typer.Option(None, min=1, help="Override train.batch_size: rows per step over all workers."),
    lr: float = typer.Option(None, help="Override train.lr (a resumed run keeps its own)."),
    run_name: str = typer.Option(None, help="Override train.run_name (same name = resume)."),
    storage_path: str = typer.Option(None, help="Override train.storage_path."),
    dataset: str = typer.Option(None, help="Override data.dataset."),
    use_gpu: bool = typer.Option(None, "--use-gpu/--no-gpu", help="Override train.use_gpu."),
    set_: list[str] = typer.Option([], "--set", help="Any override: section.key=value (repeatable)."),
) -> None:
    """Train on Ray Train (DDP), log the run to MLflow, register the model, set its alias.

    Prints where the Ray run, its final checkpoint and the registered model are, as JSON.
    """
    from dnacnn.config import load_config

    with user_errors():
        job = load_config(config, job_overrides(
            set_, epochs, num_workers, batch_size, lr, run_name, storage_path, dataset, use_gpu))
        from dnacnn.ray_cluster import ask_for_default_auth

        ask_for_default_auth(address)  # before Ray is imported
        from dnacnn.train.trainer import train_and_register  # Ray and torch: once the config is good

        summary = train_and_register(job, address)
    typer.echo(json.dumps(summary.to_dict(), indent=2))
