"""Typed configs from YAML: dict -> dataclass with checks, command-line overrides.

:func:`from_dict` builds a dataclass from a mapping read from YAML or JSON,
rejecting unknown keys (and sections) with a message naming the key, its section
and the allowed keys, and checking every value against the field's type.
:func:`load_yaml_config` reads a file, applies ``section.key=value`` overrides,
expands environment variables and validates; its errors say whether the file
or which ``--set`` override is wrong. YAML is read by :func:`parse_yaml`: safe (no
Python tags), a key given twice, an alias inside its own anchor or a "billion laughs"
of nested aliases refused. ``dnacnn.config`` declares the job sections.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


# ---------------------------------------------------------------------------
# Generic dict -> dataclass loading
# ---------------------------------------------------------------------------


class ConfigError(ValueError):
    """A wrong key or value in a config; ``key`` is its dotted path (``"train.epochs"``),
    or the section's (``"train"``) for a check across its fields ("" for the whole config)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def from_dict(cls: type[T], d: Mapping[str, Any] | None, where: str) -> T:
    """Build the dataclass ``cls`` from a mapping read from YAML or JSON.

    Args:
        cls: a dataclass type; fields may be ``bool``, ``int``, ``float``, ``str``,
            ``tuple[...]``, ``list[...]``, ``dict``, ``Literal[...]``, ``X | None``
            or another dataclass (loaded recursively as section ``where.field``).
        d: the mapping; None means "all defaults".
        where: the section's name, used in error messages (``"train"``); ``""``
            for a top-level config whose fields are sections.
    Returns:
        an instance of ``cls``.
    Raises:
        ValueError: on an unknown key ("unknown key 'lr' in section 'train';
            allowed: ..."), a missing required key, or a value of the wrong type.
    """
    if d is None:
        d = {}
    if not isinstance(d, Mapping):
        raise ConfigError(
            f"section '{where}' must be a mapping of keys to values, got {type(d).__name__} {d!r}",
            where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in d if k not in fields]
    if unknown:
        if not where:
            raise ConfigError(f"unknown section {unknown[0]!r}; allowed: {', '.join(fields)}",
                              str(unknown[0]))
        raise ConfigError(
            f"unknown key {unknown[0]!r} in section '{where}'; allowed: {', '.join(fields)}",
            f"{where}.{unknown[0]}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in d:
            kwargs[name] = _coerce(d[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if not where:
                raise ConfigError(f"missing section {name!r}; it has no default", key)
            raise ConfigError(f"missing key {name!r} in section '{where}'; it has no default", key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:  # from the class's own checks (__post_init__)
        if not where or "section '" in str(err):
            raise ConfigError(str(err), where) from None
        raise ConfigError(f"in section '{where}': {err}", where) from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against (and lightly converted to) the annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ValueError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {tp}",
                          key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}", key)
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}", key)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}", key)
        return value
    if tp is float:
        # YAML reads 1e-7 (no dot) as a string; accept numeric strings.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}", key)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}", key)
        return value
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key} must be a list, got {value!r}", key)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, got {value!r}", key)
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list or tp is list:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key} must be a list, got {value!r}", key)
        item = args[0] if args else Any
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {value!r}", key)
        return dict(value)
    raise TypeError(f"{key}: unsupported field type {_type_name(tp)}")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain dicts, lists and scalars (YAML- and JSON-safe)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(config)


# ---------------------------------------------------------------------------
# YAML files and command-line overrides
# ---------------------------------------------------------------------------


#: Values a config may expand to, aliases counted each time they are used: the committed
#: configs hold about a hundred; a "billion laughs" file of nested aliases holds billions.
MAX_CONFIG_VALUES = 100_000


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python tags) that refuses a key given twice in one mapping,
    where PyYAML would keep the last silently. Keys merged in with ``<<`` may be overridden."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark)
                    seen.add(key)
                except TypeError:  # an unhashable key: PyYAML's own error says so
                    break
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """``text`` parsed as YAML (safe: no Python tags), refused in one line naming ``where``
    when it is not valid YAML, gives a key twice, nests too deeply, uses an alias inside
    its own anchor, or expands to more than :data:`MAX_CONFIG_VALUES` values.

    Raises:
        ValueError: ``"<where> is not valid YAML: <reason>"``.
    """
    try:
        value = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
        _count_values(value, {}, set())
    except yaml.YAMLError as err:
        reason = " ".join(str(err).replace(' in "<unicode string>",', "").split())
        raise ValueError(f"{where} is not valid YAML: {reason}") from None
    except RecursionError:
        raise ValueError(f"{where} is not valid YAML: it nests too deeply") from None
    except _TooLarge as err:
        raise ValueError(f"{where} is not a usable config: {err}") from None
    return value


