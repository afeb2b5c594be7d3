"""The batch job's units of work: shards planned from the VCF's own records, and their counts.

A shard is a run of about ``shard_variants`` consecutive records of one contig,
read back by a region query on the tabix index, or, for contigs of fewer records,
several whole contigs (a VCF on hundreds of scaffolds is not hundreds of shards).
Shards are planned from the records' positions in the index (their number and
where they lie), so a VCF of 200 variants is one shard whatever the genome's
size, and a dense region is cut into as many shards as it needs. A shard boundary
never separates two records of the same POS. An unindexable VCF (unsorted) is one
whole-file shard.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from dnacnn.variants.files import open_tabix, until_cut

log = logging.getLogger(__name__)

#: End of the last shard of a contig: records past the genome's end are read (and rejected) too.
OPEN_END = (1 << 31) - 1


class ShardFailure(RuntimeError):
    """A shard could not be scored (its records, the genome there, or its actor's node); said in one line."""


@dataclass(frozen=True)
class Shard:
    """One unit of work: records of ``chrom`` whose 0-based POS - 1 is in [start, end), then
    every record of each contig in ``more`` (whole contigs of few records, in index order).

    ``whole_file`` shards read an unindexable VCF from its start (then with line numbers).
    """

    index: int
    chrom: str = ""
    start: int = 0
    end: int = 0
    whole_file: bool = False
    more: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.index:06d}"

    @property
    def regions(self) -> list[tuple[str, int, int] | None]:
        """The region reads that make the shard, in order (None: the whole file)."""
        if self.whole_file:
            return [None]
        return [(self.chrom, self.start, self.end), *((chrom, 0, OPEN_END) for chrom in self.more)]

    def describe(self) -> str:
        if self.whole_file:
            return "the whole VCF"
        first = f"{self.chrom}:{self.start}-" + ("end" if self.end == OPEN_END else str(self.end))
        if not self.more:
            return first
        shown = ", ".join(self.more[:2]) + (f" and {len(self.more) - 2} more" if len(self.more) > 2 else "")
        return f"{first} with contigs {shown}"


@dataclass
class ShardCounts:
    """What one shard (or, summed, a job) read and wrote; alleles = scored + rejected."""

    records: int = 0
    alleles: int = 0
    scored: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    aliases: dict[str, str] = field(default_factory=dict)  # contig names read as another (Genome.aliases)

    def add(self, other: ShardCounts) -> None:
        self.records += other.records
        self.alleles += other.alleles
        self.scored += other.scored
        self.rejected += other.rejected
        self.seconds += other.seconds
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n
        self.aliases.update(other.aliases)


def plan_shards(vcf: str, indexed: bool, shard_variants: int) -> list[Shard]:
    """The job's shards, in contig (index) and position order.

    Args:
        vcf: a bgzipped, tabix-indexed VCF (when ``indexed``).
        indexed: False for a VCF that cannot be read by region: one whole-file shard.
        shard_variants: records per shard (a shard may hold a few more, to keep the
            records of one POS together).
    Returns:
        shards covering every record once: per contig, the first starts at 0 and the
        last is open-ended; each boundary is the POS - 1 of the shard's first record.
        One whole-file shard when a record lies past POS 2^31 - 1.
    """
    if shard_variants < 1:
        raise ValueError(f"shard_variants must be >= 1, got {shard_variants}")
    if not indexed:
        return [Shard(0, whole_file=True)]
    shards: list[Shard] = []
    bundle = 0  # records of the last shard when it holds whole contigs only (more may join it), else 0
    with open_tabix(vcf) as tbx:
        for chrom in tbx.contigs:
            start, count, last, first = 0, 0, None, len(shards)

            def cut(err: Exception) -> None:  # a cut or damaged file: its records up to here are scored
                log.warning("%s: reading %s stopped after POS %s (%s): the file is cut or damaged; "
                            "scoring the records before", vcf, chrom, "?" if last is None else last + 1, err)

            for line in until_cut(tbx.fetch(chrom), cut):  # raw lines: only POS is parsed
                pos0 = int(line.split("\t", 2)[1]) - 1  # tabix indexed it: a number
                if pos0 >= OPEN_END:  # (a CSI index holds it) pysam's region reads stop at POS 2^31 - 1
                    log.warning("%s: a record at %s:%d lies past POS 2^31 - 1, where reads by region do not "
                                "reach; scoring the file as one shard, from the start", vcf, chrom, pos0 + 1)
                    return [Shard(0, whole_file=True)]
                if count >= shard_variants and pos0 != last:
                    shards.append(Shard(len(shards), chrom, start, pos0))
                    start, count = pos0, 0
                count += 1
                last = pos0
            if not count:
                continue
            if len(shards) > first:  # the contig is cut: its last piece starts at a record
                shards.append(Shard(len(shards), chrom, start, OPEN_END))
                bundle = 0
            elif bundle and bundle + count <= shard_variants:  # a whole contig joins the last shard
                shards[-1] = dataclasses.replace(shards[-1], more=(*shards[-1].more, chrom))
                bundle += count
            else:
                shards.append(Shard(len(shards), chrom, 0, OPEN_END))
                bundle = count if count < shard_variants else 0
    return shards
