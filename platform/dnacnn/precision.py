"""Arithmetic precisions of inference: their names, checked without importing torch.

    fp32   float32 throughout (the exact path)
    bf16   bfloat16 autocast of convolutions and dense layers (AVX512-BF16/AMX CPUs, GPUs)
"""

from __future__ import annotations

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, option: str = "precision") -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ``ValueError`` naming ``option`` and them."""
    if precision not in PRECISIONS:
        raise ValueError(f"{option} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision
