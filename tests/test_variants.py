"""VCF records as (site, ALT) rows, on real 1000 Genomes files against the real chr20."""

import gzip
import logging
import os
from collections import Counter

import pysam
import pytest

from conftest import FIXTURE_FASTA, FIXTURE_VCF, shared
from dnacnn.genome import Genome
from dnacnn.variants import VcfFormatError, allele_kind, read_alleles


@pytest.fixture(scope="module")
def genome():
    return Genome(FIXTURE_FASTA)


def _lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return f.read().splitlines()


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_real_record_checks_out_against_the_genome(genome):
    alleles = list(read_alleles(FIXTURE_VCF, genome))
    records = [r for r in pysam.VariantFile(str(FIXTURE_VCF))]
    assert len(alleles) == sum(len(r.alts) for r in records) == 194
    assert all(a.reject is None for a in alleles), [a.message for a in alleles if a.reject][:3]
    assert {a.kind for a in alleles} <= {"insertion", "deletion"}
    first = alleles[0]
    assert (first.chrom, first.pos, first.ref, first.alt, first.kind) == ("20", 421808, "A", "ACCA", "insertion")
    assert first.line == 1 + sum(1 for l in _lines(FIXTURE_VCF) if l.startswith("#"))


def test_multiallelic_sites_give_one_row_per_alt():
    genome = Genome(shared("grch37_chr20", "20.fa.gz"))
    path = shared("grch37_chr20", "vcf", "pysam_tabix_vcf_2.vcf")
    alleles = list(read_alleles(path, genome))
    per_record = Counter(a.record for a in alleles)
    records = list(pysam.VariantFile(str(path)))
    assert len(per_record) == len(records) == 200
    assert sum(n > 1 for n in per_record.values()) == 63
    for index, rec in enumerate(records):
        rows = [a for a in alleles if a.record == index]
        assert [a.alt for a in rows] == [x.upper() for x in rec.alts]
        assert all(a.pos == rec.pos and a.ref == rec.ref.upper() for a in rows)
    assert not [a for a in alleles if a.reject]


def test_platypus_calls_have_kinds_and_all_match_the_real_genome():
    genome = Genome(shared("grch37_chr20", "20.fa.gz"))
    alleles = list(read_alleles(shared("grch37_chr20", "vcf", "pysam_tabix_vcf_5.vcf"), genome))
    kinds = Counter(a.kind for a in alleles)
    assert kinds["insertion"] and kinds["deletion"] and kinds["SNV"]
    assert not [a for a in alleles if a.reject]
    for a in alleles:
        assert a.kind == allele_kind(a.ref, a.alt)


def test_ref_mismatch_symbolic_missing_and_unknown_contig_are_rejected_with_reasons(genome, tmp_path):
    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    body = [l.split("\t") for l in lines if not l.startswith("#")][:4]
    wrong_ref = "T" if body[0][3][0] != "T" else "G"
    edits = [
        body[0][:3] + [wrong_ref + body[0][3][1:], body[0][4]] + body[0][5:],  # REF mismatch
        body[1][:4] + ["<DEL>," + body[1][4] + ",*"] + body[1][5:],  # symbolic + real + '*'
        body[2][:4] + ["."] + body[2][5:],  # missing ALT
        ["chr9"] + body[3][1:],  # contig not in the genome
        body[3][:4] + ["ACGR"] + body[3][5:],  # IUPAC in ALT
        body[3][:4] + [body[3][3].lower()] + body[3][5:],  # ALT is REF (in lower case)
    ]
    path = _write(tmp_path / "edited.vcf", header + ["\t".join(f) for f in edits])
    got = [(a.reject, a.alt) for a in read_alleles(path, genome)]
    reasons = [r for r, _ in got]
    assert reasons == [
        "ref_mismatch", "symbolic_allele", None, "symbolic_allele",
        "missing_alt", "unknown_contig", "invalid_allele", "invalid_allele",
    ]
    assert "is the REF allele itself" in [a.message for a in read_alleles(path, genome)][-1]
    messages = {a.reject: a.message for a in read_alleles(path, genome) if a.reject}
    assert f"20:{body[0][1]}" in messages["ref_mismatch"] and "genome build" in messages["ref_mismatch"]
    assert "chr9" in messages["unknown_contig"]


def test_chr_prefixed_vcf_resolves_to_the_genome_contig(genome, tmp_path):
    lines = [
        l.replace("##contig=<ID=20", "##contig=<ID=chr20") if l.startswith("##contig") else
        ("chr" + l if not l.startswith("#") else l)
        for l in _lines(FIXTURE_VCF)
    ]
    path = _write(tmp_path / "chr.vcf", lines)
    alleles = list(read_alleles(path, genome))
    assert len(alleles) == 194 and all(a.chrom == "chr20" and a.reject is None for a in alleles)


def test_malformed_lines_become_rejects_naming_the_line(genome, tmp_path):
    lines = _lines(FIXTURE_VCF)
    n_header = sum(l.startswith("#") for l in lines)
    body = [l for l in lines if not l.startswith("#")][:3]
    bad = body[1].split("\t")
    bad[1] = "12x"
    path = _write(tmp_path / "bad.vcf", lines[:n_header] + [body[0], "\t".join(bad), "20\t5\tonly3", body[2]])
    alleles = list(read_alleles(path, genome))
    assert len(alleles) == 4  # 2 good + 2 malformed: every line accounted for
    malformed = [a for a in alleles if a.reject == "malformed"]
    assert [a.line for a in malformed] == [n_header + 2, n_header + 3]
    assert "POS '12x' is not a positive integer" in malformed[0].message
    assert "3 tab-separated column(s)" in malformed[1].message
    assert str(path) in malformed[0].message


