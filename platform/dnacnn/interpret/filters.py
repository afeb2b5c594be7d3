"""First-layer filters read as motifs, as in the Basset paper (Kelley et al. 2016).

For each first-layer filter, over a set of sequences:

- the **sites**: positions where the filter's activation (after its ReLU)
  exceeds half of its maximum over all the sequences;
- the **PFM**: the sequence segments under those sites (the filter's width),
  aligned and counted, as (W, 4) base frequencies;
- the mean activation (over every sequence and position), which the **influence**
  (:mod:`dnacnn.interpret.influence`) puts in place of the filter's output.

Models: Basset and SimpleCNN (one first conv), MultiScaleCNN (one conv per
branch; its filters are named by branch width). An ``RCAverage`` wrapper is
looked through for the filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dnacnn.data.motifs import Motif
from dnacnn.models import Basset, MultiScaleCNN, RCAverage, SimpleCNN
from dnacnn.models.prediction import model_device, onehot_to_x


@dataclass(frozen=True)
class FilterLayer:
    """One first layer of convolution filters.

    Attributes:
        prefix: filter names are ``{prefix}{index}``.
        width: W, bp per filter.
        offset: left padding of the conv: activation position p covers bases
            ``p - offset .. p - offset + W - 1`` of the input.
        n_filters: F.
        activate: x (N, 4, L) float -> (N, F, P) activations after the ReLU.
    """

    prefix: str
    width: int
    offset: int
    n_filters: int
    activate: Callable[[torch.Tensor], torch.Tensor]


def filter_layers(model: nn.Module) -> list[FilterLayer]:
    """The first-layer filters of a model of the family (one layer; one per branch for
    MultiScaleCNN).

    Raises:
        ValueError: for a model without a known first layer.
    """
    inner = model.model if isinstance(model, RCAverage) else model
    if isinstance(inner, Basset):
        conv, bn, relu = inner.conv_tower[0], inner.conv_tower[1], inner.conv_tower[2]
        return [FilterLayer("filter", inner.config.conv_widths[0], 0, inner.config.conv_filters[0],
                            lambda x: relu(bn(conv(x))))]
    if isinstance(inner, SimpleCNN):
        conv = inner.conv
        return [FilterLayer("filter", inner.config.width, 0, inner.config.filters,
                            lambda x: torch.relu(conv(x)))]
    if isinstance(inner, MultiScaleCNN):
        layers = []
        for width, branch in zip(inner.config.widths, inner.branches):
            layers.append(FilterLayer(f"w{width}_filter", width, (width - 1) // 2,
                                      inner.config.filters,
                                      lambda x, c=branch.conv: torch.relu(c(x))))
        return layers
    raise ValueError(f"no first-layer filters known for a {type(inner).__name__} model")


@dataclass
class FilterMotifs:
    """What the first-layer filters respond to.

    Attributes:
        names: F filter names.
        counts: (F, W, 4) float64 base counts at the sites (per layer width; MultiScale
            layers are padded to the widest with zero rows on the right: ``widths`` says how many rows count).
        widths: (F,) int, W of each filter.
        sites: (F,) int, segments counted.
        max_activation: (F,) float, the maximum activation over the sequences.
        mean_activation: (F,) float, the mean activation (every sequence and position).
    """

    names: list[str]
    counts: np.ndarray
    widths: np.ndarray
    sites: np.ndarray
    max_activation: np.ndarray
    mean_activation: np.ndarray

    def motifs(self, trim_bits: float = 0.3) -> list[Motif]:
        """One :class:`Motif` per filter with sites (filters without sites are left out).

        Flanking positions with less than ``trim_bits`` of information are trimmed
        (as Basset trims its filters before TomTom): an uninformative flank of a
        filter aligns with anything and lets long, low-information database
        matrices win the match. A filter with no position above it keeps its full width.
        """
        out = []
        for f, name in enumerate(self.names):
            if self.sites[f] > 0:
                counts = self.counts[f, : self.widths[f]] + 1e-9  # a row of N bases only -> uniform
                motif = Motif(name, name, counts, int(self.sites[f]))
                keep = np.flatnonzero(motif.information_content() >= trim_bits)
                if len(keep):
                    motif = Motif(name, name, counts[keep[0]: keep[-1] + 1], int(self.sites[f]))
                out.append(motif)
        return out

    def information_content(self) -> np.ndarray:
        """(F,) bits summed over the positions of each filter's full PFM (0 without sites)."""
        ic = np.zeros(len(self.names))
        for f in np.flatnonzero(self.sites > 0):
            ic[f] = Motif("f", "f", self.counts[f, : self.widths[f]] + 1e-9).information_content().sum()
        return ic


