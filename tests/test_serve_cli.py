"""``dnacnn serve``: pinning a registered model, bad input as one line, a full start/stop cycle."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from conftest import FIXTURE_FASTA, REPO
from dnacnn.cli import app
from dnacnn.serve.model_source import load_source, resolve_model
from test_registry import TASKS, log_run, make_checkpoint
from test_serve import free_port


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def registered(mlflow_uri, tmp_path):
    """Two versions of one registered model: v1 champion, v2 challenger."""
    first = make_checkpoint(tmp_path / "v1", seed=0)
    second = make_checkpoint(tmp_path / "v2", seed=1)
    log_run(first, 0.5, name="served")
    log_run(second, 0.9, name="served")  # worse: challenger
    return {"1": first, "2": second}


def test_an_alias_is_pinned_to_its_version_and_loaded_with_its_weights_hash(registered):
    champion = resolve_model("models:/served@champion")
    assert (champion.registered_name, champion.version, champion.alias) == ("served", "1", "champion")
    assert champion.load_uri == "models:/served/1"
    challenger = resolve_model("models:/served@challenger")
    assert challenger.version == "2"
    loaded, digest = load_source(challenger)
    assert loaded.tasks == TASKS and digest == sha256(registered["2"] / "model.safetensors")
    assert resolve_model("models:/served/1").alias is None


def test_serving_a_registry_uri_never_creates_a_tracking_store(tmp_path):
    """No MLFLOW_TRACKING_URI and no store where the default points: one line naming the store
    (a bare MlflowClient() created ./mlflow.db and reported the model missing from it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    proc = subprocess.run([sys.executable, "-c", "from dnacnn.cli import app; app()", "serve", "--model",
                           "models:/served@champion", "--genome", str(FIXTURE_FASTA)],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO / "platform")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no MLflow tracking store at sqlite:///" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no data/


def test_bad_model_or_genome_is_one_line_and_exit_2(registered, tmp_path):
    runner = CliRunner()
    cases = {
        "models:/served@nope": "models:/served@nope",
        "models:/missing@champion": "models:/missing@champion",
        str(tmp_path / "no_such_folder"): "no model.json",
    }
    for model, expected in cases.items():
        result = runner.invoke(app, ["serve", "--model", model, "--genome", str(FIXTURE_FASTA)])
        assert result.exit_code == 2, (model, result.output)
        assert expected in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["serve", "--model", str(registered["1"]), "--genome", str(tmp_path / "x.fa")])
    assert result.exit_code == 2 and "genome FASTA not found" in result.output
    result = runner.invoke(app, ["serve", "--model", str(registered["1"]), "--genome", str(FIXTURE_FASTA),
                                 "--device", "tpu"])
    assert result.exit_code == 2 and "--device" in result.output


def test_an_address_it_cannot_listen_on_or_too_many_replicas_are_one_line_before_ray(registered, caplog):
    """Were a page of Serve actor tracebacks (port in use, not this machine's address; and
    --port 70000, now a usage error) after Ray had started, or (replicas a local cluster cannot place) a wait forever."""
    import ray

    ray_before = ray.is_initialized()  # the test session's own cluster may be up already
    runner = CliRunner()
    base = ["serve", "--model", str(registered["1"]), "--genome", str(FIXTURE_FASTA)]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--port", str(port)], f"error: cannot listen on --host 127.0.0.1 --port {port}: Address already "
                                    "in use (another process listens there)"),
            (["--host", "10.255.255.1", "--port", str(free_port())], "error: cannot listen on --host 10.255.255.1"),
            (["--port", str(free_port()), "--replicas", "2", "--num-cpus", str(os.cpu_count())],
             f"error: --replicas 2 x --num-cpus {os.cpu_count()} need {2 * os.cpu_count()} CPUs; the local Ray "
             f"cluster has {os.cpu_count()}"),
        ]
        for extra, said in cases:
            result = runner.invoke(app, [*base, *extra], env={"RAY_ADDRESS": ""})
            assert result.exit_code == 2, (extra, result.output)
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(said), (extra, result.output)
    # on a cluster to join too (its proxy retried a bogus host for good, its tracebacks looping); and
    # an option pydantic refuses is named (it was "1 validation error for ServiceArgs num_cpus ...")
    for extra, env, said in ((["--host", "999.1.1.1"], {"RAY_ADDRESS": "127.0.0.1:1"}, "error: cannot listen on --host 999.1.1.1"),
                             (["--num-cpus", "0"], {"RAY_ADDRESS": "127.0.0.1:1"}, "error: --num-cpus: Input should be greater than 0"),
                             # a header carries the token as Latin-1: a client could never send this one
                             ([], {"RAY_ADDRESS": "127.0.0.1:1", "DNACNN_API_TOKEN": "tok\u20acn"},
                              "error: --token: the token's character 4 is not visible ASCII"),
                             (["--token", "two words"], {"RAY_ADDRESS": "127.0.0.1:1"},
                              "error: --token: the token's character 4 is not visible ASCII")):
        result = runner.invoke(app, [*base, *extra], env=env)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(said), (extra, result.output)
    # every interface and no token: said (then the missing model refuses the command)
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        result = runner.invoke(app, ["serve", "--model", str(registered["1"].parent / "nope"), "--genome",
                                     str(FIXTURE_FASTA), "--host", "0.0.0.0", "--port", str(free_port())],
                               env={"RAY_ADDRESS": "", "DNACNN_API_TOKEN": ""})
    assert result.exit_code == 2, result.output
    assert "--host 0.0.0.0: every machine that reaches this one may use the service, with no token" in caplog.text
    assert ray.is_initialized() == ray_before  # refused before the command started Ray