def test_a_nul_byte_in_a_record_is_named_as_the_reason(genome, tmp_path):
    """A NUL byte (a binary file concatenated, a bad export) ends htslib's reading of the line;
    the reject said "htslib could not parse it (see the INFO/FORMAT fields ...)" read whole,
    and "has 3 tab-separated column(s)" read by region (tabix hands the line over cut there).
    Both ways now name the column, and the reject row is the same."""
    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if not l.startswith("#")][:3]
    fields = body[1].split("\t")
    fields[2] = "rs1\x00x"
    path = _write(tmp_path / "nul.vcf", header + [body[0], "\t".join(fields), body[2]])
    indexed = pysam.tabix_index(str(path), preset="vcf", keep_original=True, force=True)
    whole = list(read_alleles(path, genome))
    at = int(fields[1]) - 1
    by_region = [a for region in (("20", 0, at), ("20", at, 70_000_000))  # the region's first line
                 for a in read_alleles(indexed, genome, region=region)]
    one_region = list(read_alleles(indexed, genome, region=("20", 0, 70_000_000)))  # a line after others
    for alleles in (whole, by_region, one_region):
        assert [a.reject for a in alleles].count(None) == 2
        (bad,) = [a for a in alleles if a.reject == "malformed"]
        assert bad.pos == int(fields[1]) and (bad.id, bad.ref, bad.alt) == ("rs1\x00x", fields[3], fields[4])
        assert "column 3 (ID) holds a NUL byte" in bad.message, bad.message
    assert [a for a in whole if a.reject][0].line == len(header) + 2


def test_a_malformed_lines_reject_row_is_the_same_read_whole_or_by_region(genome, tmp_path):
    """Its columns as far as they go (not '.' in one mode and the line's ID, REF, ALT in the
    other); a line that is not tab-separated does not become a CHROM."""
    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if not l.startswith("#")][:3]
    pos = int(body[1].split("\t")[1])
    bad = [f"20\t{pos}\tseven\tA\tC\t.\t.", f"20\t{pos}\tfive\tA\tC"]
    plain = _write(tmp_path / "bad.vcf", header + [body[0], *bad, body[1], body[2]])
    vcf = pysam.tabix_index(str(plain), preset="vcf", keep_original=True, force=True)

    def rows(alleles):
        return sorted((a.chrom, a.pos, a.id, a.ref, a.alt) for a in alleles if a.reject == "malformed")

    want = [("20", pos, "five", "A", "C"), ("20", pos, "seven", "A", "C")]
    assert rows(read_alleles(plain, genome)) == want
    assert rows(read_alleles(vcf, genome, region=("20", 0, 70_000_000))) == want
    spaced = _write(tmp_path / "spaced.vcf", header + [bad[0].replace("\t", " ")])
    assert rows(read_alleles(spaced, genome)) == [(".", 0, ".", ".", ".")]


def test_malformed_lines_are_logged_up_to_a_limit_and_all_kept_as_rejects(genome, tmp_path, caplog):
    """A file of many broken lines does not flood the console: the first LOGGED_MALFORMED are
    logged, then one line with how many more; every one is still a reject. The driver's survey
    of the first alleles (a preview of what the shards read again) logs none."""
    from dnacnn.variants.genome_agreement import survey
    from dnacnn.variants.reading import LOGGED_MALFORMED

    lines = _lines(FIXTURE_VCF)
    n_header = sum(l.startswith("#") for l in lines)
    body = [l for l in lines if not l.startswith("#")]
    broken = [f"20\t{100 + i}\tonly3" for i in range(LOGGED_MALFORMED + 15)]
    path = _write(tmp_path / "many_bad.vcf", lines[:n_header] + body[:1] + broken + body[1:2])
    with caplog.at_level(logging.WARNING, logger="dnacnn.variants"):
        alleles = list(read_alleles(path, genome))
    assert sum(a.reject == "malformed" for a in alleles) == len(broken) and len(alleles) == len(broken) + 2
    warned = [r.getMessage() for r in caplog.records]
    assert sum("malformed VCF record:" in m for m in warned) == LOGGED_MALFORMED
    assert warned[-1].endswith("15 more malformed VCF record(s) in this read, not logged; each is a "
                               "'malformed' reject with its line and reason")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnacnn.variants"):
        assert survey(path, genome)["malformed"] == len(broken)
        assert sum(a.reject == "malformed" for a in read_alleles(path, genome, log_malformed=0)) == len(broken)
    assert not caplog.records


def test_tabix_region_query_reads_each_record_once(genome):
    whole = [a for a in read_alleles(FIXTURE_VCF, genome)]
    split = 30_000_000
    left = list(read_alleles(FIXTURE_VCF, genome, region=("20", 0, split)))
    right = list(read_alleles(FIXTURE_VCF, genome, region=("20", split, 70_000_000)))
    assert [(a.pos, a.alt) for a in left + right] == [(a.pos, a.alt) for a in whole]
    assert all(a.pos - 1 < split for a in left) and all(a.pos - 1 >= split for a in right)
    assert list(read_alleles(FIXTURE_VCF, genome, region=("7", 0, 100))) == []


def test_plain_gzip_vcf_is_read(genome, tmp_path):
    path = tmp_path / "plain.vcf.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(_lines(FIXTURE_VCF)) + "\n")
    assert len(list(read_alleles(path, genome))) == 194


def test_a_look_at_a_plain_gzip_vcf_copies_its_first_lines_only(genome, tmp_path, caplog):
    """The driver's look at a plain-gzip VCF (inspect_vcf, the survey of its first alleles)
    reads a BGZF copy of its header and whole records up to about ``head_bytes`` of text:
    never a copy of the whole file (the score job makes its one indexed copy), never a
    record cut in two read as a malformed one."""
    from dnacnn.variants import inspect_vcf
    from dnacnn.variants.genome_agreement import survey

    lines = _lines(FIXTURE_VCF)
    path = tmp_path / "plain.vcf.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    header = sum(len(line) + 1 for line in lines if line.startswith("#"))
    head = header + 1000  # the header and a few records; the 1000th byte lies within a record
    with caplog.at_level(logging.INFO, logger="dnacnn.variants.files"):
        info = inspect_vcf(path, head_bytes=head)
        first = survey(path, genome, head_bytes=head)
    assert (info.compression, info.format) == ("gzip", "VCF") and "20" in info.contigs
    body = [line for line in lines if not line.startswith("#")]
    whole = 1  # records copied: up to the one that reaches the 1000th byte after the header, whole
    while sum(len(line) + 1 for line in body[:whole]) < 1000:
        whole += 1
    alleles = sum(len(line.split("\t")[4].split(",")) for line in body[:whole])
    assert 0 < whole < len(body)
    assert set(first) == {None} and sum(first.values()) == alleles, first  # no record cut in two
    assert "reading a BGZF copy" not in caplog.text
    with caplog.at_level(logging.INFO, logger="dnacnn.variants.files"):
        assert len(list(read_alleles(path, genome))) == 194  # reading it all copies it all, once
    assert caplog.text.count("reading a BGZF copy") == 1


