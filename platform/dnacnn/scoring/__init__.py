"""Variant effect scoring: windows, the one ``VariantScorer``, and the genome-wide batch job.

``dnacnn.scoring.batch`` (the Ray job) is imported on demand, so the scorer is
usable without starting Ray.
"""

from dnacnn.scoring.scorer import VariantScorer, check_allele, is_registry_uri, load_model_spec
from dnacnn.scoring.windows import variant_windows, window_codes, window_start

__all__ = [
    "VariantScorer",
    "check_allele",
    "is_registry_uri",
    "load_model_spec",
    "variant_windows",
    "window_codes",
    "window_start",
]
