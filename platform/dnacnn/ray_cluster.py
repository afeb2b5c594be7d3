"""Connecting to Ray: a real cluster when an address is given, else a local one."""

from __future__ import annotations

import logging
import os

import ray
from ray.data import DataContext

log = logging.getLogger(__name__)


def configure_data_context() -> None:
    """Tensor columns as Arrow's native ``arrow.fixed_shape_tensor``.

    Parquet written by Ray then reads back in plain pyarrow, pandas or polars.
    Called on the driver before building datasets (Ray Data ships the context to tasks).
    """
    from ray.data.extensions import FixedShapeTensorFormat

    ctx = DataContext.get_current()
    ctx.arrow_fixed_shape_tensor_format = FixedShapeTensorFormat.ARROW_NATIVE
    ctx.enable_progress_bars = os.environ.get("DNACNN_PROGRESS", "1") != "0"


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start or join Ray once per process.

    Args:
        address: a cluster address (``ray://...``, ``auto``, ``host:port``); defaults
            to ``RAY_ADDRESS``; with neither, a local cluster starts.
        num_cpus: CPUs of the local cluster (ignored when joining one).
    """
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            log.info("joining the Ray cluster at %s", address)
            ray.init(address=address, log_to_driver=True)
        else:
            log.info("starting a local Ray cluster (%s CPUs)", num_cpus or os.cpu_count())
            # "local": a private cluster, never one that `ray start` left running here.
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    configure_data_context()
