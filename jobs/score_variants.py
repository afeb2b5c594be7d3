"""Ray job entrypoint: genome-wide variant scoring.

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/score_variants.py --model models:/basset@champion \
        --genome $PWD/data/20.fa.gz --vcf $PWD/data/calls.vcf.gz --out $PWD/out/scores

Parses arguments and calls ``dnacnn.scoring.batch.score_vcf`` (which joins the
job's cluster through RAY_ADDRESS); run it again with the same --out to resume. Give
--out as an absolute path (a folder inside the job's copy of the working directory is
refused: it would be lost with it), and inputs absolute or uploaded with the working dir.
"""

from __future__ import annotations

import argparse
import json
import sys

from dnacnn import console_logging
from dnacnn.cli.errors import USER_ERRORS, report
from dnacnn.job_paths import check_input_paths
from dnacnn.ray_cluster import Interrupted
from dnacnn.registry.uris import is_model_uri
from dnacnn.scoring.batch import score_vcf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="models:/NAME@alias, models:/NAME/VERSION, runs:/... or a checkpoint folder")
    parser.add_argument("--genome", required=True, help="indexed FASTA")
    parser.add_argument("--vcf", required=True, help="VCF, plain/gzip/bgzip")
    parser.add_argument("--out", required=True, help="output folder (resumable)")
    parser.add_argument("--rc", action="store_true", help="average forward and reverse-complement probabilities")
    parser.add_argument("--batch-size", type=int, default=64, help="variants per forward pass")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="fp32 (exact) or bf16 (the fast path)")
    parser.add_argument("--shard-variants", type=int, default=2500, help="VCF records per shard")
    parser.add_argument("--num-actors", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs (torch threads) per scoring actor")
    parser.add_argument("--actors-per-gpu", type=int, default=None,
                        help="with --device cuda: actors sharing one GPU (default: the node's CPUs per GPU)")
    parser.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS)")
    parser.add_argument("--vcf-out", action="store_true", help="also write scores.vcf.gz")
    parser.add_argument("--strict", action="store_true", help="stop when the VCF does not fit the genome")
    parser.add_argument("--wait-for-resources", type=float, default=0.0, help="seconds to wait for a GPU node")
    args = parser.parse_args(argv)
    console_logging.setup()
    try:
        check_input_paths({"--genome": args.genome, "--vcf": args.vcf,
                           "--model": None if is_model_uri(args.model) else args.model})
        summary = score_vcf(
            model=args.model, genome=args.genome, vcf=args.vcf, out_dir=args.out, rc=args.rc,
            batch_size=args.batch_size, precision=args.precision, shard_variants=args.shard_variants,
            num_actors=args.num_actors, device=args.device, cpus_per_actor=args.cpus_per_actor,
            actors_per_gpu=args.actors_per_gpu, vcf_out=args.vcf_out, address=args.address,
            strict=args.strict, wait_for_resources=args.wait_for_resources,
        )
    except (Interrupted, *USER_ERRORS) as err:  # a bad input, Ctrl-C: as the dnacnn command says them
        return report(err)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
