"""The model family: plain ``nn.Module``s built from typed configs.

Every model takes x (N, 4, L) float one-hot (channels A, C, G, T) and returns
(N, T) logits; it keeps ``.name``, ``.config``, ``.seq_len`` and ``.n_tasks``.
Build one by name with ``build("basset", {...})``; ``RCAverage`` makes any of
them strand-invariant; ``save`` / ``load`` write and read checkpoints.
"""

from dnacnn.models.basset import Basset, BassetConfig, basset_cell_types
from dnacnn.models.checkpoint import LoadedModel, load, save
from dnacnn.models.multiscale import AttentionBranch, MultiScaleCNN, MultiScaleConfig
from dnacnn.models.registry import MODELS, build
from dnacnn.models.reverse_complement import RCAverage, RCConv1d, reverse_complement_x
from dnacnn.models.simple import SimpleCNN, SimpleCNNConfig

__all__ = [
    "MODELS",
    "AttentionBranch",
    "Basset",
    "BassetConfig",
    "LoadedModel",
    "MultiScaleCNN",
    "MultiScaleConfig",
    "RCAverage",
    "RCConv1d",
    "SimpleCNN",
    "SimpleCNNConfig",
    "basset_cell_types",
    "build",
    "load",
    "reverse_complement_x",
    "save",
]
