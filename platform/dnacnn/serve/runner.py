"""Run the service from a terminal: start or join Ray, deploy, wait for a signal, stop.

``dnacnn serve`` calls :func:`serve_until_signalled`; tests and benchmarks call
:func:`start` / :func:`stop` around their own work.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlparse

import ray
from ray import serve

from dnacnn.console_logging import quiet_ray_serve
from dnacnn.ray_cluster import ClusterResourceError, cluster_to_join, init_ray
from dnacnn.serve.app import ServiceArgs, build_app
from dnacnn.serve.serve_internals import proxy_address

log = logging.getLogger(__name__)

APP_NAME = "dnacnn"


def start(args: ServiceArgs, host: str = "127.0.0.1", port: int = 8000, address: str | None = None,
          num_cpus: int | None = None, on_ray_started: Callable[[], None] | None = None) -> str:
    """Deploy the service and wait until its replicas are ready.

    Args:
        args: what to serve; the model and genome are checked before Ray starts.
        host, port: where Serve's HTTP proxy listens (127.0.0.1: this machine only).
        address: a Ray cluster to join (default: ``RAY_ADDRESS``, else a local cluster).
        num_cpus: CPUs of a local cluster.
        on_ray_started: called once Ray is up, before Serve deploys (seconds of work).
    Returns:
        the service's URL.
    """
    app = build_app(args)  # pins the model, checks the genome: errors before any Ray work
    quiet_ray_serve()
    joined = cluster_to_join(address) or (ray.is_initialized() and "this process's Ray cluster")
    init_ray(address, num_cpus)
    if joined:  # a running cluster: another service may be on it
        check_not_serving(joined)
    if on_ray_started is not None:
        on_ray_started()
    # Serve's controller and proxy log their routine (endpoints, replicas added and stopped) at
    # INFO to the console; the replicas keep INFO for their one access line per request
    try:
        serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
    except RuntimeError as err:  # the proxy this call started cannot bind (a joined cluster's port taken)
        serve.shutdown()  # else the cluster keeps a proxy retrying for good
        raise ClusterResourceError(f"Serve's proxy cannot listen on --host {host} --port {port} on the "
                                   f"cluster: {' '.join(str(err).split())[:200]}") from None
    listens = proxy_address()
    if listens != (host, port):
        log.warning("Serve already runs on this cluster: its proxy listens on %s:%d (--host %s --port %d "
                    "are not applied)", *listens, host, port)
    serve.run(app, name=APP_NAME, route_prefix="/")
    url, unreachable = service_url(host, listens, cluster_to_join(address))
    if unreachable:
        log.warning(unreachable)
    return url


def service_url(asked_host: str, listens: tuple[str, int], cluster: str | None) -> tuple[str, str | None]:
    """The URL that reaches the service, and a sentence when this machine cannot reach it.

    Args:
        asked_host: ``--host``.
        listens: (host, port) of Serve's proxy (every node of the cluster runs one).
        cluster: the address of a joined cluster; None for this process's local one.
    """
    host, port = listens
    parsed = urlparse(cluster if "://" in (cluster or "") else f"tcp://{cluster}")
    head = parsed.hostname if cluster and parsed.port else None  # None: local, or "auto" (Ray's own lookup)
    remote = head is not None and not _this_machine(head)
    if host in ("0.0.0.0", "::"):  # every interface: the head's, from here
        return f"http://{head if remote else asked_host}:{port}/", None
    if remote and is_loopback(host):
        return f"http://{host}:{port}/", (
            f"Serve's proxy listens on {host}:{port} on the nodes of the cluster at {cluster}, which is another "
            "machine: only programs there reach the service; a Serve instance started with --host 0.0.0.0 "
            "answers from here")
    return f"http://{host}:{port}/", None


def _this_machine(host: str) -> bool:
    """Whether ``host`` names this machine (a loopback address, its name, one of its addresses)."""
    if is_loopback(host):
        return True
    try:
        return socket.gethostbyname(host) in socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:  # a name that does not resolve here
        return False


def is_loopback(host: str) -> bool:
    """Whether ``host`` resolves to a loopback address (127.0.0.1, ::1, localhost)."""
    try:
        return ipaddress.ip_address(socket.getaddrinfo(host, None)[0][4][0]).is_loopback
    except (OSError, ValueError):
        return False


class ServiceRunningError(ClusterResourceError):
    """The cluster's route / is taken by a dnacnn application: deploying would replace it."""


def check_not_serving(cluster: str) -> None:
    """Refuse to deploy over the dnacnn application another ``dnacnn serve`` runs on the
    cluster (one name and route per cluster: the new one would replace it, and its stop
    would take both down).

    Raises:
        ServiceRunningError: naming the cluster and the application's status.
    """
    running = serve.status().applications.get(APP_NAME)
    if running is not None:
        raise ServiceRunningError(
            f"the Ray cluster at {cluster} already serves the application {APP_NAME!r} ({running.status.value}, "
            f"another `dnacnn serve`); stop that one first, or serve from another cluster")


def stop() -> None:
    """Remove the application (its replicas finish the requests they hold), then leave Ray.

    On a local cluster this process started, Serve's controller and proxy end with the
    cluster (``serve.shutdown`` would kill the controller mid-call, and Ray prints that as
    a failed task); a joined cluster keeps them for its other applications.
    """
    if not ray.is_initialized():
        return
    serve.delete(APP_NAME)
    ray.shutdown()


def serve_until_signalled(args: ServiceArgs, host: str, port: int, address: str | None = None,
                          on_ready=print) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly.

    A service on a cluster it joined removes only its application; on a local
    cluster it started, Serve and Ray stop with it.
    """
    stopping = threading.Event()

    def on_signals() -> None:  # again after ray.init, whose core worker installs its own handlers
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())

    on_signals()
    url = start(args, host, port, address, on_ray_started=on_signals)  # a refusal: nothing to stop
    try:
        if not stopping.is_set():  # a signal while Serve deployed: stop without announcing
            on_ready(url)
        stopping.wait()
        log.info("stopping the service")
    finally:
        stop()