@pytest.mark.slow
def test_serve_command_serves_a_registered_model_and_stops_on_sigterm(registered, mlflow_uri):
    """Two replicas (one CPU each) on the command's own 2-CPU local cluster; the URL once both are ready."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "platform"), DNACNN_API_TOKEN="tok")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from dnacnn.cli import app; app(prog_name='dnacnn')", "serve", "--model", "models:/served@champion",
         "--genome", str(FIXTURE_FASTA), "--port", str(port), "--replicas", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
    )
    try:
        url = None
        deadline = time.monotonic() + 300
        lines = []
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("serving "):
                url = line.split(" at ")[1].split()[0]
        assert url == f"http://127.0.0.1:{port}/", "".join(lines[-30:])
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": "Bearer tok"}) as client:
            assert client.get("/healthz").status_code == 200
            info = client.get("/v1/model").json()
            assert (info["registered_name"], info["version"], info["alias"]) == ("served", "1", "champion")
            assert info["weights_sha256"] == sha256(registered["1"] / "model.safetensors")
            assert client.post("/v1/predict", json={"sequences": ["A" * 40]}).status_code == 200
            assert httpx.get(url + "v1/model", timeout=30).status_code == 401  # the env token applies
            # clients that go mid-body: one access line each, no trace (4 in 40 left a 90-line
            # "Task exception was never retrieved ... TaskCancelledError" in the console)
            gone = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(40)]
            for sock in gone:
                sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(1)
            for sock in gone:
                sock.close()
            time.sleep(2)
            assert client.get("/healthz").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        console = "".join(lines) + proc.stdout.read()
        # the service's own lines and its replicas' access lines; not Serve's routine
        # (controller, proxy, the driver's "Started Serve"), warnings or a failed task
        for noise in ("ServeController", "ProxyActor", "Started Serve", "is ready at", "Warning", "failed",
                      "Traceback", "never retrieved", "SIGTERM received"):
            assert noise not in console, console
        assert "stopping the service" in console and "-- GET /v1/model 200" in console, console
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.slow
def test_sigterm_while_serve_deploys_stops_cleanly_without_announcing(registered):
    """A stop sent while Ray is up and the replica still deploys (the proxy answers, the route
    is not there yet): exit 0, no 'serving' line, no stack dump from Ray's core worker's own
    SIGTERM handler (it replaced the command's until the deploy ended), nothing left running."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "platform"))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from dnacnn.cli import app; app(prog_name='dnacnn')", "serve", "--model",
         str(registered["1"]), "--genome", str(FIXTURE_FASTA), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
    )
    try:
        deadline, status = time.monotonic() + 180, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert status == 404, status  # Serve's proxy is up, the application not yet
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        console = proc.stdout.read()
        assert "stopping the service" in console and "serving " not in console, console
        assert "SIGTERM received" not in console and "Traceback" not in console, console
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_the_printed_url_is_one_that_reaches_the_proxy():
    """On a joined cluster on another machine, a proxy on every interface is reached at the
    head's address (it printed http://0.0.0.0:P/ or the asked --host), and a proxy on the
    head's loopback is said to be out of reach from here."""
    from dnacnn.serve.runner import service_url

    assert service_url("127.0.0.1", ("127.0.0.1", 8000), None) == ("http://127.0.0.1:8000/", None)
    assert service_url("127.0.0.1", ("0.0.0.0", 8001), None) == ("http://127.0.0.1:8001/", None)
    for cluster in ("127.0.0.1:6379", f"{socket.gethostname()}:6379", "auto"):  # this machine
        assert service_url("127.0.0.1", ("127.0.0.1", 8000), cluster) == ("http://127.0.0.1:8000/", None)
    for cluster in ("198.51.100.77:6379", "ray://198.51.100.77:10001"):  # TEST-NET-2: not this machine
        assert service_url("127.0.0.1", ("0.0.0.0", 8000), cluster) == ("http://198.51.100.77:8000/", None)
        url, said = service_url("127.0.0.1", ("127.0.0.1", 8000), cluster)
        assert url == "http://127.0.0.1:8000/" and "which is another machine" in said and "--host 0.0.0.0" in said