class _TooLarge(Exception):
    pass


def _count_values(value: Any, counted: dict[int, int], open_: set[int]) -> int:
    """Values in ``value`` with every alias expanded (each shared list or mapping is counted
    once per use, walked once); raises :class:`_TooLarge` past :data:`MAX_CONFIG_VALUES`
    or for a list or mapping that holds itself."""
    if not isinstance(value, (dict, list)):
        return 1
    key = id(value)
    if key in open_:
        raise _TooLarge("an alias (*name) is used inside its own anchor (&name): the value would hold itself")
    if key not in counted:
        open_.add(key)
        items = value.values() if isinstance(value, dict) else value
        counted[key] = 1 + sum(_count_values(v, counted, open_) for v in items)
        open_.discard(key)
        if counted[key] > MAX_CONFIG_VALUES:
            raise _TooLarge(f"its aliases expand to more than {MAX_CONFIG_VALUES:,} values")
    return counted[key]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (see :func:`parse_yaml`).

    Raises:
        FileNotFoundError: no such file (or a folder).
        ValueError: one line naming the file: not UTF-8, not YAML, not a mapping.
    """
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"config file {path} is a folder; give a YAML file, e.g. jobs/configs/smoke.yaml")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found; configs live in jobs/configs/")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                         f"{err.start}); save the config as UTF-8") from None
    raw = parse_yaml(text, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a mapping of sections (data, model, train, ...)")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a raw config.

    ``["train.epochs=4", "model.params.filters=16"]`` sets nested keys, creating
    missing sections; unknown keys are then rejected by :func:`from_dict` as usual.
    Returns a new dict; ``raw`` is not changed.
    """
    out = _deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or "." not in key:
            raise ValueError(
                f"override {item!r} must look like section.key=value, e.g. train.epochs=4"
            )
        value = parse_yaml(text, f"the value {text!r}") if text.strip() else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def load_yaml_config(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Read a config of class ``cls`` from YAML, apply overrides, validate.

    Args:
        path: a YAML file, e.g. ``jobs/configs/tutorial_multiscale.yaml``.
        overrides: ``section.key=value`` strings (see :func:`apply_overrides`).
        cls: the top-level config class: a dataclass whose fields are the sections.
    Environment variables (``$HOME``, ``${DATA}``) in string values are expanded.

    Raises:
        ValueError: one line that starts with what is wrong: the override
            (``--set train.epochs=abc: train.epochs must be an integer, ...``) when
            the override does not cause the error, else the file.
    """
    raw = read_yaml(path)
    try:
        return from_dict(cls, _expand_vars(apply_overrides(raw, overrides)), "")
    except ValueError as err:
        raise ValueError(f"{_blame(cls, raw, overrides, err) or path}: {err}") from None


def _blame(cls: type, raw: dict[str, Any], overrides: Sequence[str], err: ValueError) -> str | None:
    """``--set ITEM`` for the override that causes ``err``: one that sets the key in error
    (or a key of the section in error) and without which the error goes away. None: the
    file's own error."""
    wrong = getattr(err, "key", "")
    for i, item in enumerate(overrides):
        key = item.partition("=")[0].strip()
        if wrong and not (key == wrong or key.startswith(f"{wrong}.") or wrong.startswith(f"{key}.")):
            continue
        try:
            from_dict(cls, _expand_vars(apply_overrides(raw, [*overrides[:i], *overrides[i + 1:]])), "")
        except ValueError as other:
            if str(other) == str(err):
                continue
        return f"--set {item}"
    return None


#: ``$NAME`` or ``${NAME}`` in a string value.
_VAR = re.compile(r"\$(\w+|\{[^}]*\})")


def _expand_vars(d: Any, key: str = "") -> Any:
    """``d`` with environment variables in its strings expanded; ``key`` is its dotted path.

    Raises:
        ConfigError: a variable that is not set (``os.path.expandvars`` would leave
            ``${DATA}/x`` as it is, a path nobody meant), naming the key.
    """
    if isinstance(d, dict):
        return {k: _expand_vars(v, f"{key}.{k}" if key else str(k)) for k, v in d.items()}
    if isinstance(d, list):
        return [_expand_vars(v, f"{key}[{i}]") for i, v in enumerate(d)]
    if isinstance(d, str) and "$" in d:
        unset = [name for name in (m.group(1).strip("{}") for m in _VAR.finditer(d)) if name not in os.environ]
        if unset:
            raise ConfigError(f"{key}: environment variable {unset[0]} in {d!r} is not set", key)
        return os.path.expandvars(d)
    return d
