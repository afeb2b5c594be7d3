"""The one door to Ray Data internals that dnacnn relies on (Ray 2.60).

Ray Data has no public way to ask what a :class:`ray.data.Dataset` will run
(``Dataset.explain`` only prints). :func:`dnacnn.data.parquet_sink.write_read_dataset`
must know that a Dataset comes straight from a ``read_*`` call, because it
switches Ray's object-store budget off for it, which is only safe when read and
write fuse into one task. This module reads the Dataset's logical plan for that,
and nothing else does; ``tests/test_parquet_sink.py`` pins its answers, so a Ray
upgrade that changes the plan fails there, in one place.
"""

from __future__ import annotations

import ray.data


def is_straight_from_read(dataset: ray.data.Dataset) -> bool:
    """True when the Dataset's last logical operator is its ``Read`` (no map, filter, ...).

    Raises:
        RuntimeError: Ray's Dataset no longer has the private plan read here (an
            upgrade of Ray); this module is then the one place to update.
    """
    try:
        last = dataset._logical_plan.dag
    except AttributeError as err:
        raise RuntimeError(
            f"ray {ray.__version__}: Dataset._logical_plan.dag is gone ({err}); "
            "update dnacnn/data/ray_internals.py"
        ) from None
    return type(last).__name__ == "Read"


__all__ = ["is_straight_from_read"]
