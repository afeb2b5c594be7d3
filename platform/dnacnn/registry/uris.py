"""Which model arguments are MLflow URIs: the one check, importable without MLflow.

The scorer and the CLI ask this before deciding whether to read a local
checkpoint folder or to fetch a model from the registry; importing this module
costs nothing (MLflow is imported only by the modules that talk to a store).
"""

from __future__ import annotations

URI_SCHEMES = ("models:/", "runs:/")


def is_model_uri(spec: object) -> bool:
    """Whether ``spec`` is an MLflow model URI (``models:/...`` or ``runs:/...``)."""
    return isinstance(spec, str) and spec.startswith(URI_SCHEMES)
