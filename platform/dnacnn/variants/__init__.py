"""Everything about VCFs: opening and checking a file, one row per (site, ALT), the allele rules, writing.

- :mod:`~dnacnn.variants.files`: what a file is (plain, gzip, bgzip, BCF, index), the
  driver's check before distributed work;
- :mod:`~dnacnn.variants.indexed_copy`: the bgzipped, indexed VCF region reads need (the input's
  own when its index can be trusted, else a copy);
- :mod:`~dnacnn.variants.alleles`: allele kinds, the rules and their reject reasons;
- :mod:`~dnacnn.variants.reading`: records as (site, ALT) rows, whole file or by region;
- :mod:`~dnacnn.variants.writing`: VCFs written with ``pysam.VariantFile``.
"""

from dnacnn.variants.alleles import KINDS, REJECT_REASONS, Allele, allele_kind, check_allele, check_ref
from dnacnn.variants.files import VcfFileInfo, VcfFormatError, inspect_vcf, is_bgzf, is_gzip, open_vcf
from dnacnn.variants.indexed_copy import has_index, indexed_copy
from dnacnn.variants.file_diagnosis import diagnose_line
from dnacnn.variants.reading import read_alleles
from dnacnn.variants.writing import InfoField, write_vcf

__all__ = [
    "KINDS", "REJECT_REASONS", "Allele", "InfoField", "VcfFileInfo", "VcfFormatError", "allele_kind",
    "check_allele", "check_ref", "diagnose_line", "has_index", "indexed_copy", "inspect_vcf", "is_bgzf",
    "is_gzip", "open_vcf", "read_alleles", "write_vcf",
]
