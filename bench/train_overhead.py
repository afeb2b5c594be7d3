"""Overhead of Ray Train: samples/s of a Ray Train worker vs a plain PyTorch loop.

Both sides run the same model, batch size, thread count, precision and training
step (``dnacnn.train.loop.train_epoch``: one-hot -> float, forward under fp32 or
bf16 autocast, fp32 loss, backward, Adam) on the same synthetic rows. The plain
loop iterates numpy batches in memory; the Ray Train worker iterates its shard of
a Ray Dataset (``get_dataset_shard().iter_batches``) inside a TorchTrainer, with
the model through ``prepare_model``. The first epoch is a warm-up on both sides;
the Ray start-up (fit's wall time less the epochs: worker group, process group,
dataset split) is reported apart. Each side's samples/s is rows / the median
steady epoch (the plain loop runs before and after the Ray run, its epochs
pooled): robust to a busy machine. Each precision is measured in turn.

    .venv/bin/python bench/train_overhead.py                      # Basset, 600 bp, fp32 and bf16
    .venv/bin/python bench/train_overhead.py --ddp-workers 2      # also 2 DDP workers x 1 thread
    .venv/bin/python bench/train_overhead.py --model multiscale --seq-len 200 --tasks 1

Prints one JSON object: per precision, plain and Ray samples/s and their ratio
(goal for Basset: Ray / plain >= 0.8), and timings.
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


def plain_loop(args, data, precision: str) -> dict[str, float]:
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
        train_epoch(model, batches, optimizer, criterion, "multitask", torch.device("cpu"),
                    precision=precision)
        times.append(time.perf_counter() - t0)
    return {"samples_per_s": args.rows / float(np.median(times[1:])), "epoch_s": times}


def _ray_worker(config: dict) -> list[float]:
    import ray.train
    import ray.train.torch

    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    batch_size = config["batch_size"] // ray.train.get_context().get_world_size()
    model = ray.train.torch.prepare_model(
        make_model(config["model"], config["seq_len"], config["tasks"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    criterion = loss_module("multitask")
    shard = ray.train.get_dataset_shard("train")
    device = ray.train.torch.get_device()
    times = []
    for _ in range(config["epochs"]):
        t0 = time.perf_counter()
        train_epoch(model, shard.iter_batches(batch_size=batch_size, batch_format="numpy"),
                    optimizer, criterion, "multitask", device, precision=config["precision"])
        times.append(time.perf_counter() - t0)
    return times  # rank 0's is Result.return_value


def ray_loop(args, data, workers: int, precision: str) -> dict[str, float]:
    """A TorchTrainer with ``workers`` workers of ``threads // workers`` threads; each step
    takes ``batch_size`` rows in all."""
    import tempfile

    import ray
    import ray.data
    from ray.train import LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    table = make_table(data["onehot"], data["labels"]).select(["onehot", "labels"])
    size = -(-args.rows // 8)
    ds = ray.data.from_arrow([table.slice(i, size) for i in range(0, args.rows, size)])
    config = {k: getattr(args, k) for k in ("model", "seq_len", "tasks", "epochs", "batch_size")}
    config.update(precision=precision, threads=max(1, args.threads // workers))
    t0 = time.perf_counter()
    result = TorchTrainer(
        _ray_worker, train_loop_config=config, datasets={"train": ds},
        scaling_config=ScalingConfig(num_workers=workers),
        run_config=RunConfig(name=f"bench-{workers}-{precision}", storage_path=tempfile.mkdtemp(),
                             logging_config=LoggingConfig(log_level="WARNING")),
    ).fit()
    wall = time.perf_counter() - t0
    times = result.return_value  # rank 0's epoch times (all ranks step together)
    return {
        "samples_per_s": args.rows / float(np.median(times[1:])),
        "epoch_s": times,
        "fit_wall_s": wall,
        "startup_s": wall - sum(times),
    }


def measure(args, data, precision: str) -> dict:
    """Plain loop, one Ray Train worker, plain loop again (and DDP if asked) in one precision."""
    plain_before = plain_loop(args, data, precision)
    one = ray_loop(args, data, 1, precision)
    plain_after = plain_loop(args, data, precision)  # again, in case the machine's load changed
    steady = plain_before["epoch_s"][1:] + plain_after["epoch_s"][1:]
    plain = args.rows / float(np.median(steady))
    out = {
        "plain_samples_per_s": round(plain, 1),
        "ray_worker_samples_per_s": round(one["samples_per_s"], 1),
        "ray_over_plain": round(one["samples_per_s"] / plain, 3),
        "ray_startup_s": round(one["startup_s"], 1),
        "plain_epoch_s": [round(t, 2) for t in plain_before["epoch_s"] + plain_after["epoch_s"]],
        "ray_epoch_s": [round(t, 2) for t in one["epoch_s"]],
    }
    if args.ddp_workers > 1:
        ddp = ray_loop(args, data, args.ddp_workers, precision)
        out[f"ddp{args.ddp_workers}_samples_per_s"] = round(ddp["samples_per_s"], 1)
        out[f"ddp{args.ddp_workers}_over_plain"] = round(ddp["samples_per_s"] / plain, 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="basset")
    parser.add_argument("--seq-len", type=int, default=600)
    parser.add_argument("--tasks", type=int, default=164)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per step, all workers")
    parser.add_argument("--epochs", type=int, default=3, help="the first is a warm-up")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads of the plain loop and the 1-worker run (DDP "
                             "workers share them)")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--ddp-workers", type=int, default=0,
                        help="also run an N-worker DDP TorchTrainer (aggregate samples/s)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first is a warm-up)")

    import ray

    data = synthetic(args.rows, args.seq_len, args.tasks)
    os.environ.setdefault("DNACNN_PROGRESS", "0")
    load_before = os.getloadavg()[0]
    ray.init(address="local", num_cpus=max(2, args.ddp_workers), include_dashboard=False,
             log_to_driver=False)
    out = {
        "model": args.model, "seq_len": args.seq_len, "tasks": args.tasks, "rows": args.rows,
        "batch_size": args.batch_size, "threads": args.threads, "epochs": args.epochs,
        "torch": torch.__version__, "ray": ray.__version__, "cpus": os.cpu_count(),
        "machine": platform.machine(),
        **{p: measure(args, data, p) for p in args.precision},
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    ray.shutdown()
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
