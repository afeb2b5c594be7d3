"""``dnacnn fetch-genome`` and ``dnacnn check-vcf``."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import typer

from dnacnn.cli import app
from dnacnn.cli.errors import path_option, user_errors
from dnacnn.console_logging import warnings_of
from dnacnn.genome import Genome
from dnacnn.output_folder import check_output_folder
from dnacnn.reference_data import fetch_vt_examples
from dnacnn.variants import inspect_vcf, read_alleles
from dnacnn.variants.genome_agreement import agreement_problems, header_problems


@app.command("fetch-genome")
def fetch_genome(data_dir: Path = path_option(Path("data"), help="Where to unpack it.")) -> None:
    """Get the real GRCh37 chr20 and its VCFs (Debian's vt-examples) and print their paths."""
    with user_errors():
        check_output_folder(data_dir, "--data-dir")
        vt = fetch_vt_examples(data_dir)
        genome = Genome(vt.chr20_fasta)
        typer.echo(json.dumps({
            "fasta": str(vt.chr20_fasta),
            "contigs": genome.lengths,
            "vcf": str(vt.normalize_vcf),
        }, indent=2))


@app.command("check-vcf")
def check_vcf(
    vcf: Path = path_option(..., help="VCF (plain, gzip or bgzip) or BCF."),
    genome: Path = path_option(..., help="Indexed FASTA the VCF was called on."),
    show: int = typer.Option(20, min=0, help="Rejects to print."),
) -> None:
    """Read a VCF against a genome: alleles by kind, rejects by reason, the first rejects."""
    with user_errors():
        ref = Genome(genome)
        info = inspect_vcf(vcf)  # the same check, and the same one-line errors, as `dnacnn score`
        warnings = info.warnings + header_problems(info, ref)
        kinds: collections.Counter = collections.Counter()
        reasons: collections.Counter = collections.Counter()
        records, last = 0, None  # a record's alleles come one after another: counted, not kept
        with warnings_of("dnacnn.variants.files") as said:  # a plain-gzip file cut short
            for allele in read_alleles(vcf, ref):
                records, last = records + (allele.record != last), allele.record
                kinds[allele.kind] += 1
                if allele.reject:
                    reasons[allele.reject] += 1
                    if reasons.total() <= show:
                        typer.echo(f"reject {allele.reject}: {allele.message}", err=True)
        warnings += agreement_problems(vcf, ref, kinds.total() - reasons.total(), reasons)
        for warning in warnings:
            typer.echo(f"warning: {warning}", err=True)
        typer.echo(json.dumps({
            "records": records,
            "alleles": kinds.total(),
            "scorable": kinds.total() - reasons.total(),
            "kinds": dict(kinds),
            "rejects": dict(reasons),
            "format": info.format,
            "compression": info.compression,
            "indexed": info.indexed,
            "contig_aliases": ref.aliases(),  # as `dnacnn score`'s summary.json has them
            "warnings": said + warnings,  # (those said are on the console already)
        }, indent=2))
