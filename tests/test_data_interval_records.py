"""Which interval records become windows: the driver's scan and the read tasks' rule agree,
and every record is counted (written, or skipped with its reason)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURE_FASTA

from dnacnn.data.interval_records import IntervalScan, classify_intervals, scan_intervals
from dnacnn.data.splits import SplitConfig, assign_splits
from dnacnn.genome import Genome

SIZE = 63_025_520  # contig 20 of the fixture


def test_each_reason_and_the_split_of_kept_windows():
    genome = Genome(FIXTURE_FASTA)
    splits = SplitConfig(method="block", block_size=10_000, valid_fraction=0.4, test_fraction=0.4)
    chroms = np.array(["20", "chr20", "chrUn", "20", "20"], dtype=object)
    starts = np.array([61_000, 200_000, 10, SIZE - 50, 100_000], dtype=np.int64)
    ends = np.array([61_500, 200_400, 300, SIZE + 50, 100_200], dtype=np.int64)
    reason, w_starts, split = classify_intervals(genome, chroms, starts, ends, 200, splits)
    assert reason[2] == "unknown_contig" and reason[3] == "past_contig_end"
    assert w_starts.tolist()[:2] == [61_150, 200_100]
    kept = np.flatnonzero(reason == "")
    expected = assign_splits(chroms[kept], w_starts[kept], splits, w_starts[kept] + 200)
    assert split[kept].tolist() == expected.tolist() and None not in expected
    assert split[2] is None and split[3] is None
    # a window across two blocks of different splits is skipped, not given a split
    blocks = [(b, assign_splits(["20"], [b * 10_000], splits)[0]) for b in range(100, 140)]
    edge = next(b for (b, s), (_, t) in zip(blocks, blocks[1:]) if s != t) + 1
    reason, _, split = classify_intervals(genome, np.array(["20"], dtype=object),
                                          np.array([edge * 10_000 - 10]), np.array([edge * 10_000 + 10]),
                                          200, splits)
    assert reason.tolist() == ["split_boundary"] and split.tolist() == [None]


def test_scan_counts_every_record_and_account_finds_the_all_n_windows(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("chrom\tstart\tend\tx\n"
                    "20\t61000\t61500\t1\n20\t61000\t61500\t0\n20\t1000\t1200\t1\n"
                    "chrUn\t1\t2\t0\nchrUn\t5\t9\t0\n")
    genome = Genome(FIXTURE_FASTA)
    scan = scan_intervals(genome, str(path), 200, None, 1, has_header=True)
    assert scan.records == 5 and scan.skipped == {"unknown_contig": 2}
    assert scan.first == {"unknown_contig": "chrUn:1-2"}
    assert scan.duplicates == 1 and scan.expected == {"train": 3, "valid": 0, "test": 0}
    # the read tasks wrote 2 rows: the third window (20:1000-1200) is all N
    account = scan.account({"train": 2, "valid": 0, "test": 0})
    assert account["read"] == 5 and account["written"] == 2
    assert account["skipped"] == {"unknown_contig": 2, "all_n": 1}
    assert account["read"] == account["written"] + sum(account["skipped"].values())
    with pytest.raises(RuntimeError, match="planned"):
        IntervalScan(expected={"train": 1, "valid": 0, "test": 0}).account(
            {"train": 2, "valid": 0, "test": 0})
