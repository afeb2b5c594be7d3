"""Helpers shared by the model modules: input checks and config validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn


def check_input(x: torch.Tensor, seq_len: int | None) -> None:
    """Raise ``ValueError`` unless ``x`` is (N, 4, L), with L == ``seq_len`` when given."""
    if x.ndim != 3 or x.shape[1] != 4:
        raise ValueError(
            f"expected x of shape (N, 4, L) with channels A, C, G, T, got {tuple(x.shape)}; "
            "one-hot arrays stored as (N, L, 4) need x.transpose(1, 2)"
        )
    if seq_len is not None and x.shape[2] != seq_len:
        raise ValueError(
            f"this model was built for sequences of length {seq_len}, got length "
            f"{x.shape[2]}; cut or pad the windows to {seq_len} bp, or build the model "
            f"with seq_len={x.shape[2]}"
        )


def freeze_tuples(config: object) -> None:
    """Turn list-valued fields of a frozen config dataclass into tuples, in place.

    Configs read from JSON or YAML hold lists where the dataclass declares tuples;
    tuples keep configs hashable and equal to the ones they were saved from.
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, list):
            object.__setattr__(config, field.name, tuple(value))


def require_positive_ints(name: str, values: int | Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``values`` (one int or a sequence) are all ints > 0."""
    items = values if isinstance(values, Sequence) else (values,)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must hold positive integers, got {values!r}")


def require_dropouts(name: str, values: float | Sequence[float]) -> None:
    """Raise ``ValueError`` unless ``values`` (one or a sequence) are all in [0, 1)."""
    items = values if isinstance(values, Sequence) else (values,)
    for p in items:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must hold dropout rates in [0, 1), got {values!r}")


def require_bool(name: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is a bool (a YAML string "false" is not)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def require_same_length(**named: Sequence[object]) -> None:
    """Raise ``ValueError`` unless the named sequences all have one length."""
    lengths = {name: len(values) for name, values in named.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"these config fields need one entry per layer, but {listed}")


class ConfiguredModel(nn.Module):
    """A model of the family: ``config`` carries ``seq_len`` (L) and ``n_tasks`` (T)."""

    config: object

    @property
    def seq_len(self) -> int:
        return self.config.seq_len

    @property
    def n_tasks(self) -> int:
        return self.config.n_tasks


class Exponential(nn.Module):
    """x -> exp(x), elementwise. As a first-layer activation it makes the filters learn
    whole motifs rather than parts of them (Koo & Ploenzke 2021, Nat. Mach. Intell.)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)


#: First-layer activations by config name.
ACTIVATIONS = {"relu": nn.ReLU, "exp": Exponential}


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()

