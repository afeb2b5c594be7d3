"""The batch job's derived outputs, streamed from its Parquet parts: a scores VCF and a figure.

- ``OUT/scores.vcf.gz`` (+ ``.tbi``): one record per scored allele with INFO
  ``DNACNN_MAXABS`` (max over tasks of |delta|) and ``DNACNN_TASK`` (that task);
- ``OUT/top_effects.png``: the strongest variants' deltas across tasks.

Neither holds more than one Parquet batch (and the figure's top rows) in memory.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dnacnn.genome import Genome
from dnacnn.scoring.job_state import temporary_name
from dnacnn.variants import InfoField, write_vcf

log = logging.getLogger(__name__)

SCORE_INFO = (
    InfoField("DNACNN_MAXABS", "A", "Float", "max over tasks of |p_alt - p_ref|"),
    InfoField("DNACNN_TASK", "A", "String", "task (cell type) of DNACNN_MAXABS"),
)


def iter_score_parts(out_dir: str | Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of ``out_dir/scores`` in shard (genome) order, one part at a time."""
    for path in sorted((Path(out_dir) / "scores").glob("part-*.parquet")):
        yield from pq.ParquetFile(path).iter_batches(columns=columns, batch_size=65_536)


def _info_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text.strip()) or "_"


def info_names(tasks: list[str]) -> dict[str, str]:
    """Each task's name as an INFO value: characters VCF forbids there as ``_``; a name that two
    tasks would share (``CD4+ T cell`` and ``CD4+_T_cell``) gets the later task's number
    (1-based) after it, so that every task keeps a name of its own."""
    names: dict[str, str] = {}
    for number, task in enumerate(tasks, start=1):
        name = _info_safe(task)
        while name in names.values():
            name = f"{name}_{number}"
        names[task] = name
    return names


#: A contig name a VCF can carry (VCF 4.3, section 1.4.7); others (a ',' or a quote in it) cannot
#: be written in a ``##contig`` line or a record.
_VCF_CONTIG = re.compile(r"^[0-9A-Za-z!#$%&+./:;?@^_|~-][0-9A-Za-z!#$%&*+./:;=?@^_|~-]*$")


def write_scores_vcf(out_dir: str | Path, genome: Genome) -> tuple[Path, bool]:
    """``out_dir/scores.vcf.gz`` (+ ``.tbi`` when the rows are sorted): a sites-only VCF of one
    record per scored allele (the Parquet ``scores/`` rows, in their order; rejected alleles are in
    ``rejects/``, not here) with INFO ``DNACNN_MAXABS`` (written as htslib writes VCF floats: 6
    significant digits) and ``DNACNN_TASK`` (the task's name as :func:`info_names` gives it; the
    header's ``##dnacnn_tasks`` lists them in task order). Alleles on a contig whose name a VCF
    cannot hold are left out, and said.

    Returns:
        (path, indexed): an unsorted input VCF (read whole) gives an unindexed file.
    """
    out = Path(out_dir)
    tasks = (out / "tasks.txt").read_text().splitlines()
    chroms: dict[str, int] = {}
    for batch in iter_score_parts(out, ["chrom"]):
        for found in pc.value_counts(batch.column("chrom")).to_pylist():  # {"values": chrom, "counts": n}
            chroms[found["values"]] = chroms.get(found["values"], 0) + found["counts"]
    for chrom in [c for c in chroms if not _VCF_CONTIG.match(c)]:
        log.warning("%s: its %d scored allele(s) on contig %r are left out (a VCF cannot name that contig); "
                    "they are in %s", out / "scores.vcf.gz", chroms.pop(chrom), chrom, out / "scores")
    contigs = {c: genome.length(c) for c in chroms}  # scored rows' contigs are in the genome
    names = info_names(tasks)

    def rows():
        columns = ["chrom", "pos", "id", "ref", "alt", "max_abs_delta", "max_task"]
        for batch in iter_score_parts(out, columns):
            for c, p, i, r, a, m, t in zip(*batch.to_pydict().values()):
                if c in contigs:
                    yield c, p, i, r, a, {"DNACNN_MAXABS": (float(m),), "DNACNN_TASK": (names[t],)}

    target = out / "scores.vcf.gz"
    meta = {"source": "dnacnn score", "dnacnn_tasks": ",".join(names.values())}
    indexed = write_vcf(target, contigs, rows(), info=SCORE_INFO, meta=meta)
    return target, indexed


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
    tmp = temporary_name(path)
    fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
