"""Genome windows against pysam on the committed real chr20 piece and the whole chromosome."""

import gzip
import logging
import pickle
import re

import numpy as np
import pysam
import pytest

from conftest import FIXTURE_FASTA, shared
from dnacnn import sequence
from dnacnn.genome import Genome, UnknownContigError

# Real sequence of the fixture: 20:0-300,000 (starts with an N run, then bases).
REAL_START, REAL_END = 60_000, 300_000


@pytest.fixture(scope="module")
def genome():
    return Genome(FIXTURE_FASTA)


def test_fetch_matches_pysam(genome):
    fasta = pysam.FastaFile(str(FIXTURE_FASTA))
    rng = np.random.default_rng(0)
    for start in rng.integers(REAL_START, REAL_END - 1000, size=50):
        start = int(start)
        assert genome.fetch("20", start, start + 600) == fasta.fetch("20", start, start + 600).upper()


def test_fixture_holds_real_bases_there(genome):
    seq = genome.fetch("20", REAL_START, REAL_START + 10_000)
    assert set(seq) <= set("ACGTN") and seq.count("N") < 100


def test_windows_past_contig_ends_are_padded_with_n(genome):
    size = genome.length("20")
    left = genome.fetch("20", -5, 10)
    assert len(left) == 15 and left.startswith("NNNNN")
    right = genome.fetch("20", size - 3, size + 7)
    assert len(right) == 10 and right.endswith("N" * 7)
    assert genome.fetch("20", size + 10, size + 20) == "N" * 10
    np.testing.assert_array_equal(genome.fetch_onehot("20", size, size + 4), np.zeros((4, 4)))


def test_chr_prefix_alias_is_resolved_and_reported_once(genome, caplog):
    with caplog.at_level(logging.WARNING, logger="dnacnn.genome"):
        a = genome.fetch("chr20", 100_000, 100_050)
        b = genome.fetch("chr20", 100_000, 100_050)
    assert a == b == genome.fetch("20", 100_000, 100_050)
    assert sum("chr20" in r.message for r in caplog.records) == 1


def test_refseq_accessions_and_ucsc_or_ensembl_names_are_one_contig(genome, tmp_path):
    """dbSNP's VCFs name human chromosomes by RefSeq accession (NC_000020.10 on GRCh37,
    .11 on GRCh38): every record was an unknown_contig against a genome naming it 20 or
    chr20; a RefSeq-named genome (NCBI's GCF_ assemblies) likewise for a VCF saying chr20."""
    from dnacnn.data.simulation_files import write_fasta_bgzip
    from dnacnn.genome import contig_key

    assert genome.fetch("NC_000020.10", 100_000, 100_050) == genome.fetch("20", 100_000, 100_050)
    keys = {name: contig_key(name) for name in ("chr20", "Chr20", "20", "NC_000020.11", "chrX", "NC_000023.10",
                                                 "NC_000024.9", "chrM", "M", "MT", "chrMT", "NC_012920.1",
                                                 "NC_000067.7", "NC_000025.1", "chrUn_gl000220", "chr")}
    assert keys == {"chr20": "20", "Chr20": "20", "20": "20", "NC_000020.11": "20", "chrX": "X",
                    "NC_000023.10": "X", "NC_000024.9": "Y", "chrM": "MT", "M": "MT", "MT": "MT", "chrMT": "MT",
                    "NC_012920.1": "MT", "NC_000067.7": "NC_000067.7", "NC_000025.1": "NC_000025.1",
                    "chrUn_gl000220": "Un_gl000220", "chr": "chr"}  # mouse chr1 is not human 67
    refseq = Genome(write_fasta_bgzip({"NC_000020.11": b"ACGT" * 30, "NC_012920.1": b"GATC" * 10},
                                      tmp_path / "gcf.fa.gz"))
    assert refseq.fetch("chr20", 0, 4) == refseq.fetch("20", 0, 4) == "ACGT"
    assert refseq.resolve("chrM") == refseq.resolve("MT") == "NC_012920.1"
    both = Genome(write_fasta_bgzip({"20": b"ACGT" * 30, "chr20": b"TTTT" * 30}, tmp_path / "both.fa.gz"))
    with pytest.raises(UnknownContigError):  # which one NC_000020.11 means cannot be told
        both.resolve("NC_000020.11")
    assert both.find("NC_000020.11") is None and refseq.find("chrM") == "NC_012920.1"
    assert both.fetch("chr20", 0, 4) == "TTTT"  # its own name first


