"""What makes a batch job restartable and its totals trustworthy: its identity and its accounting.

``OUT/job.json`` records the job's inputs (the VCF's and the genome's sizes and times,
the model's weights digest, the options that change rows); a restart with other
inputs is refused rather than mixing two jobs' rows. The summary adds up every
shard's marker and checks the identity read = scored + rejected against the
Parquet parts' own row counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from dnacnn.job_paths import inside_job_copy, portable_path
from dnacnn.registry.provenance import sha256_file
from dnacnn.scoring.shards import Shard, ShardCounts
from dnacnn.variants import REJECT_REASONS

log = logging.getLogger(__name__)

FORMAT = "dnacnn-scores/3"  # 3: model_sha256 is the sha256 of model.safetensors


def temporary_name(path: Path) -> Path:
    """A unique hidden sibling of ``path`` named like ``ParquetPart``'s temporaries
    (``.NAME.UUID.tmp``), which ``dnacnn.data.parquet_sink.remove_unfinished_parts`` clears."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a small text file (a marker, JSON) all or nothing: a temporary file, renamed."""
    path = Path(path)
    tmp = temporary_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class ModelIdentity:
    """What a job records of its model: the digest of its weights (``model.safetensors``'s
    sha256), its name, its T task names, its window length and its task type."""

    sha256: str
    name: str
    tasks: tuple[str, ...]
    seq_len: int
    task_type: str


def marker_path(out_dir: str | Path, shard: Shard) -> Path:
    """A shard's marker: it exists only once the shard's parts are complete."""
    return Path(out_dir) / "_shards" / f"{shard.name}.json"


def model_fingerprint(model: object) -> str:
    """sha256 of a model object's weights as ``dnacnn.models.save`` would write them: for a
    checkpoint folder the same as ``dnacnn.checkpoint_files.weights_sha256``."""
    from dnacnn.models.checkpoint import weights_bytes  # torch: only for a model passed as an object

    return hashlib.sha256(weights_bytes(model)).hexdigest()


def job_identity(vcf: str, genome_path: str, model: ModelIdentity, rc: bool, shard_variants: int,
                 precision: str = "fp32") -> dict:
    """The inputs that decide a job's rows: the VCF and the genome (:func:`file_identity`), the
    model's weights and the options that change rows."""
    return {
        "format": FORMAT,
        **file_identity("vcf", vcf), **file_identity("genome", genome_path),
        "model_sha256": model.sha256, "model_name": model.name,
        "tasks": list(model.tasks), "seq_len": model.seq_len,
        "rc": bool(rc), "precision": precision, "shard_variants": int(shard_variants),
    }


def file_identity(key: str, path: str) -> dict:
    """An input file as a job records it, under ``key``: its path, size and time; or, for a file
    uploaded with a submitted Ray job's working directory, its path within it and its sha256
    (its time is that of its unpacking, its folder new with every upload: ``dnacnn.job_paths``).
    A genome rewritten in place (same path) is another input: the rows scored before would
    be mixed with rows of other bases."""
    stat = os.stat(path)
    changed = ({f"{key}_sha256": sha256_file(path)} if inside_job_copy(path)
               else {f"{key}_mtime_ns": stat.st_mtime_ns})
    return {key: portable_path(path), f"{key}_bytes": stat.st_size, **changed}


#: What a job creates before its job.json (a run killed then leaves only these).
JOB_FOLDERS = ("scores", "rejects", "_shards", "_work")


def shard_done(out: Path, shard: Shard) -> bool:
    """Whether ``shard``'s results are in ``out``, whole: its marker readable, its two Parquet
    parts' footers readable. Damaged ones (a disk that filled up, a file cut by hand) are
    said, and their marker removed, so that the shard is scored again."""
    marker = marker_path(out, shard)
    if not marker.exists():
        return False
    try:
        ShardCounts(**json.loads(marker.read_text())["counts"])
        for sub in ("scores", "rejects"):
            pq.ParquetFile(out / sub / f"part-{shard.name}.parquet")
    except (ValueError, KeyError, TypeError, OSError) as err:  # pyarrow's ArrowInvalid is a ValueError
        log.warning("%s: the results of shard %s are damaged (%s); scoring it again",
                    out, shard.describe(), " ".join(str(err).split())[:200])
        marker.unlink()
        return False
    return True


def check_identity(out: Path, identity: dict) -> bool:
    """Whether ``out`` already holds this job (True), or nothing of a job (False).

    Raises:
        ValueError: ``out`` holds a job with other inputs (naming what differs), or a
            folder of a job's (``scores/``, ...) holding files of something else, which
            the job's parts would be mixed with. The user's own files beside them stay.
    """
    path = out / "job.json"
    if not path.exists():
        for sub in JOB_FOLDERS:  # a run killed before its job.json leaves only temporaries there
            others = sorted(p.name for p in (out / sub).glob("*") if not p.name.startswith(("_tmp-", ".")))
            if others:
                shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
                raise ValueError(f"--out {out} has a {sub}/ folder holding other files ({shown}) and no "
                                 "job.json: it is not a dnacnn score folder; give a new or empty folder")
        return False
    try:
        old = json.loads(path.read_text())
    except (ValueError, OSError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path} cannot be read ({err}): this folder's record of its job is damaged; "
                         "give a new output folder") from None
    differ = [k for k in identity if old.get(k) != identity[k]]
    if differ:
        raise ValueError(
            f"{out} holds results of a job with other inputs ({', '.join(differ)} differ); "
            "restart with the same inputs, or give a new output folder"
        )
    return True


def write_identity(out: Path, identity: dict) -> None:
    atomic_write_text(out / "job.json", json.dumps(identity, indent=2) + "\n")


def summarise(out: Path, shards: list[Shard], tasks: list[str], seconds: float, ran: int) -> dict:
    """Totals over every shard's marker; the accounting identity is checked here."""
    total = ShardCounts()
    missing = []
    for shard in shards:
        marker = marker_path(out, shard)
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
        "contig_aliases": dict(sorted(total.aliases.items())),
    }
