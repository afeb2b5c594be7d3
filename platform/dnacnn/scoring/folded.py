"""A conv-tower model as a flat list of inference layers, batch norm folded in.

The mutant-effect engine (:mod:`dnacnn.scoring.mutant_effect`) recomputes only
part of a conv tower, so it needs the model as plain tensors: a tower of
:class:`ConvStage` (valid conv with its batch norm folded into the weights,
optional ReLU or exponential, optional max-pool of window = stride) and a head of
:class:`DenseLayer` (linear with folded batch norm, optional ReLU) on the
channel-major flattened tower output. Dropout is the identity at inference and
is dropped.

Batch norm in eval mode is ``y = (z - mean) / sqrt(var + eps) * gamma + beta``;
after a layer ``z = W x + b`` it folds into ``W' = s W``, ``b' = s (b - mean) + beta``
with ``s = gamma / sqrt(var + eps)`` per output channel.

:func:`fold` understands Basset and the simple CNN (with a plain or a
strand-sharing first conv). Any other layout (the multi-scale model's attention
pooling, whose softmax spans the whole window) gives ``None``: the engine then
runs whole windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dnacnn.models.basset import Basset
from dnacnn.models.common import Exponential
from dnacnn.models.reverse_complement import RCConv1d
from dnacnn.models.simple import SimpleCNN


@dataclass(frozen=True)
class ConvStage:
    """conv (valid, stride 1) -> [activation] -> [max-pool, window = stride = ``pool``].

    weight: (C_out, C_in, w) float; bias: (C_out,); activation: "relu", "exp" or None.
    Both activations are increasing, so they commute with the max-pool.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    activation: str | None
    pool: int

    def activate(self, h: torch.Tensor) -> torch.Tensor:
        """The stage's activation applied to ``h``."""
        if self.activation == "relu":
            return torch.relu(h)
        return torch.exp(h) if self.activation == "exp" else h

    def to(self, device: torch.device, dtype: torch.dtype) -> "ConvStage":
        """A copy on ``device`` as ``dtype``; an exp stage stays float32, as the model runs it at
        inference (``Basset.forward``: exp of bf16 pre-activations would amplify their rounding)."""
        dtype = torch.float32 if self.activation == "exp" else dtype
        return ConvStage(self.weight.to(device, dtype), self.bias.to(device, dtype), self.activation, self.pool)

    @property
    def width(self) -> int:
        return int(self.weight.shape[2])


@dataclass(frozen=True)
class DenseLayer:
    """linear -> [ReLU]; weight: (out, in), bias: (out,)."""

    weight: torch.Tensor
    bias: torch.Tensor
    relu: bool


@dataclass(frozen=True)
class FoldedModel:
    """A model as ``stages`` (the conv tower) then ``dense`` (on the flattened tower output)."""

    stages: tuple[ConvStage, ...]
    dense: tuple[DenseLayer, ...]

    def to(self, device: torch.device, dtype: torch.dtype) -> "FoldedModel":
        """A copy with every tensor on ``device`` as ``dtype`` (exp stages: see ``ConvStage.to``)."""
        return FoldedModel(
            tuple(s.to(device, dtype) for s in self.stages),
            tuple(DenseLayer(d.weight.to(device, dtype), d.bias.to(device, dtype), d.relu)
                  for d in self.dense),
        )


def fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm1d):
    """Fold an eval-mode ``bn`` that follows a layer with ``weight`` (out, ...) and ``bias`` (out,).

    Returns:
        (weight', bias'): float32 tensors of the same shapes, detached.
    """
    weight = weight.detach().float()
    bias = torch.zeros(weight.shape[0]) if bias is None else bias.detach().float()
    mean = bn.running_mean.detach().float()
    scale = 1.0 / torch.sqrt(bn.running_var.detach().float() + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.detach().float()
        shift = bn.bias.detach().float()
    else:
        shift = torch.zeros_like(mean)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight * scale.reshape(shape), (bias - mean) * scale + shift


def fold(model: nn.Module) -> FoldedModel | None:
    """The folded layers of ``model``, or ``None`` for a layout the engine cannot recompute in part.

    Args:
        model: a :class:`~dnacnn.models.Basset` or :class:`~dnacnn.models.SimpleCNN` (eval
            mode is assumed: batch norm uses its running statistics).
    """
    if isinstance(model, Basset):
        tower, head = list(model.conv_tower), [*model.dense, model.head]
    elif isinstance(model, SimpleCNN):
        tower = [model.conv, nn.ReLU(), model.pool]
        head = [model.hidden, nn.ReLU(), model.head]
    else:
        return None
    stages = _fold_tower(tower)
    dense = _fold_head(head)
    if stages is None or dense is None:
        return None
    return FoldedModel(tuple(stages), tuple(dense))


def _conv_weights(layer: nn.Module):
    """(weight (C_out, C_in, w), bias) of a valid stride-1 conv, else None."""
    if isinstance(layer, RCConv1d):
        weight = torch.cat([layer.weight, layer.weight.flip(1, 2)])
        bias = None if layer.bias is None else torch.cat([layer.bias, layer.bias])
        return weight, bias
    if isinstance(layer, nn.Conv1d) and (
        layer.stride == (1,) and layer.dilation == (1,) and layer.groups == 1
        and layer.padding in ((0,), "valid") and layer.padding_mode == "zeros"
    ):
        return layer.weight, layer.bias
    return None


def _plain_pool(layer: nn.Module) -> int | None:
    """The window of a max-pool with window == stride, no padding or dilation, else None."""
    if not isinstance(layer, nn.MaxPool1d) or layer.ceil_mode:
        return None
    size = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
    stride = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
    padding = layer.padding if isinstance(layer.padding, int) else layer.padding[0]
    dilation = layer.dilation if isinstance(layer.dilation, int) else layer.dilation[0]
    if size != stride or padding != 0 or dilation != 1:
        return None
    return int(size)


def _fold_next_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None, layers: list[nn.Module],
                          i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(weight, bias) of a layer as detached float32, with ``layers[i]`` folded in when it is a
    batch norm; and the index of the next layer."""
    if i < len(layers) and isinstance(layers[i], nn.BatchNorm1d):
        weight, bias = fold_batch_norm(weight, bias, layers[i])
        return weight, bias, i + 1
    weight = weight.detach().float()
    return weight, torch.zeros(weight.shape[0]) if bias is None else bias.detach().float(), i


def _fold_tower(layers: list[nn.Module]) -> list[ConvStage] | None:
    stages: list[ConvStage] = []
    i = 0
    while i < len(layers):
        conv = _conv_weights(layers[i])
        if conv is None:
            return None
        weight, bias = conv
        i += 1
        weight, bias, i = _fold_next_batch_norm(weight, bias, layers, i)
        act, pool = None, 1
        while i < len(layers) and not isinstance(layers[i], (nn.Conv1d, RCConv1d)):
            if isinstance(layers[i], (nn.ReLU, Exponential)) and act is None:  # they commute with max-pool
                act = "relu" if isinstance(layers[i], nn.ReLU) else "exp"
            elif _plain_pool(layers[i]) is not None and pool == 1:
                pool = _plain_pool(layers[i])
            elif not isinstance(layers[i], nn.Dropout):
                return None
            i += 1
        stages.append(ConvStage(weight, bias, act, pool))
    return stages


def _fold_head(layers: list[nn.Module]) -> list[DenseLayer] | None:
    dense: list[DenseLayer] = []
    i = 0
    while i < len(layers):
        if not isinstance(layers[i], nn.Linear):
            return None
        weight, bias = layers[i].weight, layers[i].bias
        i += 1
        weight, bias, i = _fold_next_batch_norm(weight, bias, layers, i)
        relu = False
        while i < len(layers) and not isinstance(layers[i], nn.Linear):
            if isinstance(layers[i], nn.ReLU) and not relu:
                relu = True
            elif not isinstance(layers[i], nn.Dropout):
                return None
            i += 1
        dense.append(DenseLayer(weight, bias, relu))
    return dense
