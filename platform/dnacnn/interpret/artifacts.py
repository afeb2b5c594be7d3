"""Logging interpretation outputs beside a registry model: as artifacts of the run that
produced it (MLflow's public API)."""

from __future__ import annotations

import re
from pathlib import Path

_VERSION = re.compile(r"^models:/([^/@]+)/(\d+)$")
_ALIAS = re.compile(r"^models:/([^/@]+)@(.+)$")
_RUN = re.compile(r"^runs:/([^/]+)(/.*)?$")
_LOGGED = re.compile(r"^models:/(m-[0-9a-f]+)$")


def model_run_id(uri: str, tracking_uri: str | None = None) -> str:
    """The id of the run that produced the model ``uri`` (``models:/NAME/VERSION``,
    ``models:/NAME@alias``, ``models:/m-<id>`` or ``runs:/RUN_ID/...``), in the tracking
    store ``tracking_uri`` (default: the one MLflow uses, e.g. set by ``registry.load_model``).
    Other forms MLflow resolves (``models:/NAME/latest``, a stage) are read with
    ``mlflow.models.get_model_info`` from the store MLflow uses."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    try:
        if m := _RUN.match(uri):
            return m.group(1)
        if m := _VERSION.match(uri):
            return client.get_model_version(m.group(1), m.group(2)).run_id
        if m := _ALIAS.match(uri):
            return client.get_model_version_by_alias(m.group(1), m.group(2)).run_id
        if m := _LOGGED.match(uri):
            return client.get_logged_model(m.group(1)).source_run_id
        if uri.startswith("models:/"):
            return mlflow.models.get_model_info(uri).run_id
    except MlflowException as err:
        raise ValueError(f"cannot find the run of {uri}: {err.message}") from None
    raise ValueError(f"{uri!r} is not a model URI (models:/NAME/VERSION, models:/NAME@alias, runs:/ID/...)")


def log_beside_model(run_id: str | None, out_dir: str | Path, artifact_path: str,
                     tracking_uri: str | None = None) -> str | None:
    """Log every file of ``out_dir`` under ``artifact_path`` of the run ``run_id`` (the one
    that produced the model: :func:`model_run_id`, asked before the work); None (a local
    checkpoint folder) logs nothing.

    Returns:
        ``runs:/RUN_ID/artifact_path``, or None for a local checkpoint.
    """
    from mlflow import MlflowClient

    if run_id is None:
        return None
    MlflowClient(tracking_uri).log_artifacts(run_id, str(out_dir), artifact_path)
    return f"runs:/{run_id}/{artifact_path}"
