"""A checkpoint folder's files, read and checked without torch.

A checkpoint, written by ``dnacnn.models.save``, is a folder holding

- ``model.json``: ``{"format": "dnacnn-model/1", "name", "config", "tasks",
  "task_type", "seq_len", "rc_average"}``;
- ``model.safetensors``: the model's state dict (an 8-byte little-endian header
  length, a JSON header naming each tensor's dtype, shape and byte range, then the
  bytes; https://github.com/huggingface/safetensors#format).

:func:`read_checkpoint_meta` reads the first, checks that it agrees with itself (a
model name of the family, the config's ``seq_len`` and ``n_tasks`` those of the file,
distinct task names), and checks that the second is whole (its header parses and its
byte ranges cover the file exactly), so a missing, truncated, foreign or inconsistent
file is refused with one line naming it. Whether the tensors' names, shapes and kinds of
dtype are the model's takes torch to tell (``dnacnn.models.load``). It imports neither
torch nor safetensors' torch half: a scoring job's driver runs it before Ray starts
and leaves loading the weights (and torch's import, seconds) to its actors.
``dnacnn.models.load`` reads checkpoints through it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dnacnn.tasks import check_task_type

FORMAT = "dnacnn-model/1"
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"

#: model.json's fields every reader needs, and their JSON types.
_FIELDS = {"name": str, "config": dict, "tasks": list, "seq_len": int}
#: A safetensors header larger than this is not one (the format's own limit is 100 MB).
_MAX_HEADER = 100_000_000
#: The keys of ``dnacnn.models.MODELS``, known here without importing torch (a test keeps them equal).
MODEL_NAMES = ("basset", "multiscale", "simple")


def read_checkpoint_meta(directory: str | Path) -> dict:
    """``model.json`` of a checkpoint folder, after checking it and the weights file.

    Raises:
        FileNotFoundError: no ``model.json`` or no ``model.safetensors`` in ``directory``.
        ValueError: naming the file and what is wrong with it.
    """
    directory = Path(directory)
    meta_path = directory / CONFIG_FILE
    if not meta_path.is_file():
        raise _not_in_checkpoint(meta_path)
    meta = read_format_json(meta_path, FORMAT)
    for name, kind in _FIELDS.items():
        if not isinstance(meta.get(name), kind) or isinstance(meta.get(name), bool):
            raise ValueError(f"{meta_path}: {name!r} is missing or not a JSON {kind.__name__}")
    tasks, config = meta["tasks"], meta["config"]
    if not tasks or not all(isinstance(task, str) for task in tasks) or len(set(tasks)) != len(tasks):
        raise ValueError(f"{meta_path}: 'tasks' must be a non-empty list of distinct names (strings)")
    if meta["name"] not in MODEL_NAMES:
        raise ValueError(f"{meta_path}: unknown model {meta['name']!r}; this version of dnacnn has "
                         f"{', '.join(MODEL_NAMES)}")
    for key, value in (("seq_len", meta["seq_len"]), ("n_tasks", len(tasks))):
        if type(config.get(key)) is not int or config[key] != value:
            raise ValueError(f"{meta_path} is inconsistent: its config has {key}={config.get(key)!r}, "
                             f"its {'seq_len' if key == 'seq_len' else 'tasks'} say {value}")
    if meta["seq_len"] < 1:
        raise ValueError(f"{meta_path}: 'seq_len' must be >= 1, got {meta['seq_len']}")
    if not isinstance(meta.get("rc_average", False), bool):
        raise ValueError(f"{meta_path}: 'rc_average' must be true or false, got {meta['rc_average']!r}")
    if meta.get("task_type") is not None:
        try:
            check_task_type(meta["task_type"])
        except ValueError as err:
            raise ValueError(f"{meta_path}: {err}") from None
    weights_header(directory / WEIGHTS_FILE)
    return meta


def read_format_json(path: Path, expected: str) -> dict:
    """The JSON object of a file dnacnn wrote, whose ``"format"`` is ``expected``.

    Raises:
        ValueError: naming the file: not UTF-8 JSON, not an object, or of another format.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != expected:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} has format {found!r}; this version of dnacnn reads {expected!r}")
    return data


def weights_sha256(directory: str | Path) -> str:
    """sha256 of a checkpoint's ``model.safetensors``: the model's identity in a scoring
    job's ``job.json`` and ``summary.json``, and in the service's ``GET /v1/model``."""
    with open(Path(directory) / WEIGHTS_FILE, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def weights_header(path: str | Path) -> dict[str, dict]:
    """The tensors a safetensors file holds (name -> dtype, shape, data_offsets), after
    checking that their byte ranges cover the file's data exactly.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a truncated or foreign file, naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise _not_in_checkpoint(path)
    size = path.stat().st_size
    broken = f"{path} is not a whole safetensors file"
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little") if size >= 8 else -1
        if not 0 < length <= min(size - 8, _MAX_HEADER):
            raise ValueError(f"{broken} (a header of {length} bytes in a file of {size}: truncated?)")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"{broken} (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{broken} (its header is not a JSON object)")
    tensors = {name: info for name, info in header.items() if name != "__metadata__"}
    try:
        ranges = sorted(tuple(info["data_offsets"]) for info in tensors.values())
    except (TypeError, KeyError):
        raise ValueError(f"{broken} (a tensor without data_offsets)") from None
    if not all(len(r) == 2 and all(type(o) is int and o >= 0 for o in r) for r in ranges):
        raise ValueError(f"{broken} (a tensor's data_offsets are not two byte offsets)")
    data = size - 8 - length
    covered = 0
    for begin, end in ranges:
        if begin != covered or end < begin:
            raise ValueError(f"{broken} (tensor bytes {begin}-{end} do not follow on from byte {covered})")
        covered = end
    if covered != data:
        raise ValueError(f"{broken} (its tensors hold {covered} bytes, the file {data}: truncated?)")
    return tensors


def _not_in_checkpoint(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"no {path.name} in {path.parent}; expected a directory written by dnacnn.models.save")


__all__ = ["CONFIG_FILE", "FORMAT", "WEIGHTS_FILE", "read_checkpoint_meta", "read_format_json", "weights_header",
           "weights_sha256"]
