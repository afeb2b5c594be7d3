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
