"""``dnacnn main``: the platform's main job, end to end on real data."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import path_option, user_errors


@app.command("main")
def main(
    config: Path = path_option(Path("jobs/configs/main.yaml"), help="Main job config (YAML)."),
    set_: list[str] = typer.Option([], "--set", help="Override: section.key=value (repeatable)."),
    address: str = typer.Option(None, help="Ray address (default: RAY_ADDRESS, else a local cluster)."),
) -> None:
    """Real genome -> 164-cell-type task -> Basset on Ray Train -> MLflow -> genome-wide scores."""
    from dnacnn.ray_cluster import ask_for_default_auth

    ask_for_default_auth(address)  # before Ray is imported
    from dnacnn.main_run import load_main_config, run_main

    with user_errors():
        summary = run_main(load_main_config(config, set_), address)
    typer.echo(json.dumps(summary, indent=2, default=str))
    typer.echo(done_lines(summary))


def done_lines(summary: dict) -> str:
    """The closing lines of ``dnacnn main``: where everything is, and the job's headline figures."""
    scores, filters = summary["scores"], summary["filters"]
    return (
        "\nDone in {m} min.\n  model: {uri} (test AUROC {test:.3f})\n  real VCF scores: {real}\n"
        "  simulated-variant scores: {sim}\n  truth recovery: AUROC {auc:.3f} (plot {plot})\n"
        "  filters: {rec} of {imp} implanted factors recovered, {mat} matched (report {index})\n"
        "  summary: {summary}".format(
            m=summary["minutes"], uri=summary["training"]["mlflow"]["uri"],
            test=summary["training"]["metrics"]["test_auroc"],
            rec=filters["recovered"], imp=filters["implanted"], mat=filters["matched"], index=filters["index"],
            real=scores["real"]["out"], sim=scores["simulated"]["out"],
            auc=scores["simulated"]["truth_recovery"]["variant_auroc"],
            plot=scores["simulated"]["truth_recovery"]["plot"], summary=summary["summary"],
        )
    )
