"""The closing lines of `dnacnn main` (the job itself runs in `make run`, not in the suite)."""

from __future__ import annotations

from dnacnn.cli.main_job import done_lines


def test_done_lines_give_the_headline_figures_and_where_things_are():
    summary = {
        "minutes": 11.9,
        # data.dataset need not lie under main.data_dir: the line printed data/ from it before.
        "dataset": {"path": "elsewhere/datasets/basset164"},
        "summary": "data/main_summary.json",
        "training": {"mlflow": {"uri": "models:/basset-basset164@champion"},
                     "metrics": {"test_auroc": 0.96020013}},
        "scores": {"real": {"out": "data/scores/real"},
                   "simulated": {"out": "data/scores/simulated",
                                 "truth_recovery": {"variant_auroc": 0.99946, "plot": "data/scores/simulated/t.png"}}},
        "filters": {"implanted": 8, "recovered": 6, "matched": 8, "index": "data/interpret/filters/index.html"},
    }
    lines = done_lines(summary).splitlines()
    assert "Done in 11.9 min." in lines
    assert "  model: models:/basset-basset164@champion (test AUROC 0.960)" in lines
    assert "  truth recovery: AUROC 0.999 (plot data/scores/simulated/t.png)" in lines
    assert ("  filters: 6 of 8 implanted factors recovered, 8 matched "
            "(report data/interpret/filters/index.html)") in lines
    assert "  summary: data/main_summary.json" in lines
