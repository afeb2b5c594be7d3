"""Run the service from a terminal: start or join Ray, deploy, wait for a signal, stop.

``dnacnn serve`` calls :func:`serve_until_signalled`; tests and benchmarks call
:func:`start` / :func:`stop` around their own work.
"""

from __future__ import annotations

import logging
import signal
import threading

import ray
from ray import serve

from dnacnn.ray_cluster import init_ray
from dnacnn.serve.app import ServiceArgs, build_app

log = logging.getLogger(__name__)

APP_NAME = "dnacnn"


def start(args: ServiceArgs, host: str = "127.0.0.1", port: int = 8000, address: str | None = None,
          num_cpus: int | None = None) -> str:
    """Deploy the service and wait until its replicas are ready.

    Args:
        args: what to serve; the model and genome are checked before Ray starts.
        host, port: where Serve's HTTP proxy listens (127.0.0.1: this machine only).
        address: a Ray cluster to join (default: ``RAY_ADDRESS``, else a local cluster).
        num_cpus: CPUs of a local cluster.
    Returns:
        the service's URL.
    """
    app = build_app(args)  # pins the model, checks the genome: errors before any Ray work
    init_ray(address, num_cpus)
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}/"


def stop(shutdown_serve: bool = True) -> None:
    """Remove the application; stop Serve (and Ray, when this process started it)."""
    if not ray.is_initialized():
        return
    if shutdown_serve:
        serve.shutdown()
    else:
        serve.delete(APP_NAME)
    ray.shutdown()


def serve_until_signalled(args: ServiceArgs, host: str, port: int, address: str | None = None,
                          on_ready=print) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly.

    A service on a cluster it joined removes only its application; on a local
    cluster it started, Serve and Ray stop with it.
    """
    joined = bool(address)
    url = start(args, host, port, address)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(sig, lambda *_: stopping.set())
    try:
        on_ready(url)
        stopping.wait()
        log.info("stopping the service")
    finally:
        stop(shutdown_serve=not joined)
