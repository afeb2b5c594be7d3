"""Reading models back: a registry URI or a local checkpoint folder -> a checkpoint folder
or a loaded model. Reading never creates a tracking store (see ``tracking.reading_tracking_uri``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from dnacnn.models import LoadedModel, load
from dnacnn.registry.pyfunc import CHECKPOINT_ARTIFACT, copy_checkpoint
from dnacnn.registry.tracking import quiet_artifact_transfers, reading_tracking_uri
from dnacnn.registry.uris import is_model_uri

log = logging.getLogger(__name__)


def find_checkpoint(root: Path) -> Path:
    """The checkpoint folder inside a downloaded model (or the folder itself)."""
    if (root / "model.json").is_file():
        return root
    mlmodel = root / "MLmodel"
    if mlmodel.is_file():
        import yaml

        meta = yaml.safe_load(mlmodel.read_text())
        artifacts = meta.get("flavors", {}).get("python_function", {}).get("artifacts", {})
        entry = artifacts.get(CHECKPOINT_ARTIFACT)
        if entry and (root / entry["path"] / "model.json").is_file():
            return root / entry["path"]
    found = sorted(p.parent for p in root.rglob("model.json"))
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(
        f"no dnacnn checkpoint (model.json + model.safetensors) in {root}"
        + (f"; found several: {found}" if found else "")
        + "; is this a model logged by dnacnn.registry?"
    )


def fetch_model_dir(
    uri: str, dst: str | Path | None = None, tracking_uri: str | None = None
) -> Path:
    """Download a registered or logged model and return its checkpoint folder.

    Args:
        uri: ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``models:/m-<id>``
            or ``runs:/RUN_ID/model``.
        dst: the folder to put the checkpoint in (created; files overwritten);
            default: a new temporary folder (left for the caller).
        tracking_uri: default: the one set in this process or by ``MLFLOW_TRACKING_URI``,
            else ``sqlite:///data/mlflow.db``; a local store must exist (none is created).
            The store read becomes this process's tracking URI.
    Returns:
        ``dst``: a folder in ``dnacnn.models.save`` format (model.json +
        model.safetensors, plus task.json when recorded), readable by ``dnacnn.models.load``.
    Raises:
        ValueError: ``uri`` is not a model URI, the store does not exist, the model is
            not in it, or its artifacts are missing or hold no dnacnn checkpoint (the
            message names the URI and the tracking URI).
    """
    if not is_model_uri(uri):
        raise ValueError(
            f"{uri!r} is not an MLflow model URI; use models:/NAME@alias, models:/NAME/VERSION "
            "or runs:/RUN_ID/model (or pass a local checkpoint folder to load_model)"
        )
    try:
        store = reading_tracking_uri(tracking_uri)
    except ValueError as err:
        raise ValueError(f"cannot fetch {uri}: {err}") from None
    mlflow.set_tracking_uri(store)  # later MLflow calls of this process read the same store
    if dst is not None and Path(dst).exists() and not Path(dst).is_dir():
        raise ValueError(f"cannot fetch {uri} into {dst}: it is a file, not a folder")
    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="dnacnn-model-"))
    quiet_artifact_transfers()
    with tempfile.TemporaryDirectory(prefix="dnacnn-fetch-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=tmp, tracking_uri=store, registry_uri=store))
        except MlflowException as err:
            raise ValueError(
                f"cannot fetch {uri} from {store}: {err.message}; check the name, version or "
                "alias (and MLFLOW_TRACKING_URI)"
            ) from None
        if not local.exists() or (local.is_dir() and not any(local.iterdir())):
            raise ValueError(f"cannot fetch {uri} from {store}: its artifacts are missing (nothing was "
                             "downloaded); were they deleted from the artifact store?")
        try:
            checkpoint = find_checkpoint(local)
        except FileNotFoundError as err:
            raise ValueError(f"cannot fetch {uri} from {store}: {err}") from None
        copy_checkpoint(checkpoint, dst)
    log.info("fetched %s from %s into %s", uri, store, dst)
    return dst


def load_model(uri_or_dir: str | Path, map_location: str = "cpu",
               tracking_uri: str | None = None) -> LoadedModel:
    """A model from the registry (``models:/...``, ``runs:/...``) or a local checkpoint folder.

    Returns:
        ``dnacnn.models.LoadedModel`` in eval mode on ``map_location``.
    Raises:
        ValueError: as :func:`fetch_model_dir`; or a fetched checkpoint that does not
            load (e.g. truncated weights), naming the URI, not the temporary folder.
    """
    if not isinstance(uri_or_dir, (str, Path)):
        raise ValueError(f"give a model URI (models:/..., runs:/...) or a checkpoint folder, got {uri_or_dir!r:.60}")
    if is_model_uri(uri_or_dir):
        with tempfile.TemporaryDirectory(prefix="dnacnn-load-") as tmp:
            folder = fetch_model_dir(str(uri_or_dir), Path(tmp), tracking_uri)
            try:
                return load(folder, map_location)
            except (OSError, ValueError) as err:
                raise ValueError(str(err).replace(str(folder), str(uri_or_dir))) from None
    return load(uri_or_dir, map_location)
