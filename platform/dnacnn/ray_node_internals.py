"""The one door to Ray core internals that dnacnn relies on (Ray 2.60): the processes
of the local node that ``ray.init`` started in this process, and the driver's printer
of its workers' console lines.

A private local cluster runs Ray's autoscaler monitor although nothing can scale it.
``ray.shutdown`` stops the node's processes one at a time, the GCS before the
monitor; told to stop with the GCS gone, the monitor spends its whole one-second
grace trying to report its own termination there before Ray kills it. That second
is most of every stop. :func:`kill_local_monitor` kills it first (it has no state to
keep), and the stop takes about 0.4 s instead of 1.4 s.

Ray prints on the driver what its worker processes write (``log_to_driver``), its
own notices among them; :func:`drop_worker_lines` leaves chosen lines out (Ray
has no public filter of them).

Ray has no public handle on either: this module reads its private ``Node`` and
its worker-output dispatcher, nothing else does, and ``tests/test_ray_node_internals.py``
pins what it finds, so a Ray upgrade that moves them fails there, in one place.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

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


def drop_worker_lines(drop: Callable[[str], bool]) -> bool:
    """On the driver, leave out of the console the lines of Ray's worker processes for
    which ``drop`` is true; a dropped Python warning's source line (the indented line
    ``warnings`` prints after it) goes with it. Call after ``ray.init``; again, it
    replaces the filter.

    Returns:
        True when the driver prints its workers' lines (``log_to_driver``) and they are
        filtered now; False when it prints none.
    Raises:
        RuntimeError: Ray's dispatcher no longer looks as read here (an upgrade of Ray).
    """
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

        handle = dict(dispatcher.handlers).get(_PRINTER)
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        raise RuntimeError(
            f"ray {ray.__version__}: the driver's printer of worker lines is not as expected ({err}); "
            "update dnacnn/ray_node_internals.py"
        ) from None
    if handle is None:
        return False
    handle = getattr(handle, "unfiltered", handle)
    after_warning: dict[object, bool] = {}  # per process: its last line was a dropped warning

    def filtered(data: dict) -> None:
        kept, source = [], data.get("pid")
        for line in data.get("lines", []):
            if after_warning.pop(source, False) and line[:1].isspace():
                continue
            if drop(line):
                after_warning[source] = "Warning: " in line
                continue
            kept.append(line)
        if kept:
            handle({**data, "lines": kept})

    filtered.unfiltered = handle
    dispatcher.remove_handler(_PRINTER)
    dispatcher.add_handler(_PRINTER, filtered)
    return True


#: The name under which ``ray.init`` registers the driver's printer of worker lines.
_PRINTER = "ray_print_logs"

__all__ = ["drop_worker_lines", "kill_local_monitor", "local_monitor"]