def test_not_a_vcf_is_a_clear_error(tmp_path):
    path = tmp_path / "x.vcf"
    path.write_text("this is not a vcf\n")
    with pytest.raises(VcfFormatError, match="x.vcf is not a readable VCF"):
        list(read_alleles(path))
    with pytest.raises(FileNotFoundError, match="VCF not found"):
        list(read_alleles(tmp_path / "missing.vcf"))


def test_a_malformed_line_across_a_region_boundary_belongs_to_one_region(genome, tmp_path):
    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if not l.startswith("#")][:10]
    nxt = int(body[5].split("\t")[1])
    bad_pos = nxt - 10  # its 30 bp REF spans POS - 1 of the next record: the region boundary
    bad = f"20\t{bad_pos}\tbad\t{genome.fetch('20', bad_pos - 1, bad_pos + 29)}\tA"
    plain = _write(tmp_path / "bad.vcf", header + body[:5] + [bad] + body[5:])
    vcf = pysam.tabix_index(str(plain), preset="vcf", force=True)
    left = list(read_alleles(vcf, genome, region=("20", 0, nxt - 1)))
    right = list(read_alleles(vcf, genome, region=("20", nxt - 1, 70_000_000)))
    assert [a.pos for a in left if a.reject == "malformed"] == [bad_pos]
    assert not [a for a in right if a.reject == "malformed"]
    assert "8" in left[-1].message and "column" in left[-1].message
    assert len(left) + len(right) == 11  # every line once


def test_table_rows_and_vcf_records_follow_the_same_rules(genome, tmp_path):
    """check_allele (tables, the service) and read_alleles (VCF records) give the same verdicts."""
    from dnacnn.variants import check_allele

    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    body = [l.split("\t") for l in lines if not l.startswith("#")][:6]
    body[0][3] = ("T" if body[0][3][0] != "T" else "G") + body[0][3][1:]
    body[1][4] = "<DEL>"
    body[2][4] = "."
    body[3][0] = "chr9"
    body[4][4] = "ACGR"
    path = _write(tmp_path / "edited.vcf", header + ["\t".join(f) for f in body])
    for allele in read_alleles(path, genome):
        assert check_allele(genome, allele.chrom, allele.pos, allele.ref, allele.alt) == (
            allele.kind, allele.reject, allele.message)


def test_single_breakends_are_symbolic_in_a_vcf_and_in_a_table(genome, tmp_path):
    """VCF's single breakends (``G.``, ``.G``) are symbolic alleles, not bases with a stray '.'."""
    from dnacnn.variants import check_allele

    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    site = [l.split("\t") for l in lines if not l.startswith("#")][0]
    ref = site[3][0]
    site[3:5] = [ref, f"{ref}.,.{ref},{ref}[chr20:5[,<del:me>"]
    path = _write(tmp_path / "bnd.vcf", header + ["\t".join(site)])
    alleles = list(read_alleles(path, genome))
    # as written: a breakend names a contig ('CHR20' is none), a symbolic ID is case-sensitive
    assert [(a.alt, a.kind, a.reject) for a in alleles] == [
        (alt, "symbolic", "symbolic_allele") for alt in (f"{ref}.", f".{ref}", f"{ref}[chr20:5[", "<del:me>")]
    assert f"ALT '{ref}[chr20:5[' at" in alleles[2].message
    for a in alleles:
        assert check_allele(genome, a.chrom, a.pos, a.ref, a.alt) == (a.kind, a.reject, a.message)
        assert "is symbolic" in a.message
    assert check_allele(genome, "20", int(site[1]), ref, "A,.")[1] == "invalid_allele"  # a list, not a breakend


def test_a_missing_ref_is_one_verdict_in_a_vcf_a_table_and_a_request(genome, tmp_path):
    """REF '.' in a VCF was an invalid_allele ("has characters outside A, C, G, T, N"), an empty
    REF (a JSON request's "") the same, said of no character, and None in a table malformed:
    now all three are malformed, "REF is missing"."""
    from dnacnn.variants import check_allele

    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    site = [l.split("\t") for l in lines if not l.startswith("#")][0]
    site[3:5] = [".", "A"]
    (allele,) = read_alleles(_write(tmp_path / "noref.vcf", header + ["\t".join(site)]), genome)
    assert (allele.reject, allele.kind) == ("malformed", "unknown") and "REF is missing" in allele.message
    for ref in (".", "", None):
        kind, reason, message = check_allele(genome, "20", int(site[1]), ref, "A")
        assert reason == "malformed" and "REF is missing" in message, (ref, message)


def test_a_field_that_is_not_utf8_is_a_malformed_record_not_an_error(genome, tmp_path):
    """A Latin-1 byte in CHROM, ID, REF or ALT raised UnicodeDecodeError out of the reader
    (`dnacnn score`: "error: 'utf-8' codec can't decode byte 0xe9", no file, no line, nothing
    scored); now that record is one malformed reject naming its line and the field."""
    lines = _lines(FIXTURE_VCF)
    header = [l.encode() for l in lines if l.startswith("#")]
    good = [l.encode() for l in lines if not l.startswith("#")][:2]
    pos, ref = good[0].split(b"\t")[1], good[0].split(b"\t")[3]
    bad = {"CHROM": b"2\xe90\t%s\t.\t%s\tA" % (pos, ref), "ID": b"20\t%s\tr\xe9\t%s\tA" % (pos, ref),
           "REF": b"20\t%s\t.\t\xe9\tA" % pos, "ALT": b"20\t%s\t.\t%s\tA,\xe9" % (pos, ref)}
    for field, line in bad.items():
        path = tmp_path / f"{field}.vcf"
        path.write_bytes(b"\n".join(header + [good[0], line + b"\t.\t.\t.", good[1]]) + b"\n")
        alleles = list(read_alleles(path, genome))
        assert [a.reject for a in alleles] == [None, "malformed", None], field
        bad_one = alleles[1]
        assert bad_one.line == len(header) + 2 and bad_one.pos == int(pos)
        assert f"{path}, line {len(header) + 2}: malformed VCF record: {field} not UTF-8 text" in bad_one.message


