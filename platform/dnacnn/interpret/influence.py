"""Filter influence as Basset defines it, computed exactly without a forward pass per filter.

The influence of a first-layer filter is the change in loss when the filter's
output (after its ReLU) is replaced by its mean activation. The brute-force way
runs the whole model once per filter. Here the first layer runs once per batch;
for each filter only what its replacement changes is recomputed:

- **Basset / SimpleCNN**: the first layer's ReLU output ``a`` (N, C, P) is max-pooled
  (a constant channel pools to the same constant) and feeds one linear layer: the
  next conv (Basset) or the dense layer on the flattened map (SimpleCNN, or a
  one-block Basset). Its pre-activation with channel f at its mean m_f is the
  unchanged pre-activation plus the layer applied to the channel's deviation
  (m_f - pooled_f) through its weights for input channel f alone: a one-channel
  conv (or matrix product), about C times cheaper than the layer. The rest of the
  network runs from there, many filters at once as one batch.
- **MultiScaleCNN**: a filter of one branch changes only that branch's map (its
  batch norm maps the constant to a constant), so only that branch's attention
  pooling and the dense head are recomputed; the other branches' features are reused.

The result equals the brute-force definition up to float rounding
(``tests/test_interpret_filters.py`` checks it on small models of each kind).
An ``RCAverage`` wrapper is followed: the filter is replaced on both strands and
the logits are averaged as the wrapper does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dnacnn.interpret.filters import filter_layers
from dnacnn.models import Basset, MultiScaleCNN, RCAverage, SimpleCNN
from dnacnn.models.prediction import model_device, onehot_to_x
from dnacnn.models.reverse_complement import reverse_complement_x

# Rows (sequences x filters) of the downstream network run as one batch.
_ROWS_PER_PASS = 1024


def _losses(logits: torch.Tensor, labels: torch.Tensor, task_type: str) -> torch.Tensor:
    """(N, T) logits and labels -> (N, T) per-sample, per-task losses.

    Sigmoid tasks: binary cross-entropy per task. Multiclass: the cross-entropy of
    each sample, put in the column of its class (0 elsewhere).
    """
    if task_type == "multiclass":
        ce = F.cross_entropy(logits, labels.argmax(dim=1), reduction="none")  # (N,)
        return labels * ce[:, None]
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none")


def _task_loss(total: torch.Tensor, labels_sum: torch.Tensor, n: int, task_type: str) -> np.ndarray:
    """Summed (T,) losses -> mean loss per task (per sample of the class for multiclass; NaN
    for a class without samples: its loss is not measured, which 0 would misstate)."""
    if task_type == "multiclass":
        return (total / labels_sum).numpy()  # 0 / 0 = NaN for a class without samples
    return (total / max(n, 1)).numpy()


def _deviation_through(layer: nn.Module, deviation: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """The change of ``layer``'s output when each of K input channels alone changes.

    Args:
        layer: the linear layer after the pooled map: an ``nn.Conv1d`` taking the (N, C, P)
            map, or an ``nn.Linear`` taking it flattened channel-major (C * P inputs).
        deviation: (N, K, P) new minus old values of input channels ``channels`` (K,).
    Returns:
        (K, N, ...) the change of the layer's output for each channel: (K, N, C2, P2)
        for a conv, (K, N, U) for a linear layer (the bias cancels).
    """
    n, k, p = deviation.shape
    if isinstance(layer, nn.Conv1d):
        if layer.groups != 1 or layer.padding_mode != "zeros":
            raise ValueError("influence needs a plain conv (groups 1, zero padding) after the first layer")
        weight = layer.weight[:, channels]  # (C2, K, w)
        weight = weight.transpose(0, 1).reshape(k * layer.out_channels, 1, -1)  # (K * C2, 1, w)
        out = F.conv1d(deviation, weight, None, layer.stride, layer.padding, layer.dilation, groups=k)
        return out.reshape(n, k, layer.out_channels, -1).transpose(0, 1)  # (K, N, C2, P2)
    weight = layer.weight.reshape(layer.out_features, -1, p)[:, channels]  # (U, K, P)
    return torch.einsum("nkp,ukp->knu", deviation, weight)  # (K, N, U)


def _through_linear(pooled: torch.Tensor, layer: nn.Module, means: torch.Tensor,
                    after: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Logits with each channel of a pooled map replaced by its mean, for a linear ``layer`` next.

    Args:
        pooled: (N, C, P) the pooled first-layer map; layer: the conv or linear layer
            it feeds (see :func:`_deviation_through`); means: (C,) each channel's mean.
        after: the rest of the network, ``layer``'s output (rows, ...) -> (rows, T) logits.
    Returns:
        (C, N, T) logits, row c with channel c at its mean.
    """
    n, c, _ = pooled.shape
    z = layer(pooled if isinstance(layer, nn.Conv1d) else pooled.flatten(1))  # (N, ...)
    per_pass = max(1, _ROWS_PER_PASS // max(n, 1))
    out = []
    for lo in range(0, c, per_pass):
        channels = torch.arange(lo, min(lo + per_pass, c), device=pooled.device)
        deviation = means[channels][None, :, None] - pooled[:, channels]  # (N, K, P)
        changed = z.unsqueeze(0) + _deviation_through(layer, deviation, channels)  # (K, N, ...)
        out.append(after(changed.flatten(0, 1)).reshape(len(channels), n, -1))  # (K, N, T)
    return torch.cat(out)


def _basset(model: Basset, x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """(N, 4, L) -> (F, N, T) logits with each first-layer filter at its mean."""
    tower = model.conv_tower
    pooled = tower[3](tower[2](tower[1](tower[0](x))))  # conv, bn, ReLU, max-pool: (N, F, P)
    if len(tower) > 4:  # the next conv block's conv, then the rest of the tower and the dense head
        return _through_linear(pooled, tower[4], means,
                               lambda z: model.head(model.dense(tower[5:](z).flatten(1))))
    return _through_linear(pooled, model.dense[0], means, lambda z: model.head(model.dense[1:](z)))


def _simple(model: SimpleCNN, x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """(N, 4, L) -> (F, N, T) logits with each filter at its mean (eval: dropout is the identity)."""
    pooled = model.pool(torch.relu(model.conv(x)))  # (N, F, P)
    return _through_linear(pooled, model.hidden, means,
                           lambda z: model.head(model.hidden_dropout(torch.relu(z))))


def _multiscale(model: MultiScaleCNN, x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """(N, 4, L) -> (B * F, N, T) logits with each filter of each branch at its mean."""
    n = x.shape[0]
    maps, features = [], []
    for branch in model.branches:
        h = branch.dropout(branch.bn(torch.relu(branch.conv(x))))  # (N, F, L)
        maps.append(h)
        features.append(branch.pool(h)[0])  # (N, F)
    n_filters = model.config.filters
    per_pass = max(1, _ROWS_PER_PASS // max(n, 1))
    out = []
    for b, (branch, h) in enumerate(zip(model.branches, maps)):
        m = means[b * n_filters:(b + 1) * n_filters]
        constant = branch.dropout(branch.bn(m[None, :, None]))[0, :, 0]  # (F,) the map's new value
        for lo in range(0, n_filters, per_pass):
            k = min(per_pass, n_filters - lo)
            changed = h.unsqueeze(0).repeat(k, 1, 1, 1)  # (K, N, F, L)
            for j in range(k):
                changed[j, :, lo + j] = constant[lo + j]
            pooled = branch.pool(changed.flatten(0, 1))[0]  # (K * N, F)
            others = [f.repeat(k, 1) for f in features]  # each (K * N, F)
            others[b] = pooled
            logits = model.head(model.dense(torch.cat(others, dim=1)))  # (K * N, T)
            out.append(logits.reshape(k, n, -1))
    return torch.cat(out)


def replaced_logits(model: nn.Module, x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """The model's logits with each first-layer filter, in turn, replaced by its mean.

    Args:
        model: a Basset, SimpleCNN or MultiScaleCNN, possibly in ``RCAverage``; in eval mode.
        x: (N, 4, L) float one-hot.
        means: (F,) float, each filter's mean activation, filters in the order of
            :func:`dnacnn.interpret.filters.filter_layers`.
    Returns:
        (F, N, T) logits; row f is the model's output with filter f at its mean.
    """
    if isinstance(model, RCAverage):
        forward = replaced_logits(model.model, x, means)
        reverse = replaced_logits(model.model, reverse_complement_x(x), means)
        return (forward + reverse) / 2
    if isinstance(model, Basset):
        return _basset(model, x, means)
    if isinstance(model, SimpleCNN):
        return _simple(model, x, means)
    if isinstance(model, MultiScaleCNN):
        return _multiscale(model, x, means)
    raise ValueError(f"no filter influence known for a {type(model).__name__} model")


@torch.inference_mode()
def filter_influence(
    model: nn.Module,
    onehot: np.ndarray,
    labels: np.ndarray,
    task_type: str,
    mean_activation: np.ndarray,
    batch_size: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """The loss change when each filter's output is replaced by its mean (Basset's influence).

    Args:
        model: a model of the family (eval mode is set here).
        onehot: (N, L, 4) uint8 sequences; labels: (N, T) float 0/1 labels.
        task_type: how the model's logits are read ("binary", "multitask", "multiclass").
        mean_activation: (F,) mean activation of each filter (``FilterMotifs.mean_activation``).
        batch_size: sequences per pass of the first layer.
    Returns:
        influence (F, T) float64: loss with filter f at its mean minus the loss of the
        model, per task (multiclass: per class, over the samples of that class, NaN for
        a class without samples); and
        base_loss (T,) float64. Positive: the model needs the filter. The overall
        influence is ``np.nanmean(influence, axis=1)``.
    """
    model.eval()
    device = model_device(model)
    n_filters = sum(layer.n_filters for layer in filter_layers(model))
    if len(mean_activation) != n_filters:
        raise ValueError(f"got {len(mean_activation)} mean activations for a model with {n_filters} filters")
    means = torch.as_tensor(np.asarray(mean_activation), dtype=torch.float32, device=device)  # (F,)
    n_tasks = labels.shape[1]
    base = torch.zeros(n_tasks, dtype=torch.float64)
    replaced = torch.zeros(n_filters, n_tasks, dtype=torch.float64)
    labels_t = torch.from_numpy(np.array(labels, dtype=np.float32))  # a writable copy
    for lo in range(0, len(onehot), batch_size):
        x = onehot_to_x(onehot[lo:lo + batch_size], device)  # (B, 4, L)
        y = labels_t[lo:lo + len(x)].to(device)  # (B, T)
        base += _losses(model(x).float(), y, task_type).sum(0).double().cpu()
        logits = replaced_logits(model, x, means).float()  # (F, B, T)
        losses = _losses(logits.flatten(0, 1), y.repeat(n_filters, 1), task_type)  # (F * B, T)
        replaced += losses.reshape(n_filters, len(x), -1).sum(1).double().cpu()
    labels_sum = labels_t.sum(0).double()
    base_loss = _task_loss(base, labels_sum, len(onehot), task_type)
    per_filter = np.stack([_task_loss(r, labels_sum, len(onehot), task_type) for r in replaced])
    return per_filter - base_loss[None, :], base_loss
