"""Pins dnacnn.ray_node_internals, the one reader of Ray's private node (its process table).

A private local cluster is started in a child process (the test session's own cluster
must keep its monitor), as `dnacnn score` starts one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

CHILD = """
import json, psutil, ray
from dnacnn.ray_cluster import init_ray
from dnacnn.ray_node_internals import kill_local_monitor, local_monitor
assert local_monitor() is None  # no Ray yet
init_ray(num_cpus=1)
monitor = local_monitor()
seen = {"monitor": monitor.pid, "cmdline": " ".join(psutil.Process(monitor.pid).cmdline()),
        "node": [p.pid for p in psutil.Process().children(recursive=True)]}
seen["killed"] = kill_local_monitor()
seen["monitor_exit"] = monitor.returncode
seen["again"] = kill_local_monitor()
ray.shutdown()
seen["after_shutdown"] = local_monitor() is None
print(json.dumps(seen))
"""


def test_the_local_monitor_is_found_killed_and_the_node_stops_quietly(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="rn", dir="/tmp")  # short: Ray's socket paths are length-limited
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "platform"), "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    try:
        result = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=180)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "autoscaler" in seen["cmdline"] and "monitor" in seen["cmdline"], seen["cmdline"]
    assert seen["monitor"] in seen["node"]
    assert seen["killed"] and seen["monitor_exit"] == -9 and not seen["again"]
    assert seen["after_shutdown"]
    # killed, the monitor reports nothing: no "autoscaler failed" message reaches the console
    assert "autoscaler" not in result.stderr.lower(), result.stderr[-3000:]
    procs = []
    for pid in seen["node"]:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]


NOTICES_CHILD = r'''
import sys, time, ray
from dnacnn.ray_cluster import RAY_NOTICES, init_ray
from dnacnn.ray_node_internals import drop_worker_lines

init_ray(num_cpus=1)

@ray.remote
def talk(run):
    for line in [
        f"keep me 1 (run {run})",
        "[2026-11-30 09:24:21,625 E 12173 12220] core_worker.cc:2465: Actor with class name: 'PreemptionWatcher' "
        "and ID: '010743ecefd00883d4c0d36301000000' has constructor arguments in the object store and "
        "max_restarts > 0. If the arguments in the object store go out of scope or are lost, the actor "
        "restart will fail. See https://github.com/ray-project/ray/issues/53727 for more details.",
        "/x/ray/data/_internal/execution/interfaces/execution_options.py:436: RayDeprecationWarning: "
        "`ExecutionOptions.exclude_resources` is deprecated and will be removed after January 2027. "
        "Use `ExecutionOptions.label_selector` to constrain Ray Data work to labeled nodes.",
        "  self.exclude_resources = exclude_resources",
        "Progress bars disabled. To enable, set `ray.data.DataContext.get_current().enable_progress_bars = True`.",
        "\u2714\ufe0f  Dataset train_0356ULrCrlvJPeHiPI1GVp_0 execution finished in 113.36 seconds",
        f"  keep me 2 (run {run})",
        f"my own drop-me line (run {run})",
        f"keep me 3 (run {run})",
    ]:
        print(line, file=sys.stderr, flush=True)

ray.get(talk.remote(1))
time.sleep(4)  # the log monitor forwards the task's lines to this driver
# a second filter replaces the first
assert drop_worker_lines(lambda line: RAY_NOTICES.search(line) or "drop-me" in line)
ray.get(talk.remote(2))
time.sleep(4)
ray.shutdown()
print("done", flush=True)
'''


def test_rays_own_notices_are_left_out_of_the_drivers_console():
    """init_ray leaves Ray's own notices (dnacnn.ray_cluster.RAY_NOTICES) out of what the
    driver prints of its workers; the workers' other lines all reach it."""
    ray_tmp = tempfile.mkdtemp(prefix="rn", dir="/tmp")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "platform"), "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    try:
        result = subprocess.run([sys.executable, "-c", NOTICES_CHILD], env=env, capture_output=True, text=True,
                                timeout=180)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 0 and result.stdout.strip().endswith("done"), result.stderr[-3000:]
    console = result.stderr
    for notice in ("PreemptionWatcher", "RayDeprecationWarning", "self.exclude_resources", "Progress bars disabled",
                   "execution finished in"):
        assert notice not in console, console[-3000:]
    for run in (1, 2):
        for n in (1, 2, 3):
            assert f"keep me {n} (run {run})" in console, console[-3000:]
    # the second filter (the notices and "drop-me" lines) replaced the first (the notices)
    assert "my own drop-me line (run 1)" in console and "drop-me line (run 2)" not in console, console[-3000:]