def test_table_rows_positions_and_alleles_are_checked_whole(genome):
    """An allele with a final newline is not bases; a huge POS is past the contig's end
    (said as such), a non-integral one is malformed."""
    from dnacnn.variants import check_allele

    ref = genome.fetch("20", 150_000, 150_001)
    assert check_allele(genome, "20", 150_001, ref, "G\n")[1] == "invalid_allele"
    assert check_allele(genome, "20", 150_001, ref + "\n", "G")[1] == "invalid_allele"
    for pos in (2 ** 63 - 1, 10 ** 30):
        kind, reason, message = check_allele(genome, "20", pos, ref, "G")
        assert reason == "ref_mismatch" and "past the end of contig" in message
    for pos in (1.5, True, 0, float("nan"), "x"):
        assert check_allele(genome, "20", pos, ref, "G")[1] == "malformed", pos
    assert check_allele(genome, "20", "150001", ref, "G" if ref != "G" else "A")[1] is None
    # a DataFrame's NaN, a list or a number where REF or ALT text belongs: said as such
    for bad_ref, bad_alt, said in ((float("nan"), "G", "REF nan (type float) is not"), (None, "G", "REF is missing"),
                                   (ref, ["G"], "ALT ['G'] (type list) is not"), (ref, 7, "ALT 7 (type int) is not")):
        kind, reason, message = check_allele(genome, "20", 150_001, bad_ref, bad_alt)
        assert reason == "malformed" and said in message, message
    assert check_allele(genome, "20", 150_001, ref, None)[1] == "missing_alt"  # as VCF's '.'


def test_vcf_writer_round_trips_through_pysam_and_indexes_sorted_records(tmp_path):
    from dnacnn.variants import InfoField, write_vcf

    rows = [("20", 100, "rs1", "A", "G", {"SCORE": (0.5,)}), ("20", 200, ".", "AC", "A", {"SCORE": (0.25,)})]
    info = [InfoField("SCORE", "A", "Float", "a score")]
    out = tmp_path / "w.vcf.gz"
    assert write_vcf(out, {"20": 1000}, rows, info=info, meta={"source": "test"}, filter_pass=True)
    with pysam.VariantFile(str(out)) as vcf:
        got = [(r.chrom, r.pos, r.id, r.ref, r.alts[0], r.info["SCORE"][0], list(r.filter)) for r in vcf.fetch("20")]
    assert got == [("20", 100, "rs1", "A", "G", 0.5, ["PASS"]), ("20", 200, None, "AC", "A", 0.25, ["PASS"])]
    assert not write_vcf(out, {"20": 1000}, rows[::-1], info=info)  # unsorted: no index, no stale one
    assert not (tmp_path / "w.vcf.gz.tbi").exists()
    assert [r.pos for r in pysam.VariantFile(str(out))] == [200, 100]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.vcf.gz"]  # no temporary left


def test_a_vcf_that_starts_with_a_byte_order_mark_is_refused_saying_so(tmp_path):
    """A BOM (Windows editors) was refused as "must start with a '##fileformat=VCFv4.x' header",
    which the file, as an editor shows it, does."""
    from dnacnn.variants import open_vcf

    text = "".join(line + "\n" for line in _lines(FIXTURE_VCF)[:40]).encode()
    for path in (tmp_path / "bom.vcf", tmp_path / "bom.vcf.gz"):
        data = b"\xef\xbb\xbf" + text
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        with pytest.raises(VcfFormatError, match=f"{path} is not a readable VCF .it starts with a UTF-8 byte-order mark"):
            open_vcf(path)


def test_a_vcf_with_old_mac_line_ends_or_no_fileformat_line_is_refused_saying_so(tmp_path):
    """htslib's own words were "file `b'...'` does not have valid header (mode=`b'r'`) - is it
    VCF/BCF format?" for each of these; the refusal now says what is wrong with the file."""
    from dnacnn.variants import open_vcf

    lines = _lines(FIXTURE_VCF)[:120]
    records = [line for line in lines if not line.startswith("#")]
    cases = {
        "mac.vcf": ("\r".join(lines) + "\r", "its lines end in a carriage return alone"),
        "no_fileformat.vcf": ("\n".join(lines[1:]) + "\n", "its first line is '##FILTER=<ID=PASS"),
        "records_only.vcf.gz": ("\n".join(records) + "\n", "its first line is " + repr(records[0])[:20]),
        "no_chrom_line.vcf": ("\n".join(line for line in lines if not line.startswith("#CHROM")) + "\n",
                              "line 96, " + repr(records[0])[:20]),
    }
    for name, (text, why) in cases.items():
        path = tmp_path / name
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
        with pytest.raises(VcfFormatError) as err:
            open_vcf(path)
        assert str(err.value).startswith(f"{path} is not a readable VCF ({why}"), str(err.value)
        assert "mode=" not in str(err.value)


def test_header_lines_among_the_records_are_rejects_at_their_own_lines(genome, tmp_path):
    """A header pasted twice: its second copy's lines are read as records. They were
    numbered from after both copies (every leading '#' line counted as header), so each
    reject named a good record's line and "htslib could not parse it"."""
    lines = _lines(FIXTURE_VCF)
    header = [line for line in lines if line.startswith("#")]
    records = [line for line in lines if not line.startswith("#")][:3]
    path = _write(tmp_path / "twice.vcf", header + header + records)
    alleles = list(read_alleles(path, genome, log_malformed=0))
    rejects = [a for a in alleles if a.reject == "malformed"]
    assert [a.line for a in rejects] == list(range(len(header) + 1, 2 * len(header) + 1))
    assert all("a header line among the records" in a.message for a in rejects), rejects[0].message
    assert [a.line for a in alleles if a.reject is None][0] == 2 * len(header) + 1


