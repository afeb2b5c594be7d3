"""The training step: precision (bf16 autocast, fp32 master weights), the LR schedule,
progress lines and what the checkpoint records. No Ray here."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dnacnn.config import TrainConfig
from dnacnn.train.callbacks import EarlyStopping, ReduceLROnPlateau, cosine_lr
from dnacnn.train.loop import bf16_native, loss_module, resolve_precision, train_epoch
from dnacnn.train.run_state import LoopSpec, TrainState, build_model, save_checkpoint
from dnacnn.train.progress import EpochProgress, duration, epoch_line, steps_per_epoch

CPU = torch.device("cpu")


def cpu_flags() -> set[str]:
    path = Path("/proc/cpuinfo")
    return set(path.read_text().split()) if path.is_file() else set()


def motif_batches(n_batches: int = 12, batch: int = 32, length: int = 40, seed: int = 0):
    """Binary task: label 1 when ACGTACGT is planted; numpy batches as Ray hands them."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        codes = rng.integers(0, 4, (batch, length))
        y = (rng.random(batch) < 0.5).astype(np.float32)
        for i in np.flatnonzero(y):
            p = rng.integers(0, length - 8)
            codes[i, p:p + 8] = [0, 1, 2, 3, 0, 1, 2, 3]
        onehot = np.eye(4, dtype=np.uint8)[codes]
        onehot.setflags(write=False)  # Ray's batches are read-only views
        out.append({"onehot": onehot, "labels": y[:, None]})
    return out


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(LoopSpec(
        train=TrainConfig(), model_name="multiscale",
        model_config={"seq_len": 40, "n_tasks": 1, "widths": [9], "filters": 8, "dense": [8],
                      "dense_dropouts": [0.0]},
        task_type="binary", tasks=["motif"]))


def test_bf16_support_is_read_from_the_cpu_flags():
    flags = cpu_flags()
    assert bf16_native(CPU) == bool({"avx512_bf16", "amx_bf16"} & flags)
    assert resolve_precision("auto", CPU) == ("bf16" if bf16_native(CPU) else "fp32")
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU, warn=False) == "bf16"


def test_bf16_asked_for_without_native_support_warns(caplog):
    meta = torch.device("meta")  # a device with no native bf16 on any machine
    with caplog.at_level(logging.WARNING, logger="dnacnn"):
        assert resolve_precision("auto", meta) == "fp32"
        assert not caplog.text
        assert resolve_precision("bf16", meta) == "bf16"
    assert "no native bf16" in caplog.text and "train.precision" in caplog.text


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_step_keeps_fp32_weights_and_learns(precision):
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = loss_module("binary")
    batches = motif_batches()
    first = train_epoch(model, batches, optimizer, criterion, "binary", CPU, precision=precision)
    for _ in range(4):
        last = train_epoch(model, batches, optimizer, criterion, "binary", CPU, precision=precision)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights
    assert all(s["exp_avg"].dtype == torch.float32 for s in optimizer.state.values())
    assert last["train_rows"] == 12 * 32
    assert math.isfinite(last["train_loss"]) and last["train_loss"] < first["train_loss"]
    assert last["train_accuracy"] > 0.75


def test_bf16_and_fp32_steps_agree_closely():
    """One step from the same weights: bf16 autocast moves the weights about as fp32 does."""
    batches = motif_batches(n_batches=1)
    moved = {}
    for precision in ("fp32", "bf16"):
        model = small_model(seed=3)
        before = [p.detach().clone() for p in model.parameters()]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        out = train_epoch(model, batches, optimizer, loss_module("binary"), "binary", CPU,
                          precision=precision)
        moved[precision] = (out["train_loss"],
                            torch.cat([(p.detach() - b).flatten()
                                       for p, b in zip(model.parameters(), before)]))
    assert moved["bf16"][0] == pytest.approx(moved["fp32"][0], rel=0.02)
    cos = torch.nn.functional.cosine_similarity(moved["bf16"][1], moved["fp32"][1], dim=0)
    assert cos > 0.95


def test_schedule_sets_the_lr_of_every_step_and_progress_sees_every_step():
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)
    seen_lr, seen_rows = [], []

    def schedule(i: int) -> float:
        seen_lr.append(0.001 * (i + 1))
        return seen_lr[-1]

    def progress(rows: int, loss) -> None:
        seen_rows.append(rows)
        assert math.isfinite(loss())

    train_epoch(model, motif_batches(n_batches=5), optimizer, loss_module("binary"), "binary",
                CPU, schedule=schedule, progress=progress)
    assert seen_lr == [0.001, 0.002, 0.003, 0.004, 0.005]
    assert optimizer.param_groups[0]["lr"] == 0.005
    assert seen_rows == [32] * 5


