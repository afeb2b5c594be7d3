"""A Ray cluster of several nodes on this machine, and an MLflow tracking server beside it.

``up(state_dir, nodes=2, ...)`` starts a Ray head (``ray start --head``, GCS, dashboard and
job server on 127.0.0.1) and ``nodes - 1`` worker nodes, each its own raylet
(``ray start --address ...``), and optionally ``mlflow server`` (sqlite backend store,
artifacts uploaded and downloaded through the server). ``down(state_dir)`` stops exactly
the processes ``up`` started, found again by their recorded PIDs and start times (and
their descendants), never by name. Layout of ``state_dir``::

    cluster.json        ports, the processes started (role, pid, create time, log)
    auth_token          this cluster's Ray token (RAY_AUTH_MODE=token)
    ray/                the head's Ray temporary folder (sessions, sockets, logs); RAY_TMPDIR
    ray-w<k>/           worker node k's own: as on separate machines, no node deletes
                        another's unpacked job working directory
    logs/<role>.log     each started command's own output
    mlflow.db, mlflow-artifacts/   the tracking server's stores (with ``mlflow=True``)

Every port is picked free when the cluster starts, so several clusters (and other
users' Ray) can run on one machine. Each node runs ``ray start --block`` in its own
session: the command stays the parent of the node's processes, and Ray stops the
whole node when one of them (say, its raylet) dies.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
READY_LINE = "Ray runtime started."  # what `ray start` prints once its node is up
# A Unix socket path holds at most 107 bytes; Ray's sit about 70 below RAY_TMPDIR.
MAX_RAY_TMPDIR = 44
# Ray refuses a smaller object store (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES), after starting.
MIN_OBJECT_STORE_MB = 75


class ClusterError(RuntimeError):
    """A cluster could not be started or found; the message says what to do."""


@dataclass
class Proc:
    """One command started by :func:`up` (a session leader)."""

    role: str  # "head", "worker-1", ..., "mlflow"
    pid: int
    create_time: float  # psutil's, to tell this process from a later one with its PID
    log: str


@dataclass
class ClusterState:
    """What :func:`up` started and how to reach it (``<state_dir>/cluster.json``)."""

    state_dir: str
    gcs_port: int
    dashboard_port: int
    client_port: int
    cpus_per_node: int
    object_store_mb: int
    mlflow_port: int | None = None
    processes: list[Proc] = field(default_factory=list)

    @property
    def token_path(self) -> Path:
        return Path(self.state_dir) / "auth_token"

    @property
    def ray_tmpdir(self) -> Path:
        return Path(self.state_dir) / "ray"

    def node_tmpdir(self, role: str) -> Path:
        """Ray's temporary folder of node ``role`` ("head", "worker-<k>")."""
        return self.ray_tmpdir if role == "head" else Path(self.state_dir) / f"ray-w{role.split('-')[1]}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def mlflow_url(self) -> str | None:
        return f"http://127.0.0.1:{self.mlflow_port}" if self.mlflow_port else None

    def env(self) -> dict[str, str]:
        """The variables a client needs: ``ray.init()`` and ``ray job submit`` find the
        cluster, Ray finds its token, MLflow finds the tracking server."""
        env = {
            "RAY_ADDRESS": f"127.0.0.1:{self.gcs_port}",  # ray.init(), the Python API
            "RAY_API_SERVER_ADDRESS": self.dashboard_url,  # ray job submit / status / logs
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_path),
            "RAY_TMPDIR": str(self.ray_tmpdir),
        }
        if self.mlflow_url:
            env["MLFLOW_TRACKING_URI"] = self.mlflow_url
        return env

    def exports(self) -> str:
        """``export NAME=value`` lines for ``eval "$(dnacnn cluster up ...)"``."""
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.env().items())

    def save(self) -> None:
        path = Path(self.state_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, state_dir: str | Path) -> ClusterState:
        path = Path(state_dir) / STATE_FILE
        if not path.is_file():
            raise ClusterError(f"no cluster recorded in {Path(state_dir).resolve()} "
                               f"({STATE_FILE} is absent); start one with `dnacnn cluster up`")
        try:
            raw = json.loads(path.read_text())
            raw["processes"] = [Proc(**p) for p in raw["processes"]]
            return cls(**raw)
        except (ValueError, TypeError, KeyError) as err:  # not JSON, not this layout
            reason = f"{type(err).__name__}: {' '.join(str(err).split())}"
            raise ClusterError(f"{path} is not a cluster record of `dnacnn cluster up` ({reason}); "
                               "stop what it started yourself if anything runs, then delete it") from None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool(name: str) -> str:
    """A console script of this Python's environment (``ray``, ``mlflow``)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise ClusterError(f"{path} not found; install dnacnn's dependencies in this environment")
    return str(path)


def _node_env(state: ClusterState) -> dict[str, str]:
    """The environment of every started process: jobs' ``python`` is this environment's,
    Ray uses this cluster's token and temporary folder, jobs reach the tracking server, and
    Ray's state API (``RAY_API_SERVER_ADDRESS``) is this cluster's: without it a node's
    processes look for "the" Ray on the machine and fail while another runs (Ray Train's
    PlacementGroupCleaner printed that traceback in every training job's logs)."""
    env = dict(os.environ)
    env.update(state.env())
    env.pop("RAY_ADDRESS")  # a head must not join another cluster; workers get --address
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _spawn(state: ClusterState, role: str, cmd: list[str], env: dict[str, str] | None = None) -> Proc:
    """Start ``cmd`` in its own session with its output in ``logs/<role>.log``; record it."""
    log_path = Path(state.state_dir) / "logs" / f"{role}.log"
    with open(log_path, "ab") as out:
        popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env={**_node_env(state), **(env or {})}, start_new_session=True)
    proc = Proc(role=role, pid=popen.pid, create_time=psutil.Process(popen.pid).create_time(),
                log=str(log_path))
    state.processes.append(proc)
    state.save()
    return proc


