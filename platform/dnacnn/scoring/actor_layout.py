"""How many scoring actors a job starts, and what each one asks of Ray.

A pure function of the cluster's nodes (``ray.nodes()``), so the layout is tested
without a cluster. A scoring actor reads its shard's VCF records, builds the windows
and scores them. On CPUs it takes ``cpus_per_actor`` CPUs. On GPUs, several actors
share each GPU (``1 / actors_per_gpu`` of it each, and their own CPUs): the CPU side
of a variant (parsing, allele checks, windows and their reverse complements: about
13,000 SNVs/s per process here, see BENCHMARKS.md) must run in parallel processes to
keep one GPU fed. Only as many actors are started as the nodes can place at once:
the job hands shards out only once every actor has loaded the model, so an actor
that waits for resources would hold the whole job.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Tolerance for Ray's float resources (0.9999... CPUs is one CPU).
_EPS = 1e-6


@dataclass(frozen=True)
class ActorLayout:
    """Attributes:
        actors: actors to start (at least 1).
        cpus: CPUs per actor (Ray's ``num_cpus``; also the actor's torch threads).
        gpus: GPUs per actor (Ray's ``num_gpus``): 0 on CPU, ``1 / actors_per_gpu`` on GPU.
        note: what to tell the user when fewer actors than asked are started, else None.
    """

    actors: int
    cpus: float
    gpus: float
    note: str | None = None


def node_resources(nodes: list[dict]) -> list[dict[str, float]]:
    """The resources of the alive nodes in ``ray.nodes()``: [{"CPU": ..., "GPU": ...}, ...]."""
    return [{"CPU": float(node.get("Resources", {}).get("CPU", 0)),
             "GPU": float(node.get("Resources", {}).get("GPU", 0))}
            for node in nodes if node.get("Alive", True)]


def plan_actors(nodes: list[dict[str, float]], shards: int, cpus_per_actor: float = 1.0,
                device: str = "cpu", num_actors: int | None = None,
                actors_per_gpu: int | None = None) -> ActorLayout:
    """The job's actors on ``nodes`` (see :func:`node_resources`).

    Args:
        shards: shards to score (no more actors than shards).
        cpus_per_actor: CPUs of each actor.
        device: "cpu", or "cuda..." (actors share the GPUs).
        num_actors: the user's choice; default: as many as the nodes place at once.
        actors_per_gpu: actors sharing one GPU; default: the GPU nodes' CPUs per GPU
            divided by ``cpus_per_actor`` (the fewest of any GPU node), at least 1.
    Raises:
        ValueError: a GPU device on nodes without a GPU, or actors too big for every node
            (the options' ranges are checked before, by ``batch.check_options``).
    """
    gpus = 0.0
    if device.startswith("cuda"):
        gpu_nodes = [n for n in nodes if n["GPU"] >= 1 - _EPS]
        if not gpu_nodes:
            raise ValueError("--device cuda: the cluster has no node with a whole GPU")
        per_gpu = actors_per_gpu or max(1, min(int(n["CPU"] / n["GPU"] / cpus_per_actor + _EPS)
                                                for n in gpu_nodes))
        gpus = 1.0 / per_gpu
        slots = sum(min(int(n["CPU"] / cpus_per_actor + _EPS), int(n["GPU"] * per_gpu + _EPS))
                    for n in gpu_nodes)
        unit = f"{cpus_per_actor:g} CPU and 1/{per_gpu} GPU each"
    else:
        slots = sum(int(n["CPU"] / cpus_per_actor + _EPS) for n in nodes)
        unit = f"{cpus_per_actor:g} CPU each"
    if slots < 1:
        raise ValueError(f"no node of the cluster can place a scoring actor ({unit}); "
                         "lower --cpus-per-actor or add nodes")
    wanted = num_actors or slots
    note = None
    if wanted > slots:
        note = (f"--num-actors {wanted}: the cluster places {slots} scoring actor(s) at once "
                f"({unit}); starting {slots}")
    return ActorLayout(max(1, min(wanted, slots, shards)), float(cpus_per_actor), gpus, note)
