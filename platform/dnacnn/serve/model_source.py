"""Which model a service runs: a checkpoint folder or a registered version, pinned.

The driver resolves what the user gave (``models:/NAME@champion``, ``models:/NAME/3``,
``runs:/...`` or a folder) once, before any replica starts: an alias becomes the
version it names at that moment, so every replica loads the same weights even if
the alias moves later. Each replica then loads the pinned model and hashes its
weights (``GET /v1/model`` reports the hash).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dnacnn import models
from dnacnn.checkpoint_files import weights_sha256
from dnacnn.registry.uris import is_model_uri
from dnacnn.scoring.scorer import load_model_spec

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelSource:
    """A model pinned for serving."""

    spec: str  # as the user gave it
    load_uri: str | None = None  # what replicas fetch: models:/NAME/VERSION, runs:/..., models:/m-...
    checkpoint: str | None = None  # an absolute checkpoint folder
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None
    tracking_uri: str | None = None  # the store ``load_uri`` is read from (checked, never created)


def resolve_model(spec: str) -> ModelSource:
    """Check and pin ``spec`` (in the driver, before Ray work).

    Raises:
        ValueError / FileNotFoundError: one line saying what is wrong with ``spec`` (a
            registry URI: also a tracking store that does not exist or does not answer,
            ``dnacnn.registry.reading_tracking_uri``; none is created).
    """
    spec = str(spec)
    if not is_model_uri(spec):
        folder = Path(spec).expanduser().resolve()
        models.load(folder)  # refuses a folder that is not a readable checkpoint
        return ModelSource(spec=spec, checkpoint=str(folder))
    from dnacnn.registry import reading_tracking_uri

    tracking_uri = reading_tracking_uri()
    match = _MODELS_URI.match(spec)
    if not match:  # runs:/..., models:/m-<id>: no registered name to report
        return ModelSource(spec=spec, load_uri=spec, tracking_uri=tracking_uri)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name, alias, version = match["name"], match["alias"], match["version"]
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if alias:
            version = str(client.get_model_version_by_alias(name, alias).version)
        else:
            client.get_model_version(name, version)
    except MlflowException as err:
        raise ValueError(
            f"cannot serve {spec}: {err.message}; check the name and alias or version "
            "(and MLFLOW_TRACKING_URI)"
        ) from None
    return ModelSource(spec=spec, load_uri=f"models:/{name}/{version}", registered_name=name,
                       version=version, alias=alias, tracking_uri=tracking_uri)


def load_source(source: ModelSource, device: str = "cpu") -> tuple[models.LoadedModel, str]:
    """Load a pinned model (in a replica).

    Returns:
        (the loaded model on ``device``, the sha256 of its safetensors weights).
    """
    if source.checkpoint:
        folder = Path(source.checkpoint)
        return load_model_spec(str(folder), device), weights_sha256(folder)
    from dnacnn.registry import fetch_model_dir  # MLflow is imported only when a URI is served

    with tempfile.TemporaryDirectory(prefix="dnacnn-serve-") as tmp:
        folder = fetch_model_dir(source.load_uri, Path(tmp), tracking_uri=source.tracking_uri)
        return load_model_spec(str(folder), device), weights_sha256(folder)
