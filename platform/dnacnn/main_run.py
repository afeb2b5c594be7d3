"""The main job, end to end on real data.

1. Get the real genome (GRCh37 chr20 from Debian's ``vt-examples``) unless one is given.
2. Build the 164-cell-type accessibility task on it (real windows, planted JASPAR motifs).
3. Train Basset on Ray Train (DDP), log the run to MLflow, register the model.
4. Score a real VCF (1000 Genomes indels on chr20) genome-wide with the registered model.
5. Score the simulated variants and check the scores against the planted truth,
   then write the filter report of the trained model (implanted motifs recovered).

Everything lands under ``main.data_dir``; the returned summary says where.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from dnacnn.config import JobConfig, load_config, to_dict
from dnacnn.data.dataset_io import DatasetDescription
from dnacnn.data.simulate_accessibility import AccessibilityConfig, simulate_accessibility
from dnacnn.genome import Genome
from dnacnn.interpret.run import main_job_filter_report
from dnacnn.models import basset_cell_types
from dnacnn.ray_cluster import check_reachable, cluster_to_join
from dnacnn.reference_data import fetch_vt_examples
from dnacnn.scoring.batch import check_options, score_vcf
from dnacnn.scoring.truth import plot_recovery, recovery_metrics
from dnacnn.train.trainer import train_and_register
from dnacnn.variants import inspect_vcf

log = logging.getLogger(__name__)


@dataclass
class MainSection:
    """Section ``main``: inputs and where results go."""

    data_dir: str = "data"  # everything the job writes goes below this folder
    genome: str | None = None  # indexed FASTA; None: GRCh37 chr20 from Debian's vt-examples
    vcf: str | None = None  # real VCF to score; None: vt-examples normalize/01_IN.vcf.gz


@dataclass
class ScoreSection:
    """Section ``score``: how both VCFs are scored (see ``dnacnn.scoring.batch.score_vcf``)."""

    rc: bool = True  # average forward and reverse-complement predictions
    batch_size: int = 128
    shard_variants: int = 2500  # VCF records per shard (the unit of work and of restart)
    vcf_out: bool = True  # also write scores.vcf.gz with INFO fields

    def __post_init__(self) -> None:  # checked when the config loads, not after training
        check_options(self.batch_size, self.shard_variants, None, 1.0, "cpu", 0.0, config_keys=True)


@dataclass
class MainConfig(JobConfig):
    """``jobs/configs/main.yaml``: a training job's sections (data, model, train,
    mlflow) plus the main job's own (main, simulate, score)."""

    main: MainSection = field(default_factory=MainSection)
    simulate: AccessibilityConfig = field(default_factory=AccessibilityConfig)
    score: ScoreSection = field(default_factory=ScoreSection)

    def training_job(self) -> JobConfig:
        """The training job; its run name carries a digest of the simulated task, the
        model and the batch size, so a changed config trains a new run and the same
        config resumes its own (``train.run_name``-<8 hex digits>)."""
        what = {"simulate": to_dict(self.simulate), "model": to_dict(self.model),
                "batch_size": self.train.batch_size, "num_workers": self.train.num_workers}
        digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
        train = replace(self.train, run_name=f"{self.train.run_name or 'main'}-{digest}")
        return JobConfig(data=self.data, model=self.model, train=train, mlflow=self.mlflow)


def load_main_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> MainConfig:
    """Read ``main.yaml`` with ``section.key=value`` overrides (``dnacnn.config.load_config``:
    unknown keys are errors, environment variables are expanded)."""
    return load_config(path, overrides, MainConfig)


def _step(number: int, text: str) -> None:
    log.info("[main %d/5] %s", number, text)


def build_dataset(cfg: MainConfig, fasta: Path) -> Path:
    """Simulate the accessibility task once; reuse it while its config is unchanged."""
    out = Path(cfg.data.dataset)
    wanted = to_dict(cfg.simulate) | {"genome": str(fasta)}
    marker = out / "simulate_config.json"
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        log.info("dataset %s already built with this config: reused", out)
        return out
    simulate_accessibility(fasta, out, tasks=basset_cell_types(), config=cfg.simulate)
    marker.write_text(json.dumps(wanted, indent=1))
    return out


def evaluate_simulated(scores_dir: Path, dataset: Path) -> dict:
    """Recovery of the planted truth by the scores of the simulated variants (+ a plot)."""
    scores = pq.read_table(scores_dir / "scores").to_pandas()
    tasks = (scores_dir / "tasks.txt").read_text().split("\n")
    tasks = [t for t in tasks if t]
    effects = pd.read_csv(dataset / "variant_effects.tsv", sep="\t")
    metrics = recovery_metrics(scores, effects, tasks)
    metrics["plot"] = str(plot_recovery(scores, effects, metrics, scores_dir / "truth_recovery.png"))
    (scores_dir / "truth_recovery.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def run_main(cfg: MainConfig, address: str | None = None) -> dict:
    """Run the five steps; returns a summary of where everything is."""
    t0 = time.monotonic()
    if (joining := cluster_to_join(address)) is not None:
        check_reachable(joining)  # now, not after step 2 has simulated the dataset
    data_dir = Path(cfg.main.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    _step(1, "reference genome and real variants")
    if cfg.main.genome and cfg.main.vcf:
        fasta, real_vcf = Path(cfg.main.genome), Path(cfg.main.vcf)
    else:
        vt = fetch_vt_examples(data_dir)
        fasta = Path(cfg.main.genome or vt.chr20_fasta)
        real_vcf = Path(cfg.main.vcf or vt.normalize_vcf)
    Genome(fasta)  # both opened now, not after training: a missing or broken file is named at once
    inspect_vcf(real_vcf)

    _step(2, f"simulating the {len(basset_cell_types())}-cell-type accessibility task on {fasta}")
    dataset = build_dataset(cfg, fasta)
    description = DatasetDescription.load(dataset)

    _step(3, f"training {cfg.model.name} on Ray Train ({cfg.train.num_workers} workers), MLflow")
    trained = train_and_register(cfg.training_job(), address).to_dict()
    model_uri = trained["mlflow"]["uri"]

    _step(4, f"scoring the real VCF {real_vcf} with {model_uri}")
    score_kwargs = to_dict(cfg.score)
    real = score_vcf(model_uri, fasta, real_vcf, data_dir / "scores" / "real", address=address, **score_kwargs)

    _step(5, "scoring the simulated variants against the planted truth")
    sim_dir = data_dir / "scores" / "simulated"
    simulated = score_vcf(model_uri, dataset / "genome.fa.gz", dataset / "variants.vcf.gz", sim_dir,
                          address=address, **score_kwargs)
    truth = evaluate_simulated(sim_dir, dataset)
    filters = main_job_filter_report(model_uri, dataset, data_dir / "interpret" / "filters")

    summary = {
        "genome": str(fasta),
        "dataset": {"path": str(dataset), "rows": description.rows, "tasks": len(description.tasks)},
        "training": trained,
        "scores": {
            "real": {"vcf": str(real_vcf), "out": str(data_dir / "scores" / "real"), "summary": real},
            "simulated": {"out": str(sim_dir), "summary": simulated, "truth_recovery": truth},
        },
        "filters": filters,
        "minutes": round((time.monotonic() - t0) / 60, 1),
        "summary": str(data_dir / "main_summary.json"),
    }
    (data_dir / "main_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
