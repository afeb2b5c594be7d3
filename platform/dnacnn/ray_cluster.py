"""Connecting to Ray: a real cluster when an address is given, else a private local one.

Joining a cluster is bounded in time: an address nobody answers at is refused
after ``connect_timeout_s`` with :class:`RayConnectionError`, naming the address,
instead of Ray's own minutes of retries. :func:`require_resources` checks that the
cluster can ever run the work (a GPU for ``--device cuda``) before any is submitted.
Ray itself is imported on first use (seconds), not when the CLI starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import time
from urllib.parse import urlparse

log = logging.getLogger(__name__)

#: Seconds to wait for a cluster's head to answer before giving up.
CONNECT_TIMEOUT_S = 10.0

#: Ray's own notices, printed from its processes, that tell a dnacnn user nothing and that
#: the user cannot act on (Ray 2.60): Ray Train's controller on the arguments of its
#: PreemptionWatcher actor, the deprecation of an option Ray Train itself sets, and
#: Ray Data's "Progress bars disabled" and per-dataset "execution finished" lines (the
#: job prints its own progress). Left out of the console by :func:`init_ray`.
RAY_NOTICES = re.compile(
    r"Actor with class name: 'PreemptionWatcher' .* has constructor arguments in the object store"
    r"|RayDeprecationWarning: `ExecutionOptions\.exclude_resources` is deprecated"
    r"|Progress bars disabled\. To enable, set"
    r"|Dataset \S+ execution finished in [0-9.]+ seconds"
    r"|Task ServeController\.graceful_shutdown failed"  # the service stopping: Serve kills its controller
    r"|Failed to query Ray Train Controller actor state"  # a training run stopped by Ctrl-C
)


class RayConnectionError(ConnectionError):
    """No Ray cluster answers at the given address."""


class ClusterResourceError(RuntimeError):
    """The cluster does not have (or did not get in time) what the job needs."""


class Interrupted(Exception):
    """The user stopped the work (Ctrl-C); the message says what was kept and how to go on."""


def configure_data_context() -> None:
    """Tensor columns as Arrow's native ``arrow.fixed_shape_tensor``.

    Parquet written by Ray then reads back in plain pyarrow, pandas or polars.
    Called on the driver before building datasets (Ray Data ships the context to tasks).
    """
    from ray.data import DataContext
    from ray.data.extensions import FixedShapeTensorFormat

    ctx = DataContext.get_current()
    ctx.arrow_fixed_shape_tensor_format = FixedShapeTensorFormat.ARROW_NATIVE
    ctx.enable_progress_bars = os.environ.get("DNACNN_PROGRESS", "1") != "0"
    if not ctx.enable_progress_bars:  # asked for: Ray Data's warning that they are off is noise
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of an address to probe; None for ``auto`` and URLs without a port
    (``ray://host``), which Ray resolves itself.

    Raises:
        RayConnectionError: a port that is not one (``host:99999``), or no port at all.
    """
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        port = parsed.port
    except ValueError as err:
        raise RayConnectionError(f"--address {address} is not a host:port ({err})") from None
    if parsed.hostname and port:
        return parsed.hostname, port
    if "://" not in address and address != "auto":  # Ray would wait for it, then fail in its own words
        raise RayConnectionError(f"--address {address} is not a host:port (e.g. 10.0.0.5:6379), ray://host:port "
                                 "or auto")
    return None


