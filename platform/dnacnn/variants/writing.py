"""Writing VCFs with ``pysam.VariantFile``: bgzipped, tabix-indexed when sorted, renamed into place."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pysam

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InfoField:
    """One ``##INFO`` header line: ``number`` is "A", "1", "." ...; ``type`` Float, Integer, String."""

    id: str
    number: str
    type: str
    description: str


#: One output record: (chrom, pos 1-based, id, ref, alt, {INFO id: value}).
VcfRow = tuple[str, int, str, str, str, Mapping[str, object]]


def write_vcf(
    path: str | Path,
    contigs: Mapping[str, int | None],
    rows: Iterable[VcfRow],
    info: Sequence[InfoField] = (),
    meta: Mapping[str, str] | None = None,
    filter_pass: bool = False,
) -> bool:
    """Write ``path`` (``.vcf.gz``, BGZF) and, when its records are sorted, ``path.tbi``.

    Args:
        path: the output; written under a temporary name and renamed when complete.
        contigs: name -> length (or None) of every contig the rows use, in output order.
        rows: the records, one ALT allele each (see :data:`VcfRow`).
        info: INFO fields the rows' dicts may set.
        meta: extra ``##key=value`` header lines (``source`` and the like).
        filter_pass: FILTER PASS on every record (else '.').
    Returns:
        whether the file is indexed (False: rows were not sorted; the file is
        still complete and bgzipped, and no stale ``.tbi`` is left beside it).
    """
    path = Path(path)
    header = pysam.VariantHeader()
    for key, value in (meta or {}).items():
        header.add_meta(key, value)
    for name, length in contigs.items():
        header.contigs.add(name, length=length)
    for field in info:
        header.info.add(field.id, field.number, field.type, field.description)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # hidden, like a ParquetPart's
    try:
        with pysam.VariantFile(str(tmp), "wz", header=header) as out:
            for chrom, pos, vid, ref, alt, values in rows:
                record = out.new_record(
                    contig=chrom, start=pos - 1, alleles=(ref, alt), id=None if vid in ("", ".") else vid,
                    filter="PASS" if filter_pass else None,
                )
                for key, value in values.items():
                    record.info[key] = value
                out.write(record)
        try:
            pysam.tabix_index(str(tmp), preset="vcf", force=True)
            indexed = True
        except OSError:  # unsorted records: bgzipped, not indexed
            log.warning("the records of %s are not sorted: it is bgzipped but not indexed", path)
            indexed = False
        os.replace(tmp, path)
        if indexed:
            os.replace(f"{tmp}.tbi", f"{path}.tbi")
        else:
            Path(f"{path}.tbi").unlink(missing_ok=True)
    finally:
        for leftover in (tmp, Path(f"{tmp}.tbi")):
            leftover.unlink(missing_ok=True)
    return indexed
