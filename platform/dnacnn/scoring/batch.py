"""Genome-wide variant scoring: a restartable Ray job over shards of a VCF.

Everything a user can get wrong is checked here, in the driver, before Ray
starts or the output folder is touched: the options' ranges, the genome, the
VCF (opened and its first records read: not a VCF, an empty file, a truncated
bgzip), the model, the output folder, the VCF's agreement with the genome
(``strict``), the cluster's address and its resources. A failed check raises
one error naming the file or option, and nothing has been created.

Then the work is split into shards planned from the VCF's records
(:mod:`dnacnn.scoring.shards`); each shard is one Ray Data block handled by an
actor of an ``ActorPoolStrategy`` pool (the model loads once per actor), which
streams the shard's records from the tabix index, scores them ``batch_size`` at
a time with :class:`VariantScorer` and writes its own Parquet parts
(:mod:`dnacnn.scoring.shard_run`). Nothing holds more than one batch of results
in memory. When this call started the Ray cluster it also stops it, so no
shard worker outlives the job.

Output folder::

    OUT/scores/part-NNNNNN.parquet    one row per scored (variant, ALT allele):
        chrom, pos (1-based), id, ref, alt, kind,
        delta, logit_delta (fixed_size_list<float32>[T], task order of tasks.txt),
        max_abs_delta (float32), max_task (string); schema metadata dnacnn.tasks
    OUT/rejects/part-NNNNNN.parquet   chrom, pos, id, ref, alt, kind, reason, message, line
    OUT/tasks.txt                     the T task names, one per line
    OUT/summary.json                  records/alleles read, scored, rejected by reason,
                                      warnings (genome build, truncated input), times
    OUT/scores.vcf.gz (+ .tbi)        with vcf_out: INFO DNACNN_MAXABS, DNACNN_TASK per allele
    OUT/top_effects.png               the strongest variants' deltas across tasks
    OUT/job.json                      the job's inputs; a restart must match them
    OUT/_shards/NNNNNN.json           one marker per finished shard (its counts)
    OUT/_work/                        an indexed copy of a VCF that is not one, a fetched model

Restarts: parts and markers are written atomically (:mod:`dnacnn.parquet_parts`),
a shard's marker last, and part names are fixed by the shard; a job killed at
any moment and run again with the same ``OUT`` skips the shards that have
markers and ends with exactly the rows of an uninterrupted run
(:mod:`dnacnn.scoring.job_state` refuses a restart with other inputs).

``OUT`` must be a folder every Ray node can write (a shared file system on a
multi-node cluster), and the FASTA and VCF paths must be readable on every node.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from dnacnn.genome import Genome
from dnacnn.output_folder import check_output_folder
from dnacnn.registry.uris import is_model_uri
from dnacnn.parquet_parts import atomic_write_text, remove_temporaries
from dnacnn.scoring.job_state import check_identity, job_identity, model_fingerprint, summarise, write_identity
from dnacnn.scoring.score_outputs import plot_top_effects, write_scores_vcf
from dnacnn.scoring.scorer import ModelSpec, load_model_spec
from dnacnn.scoring.shard_run import ShardWorker, marker_path
from dnacnn.scoring.shards import Shard, plan_shards
from dnacnn.variants import indexed_copy, inspect_vcf
from dnacnn.variants.genome_agreement import SURVEY_ALLELES, GenomeMismatchError, agreement_problems, survey

log = logging.getLogger(__name__)

#: Records per shard by default: a few seconds of work for one actor, a few parts per 10k variants.
SHARD_VARIANTS = 2500
_SUBFOLDERS = ("scores", "rejects", "_shards", "_work")


def check_options(batch_size: int, shard_variants: int, num_actors: int | None, cpus_per_actor: float,
                  device: str, wait_for_resources: float) -> None:
    """Refuse out-of-range options by name, before anything runs.

    Raises:
        ValueError: naming the option and the range it must be in.
    """
    for name, value, low in (("--batch-size", batch_size, 1), ("--shard-variants", shard_variants, 1),
                             ("--num-actors", num_actors, 1), ("--cpus-per-actor", cpus_per_actor, 1e-9),
                             ("--wait-for-resources", wait_for_resources, 0)):
        if value is not None and value < low:
            bound = "> 0" if low == 1e-9 else f">= {low}"
            raise ValueError(f"{name} must be {bound}, got {value}")
    if not (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
        raise ValueError(f"--device must be cpu, cuda or cuda:N, got {device!r}")


def score_vcf(
    model: ModelSpec,
    genome: str | Path,
    vcf: str | Path,
    out_dir: str | Path,
    rc: bool = False,
    batch_size: int = 256,
    shard_variants: int = SHARD_VARIANTS,
    num_actors: int | None = None,
    cpus_per_actor: float = 1.0,
    device: str = "cpu",
    vcf_out: bool = False,
    plot: bool = True,
    address: str | None = None,
    strict: bool = False,
    wait_for_resources: float = 0.0,
) -> dict:
    """Score every (variant, ALT allele) of a VCF genome-wide, restartably, on Ray.

    Args:
        model: a checkpoint folder, a registry URI (``models:/NAME@champion``; fetched
            once into ``out_dir/_work/model``), or a model object (see ``load_model_spec``).
        genome: indexed FASTA the VCF was called on.
        vcf: VCF (plain, gzip, bgzip) or BCF; without a tabix index a bgzipped indexed
            copy is made in ``out_dir/_work``.
        out_dir: output folder (module docstring); an existing one resumes its job.
        rc: average forward and reverse-complement probabilities.
        batch_size: variants per forward pass.
        shard_variants: VCF records per shard (the unit of work and of restart).
        num_actors: scorer actors (default: the cluster's CPUs / ``cpus_per_actor``,
            at most one per shard).
        cpus_per_actor: CPUs (and torch threads) of each actor.
        device: "cpu", or "cuda" for one GPU per actor.
        vcf_out: also write ``scores.vcf.gz`` (+ .tbi).
        plot: write ``top_effects.png``.
        address: Ray cluster address; a local cluster when None (and no RAY_ADDRESS).
        strict: stop (``GenomeMismatchError``) when the VCF does not fit the genome
            (module ``dnacnn.variants.genome_agreement``); else a warning.
        wait_for_resources: on a joined cluster, seconds to wait for a GPU node.
    Returns:
        the summary (also ``out_dir/summary.json``).
    """
    t0 = time.monotonic()
    check_options(batch_size, shard_variants, num_actors, cpus_per_actor, device, wait_for_resources)
    ref = Genome(genome)
    vcf = str(vcf)
    info = inspect_vcf(vcf)
    out = Path(out_dir)
    check_output_folder(out, "--out")
    warnings = list(info.warnings)
    for warning in warnings:
        log.warning(warning)
    early = survey(vcf, ref)
    problems = agreement_problems(vcf, ref, early.get(None, 0), early, f"(first {SURVEY_ALLELES} alleles)")
    if problems and strict:
        raise GenomeMismatchError(problems[0] + " (--strict)")

    fetched = None
    if is_model_uri(model):
        from dnacnn import registry

        fetched = Path(tempfile.mkdtemp(prefix="dnacnn-model-"))
        model = str(registry.fetch_model_dir(model, dst=fetched))
    elif isinstance(model, (str, os.PathLike)):
        model = os.path.abspath(model)  # actors may run in another working directory
    try:
        loaded = load_model_spec(model)
        fingerprint = model_fingerprint(loaded.model)
        identity = job_identity(vcf, ref.path, loaded, fingerprint, rc, shard_variants)
        resumed = check_identity(out, identity)
        started = _connect(address, device, wait_for_resources)
    except BaseException:
        if fetched is not None:
            shutil.rmtree(fetched, ignore_errors=True)
        raise
    try:
        for sub in _SUBFOLDERS:
            (out / sub).mkdir(parents=True, exist_ok=True)
            remove_temporaries(out / sub)
        remove_temporaries(out)
        if fetched is not None:
            model = str(_keep_fetched_model(fetched, out / "_work" / "model"))
        if not resumed:
            write_identity(out, identity)
        tasks = list(loaded.tasks)
        atomic_write_text(out / "tasks.txt", "".join(f"{t}\n" for t in tasks))

        vcf_path, indexed = indexed_copy(vcf, out / "_work")
        shards = plan_shards(vcf_path, indexed, shard_variants)
        pending = [s for s in shards if not marker_path(out, s).exists()]
        log.info("%d shard(s) of %s: %d done before, %d to score", len(shards), vcf,
                 len(shards) - len(pending), len(pending))
        if pending:
            _run_shards(pending, len(shards), model, os.path.abspath(ref.path), os.path.abspath(vcf_path),
                        out.resolve(), rc, batch_size, num_actors, cpus_per_actor, device)
    finally:
        if started:
            import ray

            ray.shutdown()  # this call's own cluster: no shard worker outlives the job

    summary = summarise(out, shards, tasks, time.monotonic() - t0, len(pending))
    problems = agreement_problems(vcf, ref, summary["alleles_scored"], summary["rejected_by_reason"])
    for problem in problems:
        log.warning(problem)
    summary.update({"vcf": vcf, "genome": ref.path, "rc": bool(rc), "model": loaded.name,
                    "model_sha256": fingerprint, "warnings": warnings + problems})
    if vcf_out:
        summary["vcf_out"] = str(write_scores_vcf(out, ref)[0])
    if plot:
        summary["plot"] = str(plot_top_effects(out, tasks))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("scored %d of %d alleles (%d rejected) in %.1f s; results in %s",
             summary["alleles_scored"], summary["alleles_read"], summary["alleles_rejected"],
             summary["seconds"], out)
    if problems and strict:
        raise GenomeMismatchError(problems[0] + f" (--strict; the results are in {out})")
    return summary


def _keep_fetched_model(fetched: Path, target: Path) -> Path:
    """Move a model fetched before the output folder existed to ``OUT/_work/model``."""
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(fetched), target)
    return target


def _connect(address: str | None, device: str, wait_for_resources: float) -> bool:
    """Join or start Ray and check it can run the job; True when this call started it."""
    from dnacnn.ray_cluster import init_ray, require_resources

    started = init_ray(address)
    if device.startswith("cuda"):
        try:
            require_resources("GPU", 1, local=started, wait_s=wait_for_resources)
        except BaseException:
            if started:
                import ray

                ray.shutdown()
            raise
    return started


def _run_shards(pending: list[Shard], total: int, model, genome_path: str, vcf_path: str, out: Path,
                rc: bool, batch_size: int, num_actors: int | None, cpus_per_actor: float, device: str) -> None:
    """The Ray part: one block per shard, an actor pool of :class:`ShardWorker`."""
    import ray

    if num_actors is None:
        cpus = ray.cluster_resources().get("CPU", 1)
        num_actors = max(1, int(cpus // cpus_per_actor))
    num_actors = max(1, min(num_actors, len(pending)))
    gpus = 1 if str(device).startswith("cuda") else 0
    items = [dataclasses.asdict(s) for s in pending]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(
        ShardWorker,
        fn_constructor_kwargs=dict(
            model=model, genome=genome_path, vcf=vcf_path, out_dir=str(out), rc=rc,
            batch_size=batch_size, device=device, num_threads=max(1, int(cpus_per_actor)),
        ),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus,
    )
    t0 = time.monotonic()
    done = total - len(pending)
    alleles = 0
    for row in ds.iter_rows():
        done += 1
        alleles += int(row["alleles"])
        rate = alleles / max(time.monotonic() - t0, 1e-9)
        log.info("shard %d/%d done (%d alleles in %.1f s); %.0f alleles/s over this run",
                 done, total, int(row["alleles"]), float(row["seconds"]), rate)
