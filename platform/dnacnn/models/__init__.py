"""The model family: plain ``nn.Module``s built from typed configs.

Every model takes x (N, 4, L) float one-hot (channels A, C, G, T) and returns
(N, T) logits; it keeps ``.name``, ``.config``, ``.seq_len`` and ``.n_tasks``.
Build one by name with ``build("basset", {...})``; ``RCAverage`` makes any of
them strand-invariant; ``save`` / ``load`` write and read checkpoints;
``predict`` is the one path from one-hot windows to probabilities.
"""

from dnacnn.models.basset import Basset, BassetConfig, basset_cell_types
from dnacnn.models.checkpoint import LoadedModel, load, save
from dnacnn.models.multiscale import AttentionBranch, MultiScaleCNN, MultiScaleConfig
from dnacnn.models.family import MODELS, build
from dnacnn.models.prediction import (
    TASK_TYPES,
    link,
    predict,
    predict_logits,
    predict_sequences,
    probabilities,
    usable_device,
)
from dnacnn.models.reverse_complement import RCAverage, RCConv1d, reverse_complement_x
from dnacnn.models.simple import SimpleCNN, SimpleCNNConfig

__all__ = [
    "MODELS",
    "TASK_TYPES",
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
    "link",
    "load",
    "predict",
    "predict_logits",
    "predict_sequences",
    "probabilities",
    "reverse_complement_x",
    "save",
    "usable_device",
]