#: What an HTTP/2 client sends first (RFC 9113 3.4): the preface and an empty SETTINGS frame.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_grpc(sock: socket.socket, timeout_s: float) -> bool:
    """Whether the server on ``sock`` speaks HTTP/2, as every Ray head's port does (gRPC: the
    GCS, the Ray client server): its first frame is SETTINGS (type 4, the header's 4th byte)."""
    sock.settimeout(timeout_s)
    head = b""
    try:
        sock.sendall(_HTTP2_PREFACE)
        while len(head) < 9:
            chunk = sock.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except OSError:
        return False
    return len(head) == 9 and head[3] == 4


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse an address whose host does not accept a TCP connection within ``timeout_s``,
    or where something other than a Ray head answers (an HTTP server, say: Ray would wait
    for it for minutes). With ``RAY_USE_TLS`` set, only the connection is checked.

    Raises:
        RayConnectionError: naming the address and what failed.
    """
    target = _host_port(address)
    if target is None:
        return
    hint = ("give the head node's address (host:port, e.g. 10.0.0.5:6379, or ray://host:10001), "
            "or leave --address out for a local cluster")
    try:
        with socket.create_connection(target, timeout=timeout_s) as sock:
            grpc = os.environ.get("RAY_USE_TLS", "0") not in ("0", "") or _answers_grpc(sock, timeout_s)
    except OSError as err:
        reason = "timed out" if isinstance(err, socket.timeout) else (err.strerror or str(err))
        raise RayConnectionError(
            f"no Ray cluster answers at --address {address} ({reason} after at most {timeout_s:g} s); {hint}"
        ) from None
    if not grpc:
        raise RayConnectionError(f"something answers at --address {address}, but not a Ray cluster's "
                                 f"head (it does not speak gRPC); {hint}")


def cluster_to_join(address: str | None) -> str | None:
    """The address of the cluster to join (``address``, else RAY_ADDRESS), or None for a
    private local cluster (neither given, or "local")."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    return None if address == "local" else address


