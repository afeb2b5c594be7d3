"""Where runs and models are tracked: the tracking URI, the experiment, the store to read from.

    tracking URI   ``MLFLOW_TRACKING_URI`` if set, else ``mlflow.tracking_uri`` of
                   the job config, else ``sqlite:///<data_dir>/mlflow.db`` (absolute);
                   artifacts of a sqlite store go to ``mlartifacts/`` beside the db.

Writing (:func:`setup_tracking`, used when a training run is logged) creates a
missing local store. Reading (:func:`reading_tracking_uri`, used to fetch a
model) never does: a model URI read against a store that is not there is an
error naming the URI that was tried, not a new empty ``mlflow.db``. Both refuse a
tracking server that does not accept a connection within seconds (:func:`check_server`),
where MLflow would retry for about four minutes.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dnacnn.config import MlflowConfig
from dnacnn.job_paths import inside_job_copy

_SERVER_NAMES = ("databricks", "databricks-uc", "uc")  # tracking "URIs" that are not paths
#: Seconds an http(s) tracking server may take to accept a connection.
SERVER_CONNECT_TIMEOUT_S = 10.0


def default_tracking_uri(cfg: MlflowConfig | None = None) -> str:
    """The tracking URI for ``cfg``: the environment's, the config's, or sqlite in data_dir.

    Pure: creates nothing (:func:`setup_tracking` makes the folder of a new store).
    """
    cfg = cfg or MlflowConfig()
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if cfg.tracking_uri:
        return cfg.tracking_uri
    return f"sqlite:///{Path(cfg.data_dir).expanduser().resolve() / 'mlflow.db'}"


def local_store(tracking_uri: str) -> Path | None:
    """The file (sqlite) or folder (file store) a local tracking URI names; None for a server."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri[len("sqlite:///"):].split("?", 1)[0])
    if tracking_uri.startswith("file:"):
        return Path(unquote(urlparse(tracking_uri).path))
    if ":" not in tracking_uri and tracking_uri not in _SERVER_NAMES:
        return Path(tracking_uri)  # a plain path: MLflow's file store
    return None


def artifact_root(tracking_uri: str) -> str | None:
    """``mlartifacts/`` beside a sqlite db (as a file URI); None lets a server decide."""
    if tracking_uri.startswith("sqlite:///"):
        db = local_store(tracking_uri)
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def quiet_artifact_transfers() -> None:
    """Turn off MLflow's progress bar of each artifact upload and download (a user who set
    ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` keeps their choice): the console shows the
    job's own progress."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def check_server(uri: str, source: str, timeout_s: float = SERVER_CONNECT_TIMEOUT_S) -> None:
    """Refuse an ``http(s)://`` tracking URI whose host does not accept a TCP connection
    within ``timeout_s`` (other URIs pass). ``source`` says where the URI came from.

    Raises:
        ValueError: naming the URI, where it came from and why.
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    try:
        target = (parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
        if not target[0]:
            raise ValueError("no host")
    except ValueError as err:  # a port out of range, no host
        raise ValueError(f"MLflow tracking URI {uri} ({source}) is not a server address: {err}") from None
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, socket.timeout) else (err.strerror or str(err))
        raise ValueError(
            f"no MLflow tracking server answers at {uri} ({source}; {reason} within {timeout_s:g} s); "
            "start it, or set MLFLOW_TRACKING_URI to the store or server to use"
        ) from None


def setup_tracking(cfg: MlflowConfig | None = None) -> str:
    """Point MLflow at the tracking store of ``cfg`` (created when missing) and select
    (or create) its experiment. A local store inside a submitted Ray job's temporary copy of
    its working directory (no MLFLOW_TRACKING_URI on the cluster) is refused.

    Returns:
        the experiment id.
    """
    cfg = cfg or MlflowConfig()
    quiet_artifact_transfers()
    uri = default_tracking_uri(cfg)
    store = local_store(uri)
    if store is not None and inside_job_copy(store):
        raise ValueError(
            f"the tracking store {uri} would be inside this Ray job's temporary copy of the submitted "
            "working directory, and the run and its registered model lost with it; set "
            "MLFLOW_TRACKING_URI on the cluster (or in --runtime-env-json's env_vars) to a tracking "
            "server, or mlflow.tracking_uri to an absolute sqlite:////path every node can reach")
    if uri.startswith("sqlite:///"):
        try:
            store.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a file where a folder goes, a path the system does not allow
            raise ValueError(f"cannot create the MLflow tracking store {uri}: {err.filename}: "
                             f"{err.strerror}") from None
        if store.exists() and store.stat().st_size and (problem := _not_sqlite(store)):
            raise ValueError(f"the MLflow tracking store {uri} {problem}; set MLFLOW_TRACKING_URI "
                             "(or mlflow.tracking_uri) to an SQLite file MLflow made, or a new path")
    check_server(uri, "the job's tracking URI")
    try:  # a URI of a scheme MLflow has no store for, an experiment name it refuses: nothing set
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(cfg.experiment)
        if experiment is None:
            root = artifact_root(uri)
            location = f"{root}/{cfg.experiment}" if root else None
            experiment_id = client.create_experiment(cfg.experiment, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
    except MlflowException as err:
        raise ValueError(f"cannot use MLflow experiment {cfg.experiment!r} at tracking URI {uri}: "
                         f"{' '.join(err.message.split())}") from None
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def reading_tracking_uri(tracking_uri: str | None = None) -> str:
    """The tracking store to read a model from; checked to exist, never created.

    Args:
        tracking_uri: used when given; else the one set in this process or by
            ``MLFLOW_TRACKING_URI`` (MLflow's public ``is_tracking_uri_set`` /
            ``get_tracking_uri``); else the default, ``sqlite:///<cwd>/data/mlflow.db``.
    Raises:
        ValueError: the URI names a local store (sqlite file, folder) that does not
            exist, or an sqlite "file" that is a folder or not an SQLite database (an
            empty file included: MLflow would write a new store into it), or a server
            that does not answer (:func:`check_server`); the message gives the URI and
            where it came from.
    """
    if tracking_uri:
        uri, source = tracking_uri, "given"
    elif mlflow.is_tracking_uri_set():
        uri = mlflow.get_tracking_uri()
        source = ("from MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") == uri
                  else "set in this process")
    else:
        uri, source = default_tracking_uri(), "the default, as MLFLOW_TRACKING_URI is not set"
    store = local_store(uri)
    if store is not None and not store.exists():
        raise ValueError(
            f"no MLflow tracking store at {uri} ({source}); set MLFLOW_TRACKING_URI to the "
            "store or server the model was registered in"
        )
    if store is not None and uri.startswith("sqlite:///") and (problem := _not_sqlite(store)):
        raise ValueError(f"the MLflow tracking store {uri} ({source}) {problem}; set "
                         "MLFLOW_TRACKING_URI to the store or server the model was registered in")
    check_server(uri, source)
    return uri


_SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def _not_sqlite(path: Path) -> str | None:
    """Why the existing ``path`` cannot be an sqlite store, or None when its header is SQLite's."""
    if path.is_dir():
        return "is a folder, not an SQLite file"
    with open(path, "rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if not head:
        return "is an empty file, not an MLflow store"
    return None if head == _SQLITE_MAGIC else "is not an SQLite database"
