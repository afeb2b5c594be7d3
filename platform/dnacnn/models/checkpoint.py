"""Self-describing checkpoints: weights as safetensors, everything else as JSON.

A checkpoint is a directory holding ``model.json`` (name, config, tasks, task type,
window length: a scorer needs nothing else to use the model; ``task_type`` decides
how logits become probabilities, ``dnacnn.models.predict``) and ``model.safetensors``
(the model's ``state_dict``); :mod:`dnacnn.checkpoint_files` reads and checks the
files without torch. Nothing is pickled or unpickled.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from dnacnn.checkpoint_files import CONFIG_FILE, FORMAT, WEIGHTS_FILE, read_checkpoint_meta
from dnacnn.models.family import MODELS, build
from dnacnn.models.reverse_complement import RCAverage
from dnacnn.tasks import check_task_type


@dataclass
class LoadedModel:
    """A model read back by ``load``, with what it predicts."""

    model: nn.Module  # in eval mode; wrapped in RCAverage when saved wrapped
    name: str  # key of MODELS
    config: object  # the model's config dataclass
    tasks: list[str]  # T names, one per output column
    seq_len: int  # L, the input window the model was built for
    task_type: str = "multitask"  # binary | multitask (sigmoid) | multiclass (softmax)
    rc_average: bool = False  # whether ``model`` averages both strands

    def __post_init__(self) -> None:
        """Refuse task names or a length that the network contradicts (its ``.n_tasks`` and
        ``.seq_len``, when it has them): predictions would fail later as a shape error."""
        n_tasks, length = getattr(self.model, "n_tasks", None), getattr(self.model, "seq_len", None)
        if n_tasks is not None and len(self.tasks) != n_tasks:
            raise ValueError(f"{len(self.tasks)} task name(s) for a model with {n_tasks} outputs; "
                             "give one name per output")
        if length is not None and self.seq_len != length:
            raise ValueError(f"seq_len {self.seq_len} for a model built for {length} bp windows")


def save(model: nn.Module, directory: str | Path, tasks: Sequence[str], *, task_type: str) -> None:
    """Write ``model``, its task names and task type to ``directory`` (created if missing).

    Args:
        model: a model of ``MODELS``, or one wrapped in ``RCAverage`` (the inner
            model's weights are saved and ``"rc_average": true`` is recorded).
        directory: the checkpoint directory; existing files are overwritten.
        tasks: T distinct names, one per output column (e.g. cell types).
        task_type: "binary", "multitask" or "multiclass" (how outputs become probabilities).
    """
    check_task_type(task_type)
    rc_average = isinstance(model, RCAverage)
    inner = model.model if rc_average else model
    name = getattr(inner, "name", None)
    if name not in MODELS or not isinstance(inner, MODELS[name][0]):
        raise ValueError(
            f"cannot save a {type(inner).__name__}: only models built from "
            f"dnacnn.models.MODELS ({', '.join(MODELS)}) can be saved"
        )
    tasks = list(tasks)
    if len(tasks) != inner.n_tasks:
        raise ValueError(
            f"got {len(tasks)} task names for a model with {inner.n_tasks} outputs; "
            "pass one name per output column"
        )
    if not all(isinstance(t, str) for t in tasks) or len(set(tasks)) != len(tasks):
        raise ValueError("task names must be distinct strings")

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / WEIGHTS_FILE).write_bytes(weights_bytes(inner))
    meta = {
        "format": FORMAT,
        "name": name,
        "config": dataclasses.asdict(inner.config),
        "tasks": tasks,
        "task_type": task_type,
        "seq_len": inner.seq_len,
        "rc_average": rc_average,
    }
    # Written last: a directory with model.json holds a complete checkpoint.
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def weights_bytes(model: nn.Module) -> bytes:
    """The ``model.safetensors`` that ``save`` writes for ``model`` (of an ``RCAverage``, its
    inner model's): the same bytes for the same weights, so their sha256 identifies them."""
    inner = model.model if isinstance(model, RCAverage) else model
    return safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()})


def load(directory: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Read a checkpoint written by ``save``.

    Args:
        directory: the checkpoint directory.
        map_location: device to put the weights on, e.g. "cpu" or "cuda:0".
    Returns:
        a ``LoadedModel`` whose model is in eval mode on ``map_location``.
    """
    directory = Path(directory)
    meta = read_checkpoint_meta(directory)  # model.json checked, the weights file whole
    meta_path = directory / CONFIG_FILE
    try:  # RuntimeError: a config (seq_len 1e9, say) whose weights do not fit in memory
        model = build(meta["name"], meta["config"])
    except (TypeError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        raise ValueError(f"{meta_path}: cannot build its model ({reason[:300]})") from None
    tasks = list(meta["tasks"])  # as many as the config's n_tasks (read_checkpoint_meta)
    task_type = check_task_type(meta.get("task_type") or _legacy_task_type(directory))
    weights = load_file(directory / WEIGHTS_FILE, device="cpu")
    expected = model.state_dict()
    for name, value in weights.items():  # load_state_dict would cast integers to floats silently
        if name in expected and value.is_floating_point() != expected[name].is_floating_point():
            raise ValueError(f"{directory / WEIGHTS_FILE}: tensor {name!r} has dtype {value.dtype}, the "
                             f"model in {meta_path} holds {expected[name].dtype} there")
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:  # names or shapes that are not this model's, one per line after a heading
        lines = [" ".join(line.split()).rstrip(".") for line in str(err).splitlines() if line.strip()]
        details = lines[1:] or lines
        more = f"; {len(details) - 1} more" if len(details) > 1 else ""
        raise ValueError(f"{directory / WEIGHTS_FILE} does not hold the weights of the model in "
                         f"{meta_path} ({details[0][:200]}{more})") from None
    bad = next((name for name, value in model.state_dict().items()
                if value.is_floating_point() and not torch.isfinite(value).all()), None)
    if bad is not None:  # every score would be NaN
        raise ValueError(f"{directory / WEIGHTS_FILE}: tensor {bad!r} holds NaN or infinite values")
    model.to(map_location)
    rc_average = meta.get("rc_average", False)  # a bool: read_checkpoint_meta
    if rc_average:
        model = RCAverage(model)
    return LoadedModel(
        model=model.eval(),
        name=meta["name"],
        config=model.config,
        tasks=tasks,
        seq_len=model.seq_len,
        task_type=task_type,
        rc_average=rc_average,
    )


def _legacy_task_type(directory: Path) -> str:
    """The task type of a checkpoint written before model.json recorded it: the
    ``task.json`` that training wrote beside it, else "multitask" (a sigmoid per output)."""
    path = directory / "task.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8")).get("task_type", "multitask")
    return "multitask"