def ask_for_default_auth(address: str | None = None) -> None:
    """Before Ray is imported: ask for Ray's default authentication by name.

    A new local cluster gets token authentication, and Ray warns on the console that it did
    so; asked for by name (``RAY_AUTH_MODE=token``, read when Ray is imported) it is the same
    mode without the warning. A cluster to join (``ray start`` turns token authentication on
    by default) refuses a client without the mode: Ray prints a GCS warning every second for
    20 s and fails with "Failed to connect". So when this machine holds a token
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) the mode is asked
    for too; a cluster without authentication accepts such a client as well. A user's own
    ``RAY_AUTH_MODE`` stands. Commands call this before importing modules that import Ray.
    """
    if "ray" in sys.modules:
        return
    if cluster_to_join(address) is None or _token_at_hand():
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def _token_at_hand() -> bool:
    """Whether a Ray authentication token is where Ray looks for one."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(path)


def init_ray(address: str | None = None, num_cpus: int | None = None,
             connect_timeout_s: float = CONNECT_TIMEOUT_S, dashboard: bool = False) -> bool:
    """Start or join Ray once per process.

    Args:
        address: a cluster address (``ray://...``, ``auto``, ``host:port``); defaults
            to ``RAY_ADDRESS``; with neither, a private local cluster starts.
        num_cpus: CPUs of the local cluster (ignored when joining one).
        connect_timeout_s: how long a cluster's head may take to answer.
        dashboard: give a local cluster its dashboard and state API (Ray Train needs
            them; they cost about 1 GB and a dozen processes, so scoring goes without);
            on a joined cluster, tell the job's workers where its state API is
            (:func:`_state_api_env`).
    Returns:
        True when this call started Ray (so the caller may shut it down), else False.
    Raises:
        RayConnectionError: the address does not answer.

    The driver then prints its workers' lines without :data:`RAY_NOTICES`.
    """
    ask_for_default_auth(address)
    import ray

    from dnacnn.ray_node_internals import drop_worker_lines

    started = False
    if not ray.is_initialized():
        address = cluster_to_join(address)
        try:
            _init(ray, address, num_cpus, connect_timeout_s, dashboard)
        except ray.exceptions.AuthenticationError as err:  # a token Ray cannot read: its own words, first sentence
            raise RayConnectionError(f"Ray's token authentication: {str(err).split('. ', 1)[0]}") from None
        except KeyboardInterrupt:  # Ctrl-C while it starts: stop the processes started so far
            with contextlib.suppress(Exception):  # (a node half made) the Ctrl-C is what to say
                ray.shutdown()
            raise
        started = True
        drop_worker_lines(RAY_NOTICES.search)
    return started


def _init(ray, address: str | None, num_cpus: int | None, connect_timeout_s: float, dashboard: bool) -> None:
    """``ray.init``: join ``address``, or start a private local cluster (see :func:`init_ray`)."""
    if address:
        check_reachable(address, connect_timeout_s)
        log.info("joining the Ray cluster at %s", address)
        try:
            ray.init(address=address, log_to_driver=True,
                     runtime_env=_state_api_env(address) if dashboard else None)
        except (ConnectionError, RuntimeError, ValueError) as err:
            auth = (" (with token authentication: is the token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                    "~/.ray/auth_token this cluster's?)" if os.environ.get("RAY_AUTH_MODE") == "token" else
                    " (a cluster with token authentication, Ray's default, also needs RAY_AUTH_MODE=token "
                    "and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token)")
            raise RayConnectionError(f"cannot join the Ray cluster at --address {address}: {err}{auth}") from None
    else:
        log.info("starting a local Ray cluster (%s CPUs)", num_cpus or os.cpu_count())
        # "local": a private cluster, never one that `ray start` left running here.
        if dashboard:
            # Its dashboard (on 127.0.0.1) serves the state API, which Ray Train polls every
            # second to see whether its controller is alive: without it (include_dashboard=
            # False starts no state API) every poll fails with a console warning. The API's
            # address is given to the cluster's processes, which would otherwise look for
            # "the" Ray instance on the machine and fail when there are several.
            port = _free_port()
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=True,
                     dashboard_host="127.0.0.1", dashboard_port=port, log_to_driver=True,
                     runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}})
        else:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)


def _state_api_env(address: str) -> dict | None:
    """The runtime environment that shows the job's workers the joined cluster's state API.

    Ray Train's PlacementGroupCleaner (an actor) asks the state API with no address: without
    RAY_API_SERVER_ADDRESS or RAY_ADDRESS in its environment (a plain ``ray start`` cluster's
    nodes have neither) Ray looks for "the" Ray instance on the machine, and where another
    runs it fails with a traceback in the job's logs. Its workers get the cluster's address
    as RAY_ADDRESS, unless the job's own runtime environment sets that variable. None for an
    address Ray resolves itself (``auto``, ``ray://``)."""
    from dnacnn.job_paths import submitted_runtime_env

    if "://" in address or _host_port(address) is None:
        return None
    if "RAY_ADDRESS" in (submitted_runtime_env().get("env_vars") or {}):
        return None
    return {"env_vars": {"RAY_ADDRESS": address}}


def require_resources(resource: str, amount: float, local: bool, wait_s: float = 0.0, poll_s: float = 2.0) -> None:
    """Make sure the cluster has ``amount`` of ``resource`` (e.g. "GPU") before work is submitted.

    Args:
        local: the cluster is the private one this process started: it cannot grow,
            so a missing resource fails at once.
        wait_s: on a joined cluster, how long to wait for nodes (an autoscaler's) to
            bring the resource, with a console line at least every 30 s; 0 fails at once.

    Raises:
        ClusterResourceError: the resource is not there (in time).
    """
    import ray

    have = ray.cluster_resources().get(resource, 0)
    if have >= amount:
        return
    if local or wait_s <= 0:
        where = "the local Ray cluster (this machine)" if local else "the Ray cluster"
        raise ClusterResourceError(
            f"{where} has {have:g} {resource}(s) and this job needs {amount:g} "
            f"({'--device cuda' if resource == 'GPU' else resource}); use --device cpu, or join a "
            "cluster with GPU nodes (--address, and --wait-for-resources SECONDS while they start)"
        )
    deadline = time.monotonic() + wait_s
    said = 0.0
    while have < amount:
        now = time.monotonic()
        if now >= deadline:
            raise ClusterResourceError(
                f"no {amount:g} {resource}(s) joined the Ray cluster within --wait-for-resources "
                f"{wait_s:g} s (it has {have:g})"
            )
        if now - said >= 30:
            log.warning("waiting up to %.0f s more for %g %s(s) on the Ray cluster (it has %g)",
                        deadline - now, amount, resource, have)
            said = now
        time.sleep(poll_s)
        have = ray.cluster_resources().get(resource, 0)


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
