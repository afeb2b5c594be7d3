"""``dnacnn score``: score every variant of a VCF with a trained model, on Ray."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import path_option, user_errors


@app.command("score")
def score(
    model: str = typer.Option(
        ..., help="A registry URI (models:/NAME@champion, models:/NAME/3, runs:/...) or a checkpoint folder."
    ),
    genome: Path = path_option(..., help="Indexed FASTA the VCF was called on (.fai; bgzipped also .gzi)."),
    vcf: Path = path_option(..., help="VCF (plain, gzip or bgzip; tabix-indexed or not) or BCF."),
    out: Path = path_option(..., help="Output folder; running again with the same folder resumes the job."),
    rc: bool = typer.Option(False, "--rc", help="Average forward and reverse-complement probabilities."),
    batch_size: int = typer.Option(64, min=1, help="Variants per forward pass (more: faster on a GPU, more memory)."),
    precision: str = typer.Option(
        "fp32", help="fp32 (exact: deltas within 1e-5 of whole windows) or bf16 (the fast path: bf16 autocast)."
    ),
    shard_variants: int = typer.Option(2500, min=1, help="VCF records per shard (the unit of work and restart)."),
    num_actors: int = typer.Option(0, min=0, help="Scorer actors (0: as many as the cluster places at once)."),
    address: str = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)."),
    device: str = typer.Option("cpu", help="cpu, or cuda (actors share each GPU: --actors-per-gpu)."),
    actors_per_gpu: int = typer.Option(
        0, min=0, help="With --device cuda: actors per GPU, their CPU work in parallel (0: the node's CPUs per GPU)."
    ),
    wait_for_resources: float = typer.Option(
        0.0, min=0, help="On a joined cluster, seconds to wait for a GPU node to join (--device cuda)."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Stop when the VCF does not fit the genome (>5% REF mismatches, no shared contig)."
    ),
    vcf_out: bool = typer.Option(False, "--vcf-out", help="Also write OUT/scores.vcf.gz (+ .tbi)."),
    plot: bool = typer.Option(True, help="Write OUT/top_effects.png."),
) -> None:
    """Score every (variant, ALT allele): Parquet scores and rejects, summary.json, a plot."""
    with user_errors():
        from dnacnn.scoring.batch import score_vcf

        summary = score_vcf(
            model=model, genome=genome, vcf=vcf, out_dir=out, rc=rc, batch_size=batch_size, precision=precision,
            shard_variants=shard_variants, num_actors=num_actors or None, device=device,
            actors_per_gpu=actors_per_gpu or None,
            vcf_out=vcf_out, plot=plot, address=address, strict=strict, wait_for_resources=wait_for_resources,
        )
        typer.echo(json.dumps(summary, indent=2))
