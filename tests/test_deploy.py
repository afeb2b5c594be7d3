"""deploy/ on paper but checked: manifests parse, what they name exists, versions agree."""

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO

DEPLOY = REPO / "deploy"
RAY_KINDS = {"RayCluster", "RayJob", "RayService"}
MLFLOW_URI = "http://dnacnn-mlflow:5000"  # deploy/mlflow.yaml's Service


def _pinned(name: str) -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(rf"{re.escape(name)}(\[|==)", d)]
    return spec.split("==")[1]


def _version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _documents() -> list[tuple[Path, dict]]:
    """Every YAML document under deploy/ with its file."""
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def _manifests(*kinds: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in _documents() if d.get("kind") in kinds]


def _walk(node, key: str):
    """Every value stored under ``key`` anywhere in ``node``."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def _containers(manifest: dict) -> list[dict]:
    return [c for cs in _walk(manifest, "containers") for c in cs]


def test_every_file_parses_and_every_manifest_says_what_it_is():
    paths = sorted(DEPLOY.glob("*.yaml"))
    assert {"raycluster.yaml", "rayjob-train.yaml", "rayjob-score.yaml", "mlflow.yaml",
            "cluster.yaml"} <= {p.name for p in paths}
    for path, doc in _documents():
        assert isinstance(doc, dict), path.name
        if "kind" in doc:
            assert doc.get("apiVersion") and doc.get("metadata", {}).get("name"), path.name


def test_manifests_and_images_use_the_pinned_ray_and_torch():
    ray, torch = _pinned("ray"), _pinned("torch")
    for path, manifest in _manifests(*RAY_KINDS):
        versions = list(_walk(manifest, "rayVersion"))
        assert versions and set(versions) == {ray}, (path.name, versions)
    for recipe, base in (("Dockerfile", f"rayproject/ray:{ray}-py311"),
                         ("gpu.Dockerfile", f"rayproject/ray:{ray}-py311-gpu")):
        text = (DEPLOY / recipe).read_text()
        assert re.search(rf"^FROM {re.escape(base)}$", text, re.M), recipe
        assert f'"torch=={torch}"' in text, recipe
    assert "download.pytorch.org/whl/cpu" in (DEPLOY / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/${TORCH_CUDA}" in (DEPLOY / "gpu.Dockerfile").read_text()
    assert f'"mlflow=={_pinned("mlflow")}"' in (DEPLOY / "mlflow.Dockerfile").read_text()


def _image_recipes() -> dict[str, str]:
    """Image tag -> the recipe that builds it (each recipe's `docker build -t` line)."""
    tags = {}
    for recipe in DEPLOY.glob("*Dockerfile"):
        for tag in re.findall(r"docker build -f deploy/\S+ -t (\S+) \.", recipe.read_text()):
            tags[tag] = recipe.name
    return tags


def test_every_image_a_manifest_runs_has_a_recipe_of_this_version():
    recipes = _image_recipes()
    assert recipes == {f"dnacnn:{_version()}": "Dockerfile",
                       f"dnacnn:{_version()}-cuda": "gpu.Dockerfile",
                       f"dnacnn-mlflow:{_pinned('mlflow')}": "mlflow.Dockerfile"}
    images = {c["image"] for _, m in _manifests(*RAY_KINDS, "Deployment") for c in _containers(m)}
    images.add(yaml.safe_load((DEPLOY / "cluster.yaml").read_text())["docker"]["image"])
    assert images <= set(recipes), images - set(recipes)


def test_the_gpu_worker_group_runs_the_cuda_image_and_asks_for_gpus():
    cluster = yaml.safe_load((DEPLOY / "raycluster.yaml").read_text())
    (gpu,) = [g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu"]
    (container,) = gpu["template"]["spec"]["containers"]
    assert container["image"] == f"dnacnn:{_version()}-cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def entrypoint_problems(entrypoint: str) -> list[str]:
    """What is wrong with a job entrypoint: it must be ``python jobs/<script>.py`` naming a
    script of this repository's ``jobs/``, and every ``--config`` it names must exist."""
    words = shlex.split(entrypoint)
    if len(words) < 2 or words[0] != "python":
        return [f"not `python SCRIPT ...`: {entrypoint!r}"]
    problems = []
    script = Path(words[1])
    if script.parts[:1] != ("jobs",) or script.suffix != ".py":
        problems.append(f"{script} is not a script in jobs/")
    elif not (REPO / script).is_file():
        problems.append(f"{script} does not exist")
    for flag, value in zip(words, words[1:]):
        if flag == "--config" and not (REPO / value).is_file():
            problems.append(f"config {value} does not exist")
    return problems


def test_the_entrypoint_check_can_fail():
    assert entrypoint_problems("python jobs/train.py --config jobs/configs/smoke.yaml") == []
    assert entrypoint_problems("python tools/train.py") == ["tools/train.py is not a script in jobs/"]
    assert entrypoint_problems("python jobs/nope.py") == ["jobs/nope.py does not exist"]
    assert entrypoint_problems("python jobs/train.py --config jobs/configs/nope.yaml") == [
        "config jobs/configs/nope.yaml does not exist"]
    assert entrypoint_problems("bash -c 'rm -rf /'") != []


def test_job_entrypoints_and_configs_named_in_manifests_exist():
    jobs = _manifests("RayJob")
    assert len(jobs) >= 2
    for path, job in jobs:
        assert entrypoint_problems(job["spec"]["entrypoint"]) == [], path.name
        # The entrypoint's relative paths resolve against the image's copy of the repository.
        working_dir = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["working_dir"]
        assert working_dir == "/home/ray/dnacnn"
        assert f"WORKDIR {working_dir}" in (DEPLOY / "Dockerfile").read_text()


def test_serve_applications_import_modules_that_exist():
    for path, service in _manifests("RayService"):
        config = yaml.safe_load(service["spec"]["serveConfigV2"])
        for app in config["applications"]:
            target = app["import_path"]  # "module:attr" or "module.attr"
            module = target.split(":")[0] if ":" in target else target.rsplit(".", 1)[0]
            file = REPO / "platform" / Path(*module.split("."))
            assert file.with_suffix(".py").is_file() or (file / "__init__.py").is_file(), \
                (path.name, app["import_path"])


def test_the_mlflow_server_uses_postgres_s3_and_secrets():
    (deployment,) = [d for _, d in _manifests("Deployment") if d["metadata"]["name"] == "dnacnn-mlflow"]
    (service,) = [s for _, s in _manifests("Service") if s["metadata"]["name"] == "dnacnn-mlflow"]
    (container,) = _containers(deployment)
    argv = container["command"] + container["args"]
    assert argv[:2] == ["mlflow", "server"] and "--serve-artifacts" in argv
    options = dict(a.split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    assert options["--backend-store-uri"].startswith("postgresql://")
    assert options["--artifacts-destination"].startswith("s3://")
    env = {e["name"]: e for e in container["env"]}
    secrets = {"DB_PASSWORD", "DB_USER", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for name in secrets:  # credentials only from Secrets, never written in the manifest
        assert "secretKeyRef" in env[name]["valueFrom"] and "value" not in env[name], name
    for var in re.findall(r"\$\((\w+)\)", " ".join(argv)):
        assert var in env, f"{var} is used in the args but not defined"
    # The Service routes to the container's port, on the URI the Ray pods use.
    (port,) = service["spec"]["ports"]
    (container_port,) = container["ports"]
    assert port["targetPort"] in (container_port["name"], container_port["containerPort"])
    assert options["--port"] == str(container_port["containerPort"])
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert MLFLOW_URI == f"http://{service['metadata']['name']}:{port['port']}"


@pytest.mark.parametrize("kind", sorted(RAY_KINDS))
def test_every_ray_pod_points_mlflow_at_the_server(kind):
    for path, manifest in _manifests(kind):
        containers = _containers(manifest)
        assert containers, path.name
        for container in containers:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("MLFLOW_TRACKING_URI") == MLFLOW_URI, (path.name, container["name"])


def test_the_launcher_cluster_points_mlflow_at_a_server():
    launcher = yaml.safe_load((DEPLOY / "cluster.yaml").read_text())
    assert any(re.fullmatch(r"--env MLFLOW_TRACKING_URI=http://\S+:5000", option)
               for option in launcher["docker"]["run_options"])


@pytest.mark.parametrize("kind", sorted(RAY_KINDS))
def test_every_ray_pod_mounts_the_data_its_manifest_names(kind):
    """A job's inputs and outputs under /data must be there on every pod (the head runs the
    driver, the workers the actors); a job that writes there (--out, train.storage_path)
    mounts it writable."""
    for path, manifest in _manifests(kind):
        text = yaml.safe_dump(manifest)
        if "/data/" not in text:
            continue
        entrypoint = manifest.get("spec", {}).get("entrypoint", "")
        writes = re.search(r"(--out|storage_path=)\s*/data/", entrypoint) is not None
        for pod in _walk(manifest, "template"):
            spec = pod.get("spec", {})
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for container in spec.get("containers", []):
                (mount,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/data"] or [None]
                assert mount is not None, (path.name, container["name"], "no /data mount")
                assert mount["name"] in volumes, (path.name, container["name"], "mount of an undeclared volume")
                if writes:
                    assert not mount.get("readOnly"), (path.name, container["name"], "writes to a read-only /data")