def test_unknown_contig_names_it_and_the_contigs_that_exist(genome):
    with pytest.raises(UnknownContigError, match=r"'chr7'.*contigs: 20"):
        genome.fetch("chr7", 0, 10)


def test_genome_pickles_for_ray_tasks(genome):
    again = pickle.loads(pickle.dumps(genome))
    assert again.fetch("20", 100_000, 100_100) == genome.fetch("20", 100_000, 100_100)


def test_missing_or_unindexed_fasta_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="genome FASTA not found"):
        Genome(tmp_path / "nope.fa")
    plain_gz = tmp_path / "x.fa.gz"
    import gzip

    with gzip.open(plain_gz, "wt") as f:
        f.write(">a\nACGT\n")
    with pytest.raises(ValueError, match="bgzip"):
        Genome(plain_gz)


def test_a_bgzipped_file_that_is_no_fasta_is_said_to_be_none(tmp_path):
    # A bgzipped VCF given as the genome was told to `samtools faidx` it.
    from conftest import FIXTURE_VCF

    with pytest.raises(ValueError, match=r"it is not a FASTA \(the first line must be a '>name' header\)$"):
        Genome(FIXTURE_VCF)


def test_a_fasta_faidx_cannot_index_says_which_line_breaks_the_layout(tmp_path):
    """Lines of different lengths in a contig, or a blank line inside one, were told "index it
    with `samtools faidx` (pysam builds the index when the folder can be written)", which the
    folder allowed and faidx refused. Windows line ends are fine."""
    seq = "".join(np.random.default_rng(0).choice(list("ACGT"), 180))
    cases = {
        "short_mid.fa": (f">c1 x\n{seq[:70]}\n{seq[70:100]}\n{seq[100:]}\n", "contig 'c1': line 3 has 30 base(s)"),
        "blank.fa": (f">c1\n{seq[:70]}\n\n{seq[70:140]}\n", "contig 'c1': line 3 has 0 base(s)"),
        "long_last.fa": (f">a\n{seq[:60]}\n>b\n{seq[:70]}\n{seq[70:]}\n", "contig 'b': line 5 has 110 base(s)"),
    }
    for name, (text, said) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=re.escape(said) + " where its lines have [67]0; faidx needs every line"):
            Genome(tmp_path / name)
    (tmp_path / "crlf.fa").write_text(f">c1\r\n{seq[:70]}\r\n{seq[70:140]}\r\n{seq[140:]}\r\n")
    assert Genome(tmp_path / "crlf.fa").fetch("c1", 60, 80) == seq[60:80]


def test_soft_masked_fasta_reads_upper_case():
    path = shared("genome_pieces", "human", "pyfaidx_chr17.hg19.part.fa")
    genome = Genome(path)
    contig = genome.contigs[0]
    raw = pysam.FastaFile(str(path)).fetch(contig, 0, 5000)
    assert any(c.islower() for c in raw), "fixture should be soft-masked"
    assert genome.fetch(contig, 0, 5000) == raw.upper()
    np.testing.assert_array_equal(genome.fetch_onehot(contig, 0, 5000), sequence.encode(raw))


def test_whole_chr20_matches_pysam_at_both_ends():
    path = shared("grch37_chr20", "20.fa.gz")
    genome = Genome(path)
    fasta = pysam.FastaFile(str(path))
    assert genome.length("20") == 63_025_520
    for start in (0, 30_000_000, 63_025_000):
        assert genome.fetch("20", start, start + 520) == fasta.fetch("20", start, start + 520).upper()


