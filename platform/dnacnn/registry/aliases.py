"""Registered-model names, lineages and the champion / challenger alias policy.

A registered model holds one *lineage*: the versions predict the same tasks, of
the same task type, from windows of the same length, so their validation
metrics compare and ``@champion`` always means the same kind of model. The
lineage is recorded as the registered model's tag ``dnacnn.lineage`` (and on
each version). Registering a model of another lineage under the name is refused
(:class:`LineageError`) unless the job sets ``mlflow.new_lineage: true``; then
the name starts a new lineage, the new version becomes champion without a
metric comparison and the old versions lose their aliases.

Within a lineage a new version becomes ``champion`` when its validation metric
beats the current champion's (or there is none), else ``challenger``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dnacnn.config import MlflowConfig

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
LINEAGE_TAG = "dnacnn.lineage"


class LineageError(ValueError):
    """A model of another task, task type or window length registered under a name."""


@dataclass(frozen=True)
class Lineage:
    """What every version of one registered model predicts."""

    task_type: str  # "binary", "multitask" or "multiclass"
    seq_len: int  # L, input window in bp
    tasks: tuple[str, ...]  # T output names, in column order

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Lineage:
        raw = json.loads(text)
        return cls(task_type=raw["task_type"], seq_len=int(raw["seq_len"]), tasks=tuple(raw["tasks"]))

    def describe(self) -> str:
        """e.g. "4 multiclass tasks (a, b, c, ...) on 200 bp windows"."""
        names = ", ".join(self.tasks[:3]) + (", ..." if len(self.tasks) > 3 else "")
        n = len(self.tasks)
        return f"{n} {self.task_type} task{'s' if n != 1 else ''} ({names}) on {self.seq_len} bp windows"

    def differences(self, other: Lineage) -> list[str]:
        """The fields that differ, in words."""
        return [word for word, a, b in (("task type", self.task_type, other.task_type),
                                        ("tasks", self.tasks, other.tasks),
                                        ("window length", self.seq_len, other.seq_len)) if a != b]


def registered_model_name(model_name: str, dataset_name: str, cfg: MlflowConfig | None = None) -> str:
    """``cfg.registered_model`` or ``<model>-<dataset>``, e.g. ``basset-basset164``."""
    if cfg is not None and cfg.registered_model:
        return cfg.registered_model
    return f"{model_name}-{dataset_name}"


def recorded_lineage(name: str, client: MlflowClient | None = None) -> Lineage | None:
    """The lineage of the registered model ``name``; None when it has no versions.

    A registered model from before lineages were recorded gets the lineage of its
    latest version's checkpoint (fetched once, then recorded).
    """
    client = client or MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        return None
    if LINEAGE_TAG in registered.tags:
        return Lineage.from_json(registered.tags[LINEAGE_TAG])
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        return None
    from dnacnn.registry.fetch import load_model

    latest = max(versions, key=lambda v: int(v.version))
    loaded = load_model(f"models:/{name}/{latest.version}", tracking_uri=client.tracking_uri)
    lineage = Lineage(loaded.task_type, loaded.seq_len, tuple(loaded.tasks))
    client.set_registered_model_tag(name, LINEAGE_TAG, lineage.to_json())
    return lineage


def check_lineage(name: str, lineage: Lineage, new_lineage: bool = False,
                  client: MlflowClient | None = None) -> bool:
    """Whether registering a model of ``lineage`` under ``name`` starts a new lineage.

    Returns:
        False when the name is new or holds the same lineage; True when it holds
        another and ``new_lineage`` allows replacing it.
    Raises:
        LineageError: it holds another lineage and ``new_lineage`` is false.
    """
    recorded = recorded_lineage(name, client)
    if recorded is None or recorded == lineage:
        return False
    if not new_lineage:
        raise LineageError(
            f"registered model {name!r} holds {recorded.describe()}; this model predicts "
            f"{lineage.describe()} (different {', '.join(recorded.differences(lineage))}), so "
            "their metrics do not compare: set mlflow.registered_model to another name, or "
            "mlflow.new_lineage: true to start a new lineage under this name"
        )
    return True


def start_lineage(name: str, lineage: Lineage, client: MlflowClient | None = None) -> None:
    """Record ``lineage`` as the registered model's; drop the aliases of an older lineage."""
    client = client or MlflowClient()
    previous = client.get_registered_model(name).tags.get(LINEAGE_TAG)
    if previous is not None and Lineage.from_json(previous) != lineage:
        for alias in (CHAMPION, CHALLENGER):
            try:
                client.delete_registered_model_alias(name, alias)
            except MlflowException:
                pass  # the alias was not set
        log.warning("registered model %s starts a new lineage: %s", name, lineage.describe())
    client.set_registered_model_tag(name, LINEAGE_TAG, lineage.to_json())


def _is_better(value: float, than: float, mode: str) -> bool:
    return value < than if mode == "min" else value > than


def assign_alias(
    name: str, version: str | int, value: float, metric: str, mode: str,
    client: MlflowClient | None = None,
) -> str:
    """Give a new model version ``champion`` or ``challenger``.

    The version becomes champion when there is no champion yet, or when
    ``value`` (its ``metric`` on the validation split) beats the champion's
    (lower for ``mode="min"``, higher for ``"max"``); otherwise challenger.
    The values are kept as version tags ``selection_metric`` / ``selection_value``.
    A NaN value never wins; a champion logged under another metric is kept.
    Only versions of one lineage are compared (:func:`check_lineage` runs first).

    Returns:
        the alias given: "champion" or "challenger".
    """
    client = client or MlflowClient()
    version = str(version)
    client.set_model_version_tag(name, version, "selection_metric", metric)
    client.set_model_version_tag(name, version, "selection_value", repr(float(value)))
    client.set_model_version_tag(name, version, "selection_mode", mode)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is None:
        alias = CHAMPION if not math.isnan(value) else CHALLENGER
    elif champion.tags.get("selection_metric") != metric:
        log.warning("champion %s v%s was selected on %r, not %r: keeping it; v%s is challenger",
                    name, champion.version, champion.tags.get("selection_metric"), metric, version)
        alias = CHALLENGER
    else:
        best = float(champion.tags["selection_value"])
        alias = CHAMPION if not math.isnan(value) and (
            math.isnan(best) or _is_better(value, best, mode)) else CHALLENGER
        log.info("%s v%s %s=%.5g vs champion v%s %.5g: %s", name, version, metric, value,
                 champion.version, best, alias)
    client.set_registered_model_alias(name, alias, version)
    return alias