def _batches(onehot: np.ndarray, batch_size: int, device: torch.device):
    for lo in range(0, len(onehot), batch_size):
        yield lo, onehot_to_x(onehot[lo:lo + batch_size], device)  # (B, 4, L)


@torch.inference_mode()
def filter_motifs(model: nn.Module, onehot: np.ndarray, batch_size: int = 128) -> FilterMotifs:
    """PFM counts, sites and activation statistics of every first-layer filter.

    Args:
        model: a model of the family (eval mode is set here).
        onehot: (N, L, 4) uint8 sequences.
        batch_size: sequences per forward pass of the first layer.
    Returns:
        :class:`FilterMotifs`. Two passes over the sequences (the first layer only):
        the maxima, then the segments above half of them.
    """
    model.eval()
    device = model_device(model)
    layers = filter_layers(model)
    width = max(layer.width for layer in layers)
    maxima = [torch.zeros(layer.n_filters, dtype=torch.float64) for layer in layers]
    sums = [torch.zeros(layer.n_filters, dtype=torch.float64) for layer in layers]
    positions = [0] * len(layers)
    for _, x in _batches(onehot, batch_size, device):
        for i, layer in enumerate(layers):
            act = layer.activate(x).double().cpu()  # (B, F, P)
            maxima[i] = torch.maximum(maxima[i], act.amax(dim=(0, 2)))
            sums[i] += act.sum(dim=(0, 2))
            positions[i] += act.shape[0] * act.shape[2]
    counts = [torch.zeros(layer.n_filters, width * 4, dtype=torch.float64) for layer in layers]
    sites = [torch.zeros(layer.n_filters, dtype=torch.int64) for layer in layers]
    for _, x in _batches(onehot, batch_size, device):
        for i, layer in enumerate(layers):
            act = layer.activate(x).double().cpu()  # (B, F, P)
            above = (act > 0.5 * maxima[i][None, :, None]) & (maxima[i][None, :, None] > 0)
            extra = act.shape[2] - (x.shape[2] - layer.width + 1)  # conv padding, both sides
            xp = F.pad(x.double().cpu(), (layer.offset, extra - layer.offset))  # (B, 4, P + W - 1)
            segments = xp.unfold(2, layer.width, 1)  # (B, 4, P, W)
            segments = segments.permute(0, 2, 3, 1).reshape(-1, layer.width * 4)  # (B * P, W * 4)
            mask = above.permute(1, 0, 2).reshape(layer.n_filters, -1)  # (F, B * P)
            counts[i][:, : layer.width * 4] += mask.double() @ segments  # (F, W * 4)
            sites[i] += mask.sum(dim=1)
    names = [f"{layer.prefix}{f}" for layer in layers for f in range(layer.n_filters)]
    return FilterMotifs(
        names=names,
        counts=torch.cat(counts).reshape(len(names), width, 4).numpy(),
        widths=np.concatenate([np.full(layer.n_filters, layer.width) for layer in layers]),
        sites=torch.cat(sites).numpy(),
        max_activation=torch.cat(maxima).numpy(),
        mean_activation=(torch.cat([s / max(n, 1) for s, n in zip(sums, positions)])).numpy(),
    )
