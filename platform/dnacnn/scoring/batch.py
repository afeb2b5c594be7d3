"""Genome-wide variant scoring: a restartable Ray job over regions of a VCF.

The work is split by genomic region. Each shard (``shard_size_bp`` of one
contig) is one Ray Data block handled by an actor of an ``ActorPoolStrategy``
pool (the model loads once per actor); the actor streams the shard's records
from the tabix index (:func:`dnacnn.variants.read_alleles`), scores them
``batch_size`` at a time with :class:`VariantScorer` and writes its own Parquet
parts. Nothing holds more than one batch of results in memory.

Output folder::

    OUT/scores/part-NNNNNN.parquet    one row per scored (variant, ALT allele):
        chrom, pos (1-based), id, ref, alt, kind,
        delta, logit_delta (fixed_size_list<float32>[T], task order of tasks.txt),
        max_abs_delta (float32), max_task (string); schema metadata dnacnn.tasks
    OUT/rejects/part-NNNNNN.parquet   chrom, pos, id, ref, alt, kind, reason, message, line
    OUT/tasks.txt                     the T task names, one per line
    OUT/summary.json                  records/alleles read, scored, rejected by reason, times
    OUT/scores.vcf.gz (+ .tbi)        with --vcf-out: INFO DNACNN_MAXABS, DNACNN_TASK per allele
    OUT/top_effects.png               the strongest variants' deltas across tasks
    OUT/job.json                      the job's inputs; a restart must match them
    OUT/_shards/NNNNNN.json           one marker per finished shard (its counts)
    OUT/_work/                        an indexed copy of an unindexed VCF, a fetched model

Restarts: a shard writes each part under a temporary name (``_tmp-...``, which
Parquet readers skip) and renames it into place with ``os.replace``; its marker is
written last, the same way. Part names are fixed by the shard, so a shard that
was interrupted and runs again replaces its parts instead of adding rows. A job
killed at any moment and run again with the same ``OUT`` skips the shards that
have markers and ends with exactly the rows of an uninterrupted run.

``OUT`` must be a folder every Ray node can write (a shared file system on a
multi-node cluster), and the FASTA and VCF paths must be readable on every node.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import heapq
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pysam

from dnacnn.genome import Genome
from dnacnn.registry.uris import is_model_uri
from dnacnn.scoring.scorer import ModelSpec, VariantScorer, load_model_spec
from dnacnn.variants import (
    REJECT_REASONS, Allele, diagnose_line, is_bgzf, is_gzip, open_vcf, read_alleles,
)

log = logging.getLogger(__name__)

FORMAT = "dnacnn-scores/1"
#: End of the last shard of a contig: records past the genome's end are read (and rejected) too.
OPEN_END = (1 << 31) - 1
_TMP = "_tmp-"

REJECT_SCHEMA = pa.schema([
    ("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()), ("ref", pa.string()),
    ("alt", pa.string()), ("kind", pa.string()), ("reason", pa.string()), ("message", pa.string()),
    ("line", pa.int64()),
])


def scores_schema(tasks: list[str], metadata: dict[bytes, bytes] | None = None) -> pa.Schema:
    """Schema of ``scores/`` parts for T = len(tasks) tasks; task names in the metadata."""
    t = len(tasks)
    meta = {b"dnacnn.tasks": json.dumps(tasks).encode(), **(metadata or {})}
    return pa.schema([
        ("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()), ("ref", pa.string()),
        ("alt", pa.string()), ("kind", pa.string()),
        ("delta", pa.list_(pa.float32(), t)), ("logit_delta", pa.list_(pa.float32(), t)),
        ("max_abs_delta", pa.float32()), ("max_task", pa.string()),
    ], metadata=meta)


# ---- shards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """One unit of work: records of ``chrom`` whose 0-based POS-1 is in [start, end).

    ``whole_file`` shards read an unindexable VCF from its start (then with line numbers).
    """

    index: int
    chrom: str = ""
    start: int = 0
    end: int = 0
    whole_file: bool = False

    @property
    def name(self) -> str:
        return f"{self.index:06d}"

    @property
    def region(self) -> tuple[str, int, int] | None:
        return None if self.whole_file else (self.chrom, self.start, self.end)

    def describe(self) -> str:
        return "the whole VCF" if self.whole_file else f"{self.chrom}:{self.start}-{self.end}"


@dataclass
class ShardCounts:
    """What one shard read and wrote."""

    records: int = 0
    alleles: int = 0
    scored: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, other: ShardCounts) -> None:
        self.records += other.records
        self.alleles += other.alleles
        self.scored += other.scored
        self.rejected += other.rejected
        self.seconds += other.seconds
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


def has_index(path: str | Path) -> bool:
    """Whether ``path`` is a BGZF VCF with a tabix or CSI index beside it."""
    pysam.set_verbosity(0)
    if not is_bgzf(str(path)):  # plain text or plain gzip: no index possible
        return False
    try:
        with pysam.VariantFile(str(path)) as vcf:
            return vcf.index is not None
    except (OSError, ValueError):
        return False


def prepare_vcf(vcf: str | Path, work_dir: str | Path) -> tuple[str, bool]:
    """A tabix-indexed VCF to read by region: ``vcf`` itself, or a bgzipped indexed copy.

    Args:
        vcf: the input VCF (plain, gzip or bgzip).
        work_dir: where the copy goes (``work_dir/input.vcf.gz`` + ``.tbi``); reused
            when already there from an earlier run of the same job.
    Returns:
        (path, indexed): ``indexed`` is False when the VCF cannot be indexed (unsorted,
        or a line whose CHROM/POS tabix cannot read); the job then reads it whole.
    """
    vcf = str(vcf)
    if has_index(vcf):
        return vcf, True
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "input.vcf.gz"
    if copy.exists() and Path(f"{copy}.tbi").exists():
        return str(copy), True
    plain = work / f"{_TMP}input-{uuid.uuid4().hex}.vcf"
    opener = gzip.open if is_gzip(vcf) else open
    with opener(vcf, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)  # streamed: memory bounded
    try:
        pysam.tabix_index(str(plain), preset="vcf", force=True)  # -> plain.gz, plain.gz.tbi
    except OSError as err:
        log.warning(
            "cannot index %s (%s): it is unsorted or has a line whose CHROM/POS cannot be "
            "read; scoring it as one shard, from the start (sort it with `bcftools sort` "
            "to split the work by region)", vcf, err,
        )
        for leftover in (plain, Path(f"{plain}.gz"), Path(f"{plain}.gz.tbi")):
            leftover.unlink(missing_ok=True)
        return vcf, False
    os.replace(f"{plain}.gz", copy)
    os.replace(f"{plain}.gz.tbi", f"{copy}.tbi")  # last: the pair exists only when complete
    log.info("%s has no tabix index; scoring a bgzipped, indexed copy %s", vcf, copy)
    return str(copy), True


def plan_shards(vcf: str, indexed: bool, genome: Genome, shard_size_bp: int) -> list[Shard]:
    """The job's shards, in contig (index) and position order.

    Each contig with records is cut into ``shard_size_bp`` regions (the genome's
    contig length, else the VCF header's); the last region of a contig is open-ended.
    Regions without records are left out. An unindexed VCF is one whole-file shard.
    """
    if shard_size_bp < 1:
        raise ValueError(f"shard_size_bp must be >= 1, got {shard_size_bp}")
    if not indexed:
        return [Shard(0, whole_file=True)]
    shards: list[Shard] = []
    with pysam.TabixFile(vcf) as tbx, pysam.VariantFile(vcf) as header_vcf:
        header = header_vcf.header.contigs
        for chrom in tbx.contigs:
            length = genome.length(chrom) if genome.has(chrom) else None
            if length is None and chrom in header:
                length = header[chrom].length
            n = max(1, math.ceil((length or 1) / shard_size_bp))
            for k in range(n):
                start = k * shard_size_bp
                end = OPEN_END if k == n - 1 else start + shard_size_bp
                if next(iter(tbx.fetch(chrom, start, end)), None) is not None:
                    shards.append(Shard(len(shards), chrom, start, end))
    return shards


# ---- one shard (runs in a Ray actor; plain Python, testable without Ray) -------------------


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{_TMP}{path.name}-{uuid.uuid4().hex}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _owned_malformed(vcf: str, shard: Shard) -> list[Allele]:
    """Malformed lines whose POS lies in the shard's region, with a diagnosis.

    In region mode htslib cannot say where an unparseable line is, and a line whose
    span crosses a shard boundary comes back from both regions' queries; pairing the
    raw tabix lines with the parser's attempts, one by one, finds each malformed line
    and gives it to the one shard its POS falls in.
    """
    chrom, start, end = shard.region
    found = []
    with pysam.TabixFile(vcf) as tbx, open_vcf(vcf) as parsed:
        records = parsed.fetch(chrom, start, end)
        for number, text in enumerate(tbx.fetch(chrom, start, end)):
            try:
                next(records)
                continue
            except StopIteration:  # cannot happen: both iterate the same lines
                break
            except (OSError, ValueError):
                pass  # this raw line is the one htslib could not parse
            fields = text.split("\t")
            pos = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
            if not start <= pos - 1 < end:
                continue
            message = (
                f"{vcf}, record at {chrom}:{pos} (line {number + 1} of region "
                f"{shard.describe()}): malformed VCF record: {diagnose_line(text)}"
            )
            log.warning(message)
            found.append(Allele(
                chrom=chrom, pos=pos, id=fields[2] if len(fields) > 2 else ".",
                ref=fields[3] if len(fields) > 3 else ".", alt=fields[4] if len(fields) > 4 else ".",
                kind="unknown", record=-1 - number, line=0, reject="malformed", message=message,
            ))
    return found


def _shard_alleles(vcf: str, shard: Shard, genome: Genome) -> Iterator[Allele]:
    """The shard's alleles, each record's exactly once (see :func:`_owned_malformed`)."""
    malformed = 0
    for allele in read_alleles(vcf, genome, region=shard.region):
        if allele.reject == "malformed" and not shard.whole_file:
            malformed += 1
            continue
        yield allele
    if malformed:
        yield from _owned_malformed(vcf, shard)


class _PartWriter:
    """A Parquet part written under a temporary name, renamed into place on ``commit``."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.tmp = path.with_name(f"{_TMP}{path.name}-{uuid.uuid4().hex}")
        self.schema = schema
        self.rows = 0
        self.writer = pq.ParquetWriter(self.tmp, schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table.cast(self.schema))
            self.rows += table.num_rows

    def commit(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


def score_shard(scorer: VariantScorer, vcf: str, shard: Shard, out_dir: str | Path) -> ShardCounts:
    """Score one shard and write its parts and its marker, each atomically.

    Args:
        scorer: the scorer (its genome checks REF and builds the windows).
        vcf: the (indexed, unless ``shard.whole_file``) VCF.
        shard: the region.
        out_dir: the job's folder.
    Returns:
        the shard's counts (also written to ``out_dir/_shards/NAME.json``).
    """
    t0 = time.monotonic()
    out = Path(out_dir)
    counts = ShardCounts()
    reasons: Counter = Counter()
    schema = scores_schema(scorer.tasks, scorer.arrow_schema_metadata())
    scores_part = _PartWriter(out / "scores" / f"part-{shard.name}.parquet", schema)
    rejects_part = _PartWriter(out / "rejects" / f"part-{shard.name}.parquet", REJECT_SCHEMA)
    pending: list[Allele] = []
    rejects: list[dict] = []

    def flush_rejects() -> None:
        rejects_part.write(pa.Table.from_pylist(rejects, REJECT_SCHEMA))
        rejects.clear()

    def flush_scores() -> None:
        batch = pa.table({
            "chrom": [a.chrom for a in pending], "pos": [a.pos for a in pending],
            "id": [a.id for a in pending], "ref": [a.ref for a in pending],
            "alt": [a.alt for a in pending],
        }, schema=pa.schema([("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()),
                             ("ref", pa.string()), ("alt", pa.string())]))
        scored = scorer(batch)  # the one scoring code path
        why = scored.column("reason").to_pylist()
        if any(why):  # rejected by the scorer's own checks (rare: read_alleles checked them)
            messages = scored.column("message").to_pylist()
            for allele, reason, message in zip(pending, why, messages):
                if reason:
                    rejects.append(_reject_row(dataclasses.replace(allele, reject=reason, message=message)))
                    reasons[reason] += 1
            scored = scored.filter(pc.is_null(scored.column("reason")))
        scores_part.write(scored.select(schema.names))
        counts.scored += scored.num_rows
        pending.clear()

    try:
        last_record = None
        for allele in _shard_alleles(vcf, shard, scorer.genome):
            counts.alleles += 1
            if allele.record != last_record:
                counts.records += 1
                last_record = allele.record
            if allele.reject:
                reasons[allele.reject] += 1
                rejects.append(_reject_row(allele))
                if len(rejects) >= 4096:
                    flush_rejects()
            else:
                pending.append(allele)
                if len(pending) >= scorer.batch_size:
                    flush_scores()
        if pending:
            flush_scores()
        flush_rejects()
    except BaseException:
        scores_part.abort()
        rejects_part.abort()
        raise
    counts.reasons = dict(reasons)
    counts.rejected = sum(reasons.values())
    if counts.alleles != counts.scored + counts.rejected:
        raise RuntimeError(f"shard {shard.describe()}: {counts} does not add up; nothing written")
    if scores_part.rows != counts.scored or rejects_part.rows != counts.rejected:
        raise RuntimeError(f"shard {shard.describe()}: wrote a different number of rows than counted")
    scores_part.commit()
    rejects_part.commit()
    counts.seconds = time.monotonic() - t0
    marker = {"shard": dataclasses.asdict(shard), "counts": dataclasses.asdict(counts)}
    _atomic_write_text(out / "_shards" / f"{shard.name}.json", json.dumps(marker) + "\n")
    return counts


def _reject_row(allele: Allele) -> dict:
    return {
        "chrom": allele.chrom, "pos": allele.pos, "id": allele.id, "ref": allele.ref,
        "alt": allele.alt, "kind": allele.kind, "reason": allele.reject,
        "message": allele.message, "line": allele.line,
    }


class ShardWorker:
    """The Ray Data callable class: holds one :class:`VariantScorer`, scores whole shards.

    Constructed once per actor (the model loads there). ``__call__`` takes a batch of
    shard rows (``index``, ``chrom``, ``start``, ``end``, ``whole_file``) and returns
    their counts.
    """

    def __init__(self, model: ModelSpec, genome: str, vcf: str, out_dir: str, rc: bool,
                 batch_size: int, device: str = "cpu", num_threads: int | None = 1):
        self.scorer = VariantScorer(model, genome, rc=rc, batch_size=batch_size, device=device,
                                    num_threads=num_threads)
        self.vcf = vcf
        self.out_dir = out_dir

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for i in range(len(batch["index"])):
            shard = Shard(int(batch["index"][i]), str(batch["chrom"][i]), int(batch["start"][i]),
                          int(batch["end"][i]), bool(batch["whole_file"][i]))
            counts = score_shard(self.scorer, self.vcf, shard, self.out_dir)
            rows.append((shard.index, counts))
        return {
            "index": np.array([i for i, _ in rows], dtype=np.int64),
            "alleles": np.array([c.alleles for _, c in rows], dtype=np.int64),
            "scored": np.array([c.scored for _, c in rows], dtype=np.int64),
            "rejected": np.array([c.rejected for _, c in rows], dtype=np.int64),
            "seconds": np.array([c.seconds for _, c in rows], dtype=np.float64),
        }


# ---- the job ------------------------------------------------------------------------------


def model_fingerprint(model: object) -> str:
    """sha256 of a model's weights (state dict, keys sorted): what makes two runs' rows equal."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _job_identity(vcf: str, genome: Genome, loaded, rc: bool, shard_size_bp: int) -> dict:
    stat = os.stat(vcf)
    return {
        "format": FORMAT,
        "vcf": os.path.abspath(vcf), "vcf_bytes": stat.st_size, "vcf_mtime_ns": stat.st_mtime_ns,
        "genome": os.path.abspath(genome.path),
        "model_sha256": model_fingerprint(loaded.model), "model_name": loaded.name,
        "tasks": list(loaded.tasks), "seq_len": loaded.seq_len,
        "rc": bool(rc), "shard_size_bp": int(shard_size_bp),
    }


def _check_or_write_identity(out: Path, identity: dict) -> None:
    path = out / "job.json"
    if path.exists():
        old = json.loads(path.read_text())
        differ = [k for k in identity if old.get(k) != identity[k]]
        if differ:
            raise ValueError(
                f"{out} holds results of a job with other inputs ({', '.join(differ)} differ); "
                "restart with the same inputs, or give a new output folder"
            )
        return
    _atomic_write_text(path, json.dumps(identity, indent=2) + "\n")


def _clean_temporaries(out: Path) -> None:
    """Remove temporary files an interrupted run left (final names are never partial)."""
    for sub in ("scores", "rejects", "_shards", "_work", "."):
        folder = out / sub
        if folder.is_dir():
            for path in folder.glob(f"{_TMP}*"):
                path.unlink(missing_ok=True)


def score_vcf(
    model: ModelSpec,
    genome: str | Path,
    vcf: str | Path,
    out_dir: str | Path,
    rc: bool = False,
    batch_size: int = 256,
    shard_size_bp: int = 1_000_000,
    num_actors: int | None = None,
    cpus_per_actor: float = 1.0,
    device: str = "cpu",
    vcf_out: bool = False,
    plot: bool = True,
    address: str | None = None,
) -> dict:
    """Score every (variant, ALT allele) of a VCF genome-wide, restartably, on Ray.

    Args:
        model: a checkpoint folder, a registry URI (``models:/NAME@champion``; fetched
            once into ``out_dir/_work/model``), or a model object (see ``load_model_spec``).
        genome: indexed FASTA the VCF was called on.
        vcf: VCF, plain / gzip / bgzip; without a tabix index a bgzipped indexed copy
            is made in ``out_dir/_work``.
        out_dir: output folder (module docstring); an existing one resumes its job.
        rc: average forward and reverse-complement probabilities.
        batch_size: variants per forward pass.
        shard_size_bp: region size of one shard (bp).
        num_actors: scorer actors (default: the cluster's CPUs / ``cpus_per_actor``,
            at most one per shard).
        cpus_per_actor: CPUs (and torch threads) of each actor.
        device: "cpu", or "cuda" for one GPU per actor.
        vcf_out: also write ``scores.vcf.gz`` (+ .tbi).
        plot: write ``top_effects.png``.
        address: Ray cluster address; a local cluster when None (and no RAY_ADDRESS).
    Returns:
        the summary (also ``out_dir/summary.json``).
    """
    t0 = time.monotonic()
    ref = Genome(genome)
    if not Path(vcf).exists():
        raise FileNotFoundError(f"VCF not found: {vcf}")
    out = Path(out_dir)
    for sub in ("scores", "rejects", "_shards", "_work"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _clean_temporaries(out)

    if is_model_uri(model):
        from dnacnn import registry

        model = str(registry.fetch_model_dir(model, dst=out / "_work" / "model"))
    elif isinstance(model, (str, os.PathLike)):
        model = os.path.abspath(model)  # actors may run in another working directory
    loaded = load_model_spec(model)
    _check_or_write_identity(out, _job_identity(str(vcf), ref, loaded, rc, shard_size_bp))
    tasks = list(loaded.tasks)
    _atomic_write_text(out / "tasks.txt", "".join(f"{t}\n" for t in tasks))

    vcf_path, indexed = prepare_vcf(vcf, out / "_work")
    shards = plan_shards(vcf_path, indexed, ref, shard_size_bp)
    pending = [s for s in shards if not (out / "_shards" / f"{s.name}.json").exists()]
    log.info("%d shards of %s: %d done before, %d to score", len(shards), vcf, len(shards) - len(pending), len(pending))
    if pending:
        _run_shards(pending, len(shards), model, os.path.abspath(ref.path), os.path.abspath(vcf_path),
                    out.resolve(), rc, batch_size,
                    num_actors, cpus_per_actor, device, address)

    summary = _summarise(out, shards, tasks, time.monotonic() - t0, len(pending))
    summary.update({"vcf": str(vcf), "genome": ref.path, "rc": bool(rc), "model": loaded.name,
                    "model_sha256": model_fingerprint(loaded.model)})
    if vcf_out:
        summary["vcf_out"] = str(write_scores_vcf(out, ref, shards))
    if plot:
        summary["plot"] = str(plot_top_effects(out, tasks))
    _atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("scored %d of %d alleles (%d rejected) in %.1f s; results in %s",
             summary["alleles_scored"], summary["alleles_read"], summary["alleles_rejected"],
             summary["seconds"], out)
    return summary


def _run_shards(pending, total, model, genome_path, vcf_path, out, rc, batch_size,
                num_actors, cpus_per_actor, device, address) -> None:
    """The Ray part: one block per shard, an actor pool of :class:`ShardWorker`."""
    import ray

    from dnacnn.ray_cluster import init_ray

    init_ray(address)
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


def _summarise(out: Path, shards: list[Shard], tasks: list[str], seconds: float, ran: int) -> dict:
    """Totals over every shard's marker; the accounting identity is checked here."""
    total = ShardCounts()
    missing = []
    for shard in shards:
        marker = out / "_shards" / f"{shard.name}.json"
        if not marker.exists():
            missing.append(shard.describe())
            continue
        total.add(ShardCounts(**json.loads(marker.read_text())["counts"]))
    if missing:
        raise RuntimeError(f"{len(missing)} shard(s) did not finish: {', '.join(missing[:5])}; run the job again")
    if total.alleles != total.scored + total.rejected:
        raise RuntimeError(f"alleles read ({total.alleles}) != scored ({total.scored}) + rejected ({total.rejected})")
    names = {f"part-{s.name}.parquet" for s in shards}
    rows = {sub: sum(pq.ParquetFile(out / sub / n).metadata.num_rows for n in names) for sub in ("scores", "rejects")}
    if rows["scores"] != total.scored or rows["rejects"] != total.rejected:
        raise RuntimeError(f"the Parquet parts hold {rows} rows, the shard markers count "
                           f"{total.scored} scored and {total.rejected} rejected")
    return {
        "format": FORMAT,
        "records_read": total.records,
        "alleles_read": total.alleles,
        "alleles_scored": total.scored,
        "alleles_rejected": total.rejected,
        "rejected_by_reason": {r: total.reasons.get(r, 0) for r in REJECT_REASONS if total.reasons.get(r)},
        "tasks": len(tasks),
        "shards": len(shards),
        "shards_run_now": ran,
        "seconds": round(seconds, 3),
        "shard_seconds": round(total.seconds, 3),
        "alleles_per_second": round(total.alleles / total.seconds, 1) if total.seconds else None,
    }


# ---- derived outputs ----------------------------------------------------------------------


def iter_score_parts(out_dir: str | Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of ``out_dir/scores`` in shard (genome) order, one part at a time."""
    for path in sorted((Path(out_dir) / "scores").glob("part-*.parquet")):
        yield from pq.ParquetFile(path).iter_batches(columns=columns, batch_size=65_536)


def _info_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text.strip()) or "_"


def write_scores_vcf(out_dir: str | Path, genome: Genome, shards: list[Shard]) -> Path:
    """``out_dir/scores.vcf.gz`` (+ ``.tbi``): one line per scored allele with INFO
    ``DNACNN_MAXABS`` (max |delta|) and ``DNACNN_TASK`` (its task, spaces and other
    characters VCF forbids in INFO replaced by ``_``), streamed from the Parquet parts."""
    out = Path(out_dir)
    tasks = (out / "tasks.txt").read_text().splitlines()
    chroms = list(dict.fromkeys(s.chrom for s in shards if not s.whole_file))
    plain = out / "_work" / f"{_TMP}scores-{uuid.uuid4().hex}.vcf"
    with open(plain, "w") as handle:
        handle.write("##fileformat=VCFv4.2\n##source=dnacnn score\n")
        for chrom in chroms:
            if genome.has(chrom):
                handle.write(f"##contig=<ID={chrom},length={genome.length(chrom)}>\n")
        handle.write('##INFO=<ID=DNACNN_MAXABS,Number=A,Type=Float,Description="max over tasks of |p_alt - p_ref|">\n')
        handle.write('##INFO=<ID=DNACNN_TASK,Number=A,Type=String,Description="task (cell type) of DNACNN_MAXABS">\n')
        handle.write(f"##dnacnn_tasks={','.join(_info_safe(t) for t in tasks)}\n")
        handle.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for batch in iter_score_parts(out, ["chrom", "pos", "id", "ref", "alt", "max_abs_delta", "max_task"]):
            cols = batch.to_pydict()
            for c, p, i, r, a, m, t in zip(*cols.values()):
                handle.write(f"{c}\t{p}\t{i}\t{r}\t{a}\t.\t.\tDNACNN_MAXABS={m:.6g};DNACNN_TASK={_info_safe(t)}\n")
    target = out / "scores.vcf.gz"
    try:
        pysam.tabix_index(str(plain), preset="vcf", force=True)
        os.replace(f"{plain}.gz", target)
        os.replace(f"{plain}.gz.tbi", f"{target}.tbi")
    except OSError:  # unsorted input (whole-file mode): bgzipped, not indexed
        log.warning("the input VCF is unsorted: %s is bgzipped but not indexed", target)
        if not Path(f"{plain}.gz").exists():  # tabix_index compresses before it indexes
            pysam.tabix_compress(str(plain), f"{plain}.gz", force=True)
        os.replace(f"{plain}.gz", target)
        Path(f"{target}.tbi").unlink(missing_ok=True)
        plain.unlink(missing_ok=True)
    return target


def plot_top_effects(out_dir: str | Path, tasks: list[str], top: int = 40) -> Path:
    """``out_dir/top_effects.png``: heatmap of delta (rows: the ``top`` variants by
    max |delta|, strongest first; columns: tasks). Streams the parts, keeping ``top`` rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heap: list[tuple[float, int, str, np.ndarray]] = []
    counter = 0
    for batch in iter_score_parts(out_dir, ["chrom", "pos", "ref", "alt", "delta", "max_abs_delta"]):
        strength = batch.column("max_abs_delta").to_numpy(zero_copy_only=False)
        keep = np.argsort(-strength, kind="stable")[:top]
        delta = batch.column("delta").flatten().to_numpy(zero_copy_only=False).reshape(-1, len(tasks))
        chrom, pos = batch.column("chrom").to_pylist(), batch.column("pos").to_pylist()
        ref, alt = batch.column("ref").to_pylist(), batch.column("alt").to_pylist()
        for i in keep:
            label = f"{chrom[i]}:{pos[i]} {ref[i][:6]}>{alt[i][:6]}"
            item = (float(strength[i]), -counter, label, delta[i].copy())
            counter += 1
            if len(heap) < top:
                heapq.heappush(heap, item)
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
    rows = sorted(heap, key=lambda x: (-x[0], -x[1]))
    path = Path(out_dir) / "top_effects.png"
    fig, ax = plt.subplots(figsize=(max(6.0, 0.09 * len(tasks) + 3), max(2.5, 0.22 * len(rows) + 1.5)))
    if rows:
        matrix = np.stack([r[3] for r in rows])  # (K, T)
        vmax = float(np.abs(matrix).max()) or 1.0
        image = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        fig.colorbar(image, ax=ax, label="delta = p_alt - p_ref")
        ax.set_yticks(range(len(rows)), [r[2] for r in rows], fontsize=6)
        step = max(1, math.ceil(len(tasks) / 60))
        ax.set_xticks(range(0, len(tasks), step), [t.strip()[:24] for t in tasks[::step]], rotation=90, fontsize=5)
        ax.set_title(f"Top {len(rows)} variants by max |delta| across {len(tasks)} tasks")
    else:
        ax.text(0.5, 0.5, "no variants scored", ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    tmp = path.with_name(f"{_TMP}{path.name}")
    fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
