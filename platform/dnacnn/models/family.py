"""The model family as an explicit name -> (model class, config class) table, and ``build``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from torch import nn

from dnacnn.models.basset import Basset, BassetConfig
from dnacnn.models.multiscale import MultiScaleCNN, MultiScaleConfig
from dnacnn.models.simple import SimpleCNN, SimpleCNNConfig

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "basset": (Basset, BassetConfig),
    "multiscale": (MultiScaleCNN, MultiScaleConfig),
    "simple": (SimpleCNN, SimpleCNNConfig),
}


def build(name: str, config: Mapping[str, object] | object | None = None) -> nn.Module:
    """Build the model ``name`` of ``MODELS`` from its config.

    Args:
        name: a key of ``MODELS``: "basset", "multiscale" or "simple".
        config: the model's config dataclass; or a dict of some of its fields
            (as read from YAML or JSON; unknown keys raise ``ValueError``);
            or None for the defaults (the published / tutorial models).
    Returns:
        the model, in training mode, with ``.name`` and ``.config`` set.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    model_cls, config_cls = MODELS[name]
    if config is None:
        config = config_cls()
    elif isinstance(config, Mapping):
        allowed = [field.name for field in dataclasses.fields(config_cls)]
        unknown = [key for key in config if key not in allowed]
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(map(repr, unknown))} in the config of model "
                f"{name!r}; allowed keys: {', '.join(allowed)}"
            )
        config = config_cls(**config)
    elif not isinstance(config, config_cls):
        raise TypeError(
            f"model {name!r} takes a {config_cls.__name__} or a dict of its fields, "
            f"got {type(config).__name__}"
        )
    return model_cls(config)