def _ray_start_command(state: ClusterState, role: str) -> list[str]:
    head = role == "head"
    cmd = [
        _tool("ray"), "start", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={state.cpus_per_node}", "--num-gpus=0",
        f"--object-store-memory={state.object_store_mb * 2**20}",
        # The defaults are fixed ports (52365, 10002-19999): every node picks its own here.
        "--min-worker-port=0", "--max-worker-port=0",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--temp-dir={state.node_tmpdir(role)}",
    ]
    if head:
        cmd += ["--head", f"--port={state.gcs_port}", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={state.dashboard_port}",
                f"--ray-client-server-port={state.client_port}"]
    else:
        cmd += [f"--address=127.0.0.1:{state.gcs_port}"]
    return cmd


def alive(proc: Proc) -> psutil.Process | None:
    """The running process ``proc`` recorded, or None (gone, or its PID now another's)."""
    try:
        p = psutil.Process(proc.pid)
        if abs(p.create_time() - proc.create_time) < 0.01 and p.status() != psutil.STATUS_ZOMBIE:
            return p
    except psutil.NoSuchProcess:
        pass
    return None


def _wait(what: str, ready, proc: Proc, timeout: float) -> None:
    """Poll ``ready()`` until true; fail with the log's tail if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if alive(proc) is None:
            raise ClusterError(f"{what} exited while starting; its log {proc.log} ends:\n"
                               f"{_tail(proc.log)}")
        time.sleep(0.5)
    raise ClusterError(f"{what} was not ready after {timeout:.0f} s; see {proc.log}:\n{_tail(proc.log)}")


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _log_says(path: str, text: str) -> bool:
    try:
        return text in Path(path).read_text(errors="replace")
    except OSError:
        return False


def _http_ok(url: str, token: str | None = None) -> bool:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_ray_node(state: ClusterState, head: bool = False, timeout: float = 120,
                   attempts: int = 3) -> Proc:
    """Start the head, or one more worker node of ``state``'s cluster; return when it is up.

    ``ray start`` gives a raylet a fixed 30 s to register with the GCS; on a loaded machine
    that can run out, and the command exits. Such a worker start is tried again, as a new
    worker node (``attempts`` in all); a head that fails to start fails ``up``.
    """
    for attempt in range(1, attempts + 1):
        role = "head" if head else f"worker-{sum(p.role.startswith('worker') for p in state.processes) + 1}"
        log.info("starting Ray %s node (%d CPU)", role, state.cpus_per_node)
        proc = _spawn(state, role, _ray_start_command(state, role))
        try:
            _wait(f"Ray {role} node", lambda: _log_says(proc.log, READY_LINE), proc, timeout)
            break
        except ClusterError as err:
            if head or alive(proc) is not None or attempt == attempts:
                raise
            log.warning("%s; trying again", str(err).splitlines()[0])
    if head:
        token = state.token_path.read_text().strip()
        _wait("Ray dashboard", lambda: _http_ok(f"{state.dashboard_url}/api/version", token),
              proc, timeout)
    return proc


def start_mlflow(state: ClusterState, timeout: float = 120) -> Proc:
    """``mlflow server`` on 127.0.0.1: sqlite backend, artifacts served through the server."""
    root = Path(state.state_dir)
    (root / "mlflow-artifacts").mkdir(exist_ok=True)
    state.mlflow_port = free_port()
    log.info("starting the MLflow tracking server on %s", state.mlflow_url)
    proc = _spawn(state, "mlflow", [
        _tool("mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{(root / 'mlflow.db').resolve()}",
        "--artifacts-destination", str((root / "mlflow-artifacts").resolve()),
        "--serve-artifacts", "--host", "127.0.0.1", "--port", str(state.mlflow_port),
        "--workers", "1",
    ], env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job-runner pool (7 processes)
    _wait("MLflow server", lambda: _http_ok(f"{state.mlflow_url}/health"), proc, timeout)
    return proc


def up(state_dir: str | Path, nodes: int = 2, cpus_per_node: int = 1, mlflow: bool = False,
       object_store_mb: int = 512, timeout: float = 120) -> ClusterState:
    """Start a ``nodes``-node Ray cluster (and an MLflow server) recorded in ``state_dir``.

    Args:
        state_dir: the cluster's folder (module docstring); created if absent.
        nodes: Ray nodes including the head (>= 1).
        cpus_per_node: logical CPUs of each node.
        mlflow: also start the tracking server (jobs get ``MLFLOW_TRACKING_URI``).
        object_store_mb: object store of each node (MiB).
        timeout: seconds each process may take to come up.
    Returns:
        the recorded state; on failure, whatever started is stopped and ClusterError raised.
    """
    if nodes < 1 or cpus_per_node < 1:
        raise ValueError(f"--nodes and --cpus-per-node must be at least 1 (got {nodes}, {cpus_per_node})")
    if object_store_mb < MIN_OBJECT_STORE_MB:
        raise ValueError(f"--object-store-mb must be at least {MIN_OBJECT_STORE_MB} (Ray's minimum), "
                         f"got {object_store_mb}")
    _check_timeout(timeout)
    root = Path(state_dir).resolve()
    if (root / STATE_FILE).is_file():
        running = [p.role for p in ClusterState.load(root).processes if alive(p)]
        if running:
            raise ClusterError(f"a cluster recorded in {root} is running ({', '.join(running)}); "
                               f"stop it first with `dnacnn cluster down --state-dir {root}`")
    if len(str(root / "ray-w99")) > MAX_RAY_TMPDIR:
        raise ValueError(f"--state-dir {root} is too long for Ray's socket paths (at most "
                         f"{MAX_RAY_TMPDIR - 8} characters); choose a shorter folder, e.g. /tmp/dnacnn")
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / "ray").mkdir(exist_ok=True)
    state = ClusterState(state_dir=str(root), gcs_port=free_port(), dashboard_port=free_port(),
                         client_port=free_port(), cpus_per_node=cpus_per_node,
                         object_store_mb=object_store_mb)
    state.token_path.write_text(secrets.token_hex(32))
    state.token_path.chmod(0o600)
    state.save()
    try:
        if mlflow:
            start_mlflow(state, timeout)  # first: the nodes' environment names it
        start_ray_node(state, head=True, timeout=timeout)
        for _ in range(nodes - 1):
            start_ray_node(state, head=False, timeout=timeout)
    except BaseException:
        down(root)
        raise
    return state


def add_worker_node(state_dir: str | Path, timeout: float = 120) -> Proc:
    """Start one more worker node in the cluster recorded in ``state_dir`` (a replacement
    for a lost node, or more capacity)."""
    _check_timeout(timeout)
    state = ClusterState.load(state_dir)
    return start_ray_node(state, head=False, timeout=timeout)


def _check_timeout(timeout: float) -> None:
    """Refuse a start-up timeout that no process could meet (nothing started yet)."""
    if not timeout > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {timeout}")


def down(state_dir: str | Path, timeout: float = 30) -> list[str]:
    """Stop every process the cluster in ``state_dir`` started, and their descendants.

    SIGTERM first (``ray start --block`` then stops its node's processes), SIGKILL what is
    left after ``timeout`` seconds. Processes are found by their recorded PID and start
    time and by descent from those, never by name.

    Returns:
        the roles that were still running.
    """
    state = ClusterState.load(state_dir)
    running = [(proc, p) for proc in state.processes if (p := alive(proc)) is not None]
    tree: list[psutil.Process] = []
    for _, p in running:
        try:
            tree += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    # Workers first, the head (GCS) next, the tracking server last.
    for proc, p in sorted(running, key=lambda rp: (rp[0].role == "mlflow", rp[0].role == "head")):
        log.info("stopping %s (pid %d)", proc.role, proc.pid)
        _signal(p, signal.SIGTERM)
        try:
            p.wait(timeout=timeout / 2)
        except psutil.TimeoutExpired:
            pass
    _, left = psutil.wait_procs(tree, timeout=timeout / 2)
    for p in left:
        log.warning("pid %d did not stop on SIGTERM; killing it", p.pid)
        _signal(p, signal.SIGKILL)
    psutil.wait_procs(left, timeout=10)
    (Path(state.state_dir) / STATE_FILE).unlink(missing_ok=True)
    return [proc.role for proc, _ in running]


def _signal(p: psutil.Process, sig: int) -> None:
    try:
        p.send_signal(sig)
    except psutil.NoSuchProcess:
        pass
