"""Does ``torch.compile`` speed up a training step? The main job's Basset, compiled against eager.

    PYTHONPATH=platform .venv/bin/python bench/train_compile.py [--threads 1] [--batch 32]

One process, one worker's share of the main job's step: the tower of jobs/configs/main.yaml
(164 tasks, 600 bp), bf16 autocast, Adam, batches of ``--batch`` random windows. The two
models start from the same weights; after compiling (timed) and a warm-up, they take turns,
4 rounds of 15 steps each, so that drift in the machine's speed hits both alike. Printed:
samples/s per round and the ratio of the best rounds (compiled / eager).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dnacnn import models
from dnacnn.main_run import load_main_config

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the main job: 1 per worker)")
    parser.add_argument("--batch", type=int, default=32, help="rows per step (the main job: 32 per worker)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = {**load_main_config(REPO / "jobs" / "configs" / "main.yaml").model.params, "n_tasks": 164}
    eager = models.build("basset", params)
    compiled_model = models.build("basset", params)
    compiled_model.load_state_dict(eager.state_dict())
    compiled = torch.compile(compiled_model)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (args.batch, 600)), 4).float().permute(0, 2, 1).contiguous()
    y = (torch.rand(args.batch, 164) < 0.3).float()

    def step(model, opt):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    runs = {"eager": (eager, torch.optim.Adam(eager.parameters(), 1e-3)),
            "compiled": (compiled, torch.optim.Adam(compiled.parameters(), 1e-3))}
    t = time.perf_counter()
    for _ in range(2):
        step(*runs["compiled"])
    print(f"torch.compile and 2 steps: {time.perf_counter() - t:.1f} s")
    for _ in range(3):
        step(*runs["eager"])
    rates = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (model, opt) in runs.items():
            t = time.perf_counter()
            for _ in range(15):
                step(model, opt)
            rates[name].append(15 * args.batch / (time.perf_counter() - t))
    for name, values in rates.items():
        print(f"{name}: {', '.join(f'{v:.0f}' for v in values)} samples/s")
    print(f"compiled / eager (best rounds): {max(rates['compiled']) / max(rates['eager']):.2f}")


if __name__ == "__main__":
    main()
