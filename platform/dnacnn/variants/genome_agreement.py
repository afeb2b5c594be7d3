"""Whether a VCF was called on the genome it is scored against: the share of REF alleles that disagree.

A VCF scored against the wrong build (GRCh37 calls on GRCh38, or another
organism's contig of the same name) still has some REF alleles that match by
chance; scoring those would give numbers for the wrong sequence. Here the
counts of a job (or of a VCF's first records, before any work starts) become a
warning, or with ``strict`` an error, when more than :data:`MAX_MISMATCH_SHARE`
of the REF alleles checked disagree, or when no record's contig is in the genome. The
VCF's header may say so before any record is read: a ``##contig`` line giving a contig
another length than the genome's (chr20 is 63,025,520 bp in GRCh37, 64,444,167 in GRCh38).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import islice
from pathlib import Path

from dnacnn.genome import Genome
from dnacnn.variants.files import HEAD_BYTES, VcfFileInfo
from dnacnn.variants.reading import read_alleles

#: More than this share of REF alleles checked against the genome disagreeing means a wrong build.
MAX_MISMATCH_SHARE = 0.05
#: Alleles read from the start of a VCF by :func:`survey`.
SURVEY_ALLELES = 2000


class GenomeMismatchError(ValueError):
    """The VCF does not fit the genome (``--strict``)."""


def survey(vcf: str | Path, genome: Genome, alleles: int = SURVEY_ALLELES, head_bytes: int = HEAD_BYTES) -> Counter:
    """Reject reasons (and ``None`` for scorable) of the first ``alleles`` alleles of a VCF.

    A preview: malformed records are not logged here (the read that scores them logs them),
    and a plain-gzip file is read through a copy of its first ``head_bytes`` of text only."""
    first = read_alleles(vcf, genome, log_malformed=0, head_bytes=head_bytes)
    return Counter(a.reject for a in islice(first, alleles))


def agreement_problems(vcf: str | Path, genome: Genome, scored: int, reasons: Mapping[str, int],
                       scope: str = "") -> list[str]:
    """Sentences describing a VCF/genome disagreement; empty when they agree.

    Args:
        vcf, genome: named in the sentences.
        scored: alleles scored (their REF matched).
        reasons: reject counts by reason (``ref_mismatch``, ``unknown_contig`` used).
        scope: e.g. "of its first 2000 alleles", put after "the VCF".
    """
    mismatch = int(reasons.get("ref_mismatch", 0))
    unknown = int(reasons.get("unknown_contig", 0))
    checked = scored + mismatch  # REF alleles compared with the genome
    scope = f" {scope}" if scope else ""
    problems = []
    if unknown and checked == 0:
        problems.append(
            f"no record of {vcf}{scope} is on a contig of the genome {genome.path} "
            f"({unknown} allele(s) on other contigs; genome contigs: {', '.join(genome.contigs[:5])}"
            f"{', ...' if len(genome.contigs) > 5 else ''}); check the genome build: GRCh37 vs GRCh38?"
        )
    elif checked and mismatch / checked > MAX_MISMATCH_SHARE:
        problems.append(
            f"{mismatch} of {checked} REF alleles ({100 * mismatch / checked:.0f}%) of {vcf}{scope} do not "
            f"match the genome {genome.path}; check the genome build: GRCh37 vs GRCh38?"
        )
    return problems


def header_problems(info: VcfFileInfo, genome: Genome) -> list[str]:
    """A sentence when the VCF's ``##contig`` lines (``info.lengths``, from :func:`inspect_vcf`)
    give a contig of the genome (under any alias) another length than the genome's; empty
    when every declared length agrees."""
    # genome.find, not resolve: a header lists contigs no record is on, whose aliases would each
    # be said on the console
    found = {name: genome.find(name) for name in info.lengths}
    differ = [(name, length, found[name]) for name, length in info.lengths.items()
              if found[name] is not None and genome.lengths[found[name]] != length]
    if not differ:
        return []
    name, length, theirs = differ[0]
    more = f" (and {len(differ) - 1} more contig(s))" if len(differ) > 1 else ""
    return [f"the header of {info.path} gives contig {name!r} {length:,} bp and the genome {genome.path} has "
            f"{genome.lengths[theirs]:,} bp for {theirs!r}{more}: the VCF was called on another "
            "assembly; check the genome build: GRCh37 vs GRCh38?"]