def test_cosine_lr_warms_up_then_decays_to_min():
    lrs = [cosine_lr(1.0, 0.01, s, total_steps=100, warmup_steps=10) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # never rises after warm-up
    assert lrs[55] == pytest.approx(0.505)  # half-way: the mean of max and min
    assert lrs[100] == pytest.approx(0.01) and lrs[119] == pytest.approx(0.01)
    assert cosine_lr(1.0, 0.0, 0, total_steps=10) == pytest.approx(1.0)  # no warm-up


def test_train_config_checks_the_new_options():
    assert TrainConfig().precision == "auto" and TrainConfig().lr_schedule == "plateau"
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(epochs=3, warmup_epochs=3)
    from dnacnn.config import from_dict

    with pytest.raises(ValueError, match="train.precision must be one of"):
        from_dict(TrainConfig, {"precision": "fp16"}, "train")


def test_progress_lines_say_step_speed_loss_and_time_left(caplog):
    now = [100.0]
    progress = EpochProgress(epoch=2, epochs=5, steps=10, world_size=2, last_epoch_s=50.0,
                             every_s=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="dnacnn.train.progress"):
        for _ in range(4):
            now[0] += 10.0
            progress(16, lambda: 0.25)
    lines = [r.getMessage() for r in caplog.records]
    # One line after 30 s (step 3), not one per step: 3 steps x 16 rows x 2 ranks in 30 s.
    assert lines == ["epoch 2/5 step 3/10: 3 samples/s, loss 0.2500; 1m10s left in the epoch, "
                     "~3m40s in the run"]
    assert duration(42) == "42s" and duration(185) == "3m05s" and duration(3720) == "1h02m"
    assert duration(math.nan) == "?"
    assert steps_per_epoch(train_rows=1201, world_size=2, batch_per_worker=100) == 6
    row = {"epoch": 3, "train_loss": 0.5, "val_loss": 0.4, "val_auroc": 0.91, "lr": 0.002}
    assert epoch_line(row, epochs=5, epoch_s=60.0, samples_per_s=300.0) == (
        "epoch 3/5 done in 1m00s (300 samples/s): train_loss 0.5000, val_loss 0.4000, "
        "val_auroc 0.9100, lr 0.002; ~2m00s left")


def test_checkpoint_records_the_precision(tmp_path):
    spec = LoopSpec(train=TrainConfig(), model_name="multiscale",
                    model_config={"seq_len": 40, "n_tasks": 1, "widths": [9], "filters": 8,
                                  "dense": [8], "dense_dropouts": [0.0]},
                    task_type="binary", tasks=["motif"], dataset="toy")
    model = build_model(spec)
    optimizer = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path, spec, model, EarlyStopping(2), ReduceLROnPlateau(), optimizer,
                    TrainState(epoch=1), precision="bf16")
    assert json.loads((tmp_path / "task.json").read_text()) == {
        "task_type": "binary", "dataset": "toy", "precision": "bf16"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_steps_on_cuda_learn_with_fp32_weights():
    cuda = torch.device("cuda")
    assert resolve_precision("auto", cuda) == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    model = small_model().to(cuda)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    batches = motif_batches()
    first = train_epoch(model, batches, optimizer, loss_module("binary"), "binary", cuda,
                        precision="bf16")
    for _ in range(4):
        last = train_epoch(model, batches, optimizer, loss_module("binary"), "binary", cuda,
                           precision="bf16")
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
    assert last["train_loss"] < first["train_loss"] and last["train_accuracy"] > 0.75


def test_a_last_batch_of_one_row_does_not_stop_a_batch_norm_model():
    """A shard one row past a multiple of the batch ends in a one-row batch, which batch norm
    cannot train on: it is skipped, the other rows train (Basset has batch norm)."""
    torch.manual_seed(0)
    model = build_model(LoopSpec(
        train=TrainConfig(), model_name="basset",
        model_config={"seq_len": 200, "n_tasks": 2, "conv_filters": [8, 8, 8], "conv_widths": [9, 5, 3],
                      "pool_widths": [2, 2, 2], "hidden_units": [16], "hidden_dropouts": [0.0]},
        task_type="multitask", tasks=["a", "b"]))
    rng = np.random.default_rng(0)
    batches = [{"onehot": np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, 200))],
                "labels": (rng.random((n, 2)) < 0.5).astype(np.float32)} for n in (8, 8, 1)]
    out = train_epoch(model, batches, torch.optim.Adam(model.parameters()), loss_module("multitask"),
                      "multitask", CPU)
    assert math.isfinite(out["train_loss"])
