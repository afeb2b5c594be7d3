"""MLflow for dnacnn: track training runs, register models, pick aliases, load models back.

One module per job:

    uris          ``is_model_uri``: the one registry-URI check (no MLflow import)
    tracking      the tracking URI and experiment; the store to read from (never created)
    provenance    input files with sha256, git state, flattened config params
    pyfunc        ``DnaCnnModel`` and ``log_pyfunc_model``: the checkpoint as an MLflow model
    aliases       registered-model names, lineages, the champion / challenger policy
    training_run  ``TrainingRun`` -> ``log_training_run``: one run logged and registered
    fetch         ``fetch_model_dir`` / ``load_model``: a URI or folder back to a checkpoint

Where things go: the tracking URI is ``MLFLOW_TRACKING_URI`` if set, else
``mlflow.tracking_uri`` of the job config, else ``sqlite:///<data_dir>/mlflow.db``;
the model name is ``<model>-<dataset>`` (``basset-basset164``) unless configured.

The names below load on first use (PEP 562): ``from dnacnn.registry import
is_model_uri`` (or ``dnacnn.registry.uris``) does not import MLflow.
"""

from __future__ import annotations

import importlib

from dnacnn.registry.uris import URI_SCHEMES, is_model_uri

_EXPORTS = {
    "default_tracking_uri": "tracking", "artifact_root": "tracking", "setup_tracking": "tracking",
    "reading_tracking_uri": "tracking", "check_server": "tracking",
    "sha256_file": "provenance", "input_files": "provenance", "git_state": "provenance",
    "flatten": "provenance",
    "DnaCnnModel": "pyfunc", "log_pyfunc_model": "pyfunc", "model_signature": "pyfunc",
    "MODEL_ARTIFACT": "pyfunc", "CHECKPOINT_ARTIFACT": "pyfunc",
    "CHAMPION": "aliases", "CHALLENGER": "aliases", "Lineage": "aliases",
    "LineageError": "aliases", "assign_alias": "aliases", "check_lineage": "aliases",
    "registered_model_name": "aliases",
    "TrainingRun": "training_run", "LoggedRun": "training_run",
    "log_training_run": "training_run", "check_registration": "training_run",
    "fetch_model_dir": "fetch", "load_model": "fetch",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dnacnn.registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dnacnn.registry.{_EXPORTS[name]}"), name)


__all__ = sorted([*_EXPORTS, "URI_SCHEMES", "is_model_uri"])