def _bgzipped_fasta(path, n: int, seed: int) -> None:
    seq = "".join(np.random.default_rng(seed).choice(list("ACGT"), n))
    plain = path.with_suffix(".plain")
    plain.write_text(">20\n" + "\n".join(seq[i:i + 60] for i in range(0, n, 60)) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)


def test_a_bgzipped_fasta_rewritten_after_indexing_is_refused(tmp_path):
    """bgzip's indexes (.fai in uncompressed offsets, .gzi of blocks) left from a longer FASTA:
    pysam reports the old length and fails on reads past the new end. Refused on opening."""
    fasta = tmp_path / "g.fa.gz"
    _bgzipped_fasta(fasta, 300_000, seed=1)
    pysam.faidx(str(fasta))
    assert Genome(fasta).length("20") == 300_000  # fresh indexes: fine
    _bgzipped_fasta(fasta, 100_000, seed=2)  # rewritten; both old indexes kept
    with pytest.raises(ValueError, match=r"g\.fa\.gz\.gzi does not fit .*changed after indexing"):
        Genome(fasta)
    fresh = tmp_path / "fresh.fa.gz"  # the new file's own .gzi, the old .fai
    _bgzipped_fasta(fresh, 100_000, seed=2)
    pysam.faidx(str(fresh))
    (tmp_path / "g.fa.gz.gzi").write_bytes((tmp_path / "fresh.fa.gz.gzi").read_bytes())
    with pytest.raises(ValueError, match=r"g\.fa\.gz\.fai describes '20' past the end .* uncompressed"):
        Genome(fasta)


def test_a_fasta_rewritten_at_another_line_width_under_its_old_index_is_refused(tmp_path):
    """The same sequence written 50 bases a line under the .fai of its 60-a-line copy: no
    error, and windows of shifted bases with line ends read as N (118 of 6,000 in a probe)."""
    seq = "".join(np.random.default_rng(3).choice(list("ACGT"), 5_000))
    fasta = tmp_path / "g.fa"
    fasta.write_text(">20\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n")
    pysam.faidx(str(fasta))
    assert Genome(fasta).fetch("20", 4_000, 4_100) == seq[4_000:4_100]
    crlf = tmp_path / "crlf.fa"  # Windows line ends: 60 bases, then two bytes
    crlf.write_bytes((">20\r\n" + "\r\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\r\n").encode())
    pysam.faidx(str(crlf))
    assert Genome(crlf).fetch("20", 4_000, 4_100) == seq[4_000:4_100]
    fasta.write_text(">20\n" + "\n".join(seq[i:i + 50] for i in range(0, len(seq), 50)) + "\n")
    with pytest.raises(ValueError, match=r"g\.fa\.fai does not fit .*'20' is not laid out there in lines of 60 "
                                         r"bases from byte 4 on; the FASTA changed after indexing"):
        Genome(fasta)