def test_a_blank_line_in_the_header_shifts_no_line_number(genome, tmp_path):
    """htslib skips a blank line among the '##' lines; the header count stopped there, so every
    record's line was 4 short and a malformed record was diagnosed from the '#CHROM' line."""
    lines = _lines(FIXTURE_VCF)
    header = [line for line in lines if line.startswith("#")]
    records = [line for line in lines if not line.startswith("#")][:3]
    short = "\t".join(records[0].split("\t")[:4])
    path = _write(tmp_path / "blank.vcf", header[:2] + [""] + header[2:] + records + [short])
    alleles = list(read_alleles(path, genome, log_malformed=0))
    assert [a.line for a in alleles] == list(range(len(header) + 2, len(header) + 6))
    bad = alleles[-1]
    assert (bad.reject, bad.chrom, bad.pos) == ("malformed", "20", int(records[0].split("\t")[1]))
    assert f"line {len(header) + 5}: malformed VCF record" in bad.message and "has 4 tab-separated column(s)" in bad.message


def test_inspect_vcf_tells_the_format_and_refuses_noise(tmp_path):
    from dnacnn.variants import inspect_vcf

    info = inspect_vcf(FIXTURE_VCF)
    assert (info.format, info.compression, info.indexed, info.warnings) == ("VCF", "bgzf", True, [])
    bcf = tmp_path / "x.bcf"
    with pysam.VariantFile(str(FIXTURE_VCF)) as src, pysam.VariantFile(str(bcf), "wb", header=src.header) as dst:
        for record in src:
            dst.write(record)
    assert inspect_vcf(bcf).format == "BCF"
    header_then_noise = tmp_path / "h.vcf"
    header_then_noise.write_bytes(b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                  + b"\x00\x17garbage" * 200)
    with pytest.raises(VcfFormatError, match="h.vcf: none of its first 1 record.*binary content"):
        inspect_vcf(header_then_noise)
    spaces = tmp_path / "spaces.vcf"  # hand-edited: columns separated by spaces
    spaces.write_text("".join(
        line if line.startswith("#") else line.replace("\t", " ") for line in
        (f"{line}\n" for line in _lines(FIXTURE_VCF))))
    with pytest.raises(VcfFormatError, match="spaces.vcf: none of its first 100 record.*separated by spaces, not tabs"):
        inspect_vcf(spaces)
    one_bad_line = tmp_path / "one.vcf"  # a text VCF whose only record is malformed: read, to be rejected
    one_bad_line.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n20\t5\tonly3\n")
    assert inspect_vcf(one_bad_line).format == "VCF"


# ---- files as they come: dialects and damage ---------------------------------------------------


def _fixture_with(tmp_path, name, edit) -> tuple:
    """The fixture VCF's text with ``edit(header, body)`` applied, written to ``name``."""
    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if not l.startswith("#")]
    header, body = edit(header, body)
    return _write(tmp_path / name, header + body), len(body)


def _bgzip_indexed(path, csi=False) -> str:
    return pysam.tabix_index(str(path), preset="vcf", force=True, csi=csi)


def _by_regions(path, genome, shard_variants=40) -> list:
    from dnacnn.scoring.shards import plan_shards

    return [(shard.index, a) for shard in plan_shards(path, True, shard_variants)
            for region in shard.regions for a in read_alleles(path, genome, region=region)]


def test_regions_read_every_record_of_vcf43_utf8_with_a_pos0_record_and_a_csi_index(genome, tmp_path):
    """POS 0 records (malformed, or a telomere's breakend: symbolic; first on their contig)
    are read by the first region, UTF-8 text (VCF 4.3) does not stop the planning, and a
    CSI index serves as a .tbi does."""
    def edit(header, body):
        header = ["##fileformat=VCFv4.3"] + header[1:-1] + [
            '##INFO=<ID=NOTE,Number=1,Type=String,Description="free text">', header[-1]]
        fields = body[0].split("\t")
        body = ["\t".join(["20", "0", "zero", "N", "A"] + fields[5:]),
                "\t".join(["20", "0", "telomere", "N", ".[20:1000["] + fields[5:])] + body
        noted = body[6].split("\t")
        noted[7] = "NOTE=Müller_β" if noted[7] == "." else noted[7] + ";NOTE=Müller_β"
        body[6] = "\t".join(noted)
        return header, body

    for csi in (False, True):
        folder = tmp_path / ("csi" if csi else "tbi")
        folder.mkdir()
        plain, n_records = _fixture_with(folder, "v43.vcf", edit)
        path = _bgzip_indexed(plain, csi=csi)
        alleles = _by_regions(path, genome)
        assert len({(shard, a.record) for shard, a in alleles}) == n_records  # every record, once
        zero = {a.id: a for _, a in alleles if a.pos == 0}
        assert zero["zero"].reject == "malformed" and len(zero) == 2
        # VCF 4.3 5.4.9: a breakend at the telomere is what POS 0 is for
        assert zero["telomere"].reject == "symbolic_allele" and "telomere" in zero["telomere"].message


