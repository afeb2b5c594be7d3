"""Genome-wide variant scoring: a restartable Ray job over shards of a VCF.

Everything a user can get wrong is checked here, in the driver, before Ray
starts or the output folder is touched: the options' ranges, the genome, the
VCF (opened and its first records read: not a VCF, an empty file, a truncated
bgzip), the model's files (``dnacnn.checkpoint_files``), the output folder, the
VCF's agreement with the genome (``strict``), the cluster's address and its
resources. A failed check raises one error naming the file or option, and
nothing has been created. The actors load the weights; weights that do not fit
their config are said in one error too, with the cluster stopped and what the
call created removed.

Then the work is split into shards planned from the VCF's records
(:mod:`dnacnn.scoring.shards`); each shard is handled by one actor of a pool
(the model loads once per actor), which streams the shard's records from the
tabix index, scores them ``batch_size`` at
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
    OUT/_work/                        an indexed copy of a VCF that is not one, a fetched model,
                                      .dnacnn.lock: held by the job running in OUT (one at a time)

Restarts: parts and markers are written atomically (``dnacnn.data.parquet_part.ParquetPart``),
a shard's marker last, and part names are fixed by the shard; a job killed at
any moment and run again with the same ``OUT`` skips the shards that have
markers and ends with exactly the rows of an uninterrupted run
(:mod:`dnacnn.scoring.job_state` refuses a restart with other inputs).

``OUT`` must be a folder every Ray node can write (a shared file system on a
multi-node cluster), and the FASTA and VCF paths must be readable on every node.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dnacnn.checkpoint_files import read_checkpoint_meta, weights_sha256
from dnacnn.console_logging import warnings_of
from dnacnn.folder_lock import FolderBusyError, exclusive
from dnacnn.genome import Genome, alias_message
from dnacnn.job_paths import portable_path
from dnacnn.output_folder import check_output_folder
from dnacnn.registry.uris import is_model_uri
from dnacnn.data.parquet_part import remove_unfinished_parts
from dnacnn.precision import check_precision
from dnacnn.ray_cluster import Interrupted
from dnacnn.scoring.job_cluster import check_cluster, connect, ctrl_c_ignored, sigterm_interrupts, stop_cluster
from dnacnn.scoring.job_state import (
    JOB_FOLDERS, ModelIdentity, atomic_write_text, check_identity, job_identity, model_fingerprint, shard_done, summarise,
    write_identity,
)
from dnacnn.scoring.score_outputs import plot_top_effects, write_scores_vcf
from dnacnn.scoring.shard_pool import run_shards
from dnacnn.scoring.shard_run import scores_metadata, scores_schema, write_empty_parts
from dnacnn.scoring.shards import Shard, plan_shards
from dnacnn.variants import indexed_copy, inspect_vcf
from dnacnn.variants.genome_agreement import (
    SURVEY_ALLELES, GenomeMismatchError, agreement_problems, header_problems, survey,
)

if TYPE_CHECKING:  # torch: never imported by the driver of a job on a checkpoint folder
    from dnacnn.scoring.scorer import ModelSpec

log = logging.getLogger(__name__)
#: Whose warnings about the input, said while the driver copies and plans it, summary.json keeps too.
INPUT_LOGGERS = ("dnacnn.variants.files", "dnacnn.variants.indexed_copy", "dnacnn.scoring.shards")

#: Variants per forward pass by default: 128 windows (256 with rc) keep an actor near 0.5 GiB PSS
#: for a full Basset (at 256 variants, 0.9 GiB), at the same speed on CPU (``bench/score_job.py``).
BATCH_SIZE = 64
#: Records per shard by default: a few seconds of work for one actor, a few parts per 10k variants.
SHARD_VARIANTS = 2500


def check_options(batch_size: int, shard_variants: int, num_actors: int | None, cpus_per_actor: float,
                  device: str, wait_for_resources: float, precision: str = "fp32",
                  actors_per_gpu: int | None = None, *, config_keys: bool = False) -> None:
    """Refuse out-of-range options by name, before anything runs.

    Args:
        config_keys: name them as a config section's keys (``batch_size``), not as the
            command's options (``--batch-size``).
    Raises:
        ValueError: naming the option and the range it must be in.
    """
    for name, value, low in (("--batch-size", batch_size, 1), ("--shard-variants", shard_variants, 1),
                             ("--num-actors", num_actors, 1), ("--cpus-per-actor", cpus_per_actor, 1e-9),
                             ("--wait-for-resources", wait_for_resources, 0), ("--actors-per-gpu", actors_per_gpu, 1)):
        if value is not None and not value >= low:  # NaN too (jobs/score_variants.py's floats)
            bound = "> 0" if low == 1e-9 else f">= {low}"
            name = name[2:].replace("-", "_") if config_keys else name
            raise ValueError(f"{name} must be {bound}, got {value}")
    if actors_per_gpu is not None and device != "cuda":
        raise ValueError(f"--actors-per-gpu {actors_per_gpu} applies with --device cuda only")
    if device not in ("cpu", "cuda"):  # not cuda:N: Ray gives each actor its GPU (CUDA_VISIBLE_DEVICES)
        raise ValueError(f"--device must be cpu or cuda (Ray assigns each scoring actor its GPU), got {device!r}")
    check_precision(precision, "--precision")


def score_vcf(
    model: ModelSpec,
    genome: str | Path,
    vcf: str | Path,
    out_dir: str | Path,
    rc: bool = False,
    batch_size: int = BATCH_SIZE,
    precision: str = "fp32",
    shard_variants: int = SHARD_VARIANTS,
    num_actors: int | None = None,
    cpus_per_actor: float = 1.0,
    device: str = "cpu",
    actors_per_gpu: int | None = None,
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
        batch_size: variants per forward pass (memory: see :data:`BATCH_SIZE`).
        precision: "fp32" (exact: the mutant-effect engine, deltas within 1e-5 of whole
            windows) or "bf16" (the fast path: bf16 autocast on top of it); recorded in
            summary.json and the Parquet schema metadata.
        shard_variants: VCF records per shard (the unit of work and of restart).
        num_actors: scorer actors (default: as many as the cluster's nodes place at once,
            at most one per shard; :mod:`dnacnn.scoring.actor_layout`).
        cpus_per_actor: CPUs (and torch threads) of each actor.
        device: "cpu", or "cuda" for actors sharing the GPUs.
        actors_per_gpu: with "cuda", actors sharing one GPU (their CPU work in parallel
            keeps it fed); default: the GPU nodes' CPUs per GPU / ``cpus_per_actor``.
        vcf_out: also write ``scores.vcf.gz`` (+ .tbi).
        plot: write ``top_effects.png``.
        address: Ray cluster address; a local cluster when None (and no RAY_ADDRESS).
        strict: stop (``GenomeMismatchError``) when the VCF does not fit the genome
            (module ``dnacnn.variants.genome_agreement``); else a warning.
        wait_for_resources: on a joined cluster, seconds to wait for a GPU node.
    Returns:
        the summary (also ``out_dir/summary.json``).
    Raises:
        FolderBusyError: another job is scoring into ``out_dir`` now (:mod:`dnacnn.folder_lock`).
    """
    t0 = time.monotonic()
    check_options(batch_size, shard_variants, num_actors, cpus_per_actor, device, wait_for_resources, precision,
                  actors_per_gpu)
    ref = Genome(genome)
    vcf = str(vcf)
    info = inspect_vcf(vcf)
    out = Path(out_dir)
    check_output_folder(out, "--out")
    for name in ("scores.vcf.gz", "scores.vcf.gz.tbi", "summary.json", "top_effects.png"):  # written at the end
        if (out / name).exists() and not (out / name).is_file():
            raise ValueError(f"--out {out} holds a folder named {name}, where the job writes its file: "
                             "move it away or give another --out")
    warnings = list(info.warnings)
    for warning in warnings:
        log.warning(warning)
    header = header_problems(info, ref)
    early = survey(vcf, ref)
    problems = agreement_problems(vcf, ref, early.get(None, 0), early, f"(first {SURVEY_ALLELES} alleles)")
    problems += header
    if problems and strict:
        raise GenomeMismatchError(problems[0] + " (--strict)")
    for problem in header:  # the REF alleles' verdict is said at the end, over every allele
        log.warning(problem)
    warnings += header

    model, fetched = _fetch_model(model)
    try:
        about = _model_identity(model)
        identity = job_identity(vcf, ref.path, about, rc, shard_variants, precision)
        resumed = check_identity(out, identity)
        check_cluster(address, device)
    except BaseException:
        if fetched is not None:
            shutil.rmtree(fetched, ignore_errors=True)
        raise
    model_name, tasks, fingerprint = about.name, list(about.tasks), about.sha256
    pending: list[Shard] = []
    shards: list[Shard] = []
    worker_pids: set[int] = set()
    started = False
    created = [path for path in [out, *(out / name for name in (*JOB_FOLDERS, "job.json", "tasks.txt"))]
               if not path.exists()]
    held = contextlib.ExitStack()  # the folder's lock, from here until the outputs are written
    try:
        # One job at a time: a second one's clean-up below would delete the first's unfinished parts.
        held.enter_context(exclusive(out / "_work", f"--out {out}", "give another --out"))  # makes _work
        for sub in JOB_FOLDERS:  # what a killed run left: temporaries, never partial final names
            (out / sub).mkdir(parents=True, exist_ok=True)
            remove_unfinished_parts(out / sub)
        remove_unfinished_parts(out)
        for leftover in (out / "_work").glob("_tmp-*"):  # indexed_copy's scratch files
            leftover.unlink()
        if fetched is not None:
            # absolute: the actors of a joined cluster run in another working directory
            model = str(_keep_fetched_model(fetched, out.resolve() / "_work" / "model"))
        if not resumed:
            write_identity(out, identity)
        atomic_write_text(out / "tasks.txt", "".join(f"{t}\n" for t in tasks))

        with warnings_of(*INPUT_LOGGERS) as said:  # a cut gzip, an index not used, a file read whole
            vcf_path, indexed = indexed_copy(vcf, out / "_work")
            shards = plan_shards(vcf_path, indexed, shard_variants)
        warnings += said
        pending = [s for s in shards if not shard_done(out, s)]
        log.info("%d shard(s) of %s: %d done before, %d to score", len(shards), vcf,
                 len(shards) - len(pending), len(pending))
        scoring_seconds = 0.0
        if not shards:  # no record: the job's tables are its empty parts, with their columns
            write_empty_parts(out, scores_schema(tasks, scores_metadata(
                tasks, about.seq_len, rc, about.task_type, model_name, "exact", precision)))  # the actors' mode
        if pending:  # Ray only for work to do: a VCF with no record, or a job all done, needs none
            started = connect(address, device, wait_for_resources)
            t_run = time.monotonic()
            with sigterm_interrupts():  # `ray job stop`: said as Ctrl-C is, with the shards kept
                worker_pids = run_shards(pending, len(shards), model, portable_path(ref.path),
                                          portable_path(vcf_path), out.resolve(), rc, batch_size,
                                          precision, num_actors, cpus_per_actor, device, source=vcf,
                                          actors_per_gpu=actors_per_gpu)
            scoring_seconds = time.monotonic() - t_run
            for sub in JOB_FOLDERS:  # what a lost actor left half-written (its shard was redone)
                remove_unfinished_parts(out / sub)
    except BaseException as err:
        held.close()
        if isinstance(err, FolderBusyError):  # the folder is the running job's: nothing of this call's to remove
            raise
        with ctrl_c_ignored():  # a second Ctrl-C while stopping would leave the cluster and this message
            if started:
                stop_cluster(worker_pids)
            finished = sum(1 for _ in (out / "_shards").glob("*.json"))
            if not finished:  # no shard done: nothing to resume
                _remove(created)
        if isinstance(err, KeyboardInterrupt):
            raise Interrupted(_interrupted(out, finished, len(shards))) from None
        raise
    # This call's own cluster stops (about a second of waiting for its processes) while the
    # outputs are written; the call returns after it, so no shard worker outlives the job.
    stopping = None
    if started:
        stopping = threading.Thread(target=stop_cluster, args=(worker_pids,), name="dnacnn-ray-stop")
        stopping.start()
    try:
        return _write_outputs(out, shards, tasks, t0, pending, vcf, ref, scoring_seconds, precision, rc,
                              model_name, fingerprint, warnings, vcf_out, plot, strict)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while writing the outputs: every shard is done in {out}; run the same "
                          "command again to write summary.json (and the plot, the scores VCF)") from None
    finally:
        if stopping is not None:
            stopping.join()
        held.close()


