"""The Ray part of the scoring job: a pool of :class:`~dnacnn.scoring.shard_run.ShardWorker`
actors scoring shards, one shard per call, lost actors replaced, each shard's error said
in one line, progress said every few seconds."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from dnacnn.scoring.actor_layout import node_resources, plan_actors
from dnacnn.scoring.shards import Shard, ShardFailure

log = logging.getLogger(__name__)

#: Times one shard is tried before the job gives up (an actor lost with its node is replaced).
SHARD_TRIES = 3

#: Seconds between two progress lines (the first and the last shard are always said): a VCF
#: on hundreds of contigs has a shard each, done in a blink.
PROGRESS_EVERY_S = 5.0


def run_shards(pending: list[Shard], total: int, model, genome_path: str, vcf_path: str, out: Path,
                rc: bool, batch_size: int, precision: str, num_actors: int | None, cpus_per_actor: float,
                device: str, source: str, actors_per_gpu: int | None = None) -> set[int]:
    """The Ray part: a pool of :class:`ShardWorker` actors, one shard per call (``source``:
    the user's VCF, which the rejects' messages name).

    Plain Ray actors, not Ray Data: shards are whole units of work with no data
    flowing between them, and Ray Data's own actors (statistics, autoscaling) would
    add about 290 MiB to the job. An actor lost with its node (or killed) is replaced
    and its shard scored again from the start (a shard's outputs appear atomically,
    so nothing is written twice), at most :data:`SHARD_TRIES` times per shard. The
    actors are killed when the shards are done (or on failure). Each actor loads the
    model before any shard is handed out; an input error met there (weights that do
    not fit their config) is raised here as one ``ValueError``.

    Returns:
        the process ids of the actors that ran shards.
    """
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    from dnacnn.scoring.shard_run import ShardWorker

    layout = plan_actors(node_resources(ray.nodes()), len(pending), cpus_per_actor, device, num_actors,
                         actors_per_gpu)
    if layout.note:
        log.warning(layout.note)
    worker = ray.remote(ShardWorker).options(num_cpus=layout.cpus, num_gpus=layout.gpus, max_restarts=0)

    def new_actor():
        return worker.remote(model=model, genome=genome_path, vcf=vcf_path, source=source, out_dir=str(out), rc=rc,
                             batch_size=batch_size, precision=precision, device=device,
                             num_threads=max(1, int(cpus_per_actor)), gpu_share=layout.gpus)

    live = [new_actor() for _ in range(layout.actors)]
    idle, queue, running = list(live), list(pending), {}
    tries: dict[int, int] = {}
    t0 = time.monotonic()
    done = total - len(pending)
    alleles, said_at = 0, None
    pids: set[int] = set()
    try:
        for problem in ray.get([actor.problem.remote() for actor in live]):  # each has loaded the model
            if problem:
                raise ValueError(problem)
        while queue or running:
            while queue and idle:
                actor, shard = idle.pop(), queue.pop(0)
                tries[shard.index] = tries.get(shard.index, 0) + 1
                running[actor.run.remote(shard)] = (actor, shard)
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, shard = running.pop(ready[0])
            try:
                _, counts, pid = ray.get(ready[0])
            except RayActorError as err:
                if tries[shard.index] >= SHARD_TRIES:
                    raise ShardFailure(
                        f"shard {shard.describe()} lost its scoring actor {SHARD_TRIES} times "
                        f"({type(err).__name__}); are the cluster's nodes failing?"
                    ) from None
                log.warning("lost the actor scoring shard %s (%s, its node may be gone): scoring the "
                            "shard again on a new actor", shard.describe(), type(err).__name__)
                live.remove(actor)
                replacement = new_actor()
                live.append(replacement)
                idle.append(replacement)
                queue.insert(0, shard)
                continue
            except RayTaskError as err:  # the shard's own error, said in one line (not the actor's traceback)
                cause = err.cause if isinstance(getattr(err, "cause", None), BaseException) else None
                raise ShardFailure(shard_error(shard, source, cause, type(err).__name__, layout.gpus,
                                               batch_size)) from None
            idle.append(actor)
            pids.add(pid)
            done += 1
            alleles += counts.alleles
            now = time.monotonic()
            if said_at is None or now - said_at >= PROGRESS_EVERY_S or not (queue or running):
                said_at = now
                log.info("shard %d/%d (%s) done: %d alleles in %.1f s; %.0f alleles/s over this run",
                         done, total, shard.describe(), counts.alleles, counts.seconds,
                         alleles / max(now - t0, 1e-9))
    finally:
        for actor in live:
            ray.kill(actor)
    return pids


def shard_error(shard: Shard, source: str, cause: BaseException | None, raised: str, gpus: float,
                batch_size: int) -> str:
    """One line for the error a shard's actor raised: its ``cause`` (None: Ray's error, named
    ``raised``, carried none). A GPU out of memory (torch's ``OutOfMemoryError``, named, not
    imported: the driver runs without torch) says what to lower instead of torch's list of
    the GPU's processes."""
    where = f"shard {shard.describe()} of {source} could not be scored"
    if cause is None:
        return f"{where}: {raised}"
    if type(cause).__name__ == "OutOfMemoryError":
        share = f"1/{round(1 / gpus)} of its memory each" if 0 < gpus < 1 else "its whole memory"
        return (f"{where}: the GPU ran out of memory (its scoring actors keep to {share}); "
                f"lower --batch-size (now {batch_size}) or --actors-per-gpu")
    return f"{where}: {type(cause).__name__}: {' '.join(str(cause).split())[:500]}"