def test_a_gzip_file_cut_short_is_one_line_naming_it(tmp_path):
    """A cut gzip FASTA of records or label table printed a blank line and 'aborted' (gzip's
    EOFError, which names no file, reached Click), exit 1; a folder was "[Errno 21] Is a
    directory"."""
    from typer.testing import CliRunner

    from dnacnn.cli import app

    records = "".join(f">r{i}\n{'ACGT' * 25}\n" for i in range(400)).encode()
    labels = ("chrom\tstart\tend\tx\n" + "".join(f"20\t{i * 700}\t{i * 700 + 600}\t1\n" for i in range(1, 400))).encode()
    (tmp_path / "ok.fa").write_bytes(records)
    for name, data in (("cut.fa.gz", records), ("cut.tsv.gz", labels)):
        packed = gzip.compress(data)
        (tmp_path / name).write_bytes(packed[: len(packed) // 2])
    commands = {"cut.fa.gz": ["data", "fasta", "--class", f"a={tmp_path / 'cut.fa.gz'}", "--class", f"b={tmp_path / 'ok.fa'}"],
                "cut.tsv.gz": ["data", "intervals", "--fasta", str(FIXTURE_FASTA), "--intervals", str(tmp_path / "cut.tsv.gz")]}
    for name, args in commands.items():
        result = CliRunner().invoke(app, args + ["--out", str(tmp_path / f"out-{name}")])
        assert result.exit_code == 2, (name, result.output)
        assert f"error: {tmp_path / name} ends inside its gzip data: it is truncated" in result.output, result.output
    folder = CliRunner().invoke(app, ["data", "intervals", "--fasta", str(FIXTURE_FASTA), "--intervals", str(tmp_path),
                                      "--out", str(tmp_path / "out-folder")])
    assert folder.exit_code == 2 and f"error: {tmp_path} is a folder, not a file" in folder.output, folder.output


def test_files_compressed_otherwise_or_with_old_mac_line_ends_are_named_by_every_reader(tmp_path):
    """An xz VCF made htslib abort the process (exit 134, no message); a bzip2 VCF was 'not a
    readable VCF (its first line is 'BZh91AY&SY...')', a bzip2 label table had a header of
    binary, a bzip2 FASTA of records held 'no FASTA records'. Text whose lines end in a CR
    alone: a FASTA of records became one record named by the whole file, a genome was told
    to run `samtools faidx`, a label table's header ran into its records."""
    import bz2
    import lzma
    import zipfile

    from dnacnn.data.bed import read_label_header
    from dnacnn.data.labelled_fasta import read_fasta_records
    from dnacnn.variants import VcfFormatError, inspect_vcf

    vcf = "##fileformat=VCFv4.2\n##contig=<ID=20>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n20\t60010\t.\tG\tA\t.\t.\t.\n"
    texts = {"calls.vcf": vcf, "records.fa": ">a\nACGT\n>b\nACGA\n", "labels.tsv": "chrom\tstart\tend\tx\n20\t0\t10\t1\n",
             "genome.fa": ">c\nACGTACGT\nACGT\n"}
    readers = {"calls.vcf": inspect_vcf, "records.fa": read_fasta_records, "labels.tsv": read_label_header,
               "genome.fa": Genome}

    def write_zip(path, text):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("inside", text)

    for name, text in texts.items():
        for kind, write in (("bzip2", lambda p, t: p.write_bytes(bz2.compress(t.encode()))),
                            ("xz", lambda p, t: p.write_bytes(lzma.compress(t.encode()))),
                            ("zip", write_zip)):
            path = tmp_path / f"{kind}-{name}"
            write(path, text)
            with pytest.raises((ValueError, VcfFormatError), match=f"{re.escape(str(path))} is {kind}-compressed; "
                                                                  "dnacnn reads plain text, gzip or bgzip"):
                readers[name](path)
        path = tmp_path / f"cr-{name}"
        path.write_bytes(text.replace("\n", "\r").encode())
        with pytest.raises((ValueError, VcfFormatError), match="lines end in a carriage return alone"):
            readers[name](path)
    unnamed = tmp_path / "unnamed.fa"
    unnamed.write_text(">a\nACGT\n>\nACGT\n")
    with pytest.raises(ValueError, match="unnamed.fa: record 2 has a '>' line without a name"):
        read_fasta_records(unnamed)


def _plain_fasta(path, contigs: dict[str, str], width: int = 60, tail: str = "") -> None:
    path.write_text("".join(f">{name}\n" + "".join(seq[i:i + width] + tail + "\n" for i in range(0, len(seq), width))
                            for name, seq in contigs.items()))


def test_index_files_htslib_would_misread_or_crash_on_are_named(tmp_path, monkeypatch):
    """Were: an index older than its FASTA read other bases without a word (the rewritten file's
    layout still fit it); a .fai of text, negative lengths or no line opened as a genome of
    -5 bp or of no contig, or gave "index it with samtools faidx" though it was indexed; a .gzi
    linking to nothing, and a bgzipped FASTA with a .fai but no .gzi in a folder that cannot be
    written, crashed pysam (exit 139, no word)."""
    import os
    import shutil

    from dnacnn.data.simulation_files import write_fasta_bgzip

    seq = "".join(np.random.default_rng(5).choice(list("ACGT"), 3_000))
    fasta = tmp_path / "g.fa"
    _plain_fasta(fasta, {"20": seq})
    pysam.faidx(str(fasta))
    assert Genome(fasta).fetch("20", 100, 110) == seq[100:110]
    fai = tmp_path / "g.fa.fai"
    whole = fai.read_text()
    later = os.stat(fasta).st_mtime + 60  # the FASTA rewritten a minute after its index
    os.utime(fasta, (later, later))
    with pytest.raises(ValueError, match=r"the index .*g\.fa\.fai is older than .*g\.fa: the FASTA changed "
                                         r"after indexing.*rebuild it \(`samtools faidx"):
        Genome(fasta)
    os.utime(fai, (later, later))
    for text, said in (("20\t-5\t4\t60\t61\n", "line 1 is not NAME, LENGTH, OFFSET"), ("", "it lists no contig"),
                       ("hello world\n", "line 1 is not NAME")):
        fai.write_text(text)
        os.utime(fai, (later, later))
        with pytest.raises(ValueError, match=rf"the index .*g\.fa\.fai is not a faidx index of .*g\.fa \({said}"):
            Genome(fasta)
    fai.write_text(whole)
    os.utime(fai, (later, later))
    assert Genome(fasta).length("20") == 3_000

    (tmp_path / "b").mkdir()
    packed = write_fasta_bgzip({"20": seq.encode()}, tmp_path / "b" / "g.fa.gz")
    gzi = packed.with_name("g.fa.gz.gzi")
    gzi.unlink()
    gzi.symlink_to(tmp_path / "nowhere" / "g.fa.gz.gzi")
    with pytest.raises(ValueError, match=r"g\.fa\.gz\.gzi is a link to nothing"):
        Genome(packed)
    gzi.unlink()
    gzi.mkdir()
    with pytest.raises(ValueError, match=r"g\.fa\.gz\.gzi is a folder, not an index file"):
        Genome(packed)
    gzi.rmdir()
    # a folder this process cannot write (root writes anywhere: the check is what is pinned)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(packed.parent) and mode == os.W_OK
                        else real_access(p, mode))
    with pytest.raises(ValueError, match=r"g\.fa\.gz is bgzipped and has no g\.fa\.gz\.gzi beside it, .* cannot "
                                         r"be written"):
        Genome(packed)
    monkeypatch.undo()
    assert Genome(packed).fetch("20", 2_990, 3_000) == seq[2_990:]  # writable: pysam builds the .gzi
    shutil.rmtree(tmp_path / "b")


def test_a_damaged_fasta_is_named_where_it_is_damaged_not_read_as_n(tmp_path):
    """Were: a NUL byte ended the text htslib gave (the rest of the window read as N, deltas
    off by up to 0.29 for variants 200 bp away); a '1', '*' or tab read as a base (a REF check
    saying "does not match the reference '1'"); a '>' line with no name a contig named ''."""
    seq = "".join(np.random.default_rng(6).choice(list("ACGT"), 600))
    for name, damage, said in (
            ("nul", "\0", r"gives 10 of the 100 bases of 20:201-300: its text stops at 20:211 \(a NUL byte"),
            ("digit", "1", r"holds '1' at 20:211, which is not a base"),
            ("tab", "\t", r"holds '\\t' at 20:211, which is not a base")):
        fasta = tmp_path / f"{name}.fa"
        _plain_fasta(fasta, {"20": seq[:210] + damage + seq[211:]})
        genome = Genome(fasta)
        assert genome.fetch("20", 0, 200) == seq[:200]  # where it is whole, it reads
        with pytest.raises(ValueError, match=rf"the genome .*{name}\.fa {said}"):
            genome.fetch("20", 200, 300)
    iupac = tmp_path / "iupac.fa"
    _plain_fasta(iupac, {"20": "acgtnRYSWKMBDHVU-" * 4})
    assert Genome(iupac).fetch("20", 0, 17) == "ACGTNRYSWKMBDHVU-"
    blanks = tmp_path / "blanks.fa"  # trailing blanks on every line: htslib reads past them
    _plain_fasta(blanks, {"20": seq}, tail="  ")
    assert Genome(blanks).fetch("20", 0, 600) == seq
    nameless = tmp_path / "nameless.fa"
    nameless.write_text(f">20\n{seq[:60]}\n>\n{seq[60:120]}\n")
    with pytest.raises(ValueError, match=r"nameless\.fa: its contig 2 has a '>' line with no name"):
        Genome(nameless)
    with pytest.raises(ValueError, match=r"nameless\.fa: its contig 2 has a '>' line with no name"):
        Genome(nameless)  # the second time from the .fai pysam wrote


def test_refseq_versions_are_assemblies_and_a_name_of_two_contigs_says_so(tmp_path):
    """Were: NC_000020.10 (GRCh37) read as the genome's NC_000020.11 (GRCh38), "using" it; and
    NC_000020.11 against a genome naming both chr20 and 20 "is not in the genome"."""
    from dnacnn.data.simulation_files import write_fasta_bgzip

    grch38 = Genome(write_fasta_bgzip({"NC_000020.11": b"ACGT" * 30}, tmp_path / "gcf.fa.gz"))
    assert grch38.resolve("chr20") == "NC_000020.11"
    with pytest.raises(UnknownContigError, match=r"contig 'NC_000020.10' is not in the genome .*same genome build"):
        grch38.resolve("NC_000020.10")
    both = Genome(write_fasta_bgzip({"20": b"ACGT" * 30, "chr20": b"TTTT" * 30}, tmp_path / "both.fa.gz"))
    with pytest.raises(UnknownContigError, match=r"contig 'NC_000020.11' could be any of 20, chr20 in the genome "
                                                 r".*names one chromosome twice"):
        both.resolve("NC_000020.11")


def test_a_contig_named_twice_is_refused_when_its_index_is_built(tmp_path):
    """htslib's index keeps the first of two contigs of one name, without a word: the second's
    bases were never read and nothing said so."""
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">20 first\nACGTACGT\n>21\nGGGG\n>20 again\nTTTTTTTT\n")
    for _ in range(2):  # the index built is removed: the next open says it again
        with pytest.raises(ValueError, match=r"dup\.fa names contig '20' twice \(its contigs 1 and 3\)"):
            Genome(fasta)
        assert not (tmp_path / "dup.fa.fai").exists()
    fasta.write_text(">20 first\nACGTACGT\n>21\nGGGG\n>22\nTTTTTTTT\n")
    assert Genome(fasta).contigs == ["20", "21", "22"]


def test_a_fasta_of_headers_only_or_under_an_index_that_does_not_fit_says_which(tmp_path):
    """Both were "index it with `samtools faidx`": a FASTA of '>' lines only, and one whose own
    index (whole numbers, but not this file's layout) htslib refused."""
    headers = tmp_path / "headers.fa"
    headers.write_text(">20\n>21\n")
    with pytest.raises(ValueError, match=r"headers\.fa .*it holds no bases \(only '>' lines\)"):
        Genome(headers)
    fasta = tmp_path / "g.fa"
    _plain_fasta(fasta, {"20": "ACGT" * 50})
    (tmp_path / "g.fa.fai").write_text("20\t200\t4\t60\t59\n")  # a line of 60 bases in 59 bytes
    with pytest.raises(ValueError, match=r"its index .*g\.fa\.fai does not fit it; rebuild it"):
        Genome(fasta)
