"""The scoring job's Ray cluster: join one, or start a private local one, and stop it
with no shard worker left running."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)


def check_cluster(address: str | None, device: str) -> None:
    """Refuse, before the job creates anything, a cluster that cannot run it: an address
    nobody answers at, or ``--device cuda`` for a local cluster on a machine without a GPU.

    Raises:
        RayConnectionError, ClusterResourceError: naming the address or the device.
    """
    from dnacnn.ray_cluster import ClusterResourceError, check_reachable, cluster_to_join

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return  # this process's own Ray (the Python API): used as it is
    target = cluster_to_join(address)
    if target is not None:
        check_reachable(target)
    elif device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():  # a local cluster has this machine's GPUs: none
            raise ClusterResourceError(
                "--device cuda: this machine has no GPU that torch can use, and no --address of a "
                "cluster with GPU nodes was given; use --device cpu, or --address (and "
                "--wait-for-resources SECONDS while GPU nodes start)"
            )


def connect(address: str | None, device: str, wait_for_resources: float) -> bool:
    """Join or start Ray and check it can run the job (:func:`check_cluster` said the
    cluster answers); True when this call started it."""
    from dnacnn.ray_cluster import init_ray, require_resources

    started = init_ray(address)
    if device.startswith("cuda"):
        try:
            require_resources("GPU", 1, local=started, wait_s=wait_for_resources)
        except BaseException:
            if started:
                stop_cluster(set())
            raise
    return started


@contextlib.contextmanager
def _handling(sig: signal.Signals, handler) -> Iterator[None]:
    """Within: ``sig`` handled by ``handler``, the previous handler put back after. Only in
    the main thread (the only one Python delivers signals to)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(sig, handler)
    try:
        yield
    finally:
        signal.signal(sig, previous)


def sigterm_interrupts() -> contextlib.AbstractContextManager:
    """Within: SIGTERM (``ray job stop``, ``kill``) interrupts the job as Ctrl-C does
    (KeyboardInterrupt), so that it stops its cluster and says which shards it kept; the
    handler ``ray.init`` installs exits without a word."""
    return _handling(signal.SIGTERM, signal.default_int_handler)


def ctrl_c_ignored() -> contextlib.AbstractContextManager:
    """Within: SIGINT ignored (a second Ctrl-C while the job stops its cluster)."""
    return _handling(signal.SIGINT, signal.SIG_IGN)


def stop_cluster(worker_pids: set[int]) -> None:
    """Stop this call's local cluster and wait until its shard workers have exited.

    Ray's autoscaler monitor, which has nothing to do on a private cluster, is killed
    first: stopped after the GCS, as ``ray.shutdown`` would, it takes a second.
    """
    import ray

    from dnacnn.ray_node_internals import kill_local_monitor

    kill_local_monitor()
    ray.shutdown()
    _wait_for_exit(worker_pids)


def _wait_for_exit(pids: set[int], timeout_s: float = 20.0) -> None:
    """Wait until the shard workers of this call's local cluster have exited; kill any that linger.

    ``ray.shutdown`` stops the raylet, and its workers exit when they notice, a moment
    later: the command must not return before that.
    """
    deadline = time.monotonic() + timeout_s
    for pid in sorted(pids):
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            log.warning("shard worker %d still running %.0f s after the cluster stopped: killing it", pid, timeout_s)
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has taken the id
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
