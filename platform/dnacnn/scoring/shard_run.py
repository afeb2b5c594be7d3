"""Running one shard: read its alleles, score them batch by batch, write its parts and its marker.

Plain Python (testable without Ray); :class:`ShardWorker` is the thin Ray actor
class around it. A shard writes ``scores/part-NAME.parquet`` and
``rejects/part-NAME.parquet`` (each a :class:`~dnacnn.data.parquet_part.ParquetPart`)
and then its marker ``_shards/NAME.json`` (its counts), last: a shard with a
marker is complete, and one without is run again from scratch, replacing its parts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from dnacnn.data.parquet_part import ParquetPart
from dnacnn.scoring.job_state import atomic_write_text, marker_path
from dnacnn.scoring.shards import Shard, ShardCounts
from dnacnn.variants import Allele, read_alleles

if TYPE_CHECKING:  # torch: imported by the actors (ShardWorker), never by the job's driver
    from dnacnn.scoring.scorer import ModelSpec, VariantScorer

REJECT_SCHEMA = pa.schema([
    ("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()), ("ref", pa.string()),
    ("alt", pa.string()), ("kind", pa.string()), ("reason", pa.string()), ("message", pa.string()),
    ("line", pa.int64()),
])
_INPUT_SCHEMA = pa.schema([("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()),
                           ("ref", pa.string()), ("alt", pa.string())])
#: Rejects held before they are written.
_REJECT_BATCH = 4096


def scores_metadata(tasks: list[str], seq_len: int, rc: bool, task_type: str, model: str, mode: str,
                    precision: str) -> dict[bytes, bytes]:
    """Schema metadata of scored tables: the T task names and how the numbers were made."""
    return {
        b"dnacnn.tasks": json.dumps(list(tasks)).encode(),
        b"dnacnn.seq_len": str(int(seq_len)).encode(),
        b"dnacnn.rc": json.dumps(bool(rc)).encode(),
        b"dnacnn.task_type": task_type.encode(),
        b"dnacnn.model": model.encode(),
        b"dnacnn.mode": mode.encode(),
        b"dnacnn.precision": precision.encode(),
    }


def write_empty_parts(out_dir: str | Path, schema: pa.Schema) -> None:
    """0-row ``scores/`` and ``rejects/`` parts of a job with no record to read (a header-only
    VCF: no shard, no Ray cluster), so that its folders read as tables with their columns."""
    name = Shard(0, whole_file=True).name
    for folder, part_schema in (("scores", schema), ("rejects", REJECT_SCHEMA)):
        part = ParquetPart(Path(out_dir) / folder / f"part-{name}.parquet", part_schema)
        part.write(part_schema.empty_table())
        part.commit()


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


def score_shard(scorer: VariantScorer, vcf: str, shard: Shard, out_dir: str | Path,
                source: str | None = None) -> ShardCounts:
    """Score one shard and write its parts and its marker, each atomically.

    Args:
        scorer: the scorer (its genome checks REF and builds the windows).
        vcf: the (indexed, unless ``shard.whole_file``) VCF.
        shard: the region.
        out_dir: the job's folder.
        source: the file the rejects' messages name (the user's, when ``vcf`` is a copy).
    Returns:
        the shard's counts (also written to ``out_dir/_shards/NAME.json``).
    """
    t0 = time.monotonic()
    out = Path(out_dir)
    counts = ShardCounts()
    reasons: Counter = Counter()
    schema = scores_schema(scorer.tasks, scorer.arrow_schema_metadata())
    scores_part = ParquetPart(out / "scores" / f"part-{shard.name}.parquet", schema)
    rejects_part = ParquetPart(out / "rejects" / f"part-{shard.name}.parquet", REJECT_SCHEMA)
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
        }, schema=_INPUT_SCHEMA)
        # the one scoring code path; read_alleles checked each allele (upper case) against this genome
        scored = scorer(batch, kinds=[a.kind for a in pending])
        scores_part.write(scored.select(schema.names))
        counts.scored += scored.num_rows
        pending.clear()

    try:
        last_record = None
        for record, allele in (((n, a.record), a) for n, region in enumerate(shard.regions)  # (read, record)
                               for a in read_alleles(vcf, scorer.genome, region=region, source=source)):
            counts.alleles += 1
            if record != last_record:
                counts.records += 1
                last_record = record
            if allele.reject:
                reasons[allele.reject] += 1
                rejects.append(_reject_row(allele))
                if len(rejects) >= _REJECT_BATCH:
                    flush_rejects()
            else:
                pending.append(allele)
                if len(pending) >= scorer.batch_size:
                    flush_scores()
        if pending:
            flush_scores()
        flush_rejects()
        counts.reasons = dict(reasons)
        counts.rejected = sum(reasons.values())
        counts.aliases = scorer.genome.aliases()
        if counts.alleles != counts.scored + counts.rejected:
            raise RuntimeError(f"shard {shard.describe()}: {counts} does not add up; nothing written")
        if scores_part.rows != counts.scored or rejects_part.rows != counts.rejected:
            raise RuntimeError(f"shard {shard.describe()}: wrote a different number of rows than counted")
    except BaseException:
        scores_part.abort()
        rejects_part.abort()
        raise
    scores_part.commit()
    rejects_part.commit()
    counts.seconds = time.monotonic() - t0
    marker = {"shard": dataclasses.asdict(shard), "counts": dataclasses.asdict(counts)}
    atomic_write_text(marker_path(out, shard), json.dumps(marker) + "\n")
    return counts


def _reject_row(allele: Allele) -> dict:
    return {
        "chrom": allele.chrom, "pos": allele.pos, "id": allele.id, "ref": allele.ref,
        "alt": allele.alt, "kind": allele.kind, "reason": allele.reject,
        "message": allele.message, "line": allele.line,
    }


#: The part of a GPU's memory the actors sharing it divide among themselves.
GPU_MEMORY_USE = 0.85


class ShardWorker:
    """The Ray actor class: holds one :class:`VariantScorer`, scores whole shards.

    Constructed once per actor (the model loads there, and torch is imported there).
    An input error met while loading (weights that do not fit their config, a genome
    this node cannot read) is kept, not raised, so that the driver can say it in one
    line (:meth:`problem`) instead of Ray's report of a dead actor. :meth:`run` scores
    one shard and returns its counts and the actor's process id, so that a driver that
    started a local cluster can wait for its workers to be gone.
    """

    def __init__(self, model: ModelSpec, genome: str, vcf: str, out_dir: str, rc: bool,
                 batch_size: int, precision: str = "fp32", device: str = "cpu", num_threads: int | None = 1,
                 source: str | None = None, gpu_share: float = 0.0):
        from dnacnn.scoring.scorer import VariantScorer

        if device.startswith("cuda") and 0 < gpu_share < 1:
            # Actors sharing a GPU each keep to their share of its memory (less room for the
            # CUDA contexts): torch's caching allocator would otherwise hold what one actor's
            # peak took, and the others' next allocations fail.
            import torch

            torch.cuda.set_per_process_memory_fraction(GPU_MEMORY_USE * gpu_share)
        # A contig read under another name is said once by the driver (from the shards' counts),
        # not once more by every actor through Ray's log forwarding.
        logging.getLogger("dnacnn.genome").setLevel(logging.ERROR)
        self.scorer, self._problem = None, None
        try:
            self.scorer = VariantScorer(model, genome, rc=rc, batch_size=batch_size, device=device,
                                        num_threads=num_threads, precision=precision)
        except (OSError, ValueError) as err:
            self._problem = " ".join(str(err).split())
        self.vcf, self.source = vcf, source
        self.out_dir = out_dir

    def problem(self) -> str | None:
        """Why this actor cannot score (the input error met loading the model), or None."""
        return self._problem

    def run(self, shard: Shard) -> tuple[Shard, ShardCounts, int]:
        """(shard, its counts, this process's id)."""
        if self.scorer is None:
            raise RuntimeError(f"this scoring actor could not load its model: {self._problem}")
        return shard, score_shard(self.scorer, self.vcf, shard, self.out_dir, self.source), os.getpid()
