"""What runs together is pinned together: Ray in pyproject, manifests and image agree."""

import re
import tomllib

import yaml

from conftest import REPO


def _pinned(name: str) -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(rf"{re.escape(name)}(\[|==)", d)]
    return spec.split("==")[1]


def _ray_versions(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "rayVersion":
                yield value
            yield from _ray_versions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ray_versions(item)


def test_manifests_and_image_use_the_pinned_ray():
    ray = _pinned("ray")
    manifests = sorted((REPO / "deploy").glob("rayjob-*.yaml")) + [REPO / "deploy" / "raycluster.yaml"]
    for path in manifests:
        versions = list(_ray_versions(yaml.safe_load(path.read_text())))
        assert versions and set(versions) == {ray}, (path.name, versions)
    assert f"rayproject/ray:{ray}-py311" in (REPO / "deploy" / "Dockerfile").read_text()
    assert _pinned("torch") in (REPO / "deploy" / "Dockerfile").read_text()


def test_job_entrypoints_named_in_manifests_exist():
    for path in (REPO / "deploy").glob("rayjob-*.yaml"):
        entry = yaml.safe_load(path.read_text())["spec"]["entrypoint"].split()
        assert (REPO / entry[1]).exists() or not entry[1].startswith("jobs/"), f"{path.name}: {entry[1]}"