def _interrupted(out: Path, finished: int, planned: int) -> str:
    """What a Ctrl-C kept: ``finished`` shards done in ``out`` of ``planned`` (0: not planned yet)."""
    if not finished:
        return "scoring interrupted before any shard was done; nothing kept"
    if not planned:
        return f"scoring interrupted: {finished} shard(s) are done in {out}; run the same command again to go on"
    rest = "write the summary" if finished == planned else "score the rest"
    return f"scoring interrupted: {finished} of {planned} shards are done in {out}; run the same command again to {rest}"


def _write_outputs(out: Path, shards: list[Shard], tasks: list[str], t0: float, pending: list[Shard], vcf: str,
                   ref: Genome, scoring_seconds: float, precision: str, rc: bool, model_name: str,
                   fingerprint: str, warnings: list[str], vcf_out: bool, plot: bool, strict: bool) -> dict:
    """summary.json (and the scores VCF, the plot) of a job whose shards are all done; returns the summary."""
    summary = summarise(out, shards, tasks, time.monotonic() - t0, len(pending))
    problems = agreement_problems(vcf, ref, summary["alleles_scored"], summary["rejected_by_reason"])
    for problem in problems:
        log.warning(problem)
    for asked in summary["contig_aliases"]:  # met by the actors (which say nothing): said here, once
        ref.resolve(asked)
    aliases = [alias_message(asked, name, ref.path) for asked, name in summary["contig_aliases"].items()]
    summary["scoring_seconds"] = round(scoring_seconds, 3)  # wall time of the Ray part (actors, shards)
    summary.update({"vcf": vcf, "genome": ref.path, "rc": bool(rc), "precision": precision, "model": model_name,
                    "model_sha256": fingerprint, "warnings": warnings + aliases + problems})
    if vcf_out:
        with warnings_of("dnacnn.variants.writing", "dnacnn.scoring.score_outputs") as said:  # unsorted; a contig left out
            summary["vcf_out"] = str(write_scores_vcf(out, ref)[0])
        summary["warnings"] += said
    if plot:
        summary["plot"] = str(plot_top_effects(out, tasks))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("scored %d of %d alleles (%d rejected) in %.1f s; results in %s",
             summary["alleles_scored"], summary["alleles_read"], summary["alleles_rejected"],
             summary["seconds"], out)
    if problems and strict:
        raise GenomeMismatchError(problems[0] + f" (--strict; the results are in {out})")
    return summary


