"""Overhead of Ray Train: samples/s of a Ray Train worker vs a plain PyTorch loop.

Both sides run the same model, batch size, thread count and training step
(``dnacnn.train.loop.train_epoch``: one-hot -> float, forward, loss, backward,
Adam) on the same synthetic rows. The plain loop iterates numpy batches in
memory; the Ray Train worker iterates its shard of a Ray Dataset
(``get_dataset_shard().iter_batches``) inside a TorchTrainer, with the model
through ``prepare_model``. The first epoch is a warm-up on both sides; the
Ray start-up (fit's wall time less the epochs: worker group, process group,
dataset split) is reported apart. Each
side's samples/s is rows / the median steady epoch (the plain loop runs
before and after the Ray runs, its epochs pooled): robust to a busy machine.

    .venv/bin/python bench/train_overhead.py                       # multiscale, L=200
    .venv/bin/python bench/train_overhead.py --model basset --seq-len 600 --rows 2048
    .venv/bin/python bench/train_overhead.py --ddp-workers 2       # also a 2-worker DDP run

Prints one JSON object: plain and Ray samples/s, their ratio, and timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from dnacnn.data.dataset_io import make_table
from dnacnn.models import build
from dnacnn.train.loop import loss_module, train_epoch

MODELS = ("multiscale", "simple", "basset")  # each with its published / tutorial defaults


def synthetic(rows: int, seq_len: int, n_tasks: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "onehot": np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (rows, seq_len))],  # (N, L, 4)
        "labels": (rng.random((rows, n_tasks)) < 0.5).astype(np.float32),  # (N, T)
    }


def make_model(name: str, seq_len: int, n_tasks: int) -> torch.nn.Module:
    return build(name, {"seq_len": seq_len, "n_tasks": n_tasks})


def plain_loop(args, data) -> dict[str, float]:
    """Single process, no Ray: batches sliced from the numpy arrays."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = make_model(args.model, args.seq_len, args.tasks)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    criterion = loss_module("multitask")
    batches = [{k: v[i:i + args.batch_size] for k, v in data.items()}
               for i in range(0, args.rows, args.batch_size)]
    times = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        train_epoch(model, batches, optimizer, criterion, "multitask", torch.device("cpu"))
        times.append(time.perf_counter() - t0)
    return {"samples_per_s": args.rows / float(np.median(times[1:])), "epoch_s": times}


def _ray_worker(config: dict) -> list[float]:
    import ray.train
    import ray.train.torch

    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    model = ray.train.torch.prepare_model(
        make_model(config["model"], config["seq_len"], config["tasks"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    criterion = loss_module("multitask")
    shard = ray.train.get_dataset_shard("train")
    device = ray.train.torch.get_device()
    times = []
    for _ in range(config["epochs"]):
        t0 = time.perf_counter()
        train_epoch(model, shard.iter_batches(batch_size=config["batch_size"], batch_format="numpy"),
                    optimizer, criterion, "multitask", device)
        times.append(time.perf_counter() - t0)
    return times  # rank 0's is Result.return_value


def ray_loop(args, data, workers: int) -> dict[str, float]:
    """A TorchTrainer with ``workers`` workers, each taking ``batch_size`` rows per step."""
    import tempfile

    import ray
    import ray.data
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    table = make_table(data["onehot"], data["labels"]).select(["onehot", "labels"])
    size = -(-args.rows // 8)
    ds = ray.data.from_arrow([table.slice(i, size) for i in range(0, args.rows, size)])
    config = {k: getattr(args, k) for k in ("threads", "model", "seq_len", "tasks", "epochs",
                                            "batch_size")}
    t0 = time.perf_counter()
    result = TorchTrainer(
        _ray_worker, train_loop_config=config, datasets={"train": ds},
        scaling_config=ScalingConfig(num_workers=workers),
        run_config=RunConfig(name=f"bench-{workers}", storage_path=tempfile.mkdtemp()),
    ).fit()
    wall = time.perf_counter() - t0
    times = result.return_value  # rank 0's epoch times (all ranks step together)
    return {
        "samples_per_s": args.rows / float(np.median(times[1:])),
        "epoch_s": times,
        "fit_wall_s": wall,
        "startup_s": wall - sum(times),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="multiscale")
    parser.add_argument("--seq-len", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="the first is a warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--ddp-workers", type=int, default=0,
                        help="also run an N-worker DDP TorchTrainer (aggregate samples/s)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first is a warm-up)")

    import ray

    data = synthetic(args.rows, args.seq_len, args.tasks)
    plain_before = plain_loop(args, data)
    os.environ.setdefault("DNACNN_PROGRESS", "0")
    ray.init(num_cpus=max(2, args.ddp_workers), include_dashboard=False, log_to_driver=False)
    one = ray_loop(args, data, 1)
    plain_after = plain_loop(args, data)  # again, in case the machine's load changed
    steady = plain_before["epoch_s"][1:] + plain_after["epoch_s"][1:]
    plain = {"samples_per_s": args.rows / float(np.median(steady)),
             "epoch_s": plain_before["epoch_s"] + plain_after["epoch_s"]}
    out = {
        "model": args.model, "seq_len": args.seq_len, "rows": args.rows,
        "batch_size": args.batch_size, "threads": args.threads, "epochs": args.epochs,
        "torch": torch.__version__, "ray": ray.__version__, "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "plain_samples_per_s": round(plain["samples_per_s"], 1),
        "ray_worker_samples_per_s": round(one["samples_per_s"], 1),
        "overhead_ratio_plain_over_ray": round(plain["samples_per_s"] / one["samples_per_s"], 3),
        "ray_startup_s": round(one["startup_s"], 1),
        "plain_epoch_s": [round(t, 2) for t in plain["epoch_s"]],
        "ray_epoch_s": [round(t, 2) for t in one["epoch_s"]],
    }
    if args.ddp_workers > 1:
        ddp = ray_loop(args, data, args.ddp_workers)
        out[f"ddp{args.ddp_workers}_samples_per_s"] = round(ddp["samples_per_s"], 1)
        out[f"ddp{args.ddp_workers}_speedup_over_plain"] = round(
            ddp["samples_per_s"] / plain["samples_per_s"], 3)
    ray.shutdown()
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
