"""The one door to Ray core internals that dnacnn relies on (Ray 2.60): the processes
of the local node that ``ray.init`` started in this process.

A private local cluster runs Ray's autoscaler monitor although nothing can scale it.
``ray.shutdown`` stops the node's processes one at a time, the GCS before the
monitor; told to stop with the GCS gone, the monitor spends its whole one-second
grace trying to report its own termination there before Ray kills it. That second
is most of every stop. :func:`kill_local_monitor` kills it first (it has no state to
keep), and the stop takes about 0.4 s instead of 1.4 s. Ray has no public handle on
a node's processes: this module reads its private ``Node``, nothing else does, and
``tests/test_ray_node_internals.py`` pins what it finds, so a Ray upgrade that moves
it fails there, in one place.
"""

from __future__ import annotations

import subprocess

import ray


def local_monitor() -> subprocess.Popen | None:
    """The autoscaler monitor process of the cluster this process started; None when it
    started none (it joined a cluster, or Ray is not running).

    Raises:
        RuntimeError: Ray's private node no longer looks as read here (an upgrade of Ray).
    """
    from ray._private import ray_constants, worker

    node = getattr(worker, "_global_node", None)
    if node is None or not ray.is_initialized():
        return None
    try:
        infos = node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, [])
        return infos[0].process if infos else None
    except (AttributeError, IndexError) as err:
        raise RuntimeError(
            f"ray {ray.__version__}: the local node's process table is not as expected ({err}); "
            "update dnacnn/ray_node_internals.py"
        ) from None


def kill_local_monitor() -> bool:
    """Kill (SIGKILL) the monitor of the cluster this process started, before ``ray.shutdown``.

    Returns:
        True when a running monitor was killed.
    """
    monitor = local_monitor()
    if monitor is None or monitor.poll() is not None:
        return False
    monitor.kill()
    monitor.wait(timeout=10)
    return True


__all__ = ["kill_local_monitor", "local_monitor"]
