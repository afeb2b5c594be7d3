"""Variant effect scoring: windows, the one ``VariantScorer``, and the genome-wide batch job.

The names below load on first use (PEP 562), so that ``dnacnn.scoring.allele_windows``
does not pull in torch (seconds per Ray worker). The genome-wide batch job
(``dnacnn.scoring.batch_job`` and the modules it names) is imported on demand.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "VariantScorer": "dnacnn.scoring.scorer",
    "load_model_spec": "dnacnn.scoring.scorer",
    "variant_windows": "dnacnn.scoring.allele_windows",
    "window_codes": "dnacnn.scoring.allele_windows",
    "window_start": "dnacnn.scoring.allele_windows",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dnacnn.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
