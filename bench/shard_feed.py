"""One scoring actor's work on a shard, split: the engine against everything that feeds it.

    DNACNN_PROGRESS=0 PYTHONPATH=platform .venv/bin/python bench/shard_feed.py [--snvs 8192] [--rc]
        [--precision bf16] [--device cuda] [--synthetic-genome MB]

Runs ``score_shard`` (what each ``ShardWorker`` does with a shard: read the VCF's records
through the tabix index, check each allele against the genome, build the windows, score
them, write the Parquet parts) in this process on ``--snvs`` SNVs at real positions of
GRCh37 chr20 (the ``bench/score_job.py`` generator; or a random contig of MB megabases),
untrained full Basset, one torch thread on CPU. The engine's calls
(``MutantEffect.pair_logits``) are timed inside the run; the rest is the feed. Reports
both rates and their ratio: below 1, the actor waits on its own feed (on a GPU, the
device waits with it), so more processes feeding, or a cheaper feed, is what pays. The
first run of the shard warms up and is not counted; the best of ``--repeats`` is.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_job import SHARED, real_snvs, synthetic_genome  # noqa: E402

from dnacnn import models  # noqa: E402
from dnacnn.genome import Genome  # noqa: E402
from dnacnn.scoring import VariantScorer  # noqa: E402
from dnacnn.scoring.job_state import JOB_FOLDERS  # noqa: E402
from dnacnn.scoring.shard_run import score_shard  # noqa: E402
from dnacnn.scoring.shards import OPEN_END, Shard  # noqa: E402
from dnacnn.variants import write_vcf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snvs", type=int, default=8192)
    parser.add_argument("--rc", action="store_true")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--synthetic-genome", type=int, default=0, metavar="MB",
                        help="a random contig of MB megabases instead of chr20")
    args = parser.parse_args()
    if args.snvs < 1 or args.repeats < 1 or args.batch_size < 1 or args.synthetic_genome < 0:
        parser.error("--snvs, --repeats and --batch-size take counts >= 1, --synthetic-genome megabases >= 0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no GPU here")
    torch.set_num_threads(1)
    fasta = SHARED / "grch37_chr20" / "20.fa.gz"
    if not args.synthetic_genome and not fasta.exists():
        raise SystemExit(f"needs {fasta} (../shared/data beside the clone), or --synthetic-genome MB")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.synthetic_genome:
            fasta = synthetic_genome(tmp, args.synthetic_genome)
        genome = Genome(fasta)
        contig = genome.contigs[0]
        vcf = tmp / "snvs.vcf.gz"
        write_vcf(vcf, {contig: genome.length(contig)}, real_snvs(genome, contig, args.snvs))
        models.save(models.build("basset", dict(seq_len=600, n_tasks=164)).eval(), tmp / "model",
                    [f"cell type {i}" for i in range(164)], task_type="multitask")
        scorer = VariantScorer(str(tmp / "model"), fasta, rc=args.rc, batch_size=args.batch_size,
                               device=args.device, num_threads=1, precision=args.precision)
        engine_seconds = [0.0]
        pair_logits = scorer.engine.pair_logits

        def timed_pair_logits(*a, **k):  # numpy out: a GPU's work is done when it returns
            t = time.perf_counter()
            out = pair_logits(*a, **k)
            engine_seconds[0] += time.perf_counter() - t
            return out

        scorer.engine.pair_logits = timed_pair_logits
        shard, out = Shard(0, contig, 0, OPEN_END), tmp / "out"
        runs = []
        for _ in range(1 + args.repeats):
            shutil.rmtree(out, ignore_errors=True)
            for sub in JOB_FOLDERS:
                (out / sub).mkdir(parents=True)
            engine_seconds[0] = 0.0
            t = time.perf_counter()
            counts = score_shard(scorer, str(vcf), shard, out)
            runs.append((time.perf_counter() - t, engine_seconds[0]))
            if counts.scored != args.snvs:
                raise SystemExit(f"scored {counts.scored} of {args.snvs} SNVs: {counts}")
    whole, engine = min(runs[1:])
    feed = whole - engine
    n = args.snvs
    print(f"{n} SNVs, one shard, rc={args.rc}, {args.precision} on {args.device}, batch {args.batch_size}, "
          f"best of {args.repeats} after a warm-up")
    print("| part | seconds | SNVs/s |\n| --- | ---: | ---: |")
    print(f"| the shard (`score_shard`) | {whole:.2f} | {n / whole:,.0f} |")
    print(f"| the engine (`MutantEffect.pair_logits`) | {engine:.2f} | {n / engine:,.0f} |")
    print(f"| the feed (the rest: VCF, checks, windows, strands, probabilities, Parquet) | {feed:.2f} | {n / feed:,.0f} |")
    print(f"| **feed rate / engine rate** | | **{engine / feed:.2f}** |")


if __name__ == "__main__":
    main()
