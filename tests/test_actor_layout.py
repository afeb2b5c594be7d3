"""How many scoring actors a job starts and what each asks of Ray (``dnacnn.scoring.actor_layout``):
never more than the nodes place at once (an actor left waiting would hold the whole job), and
on GPU nodes several actors per GPU, so that their CPU work runs in parallel."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import FIXTURE_FASTA, FIXTURE_VCF
from test_scoring import save_tiny

from dnacnn.scoring.actor_layout import node_resources, plan_actors
from dnacnn.scoring.batch import score_vcf


def node(cpu: float, gpu: float = 0.0) -> dict[str, float]:
    return {"CPU": cpu, "GPU": gpu}


def test_one_actor_per_cpu_and_never_more_than_shards():
    layout = plan_actors([node(2)], shards=4)
    assert (layout.actors, layout.cpus, layout.gpus, layout.note) == (2, 1.0, 0.0, None)
    assert plan_actors([node(2)], shards=1).actors == 1
    assert plan_actors([node(16)], shards=40, cpus_per_actor=4).actors == 4


def test_more_actors_than_the_nodes_place_are_capped_with_a_note():
    layout = plan_actors([node(2)], shards=10, num_actors=8)
    assert layout.actors == 2 and "--num-actors 8" in layout.note and "starting 2" in layout.note
    # two nodes of 3 CPUs place two 2-CPU actors, not 6 // 2 = 3
    assert plan_actors([node(3), node(3)], shards=10, cpus_per_actor=2).actors == 2


def test_actors_share_each_gpu_by_default_one_per_cpu_of_its_node():
    layout = plan_actors([node(16, 1)], shards=100, device="cuda")
    assert (layout.actors, layout.gpus) == (16, pytest.approx(1 / 16))
    two = plan_actors([node(8), node(16, 2)], shards=100, device="cuda")  # a CPU-only head node
    assert (two.actors, two.gpus) == (16, pytest.approx(1 / 8))
    chosen = plan_actors([node(16, 1)], shards=100, device="cuda", actors_per_gpu=4)
    assert (chosen.actors, chosen.gpus) == (4, 0.25)
    wide = plan_actors([node(16, 1)], shards=100, device="cuda", cpus_per_actor=2)
    assert (wide.actors, wide.cpus, wide.gpus) == (8, 2.0, pytest.approx(1 / 8))


def test_impossible_layouts_are_refused_by_option():
    with pytest.raises(ValueError, match="no node with a whole GPU"):
        plan_actors([node(16)], shards=4, device="cuda")
    with pytest.raises(ValueError, match="--cpus-per-actor"):
        plan_actors([node(2)], shards=4, cpus_per_actor=4)


def test_dead_nodes_do_not_count():
    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    assert node_resources(nodes) == [node(2)]


def test_a_job_asking_for_more_actors_than_fit_runs_with_those_that_fit(ray_session, tmp_path, caplog):
    """--num-actors 8 on the 2-CPU session cluster: the job used to wait for good for actors
    that could never be placed; it now starts 2, says so, and scores every allele."""
    with caplog.at_level("WARNING", logger="dnacnn"):
        summary = score_vcf(str(save_tiny(tmp_path / "model")), FIXTURE_FASTA, FIXTURE_VCF, tmp_path / "out",
                            shard_variants=50, num_actors=8, plot=False)
    assert summary["alleles_scored"] == 194
    assert "--num-actors 8: the cluster places 2 scoring actor(s) at once" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_two_actors_share_this_machines_gpu(ray_session, tmp_path):
    """On a GPU machine: the job's actors share the GPU and give the CPU path's numbers."""
    model = save_tiny(tmp_path / "model")
    kwargs = dict(shard_variants=50, plot=False, num_actors=2)
    cpu = score_vcf(str(model), FIXTURE_FASTA, FIXTURE_VCF, tmp_path / "cpu", **kwargs)
    gpu = score_vcf(str(model), FIXTURE_FASTA, FIXTURE_VCF, tmp_path / "gpu", device="cuda", actors_per_gpu=2,
                    **kwargs)
    assert cpu["alleles_scored"] == gpu["alleles_scored"] == 194
    a = pd.read_parquet(tmp_path / "cpu" / "scores").sort_values(["pos", "alt"])
    b = pd.read_parquet(tmp_path / "gpu" / "scores").sort_values(["pos", "alt"])
    assert max(abs(x - y).max() for x, y in zip(a["delta"], b["delta"])) < 1e-4


def test_a_gpu_out_of_memory_says_what_to_lower_in_one_line():
    """torch's message lists every process on the GPU with its memory (a dozen lines' worth
    with 16 actors): the job says instead what each actor keeps to and what to lower."""
    from dnacnn.scoring.shard_pool import shard_error
    from dnacnn.scoring.shards import Shard

    shard = Shard(3, "20", 1_000, 2_000)
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.33 GiB. GPU 0 has a total capacity of "
                                 "139.80 GiB of which 297.38 MiB is free. Process 2178 has 6.57 GiB memory in use.")
    line = shard_error(shard, "in.vcf.gz", oom, "RayTaskError", gpus=1 / 16, batch_size=4096)
    assert line == ("shard 20:1000-2000 of in.vcf.gz could not be scored: the GPU ran out of memory (its "
                    "scoring actors keep to 1/16 of its memory each); lower --batch-size (now 4096) or "
                    "--actors-per-gpu"), line
    other = shard_error(shard, "in.vcf.gz", ValueError("bad\nthing"), "RayTaskError", gpus=0.0, batch_size=256)
    assert other == "shard 20:1000-2000 of in.vcf.gz could not be scored: ValueError: bad thing"
    assert shard_error(shard, "in.vcf.gz", None, "RayTaskError", 0.0, 256).endswith("could not be scored: RayTaskError")