def _fetch_model(model: ModelSpec) -> tuple[ModelSpec, Path | None]:
    """The model as the actors will load it (a registry URI fetched, a folder made absolute),
    and the temporary folder a registry URI was fetched into (None for the rest)."""
    fetched = None
    if is_model_uri(model):
        from dnacnn import registry

        fetched = Path(tempfile.mkdtemp(prefix="dnacnn-model-"))
        try:
            model = registry.fetch_model_dir(model, dst=fetched)
        except BaseException:
            shutil.rmtree(fetched, ignore_errors=True)
            raise
    if isinstance(model, (str, os.PathLike)):
        model = portable_path(model)  # actors may run in another working directory
    return model, fetched


def _model_identity(model: ModelSpec) -> ModelIdentity:
    """What the job records of its model. A checkpoint folder's is read from its files, which
    are checked on the way (``dnacnn.checkpoint_files``: a missing or broken file is refused
    before Ray starts) without torch, which the driver never imports for it (a second of
    start-up and 200 MiB); the actors load the weights, and refuse weights that do not fit
    their config (:func:`dnacnn.scoring.shard_pool.run_shards`). A model object's (the Python API: torch is in the
    caller's process already) is read from the object."""
    if isinstance(model, (str, os.PathLike)):
        meta = read_checkpoint_meta(model)
        return ModelIdentity(weights_sha256(model), meta["name"], tuple(meta["tasks"]), int(meta["seq_len"]),
                             meta.get("task_type") or "multitask")
    from dnacnn.scoring.scorer import load_model_spec

    loaded = load_model_spec(model)
    return ModelIdentity(model_fingerprint(loaded.model), loaded.name, tuple(loaded.tasks), loaded.seq_len,
                         loaded.task_type)


def _remove(created: list[Path]) -> None:
    """Remove what this call created in the output folder (the folder itself too, if it
    created it) when it failed before any shard was done (a model the actors could not
    load, say): a rerun then starts clean rather than being refused as another job."""
    for path in reversed(created):  # the folder, listed first, goes last
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _keep_fetched_model(fetched: Path, target: Path) -> Path:
    """Move a model fetched before the output folder existed to ``OUT/_work/model``."""
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(fetched), target)
    return target