def test_contigs_of_few_records_share_a_shard_and_every_record_is_read_once(tmp_path):
    """A VCF on 500 scaffolds was 500 shards: 500 actor calls, 1,000 Parquet parts (29 s for 999
    variants). Whole contigs of fewer than shard_variants records now share one, up to that many."""
    from dnacnn.scoring.shards import OPEN_END, plan_shards

    small = [f"scaffold{i}" for i in range(50)]
    header = ["##fileformat=VCFv4.2", *(f"##contig=<ID={c}>" for c in ["big", *small]),
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    body = [f"big\t{100 + 10 * i}\t.\tA\tC\t.\t.\t." for i in range(100)]
    body += [f"{c}\t{pos}\t.\tA\tG\t.\t.\t." for c in small for pos in (5, 9)]
    path = _bgzip_indexed(_write(tmp_path / "scaffolds.vcf", header + body))
    shards = plan_shards(path, True, 40)
    assert [(s.chrom, len(s.more)) for s in shards] == [("big", 0)] * 3 + [("scaffold0", 19), ("scaffold20", 19),
                                                                         ("scaffold40", 9)]
    assert shards[3].regions[1] == ("scaffold1", 0, OPEN_END)
    assert shards[3].describe() == "scaffold0:0-end with contigs scaffold1, scaffold2 and 17 more"
    read = [(shard.index, n, a.record, a.chrom, a.pos) for shard in shards
            for n, region in enumerate(shard.regions) for a in read_alleles(path, None, region=region)]
    assert len(read) == len(set(read)) == len(body)
    assert sorted((chrom, pos) for *_, chrom, pos in read) == sorted(
        (line.split("\t")[0], int(line.split("\t")[1])) for line in body)


def test_an_index_older_than_its_vcf_is_not_used(genome, tmp_path, caplog):
    """A .tbi made before records were added would miss them without an error."""
    from dnacnn.variants import has_index, indexed_copy

    lines = _lines(FIXTURE_VCF)
    header = [l for l in lines if l.startswith("#")]
    body = [l for l in lines if not l.startswith("#")]
    first = _bgzip_indexed(_write(tmp_path / "first.vcf", header + body[:100]))
    whole = _bgzip_indexed(_write(tmp_path / "whole.vcf", header + body))
    os.replace(f"{first}.tbi", f"{whole}.tbi")  # the index of the first 100 records beside all 194
    now = os.path.getmtime(whole)
    os.utime(f"{whole}.tbi", (now - 60, now - 60))
    with caplog.at_level(logging.WARNING):
        assert not has_index(whole)
    assert "older than the file" in caplog.text
    copy, indexed = indexed_copy(whole, tmp_path / "work")
    assert indexed and copy != whole
    assert len(_by_regions(copy, genome)) == 194  # one allele per record


def test_a_cut_vcf_gives_what_it_holds(genome, tmp_path, caplog):
    """bgzip without its end (with and without an index) and plain gzip cut short: the
    records before the cut are read, and the cut is said; no temporary file is left."""
    import glob
    import tempfile

    from dnacnn.variants import indexed_copy, inspect_vcf

    header = [l for l in _lines(FIXTURE_VCF) if l.startswith("#")]
    sites = sorted({int(l.split("\t")[1]) for l in _lines(FIXTURE_VCF) if not l.startswith("#")})
    rows = []  # 40 SNVs after each real site (REF the genome's base): a few BGZF blocks of text
    for site in sites:
        for pos in range(site + 1, site + 41):
            if rows and pos <= int(rows[-1].split("\t")[1]):
                continue
            ref = genome.fetch("20", pos - 1, pos).upper()
            alt = "A" if ref != "A" else "C"
            rows.append(f"20\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\tDP=10;NOTE=padding_to_fill_blocks_{pos}")
    header.insert(-1, '##INFO=<ID=NOTE,Number=1,Type=String,Description="padding">')
    data = ("\n".join(header + rows) + "\n").encode()
    plain = tmp_path / "all.vcf"
    plain.write_bytes(data)
    bgzf = pysam.tabix_index(str(plain), preset="vcf", force=True)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "dnacnn-*")))
    cut_bgzf = tmp_path / "cut.vcf.gz"
    cut_bgzf.write_bytes(open(bgzf, "rb").read()[: os.path.getsize(bgzf) * 2 // 3])
    cut_gzip = tmp_path / "cut_plain.vcf.gz"
    cut_gzip.write_bytes(gzip.compress(data)[: len(gzip.compress(data)) * 2 // 3])
    for cut in (cut_bgzf, cut_gzip):
        with caplog.at_level(logging.WARNING):
            info = inspect_vcf(cut)
            copy, indexed = indexed_copy(cut, tmp_path / f"work-{cut.name}")
        assert indexed
        alleles = [a for _, a in _by_regions(copy, genome)]
        assert 100 < len(alleles) < len(rows) and not [a for a in alleles if a.reject]
        assert "truncated" in caplog.text
        if cut is cut_gzip:  # every whole line the stream holds (a 64 KiB read lost its last step's text)
            held = b""
            with gzip.open(cut, "rb") as stream:
                try:
                    while piece := stream.read1(1 << 12):
                        held += piece
                except EOFError:
                    pass
            assert len(alleles) == held.count(b"\n") - len(header)
        if cut is cut_bgzf:
            assert any("end-of-file block" in w for w in info.warnings)
            # the same records read whole (check-vcf), by region from the file's own index, and from
            # the copy (which had read on into the cut block through gzip: 179 records against 103)
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                whole = list(read_alleles(cut, genome))
            assert [a for a in whole if a.reject] == []  # the line the cut ends in is no reject
            assert "the file ends inside line" in caplog.text
            own_index = tmp_path / "cut_indexed.vcf.gz"  # the cut file beside the index of its whole
            own_index.write_bytes(cut.read_bytes())
            (tmp_path / "cut_indexed.vcf.gz.tbi").write_bytes(open(f"{bgzf}.tbi", "rb").read())
            regions = [a for _, a in _by_regions(str(own_index), genome)]
            assert [a.pos for a in whole] == [a.pos for a in alleles] == [a.pos for a in regions]
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "dnacnn-*"))) == before


def test_an_index_of_another_file_dated_after_the_vcf_is_not_used(genome, tmp_path, caplog):
    """A 60-record VCF's .tbi beside the 500-record one, touched newer: `dnacnn score` read 80
    records of 500 by region and said nothing."""
    import time

    from dnacnn.variants import indexed_copy

    lines = _lines(FIXTURE_VCF)
    header = [line for line in lines if line.startswith("#")]
    records = [line for line in lines if not line.startswith("#")]
    small = _bgzip_indexed(_write(tmp_path / "small.vcf", header + records[:20]))
    whole = _bgzip_indexed(_write(tmp_path / "whole.vcf", header + records))
    time.sleep(0.01)
    with open(f"{small}.tbi", "rb") as src, open(f"{whole}.tbi", "wb") as dst:  # written after the VCF
        dst.write(src.read())
    with caplog.at_level(logging.WARNING):
        copy, indexed = indexed_copy(whole, tmp_path / "work")
    assert indexed and copy != whole and "does not find its last record" in caplog.text
    assert len([a for _, a in _by_regions(copy, genome)]) == len(list(read_alleles(whole, genome)))
    assert indexed_copy(small, tmp_path / "work-small") == (small, True)  # its own index: used


def test_a_pipe_is_refused_in_one_line(tmp_path):
    from dnacnn.variants import inspect_vcf

    fifo = tmp_path / "calls.vcf"
    os.mkfifo(fifo)
    with pytest.raises(VcfFormatError, match="not a regular file"):
        inspect_vcf(fifo)  # returns at once: nothing opens the pipe


def test_an_iupac_code_in_the_genome_matches_the_bases_it_stands_for(tmp_path):
    """GRCh38 carries a few IUPAC codes (M, R, ...): a REF of one of the bases a code
    stands for matches it, another base does not; N in the genome matches any."""
    from dnacnn.data.simulation_files import write_fasta_bgzip
    from dnacnn.variants import check_allele

    genome = Genome(write_fasta_bgzip({"c": b"ACGTMRNACGT" * 10}, tmp_path / "g.fa.gz"))
    assert genome.fetch("c", 4, 7) == "MRN"
    verdicts = {(pos, ref): check_allele(genome, "c", pos, ref, "T")[1]
                for pos, ref in [(5, "A"), (5, "C"), (5, "G"), (6, "A"), (6, "G"), (6, "C"), (7, "G"), (5, "CG")]}
    assert verdicts == {(5, "A"): None, (5, "C"): None, (5, "G"): "ref_mismatch",
                        (6, "A"): None, (6, "G"): None, (6, "C"): "ref_mismatch", (7, "G"): None,
                        (5, "CG"): None}
    assert "does not match the reference 'M'" in check_allele(genome, "c", 5, "G", "T")[2]


def test_a_long_allele_is_cut_in_its_reject_message(tmp_path):
    """A 5 kb deletion whose REF is off the genome: the reject names the site, the
    alleles' starts and lengths and the first differing base, not 10 kb of bases."""
    from dnacnn.data.simulation_files import write_fasta_bgzip
    from dnacnn.variants import check_allele

    bases = b"ACGT" * 2000
    genome = Genome(write_fasta_bgzip({"c": bases}, tmp_path / "g.fa.gz"))
    ref = bases[:5000].decode()
    wrong = ref[:100] + "T" + ref[101:]  # base 101 is an A in the genome
    kind, reason, message = check_allele(genome, "c", 1, wrong, "A")
    assert (kind, reason) == ("deletion", "ref_mismatch")
    assert "(5,000 bp)" in message and "first at base 101: 'T' where the genome has 'A'" in message
    assert len(message) < 300, message
    assert check_allele(genome, "c", 1, ref, "A")[1] is None
    assert "(6,000 bp)" in check_allele(genome, "c", 1, "A", "AX" * 3000)[2]


def test_samples_columns_are_not_parsed_so_a_bad_genotype_does_not_lose_its_site(tmp_path, genome):
    """Scoring reads sites: a VCF's samples are skipped (htslib parsed every genotype, 2x the
    time at 1,000 samples), and a sample column htslib cannot parse (DP 'abc' for an Integer)
    no longer makes its site a malformed reject. Whole and by region alike."""
    sites = [a for a in read_alleles(FIXTURE_VCF, genome) if a.reject is None][:6]
    header = ("##fileformat=VCFv4.2\n##contig=<ID=20,length=63025520>\n"
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
              '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n")
    body = "".join(f"{a.chrom}\t{a.pos}\tv{i}\t{a.ref}\t{a.alt}\t.\tPASS\t.\tGT:DP\t0/1:{'abc' if i == 2 else 9}\t1/1:3\n"
                   for i, a in enumerate(sites))
    plain = tmp_path / "samples.vcf"
    plain.write_text(header + body)
    packed = tmp_path / "samples.vcf.gz"
    pysam.tabix_compress(str(plain), str(packed))
    pysam.tabix_index(str(packed), preset="vcf")
    expected = [(a.chrom, a.pos, a.ref, a.alt) for a in sites]
    for read in (list(read_alleles(plain, genome)), list(read_alleles(packed, genome, region=("20", 0, 10**8)))):
        assert [(a.chrom, a.pos, a.ref, a.alt) for a in read] == expected
        assert all(a.reject is None for a in read) and [a.id for a in read] == [f"v{i}" for i in range(6)]


def test_a_header_htslib_refuses_is_named_for_what_is_wrong_with_it(tmp_path):
    """htslib's words were "file `b'...'` does not have valid header (mode=`b'r'`) - is it
    VCF/BCF format?" (naming a temporary copy for a plain-gzip file) for each of these, with the
    advice to start with a '##fileformat' and a '#CHROM' line, which each of them has."""
    from dnacnn.variants import open_vcf
    from dnacnn.variants.files import BGZF_EOF

    lines = _lines(FIXTURE_VCF)[:120]
    header = [line for line in lines if line.startswith("##")]
    records = [line for line in lines if not line.startswith("#")]
    samples = "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "S1", "S1"])
    whole = ("\n".join(lines) + "\n").encode()
    cases = {
        "five_columns.vcf": ("\n".join(header + ["\t".join(["#CHROM", "POS", "ID", "REF", "ALT"])]
                                       + ["\t".join(r.split("\t")[:5]) for r in records]) + "\n",
                             "its '#CHROM' line has 5 column(s); a VCF has the 8 fixed ones"),
        "format_alone.vcf": ("\n".join(header + [lines[len(header)] + "\tFORMAT"] + [r + "\t." for r in records]) + "\n",
                             "its '#CHROM' line ends with FORMAT and names no sample; htslib reads a 9th column"),
        "trailing_tab.vcf": ("\n".join(header + [lines[len(header)] + "\t"] + records) + "\n",
                             "its '#CHROM' line ends with a tab after INFO"),
        "spaces.vcf": ("\n".join(header + [lines[len(header)].replace("\t", " ")] + records) + "\n",
                       "its '#CHROM' line's columns are separated by spaces"),
        "same_sample.vcf": ("\n".join(header + ['##FORMAT=<ID=GT,Number=1,Type=String,Description="x">', samples]
                                       + [r + "\tGT\t0/1\t1/1" for r in records]) + "\n",
                            "its '#CHROM' line names the sample 'S1' twice"),
    }
    for name, (text, why) in cases.items():
        path = _write(tmp_path / name, text.splitlines())
        with pytest.raises(VcfFormatError) as err:
            open_vcf(path)
        assert str(err.value) == f"{path} is not a readable VCF ({why}" + str(err.value).split(why, 1)[1]
    bgzf = tmp_path / "whole.vcf"
    bgzf.write_bytes(whole)
    bgzf = pysam.tabix_index(str(bgzf), preset="vcf", force=True)
    for name, data in (("empty.vcf.gz", gzip.compress(b"")), ("eof_block.vcf.gz", BGZF_EOF)):
        (tmp_path / name).write_bytes(data)  # no text at all: pysam's "invalid file `b'...'`" was said
        with pytest.raises(VcfFormatError) as err:
            open_vcf(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name} is not a readable VCF (it is empty once decompressed)"
    cut = {"cut_plain.vcf.gz": gzip.compress(whole)[:60], "cut_bgzip.vcf.gz": open(bgzf, "rb").read()[:60]}
    for name, data in cut.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(VcfFormatError) as err:
            open_vcf(path)
        assert str(err.value) == (f"{path} is not a readable VCF (it ends inside its compressed data before "
                                  "its header does: the file is truncated)")


def test_records_that_cannot_be_read_are_named_for_the_first_ones_slip(genome, tmp_path):
    """Five columns per record: each was a clear reject in a short file, but a file whose first
    100 records all failed was "not a VCF (binary content after the header)"; a CHROM with a
    trailing space was "htslib could not parse it"."""
    from dnacnn.variants import inspect_vcf

    lines = _lines(FIXTURE_VCF)
    header = [line for line in lines if line.startswith("#")]
    records = [line for line in lines if not line.startswith("#")]
    five = _write(tmp_path / "five.vcf", header + ["\t".join(r.split("\t")[:5]) for r in records[:150]])
    with pytest.raises(VcfFormatError, match=(f"{five}: none of its first 100 record.s. can be read; the first, "
                                              f"line {len(header) + 1}, has 5 tab-separated column.s.; a VCF "
                                              "record needs at least 8")):
        inspect_vcf(five)
    spaced = _write(tmp_path / "spaced.vcf", header + [records[0].replace("20\t", "20 \t", 1)] + records[1:3])
    alleles = list(read_alleles(spaced, genome, log_malformed=0))
    rejects = [a for a in alleles if a.reject]
    assert len(alleles) == 3 and [(a.reject, a.line) for a in rejects] == [("malformed", len(header) + 1)]
    assert rejects[0].message.endswith("CHROM '20 ' holds a space or is blank (contig names have no whitespace)")


def test_a_comment_line_among_the_records_is_a_reject_when_the_job_scores_the_file(genome, tmp_path, caplog):
    """tabix skips a '#' line among the records: `dnacnn score`'s indexed copy lost it without a
    word, while check-vcf (read whole) made it a 'malformed' reject; the job now reads such a
    file whole, as check-vcf does."""
    from dnacnn.variants import indexed_copy

    lines = _lines(FIXTURE_VCF)
    header = [line for line in lines if line.startswith("#")]
    records = [line for line in lines if not line.startswith("#")]
    path = _write(tmp_path / "comment.vcf", header + records[:2] + ["# a note"] + records[2:4])
    with caplog.at_level(logging.WARNING):
        copy, indexed = indexed_copy(path, tmp_path / "work")
    assert (copy, indexed) == (str(path), False)
    assert f"line {len(header) + 3}: a '#' line among the records" in caplog.text
    assert not [p for p in (tmp_path / "work").iterdir()]  # no copy left behind
    alleles = list(read_alleles(copy, genome, log_malformed=0))
    assert [a.line for a in alleles if a.reject == "malformed"] == [len(header) + 3]
    clean = _write(tmp_path / "clean.vcf", header + records[:4])
    assert indexed_copy(clean, tmp_path / "work2")[1]

    # the user's own bgzipped, tabix-indexed file (tabix indexes it, skipping the line): read whole
    # too (was: read by region, 4 records scored and the line not counted, check-vcf saying 5)
    pysam.tabix_index(str(path), preset="vcf", force=True, keep_original=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert indexed_copy(f"{path}.gz", tmp_path / "work3") == (f"{path}.gz", False)
    assert f"line {len(header) + 3}: a '#' line among the records" in caplog.text
    alleles = list(read_alleles(f"{path}.gz", genome, log_malformed=0))
    assert [a.line for a in alleles if a.reject == "malformed"] == [len(header) + 3] and len(alleles) == 5
    pysam.tabix_index(str(clean), preset="vcf", force=True)
    assert indexed_copy(f"{clean}.gz", tmp_path / "work4") == (f"{clean}.gz", True)


def test_a_comment_line_is_found_and_numbered_across_the_scans_pieces(tmp_path, monkeypatch):
    """The scan for a '#' line among the records reads the text in pieces: a line split between
    two pieces is numbered as a whole file's line."""
    import importlib

    module = importlib.import_module("dnacnn.variants.indexed_copy")
    text = b"##fileformat=VCFv4.2\n#CHROM\tPOS\n20\t1\n\n20\t2\n#note\n20\t3\n"
    (tmp_path / "v.vcf").write_bytes(text)
    for piece in (1, 2, 3, 5, 8, 1 << 22):
        monkeypatch.setattr(module, "SCAN_PIECE", piece)
        assert module._comment_among_records(tmp_path / "v.vcf") == 6, piece
    scan = module._comment_among_records
    (tmp_path / "ok.vcf").write_bytes(text.replace(b"#note\n", b""))
    assert scan(tmp_path / "ok.vcf") is None
