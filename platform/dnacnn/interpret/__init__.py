"""What a model learned: first-layer filters as motifs (PFMs, TomTom vs JASPAR, influence),
attention maps of the multi-scale model, in-silico saturation mutagenesis; plots and reports.

Compute functions return arrays with stated shapes (``ism(...) -> (N, L, 4, T)``);
the plotting functions in :mod:`dnacnn.interpret.plots` take those arrays and an
optional ``ax``; :mod:`dnacnn.interpret.report` writes tables, figures and index.html.
"""

from dnacnn.interpret.attention import attention_maps, site_attention
from dnacnn.interpret.filters import FilterMotifs, filter_layers, filter_motifs
from dnacnn.interpret.influence import filter_influence
from dnacnn.interpret.ism import importance, ism
from dnacnn.interpret.matching import TomtomResult, benjamini_hochberg, recovered_factors, run_tomtom, tomtom_best_matches

__all__ = [
    "FilterMotifs",
    "TomtomResult",
    "attention_maps",
    "benjamini_hochberg",
    "filter_influence",
    "filter_layers",
    "filter_motifs",
    "importance",
    "ism",
    "recovered_factors",
    "run_tomtom",
    "site_attention",
    "tomtom_best_matches",
]
