"""Task types: how a model's T outputs relate, and so how they become probabilities.

    binary      one output, a sigmoid (T = 1)
    multitask   T independent sigmoids (e.g. accessibility in T cell types)
    multiclass  one softmax over T exclusive classes (they sum to 1)
"""

from __future__ import annotations

TASK_TYPES = ("binary", "multitask", "multiclass")


def check_task_type(task_type: str) -> str:
    """``task_type`` if it is one of :data:`TASK_TYPES`, else a ``ValueError`` naming them."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type {task_type!r} is not one of {', '.join(TASK_TYPES)}")
    return task_type
