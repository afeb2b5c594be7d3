"""The Serve config and the KubeRay RayService run the one application, with the pinned Ray."""

import importlib

import yaml
from ray.serve.schema import ServeDeploySchema

from conftest import REPO
from dnacnn.serve import ServiceArgs
from test_deploy import _pinned, _walk

SERVE_CONFIG = REPO / "deploy" / "serve_config.yaml"
RAYSERVICE = REPO / "deploy" / "rayservice.yaml"


def _import(path: str):
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def test_serve_config_is_valid_and_names_the_builder_with_valid_args():
    config = ServeDeploySchema.model_validate(yaml.safe_load(SERVE_CONFIG.read_text()))
    (app,) = config.applications
    from dnacnn.serve.app import ScoringService, build_app

    assert _import(app.import_path) is build_app
    ServiceArgs.model_validate(app.args)  # the builder's typed arguments accept them
    assert [d.name for d in app.deployments] == [ScoringService.name]
    assert config.http_options.host == "127.0.0.1"


def test_rayservice_runs_the_same_application_with_the_pinned_ray():
    manifest = yaml.safe_load(RAYSERVICE.read_text())
    assert manifest["kind"] == "RayService"
    assert set(_walk(manifest, "rayVersion")) == {_pinned("ray")}
    embedded = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    assert embedded["applications"] == yaml.safe_load(SERVE_CONFIG.read_text())["applications"]
    cluster = manifest["spec"]["rayClusterConfig"]
    images = {c["image"] for g in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
              for c in g["template"]["spec"]["containers"]}
    raycluster = yaml.safe_load((REPO / "deploy" / "raycluster.yaml").read_text())
    assert images == {raycluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]}
    head_env = {e["name"] for e in cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"MLFLOW_TRACKING_URI", "DNACNN_API_TOKEN"} <= head_env
