"""The real genome from Debian's vt-examples, fetched into a relative data folder."""

import shutil

import pytest
from typer.testing import CliRunner

from dnacnn.cli import app
from dnacnn.genome import Genome
from dnacnn.reference_data import fetch_vt_examples


@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg") is None,
                    reason="needs Debian's apt-get and dpkg")
def test_fetch_into_a_relative_folder_gives_the_whole_chr20(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    vt = fetch_vt_examples("data")
    genome = Genome(vt.chr20_fasta)
    assert genome.lengths == {"20": 63_025_520}
    assert set(genome.fetch("20", 30_000_000, 30_001_000)) <= set("ACGTN")
    assert vt.normalize_vcf.exists()
    assert fetch_vt_examples("data") == vt  # second call: no download


def test_a_data_folder_that_cannot_be_written_is_refused_before_any_download(tmp_path):
    a_file = tmp_path / "data"
    a_file.write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        fetch_vt_examples(a_file)
    result = CliRunner().invoke(app, ["fetch-genome", "--data-dir", str(a_file / "sub")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"error: --data-dir {a_file / 'sub'} cannot be created: {a_file} is a file"
    ]
    assert a_file.read_text() == "not a folder"
