"""Seconds for the whole filter report of a Basset (300 first-layer filters) over a test split,
and for TomTom alone (against all 879 matrices of JASPAR 2024 CORE vertebrates).

    .venv/bin/python bench/interpret.py --model data/... --dataset data/datasets/basset164
    .venv/bin/python bench/interpret.py        # no trained model: a quick one, see below

Without ``--model``, the main job's task is simulated small (its ``simulate`` section of
jobs/configs/main.yaml, ``--windows`` windows on GRCh37 chr20 or the test fixture) and the
main job's Basset (300/200/200 filters, its pools and first-layer activation from jobs/configs/main.yaml, 164 cell types) is trained for
``--steps`` steps of plain PyTorch: a quickly trained model, not the main job's.

Printed: seconds per step of the report (PFMs, TomTom, influence, logos) and in all; the
baseline measured in the same run is the whole report, and the ratio is TomTom's share of it.
Also the implanted factors the filters recover (TomTom best match, q < 0.05).

And the influence against its definition, on the first ``--brute-force-sequences`` windows:
``filter_influence`` (first layer once, the next layer's change as one-channel convs) and the
brute force (one whole forward pass per filter, the filter's output replaced by a hook),
seconds of each, their ratio and the largest difference.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from dnacnn.data.motifs import jaspar_collection
from dnacnn.data.simulate_accessibility import simulate_accessibility
from dnacnn.interpret.inputs import dataset_sequences, implanted_motifs
from dnacnn.interpret.matching import tomtom_best_matches
from dnacnn.interpret.filters import filter_motifs
from dnacnn.interpret.influence import filter_influence
from dnacnn.interpret.report import filter_report
from dnacnn.models import Basset, LoadedModel, basset_cell_types, build
from dnacnn.main_run import load_main_config
from dnacnn.registry import load_model

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DNACNN_SHARED_DATA", REPO.parent / "shared" / "data"))
GENOMES = (SHARED_DATA / "grch37_chr20" / "20.fa.gz", REPO / "tests" / "data" / "chr20_sparse.fa.gz")


def quick_model(out: Path, windows: int, steps: int, dataset: Path | None) -> tuple[LoadedModel, Path]:
    """Simulate the main job's task small (unless ``dataset`` is given) and train its Basset
    for ``steps`` steps (0: an untrained Basset, which costs the report the same time)."""
    if dataset is None:
        cfg = load_main_config(REPO / "jobs" / "configs" / "main.yaml")
        genome = next(g for g in GENOMES if g.exists())
        print(f"simulating {windows} windows of the main job's task on {genome}")
        dataset = out / "dataset"
        simulate_accessibility(genome, dataset, tasks=basset_cell_types(),
                               config=replace(cfg.simulate, n_windows=windows))
    train = dataset_sequences(dataset, "train")
    torch.manual_seed(0)
    params = load_main_config(REPO / "jobs" / "configs" / "main.yaml").model.params
    model = build("basset", {**params, "n_tasks": 164})
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    x = torch.from_numpy(train.onehot.copy()).float().permute(0, 2, 1)
    y = torch.from_numpy(train.labels.copy())
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (32,))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"trained a quick Basset: {steps} steps of 32 on {len(x)} windows in "
          f"{time.perf_counter() - t0:.0f} s")
    return LoadedModel(model.eval(), "basset", model.config, basset_cell_types(), 600, "multitask"), dataset


@torch.inference_mode()
def brute_force_influence(model: torch.nn.Module, onehot, labels, means) -> torch.Tensor:
    """The definition, for a Basset with sigmoid tasks: (F, T) mean BCE with each filter's
    output (after the first ReLU) set to its mean, minus the model's; one forward pass per filter."""
    relu = model.conv_tower[2]
    x = torch.from_numpy(onehot.copy()).float().permute(0, 2, 1)  # (N, 4, L)
    y = torch.from_numpy(labels.copy())

    def loss() -> torch.Tensor:  # (T,) mean loss per task
        return torch.nn.functional.binary_cross_entropy_with_logits(model(x), y, reduction="none").mean(0).double()

    base, out = loss(), []
    for f, m in enumerate(means):
        def set_mean(_module, _inputs, output, f=f, m=float(m)):
            output = output.clone()
            output[:, f] = m
            return output
        handle = relu.register_forward_hook(set_mean)
        out.append(loss() - base)
        handle.remove()
    return torch.stack(out)


def compare_influence(loaded: LoadedModel, seqs, n: int) -> None:
    """Seconds of ``filter_influence`` and of the brute force on the same ``n`` windows."""
    onehot, labels = seqs.onehot[:n], seqs.labels[:n]
    means = filter_motifs(loaded.model, seqs.onehot).mean_activation
    t0 = time.perf_counter()
    fast, _ = filter_influence(loaded.model, onehot, labels, loaded.task_type, means)
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = brute_force_influence(loaded.model, onehot, labels, means).numpy()
    slow_s = time.perf_counter() - t0
    print(f"influence, {len(means)} filters x {len(onehot)} windows: filter_influence {fast_s:.1f} s, "
          f"brute force (one forward pass per filter) {slow_s:.1f} s; ratio brute / fast "
          f"{slow_s / fast_s:.1f}; max |difference| {abs(fast - slow).max():.2e} "
          f"(largest |influence| {abs(slow).max():.2e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="registry URI or checkpoint folder (default: train a quick one)")
    parser.add_argument("--dataset", type=Path, help="the model's dataset (without --model: train on it)")
    parser.add_argument("--windows", type=int, default=3000, help="simulated windows (quick model)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (quick model)")
    parser.add_argument("--influence-sequences", type=int, default=300)
    parser.add_argument("--brute-force-sequences", type=int, default=16,
                        help="windows for the influence vs its brute force (0: skip)")
    parser.add_argument("--max-logos", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-interpret-"))
    if args.model:
        loaded, dataset = load_model(args.model), args.dataset
    else:
        loaded, dataset = quick_model(out, args.windows, args.steps, args.dataset)
    seqs = dataset_sequences(dataset, "test")
    jaspar = jaspar_collection()
    tomtom_best_matches(filter_motifs(loaded.model, seqs.onehot[:8]).motifs()[:2], jaspar)  # numba warm-up

    t0 = time.perf_counter()
    summary = filter_report(loaded, seqs, out / "report", targets=jaspar, implanted=implanted_motifs(dataset),
                            influence_sequences=args.influence_sequences, max_logos=args.max_logos)
    whole = time.perf_counter() - t0
    queries = filter_motifs(loaded.model, seqs.onehot).motifs()
    t0 = time.perf_counter()
    tomtom_best_matches(queries, jaspar)
    tomtom = time.perf_counter() - t0
    print(json.dumps({k: summary[k] for k in ("filters", "with_sites", "matched_q_0.05", "significant_q_0.05", "sequences",
                                               "targets", "seconds", "implanted", "recovered",
                                               "recovered_factors") if k in summary}, indent=1))
    print(f"filter report, {summary['filters']} filters over {len(seqs.onehot)} test windows "
          f"(influence on {min(args.influence_sequences, len(seqs.onehot))}): {whole:.1f} s")
    print(f"TomTom alone, {len(queries)} filters x {len(jaspar)} JASPAR matrices: {tomtom:.2f} s; "
          f"ratio TomTom / whole report: {tomtom / whole:.2e}")
    print(f"report: {out / 'report' / 'index.html'}")
    if args.brute_force_sequences and isinstance(loaded.model, Basset) and loaded.task_type != "multiclass":
        compare_influence(loaded, seqs, args.brute_force_sequences)


if __name__ == "__main__":
    main()
