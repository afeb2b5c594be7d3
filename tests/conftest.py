"""Shared test fixtures: one local Ray cluster per session, the committed fixtures, ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# The first call of a numba-compiled function compiles it: no per-example deadline.
settings.register_profile("dnacnn", deadline=None)
settings.load_profile("dnacnn")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data"
SHARED_DATA = Path(os.environ.get("DNACNN_SHARED_DATA", REPO.parent / "shared" / "data"))

FIXTURE_FASTA = FIXTURES / "chr20_sparse.fa.gz"
FIXTURE_VCF = FIXTURES / "normalize_01_IN.vcf.gz"

os.environ.setdefault("DNACNN_PROGRESS", "0")  # no progress bars in test logs


def shared(*parts: str) -> Path:
    """A path under ../shared/data; the test skips (with the reason) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data beside the clone); absent here")
    return path


def ray_processes_left(ray_tmp: str, timeout: float = 30) -> list[str]:
    """Processes of a Ray session still alive ``timeout`` seconds on, found by the private
    RAY_TMPDIR they all inherited (titles change, the environment does not)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("RAY_TMPDIR") == ray_tmp:
                found.append(proc)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(found, timeout=timeout)
    return [" ".join(p.cmdline()) for p in alive]


@pytest.fixture(scope="session")
def ray_session():
    """One local 2-CPU Ray cluster for the whole test session."""
    import ray

    from dnacnn.ray_cluster import init_ray

    os.environ.pop("RAY_ADDRESS", None)
    init_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh sqlite MLflow tracking/registry store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
