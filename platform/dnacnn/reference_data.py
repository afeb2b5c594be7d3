"""The real genome and variants the platform runs on: Debian's ``vt-examples``.

That package ships the whole GRCh37 chromosome 20 (bgzipped, with ``.fai`` and
``.gzi``) and real 1000 Genomes VCFs on it. :func:`fetch_vt_examples` gets it with
``apt-get download`` and unpacks it with ``dpkg -x`` into a data folder.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dnacnn.output_folder import check_output_folder

log = logging.getLogger(__name__)

PACKAGE = "vt-examples"
_EXAMPLES = Path("usr/share/doc/vt/examples")


class ReferenceDataError(RuntimeError):
    """The real genome could not be obtained here."""


@dataclass(frozen=True)
class VtExamples:
    """Paths inside the unpacked ``vt-examples`` package."""

    root: Path

    @property
    def chr20_fasta(self) -> Path:
        """Whole GRCh37 chr20, contig ``20``, bgzipped and faidx-indexed."""
        return self.root / _EXAMPLES / "ref" / "20.fa.gz"

    @property
    def normalize_vcf(self) -> Path:
        """194 real 1000 Genomes indels on chr20 (before left-alignment)."""
        return self.root / _EXAMPLES / "normalize" / "01_IN.vcf.gz"


def fetch_vt_examples(data_dir: str | Path) -> VtExamples:
    """Download and unpack ``vt-examples`` into ``data_dir/vt-examples`` (once).

    Raises:
        ReferenceDataError: apt-get/dpkg are missing or the package cannot be had;
            the message says how to pass a FASTA of one's own instead.
        ValueError: ``data_dir`` is a file or a folder that cannot be written in
            (checked before anything is downloaded or created).
    """
    target = Path(data_dir).resolve() / PACKAGE  # absolute: dpkg runs in a temporary folder
    found = VtExamples(target)
    if found.chr20_fasta.exists() and _gzi(found.chr20_fasta).exists():
        return found
    check_output_folder(data_dir, "data folder")
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise _unavailable(f"`{tool}` is not on this machine")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log.info("downloading Debian package %s", PACKAGE)
        got = _run(["apt-get", "download", PACKAGE], cwd=tmp)
        if got.returncode != 0:  # empty package lists on a fresh machine
            _run(["apt-get", "update", "-q"], cwd=tmp)
            got = _run(["apt-get", "download", PACKAGE], cwd=tmp)
        debs = list(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        if got.returncode != 0 or not debs:
            raise _unavailable(f"`apt-get download {PACKAGE}` failed: {got.stderr.strip()[-300:]}")
        unpacked = _run(["dpkg", "-x", str(debs[0]), str(target)], cwd=tmp)
        if unpacked.returncode != 0:
            raise _unavailable(f"`dpkg -x` failed: {unpacked.stderr.strip()[-300:]}")
    gzi_gz = found.chr20_fasta.with_name("20.fa.gz.gzi.gz")
    if gzi_gz.exists():
        with gzip.open(gzi_gz, "rb") as src, open(_gzi(found.chr20_fasta), "wb") as dst:
            shutil.copyfileobj(src, dst)
    if not found.chr20_fasta.exists():
        raise _unavailable(f"{PACKAGE} has no ref/20.fa.gz")
    return found


def _gzi(fasta: Path) -> Path:
    return fasta.with_name(fasta.name + ".gzi")


def _run(cmd: list[str], cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _unavailable(why: str) -> ReferenceDataError:
    return ReferenceDataError(
        f"cannot get the real genome from Debian's {PACKAGE}: {why}. Pass a genome of "
        "your own instead: set `data.genome` in the job config (or --genome) to an indexed "
        "FASTA (`samtools faidx genome.fa`, or bgzip + faidx for .fa.gz)"
    )
