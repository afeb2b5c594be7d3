"""Connecting to Ray: a real cluster when an address is given, else a local one."""

from __future__ import annotations

import logging
import os
import socket

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
            # Its dashboard (on 127.0.0.1) serves the state API, which Ray Train polls every
            # second to see whether its controller is alive: without it (include_dashboard=
            # False starts no state API) every poll fails with a console warning. The API's
            # address is given to the cluster's processes, which would otherwise look for
            # "the" Ray instance on the machine and fail when there are several.
            port = _free_port()
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=True,
                     dashboard_host="127.0.0.1", dashboard_port=port, log_to_driver=True,
                     runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}})
    configure_data_context()


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
