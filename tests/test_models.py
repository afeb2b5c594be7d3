"""Tests of the model family: shapes, published sizes, strand symmetry, checkpoints, training."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dnacnn.models import (
    MODELS,
    Basset,
    BassetConfig,
    LoadedModel,
    MultiScaleConfig,
    RCAverage,
    RCConv1d,
    basset_cell_types,
    build,
    load,
    reverse_complement_x,
    save,
)
from dnacnn.models.common import Exponential

torch.set_num_threads(1)

# Small configs of each model, for the tests that only need the wiring.
SMALL = {
    "basset": {
        "seq_len": 100,
        "n_tasks": 5,
        "conv_filters": (16, 16, 16),
        "conv_widths": (7, 5, 3),
        "pool_widths": (2, 2, 2),
        "hidden_units": (32, 32),
    },
    "multiscale": {"seq_len": 60, "widths": (3, 7), "filters": 8, "dense": (16, 8), "n_tasks": 3},
    "simple": {"seq_len": 60, "filters": 8, "width": 6, "hidden_units": 16, "n_tasks": 2},
}


def random_x(n: int, length: int, seed: int = 0) -> torch.Tensor:
    """(n, 4, length) float one-hot of uniform random DNA."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=g)
    return F.one_hot(idx, 4).float().transpose(1, 2)


def warm_batch_norm(model: nn.Module, x: torch.Tensor) -> None:
    """Move batch-norm running statistics away from their initial values."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    model.eval()


def test_small_configs_cover_the_table() -> None:
    assert set(SMALL) == set(MODELS)


@pytest.mark.parametrize(
    ("name", "config", "length", "n_tasks"),
    [
        ("basset", {}, 600, 164),
        ("basset", {"seq_len": 1000}, 1000, 164),
        ("multiscale", {}, 200, 1),
        ("multiscale", {"seq_len": 101, "n_tasks": 4}, 101, 4),
        ("simple", {}, 200, 1),
        ("simple", {"seq_len": 500, "n_tasks": 3}, 500, 3),
    ],
)
def test_output_shapes(name: str, config: dict, length: int, n_tasks: int) -> None:
    torch.manual_seed(0)
    model = build(name, config).eval()
    with torch.no_grad():
        logits = model(random_x(3, length))
    assert logits.shape == (3, n_tasks)
    assert logits.dtype == torch.float32
    assert model.name == name
    assert model.seq_len == length and model.n_tasks == n_tasks
    assert isinstance(model.config, MODELS[name][1])


def test_multiscale_accepts_other_lengths() -> None:
    model = build("multiscale", SMALL["multiscale"]).eval()
    for length in (25, 60, 137):
        assert model(random_x(2, length)).shape == (2, 3)


@pytest.mark.parametrize("name", ["basset", "simple"])
def test_fixed_length_models_reject_other_lengths(name: str) -> None:
    model = build(name, SMALL[name]).eval()
    with pytest.raises(ValueError, match="seq_len=80"):
        model(random_x(2, 80))


@pytest.mark.parametrize("name", list(MODELS))
def test_models_reject_length_major_input(name: str) -> None:
    model = build(name, SMALL[name]).eval()
    with pytest.raises(ValueError, match="transpose"):
        model(random_x(2, model.seq_len).transpose(1, 2))


def test_basset_published_parameter_count() -> None:
    model = build("basset")
    conv_dense = sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, (nn.Conv1d, nn.Linear))
        for p in m.parameters()
    )
    batch_norm = sum(
        p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm1d) for p in m.parameters()
    )
    expected = (
        4 * 300 * 19 + 300
        + 300 * 200 * 11 + 200
        + 200 * 200 * 7 + 200
        + 2000 * 1000 + 1000
        + 1000 * 1000 + 1000
        + 1000 * 164 + 164
    )  # fmt: skip
    assert expected == 4_129_664
    assert conv_dense == 4_129_664
    assert batch_norm == 2 * (300 + 200 + 200 + 1000 + 1000)
    assert sum(p.numel() for p in model.parameters()) == conv_dense + batch_norm
    assert model.config.conv_output_length == 10
    assert model.dense[0].in_features == 2000


def test_basset_too_short_raises() -> None:
    assert BassetConfig().min_seq_len == 168
    BassetConfig(seq_len=168)
    with pytest.raises(ValueError, match="seq_len >= 168"):
        BassetConfig(seq_len=167)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("widths", [(3, 7, 15, 25), (2, 4, 9)])
def test_multiscale_attention(widths: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build("multiscale", {"widths": widths, "filters": 8, "seq_len": 101}).eval()
    x = random_x(5, 101)
    with torch.no_grad():
        logits, attention = model(x, return_attention=True)
        plain = model(x)
    assert torch.equal(logits, plain)
    assert list(attention) == list(widths)
    for weights in attention.values():
        assert weights.shape == (5, 101)
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(5))


def test_multiscale_attention_pooling_max_and_sum(tmp_path) -> None:
    torch.manual_seed(0)
    x = random_x(5, 40)
    params = {"widths": (5,), "filters": 6, "seq_len": 40, "dense": (8,), "dense_dropouts": (0.0,)}
    for pooling in ("max", "sum"):
        model = build("multiscale", {**params, "attention_pooling": pooling})
        warm_batch_norm(model, x)
        branch = model.branches[0]
        with torch.no_grad():
            h = branch.bn(torch.relu(branch.conv(x)))  # (N, F, L), eval: no dropout
            scores = branch.score(h.transpose(1, 2)).squeeze(2)  # (N, L)
            features, attention = branch(x)
        if pooling == "max":  # tanh-bounded scores, max over weight x map
            weights = torch.softmax(torch.tanh(scores), 1)
            expected = (h * weights[:, None]).amax(2)
        else:  # unbounded scores, sum over positions of weight x map
            weights = torch.softmax(scores, 1)
            expected = (h * weights[:, None]).sum(2)
        torch.testing.assert_close(attention, weights)
        torch.testing.assert_close(features, expected)
    with pytest.raises(ValueError, match="attention_pooling must be one of max, sum"):
        MultiScaleConfig(attention_pooling="mean")
    # A checkpoint saved before the field existed loads with the pooling it was trained with.
    model = build("multiscale", {**params, "attention_pooling": "max"})
    warm_batch_norm(model, x)
    save(model, tmp_path, ["t"], task_type="binary")
    meta = json.loads((tmp_path / "model.json").read_text())
    del meta["config"]["attention_pooling"]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded = load(tmp_path)
    assert loaded.config.attention_pooling == "max"
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))


@pytest.mark.parametrize("name", list(MODELS))
def test_rc_average_is_strand_invariant(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, SMALL[name])
    x = random_x(8, model.seq_len)
    warm_batch_norm(model, x)
    wrapped = RCAverage(model).eval()
    x_rc = reverse_complement_x(x)
    with torch.no_grad():
        assert (model(x) - model(x_rc)).abs().max() > 1e-4  # the bare model is not invariant
        assert (wrapped(x) - wrapped(x_rc)).abs().max() < 1e-6
        torch.testing.assert_close(wrapped(x), (model(x) + model(x_rc)) / 2)
    assert wrapped.name == name and wrapped.n_tasks == model.n_tasks


def test_reverse_complement_x() -> None:
    # ACGTT -> AACGT
    x = F.one_hot(torch.tensor([[0, 1, 2, 3, 3]]), 4).float().transpose(1, 2)
    expected = F.one_hot(torch.tensor([[0, 0, 1, 2, 3]]), 4).float().transpose(1, 2)
    assert torch.equal(reverse_complement_x(x), expected)


def test_rc_conv1d_is_equivariant() -> None:
    torch.manual_seed(0)
    layer = RCConv1d(n_filters=5, width=7)
    x = torch.randn(3, 4, 50)
    out = layer(x)  # (3, 10, 44)
    assert out.shape == (3, 10, 44)
    swapped = torch.cat([out[:, 5:], out[:, :5]], dim=1).flip(2)
    torch.testing.assert_close(layer(reverse_complement_x(x)), swapped, atol=1e-6, rtol=0)
    assert sum(p.numel() for p in layer.parameters()) == 5 * 4 * 7 + 5


@pytest.mark.parametrize("name", ["basset", "simple"])
def test_rc_equivariant_first_layer(name: str) -> None:
    torch.manual_seed(0)
    config = {**SMALL[name], "rc_equivariant_first_layer": True}
    model = build(name, config).eval()
    first = model.conv_tower[0] if name == "basset" else model.conv
    filters = config["conv_filters"][0] if name == "basset" else config["filters"]
    assert isinstance(first, RCConv1d) and first.n_filters == filters // 2
    assert model(random_x(2, model.seq_len)).shape == (2, model.n_tasks)
    key, odd = ("conv_filters", (15, 16, 16)) if name == "basset" else ("filters", 15)
    with pytest.raises(ValueError, match="even"):
        build(name, {**config, key: odd})


def test_basset_exponential_first_activation(tmp_path) -> None:
    """first_activation="exp": exp(x) after the first conv block's batch norm (the other blocks
    keep ReLU); saved and loaded with the checkpoint; the published default stays ReLU."""
    torch.manual_seed(0)
    assert isinstance(build("basset", SMALL["basset"]).conv_tower[2], nn.ReLU)
    model = build("basset", {**SMALL["basset"], "first_activation": "exp"}).eval()
    assert isinstance(model.conv_tower[2], Exponential) and isinstance(model.conv_tower[6], nn.ReLU)
    x = random_x(3, model.seq_len)
    with torch.no_grad():
        first = model.conv_tower[3](torch.exp(model.conv_tower[1](model.conv_tower[0](x))))
        torch.testing.assert_close(model.conv_tower[:4](x), first)
        out = model(x)
    save(model, tmp_path / "ckpt", [f"t{i}" for i in range(model.n_tasks)], task_type="multitask")
    loaded = load(tmp_path / "ckpt")
    assert loaded.model.config.first_activation == "exp"
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), out)
    # Under bf16 autocast the exponential block runs in float32 at inference, in bf16 in training.
    seen = []
    hook = model.conv_tower[3].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model.eval()(x)
        model.train()(x)
    hook.remove()
    assert seen == [torch.float32, torch.bfloat16]
    with pytest.raises(ValueError, match="first_activation 'gelu' is not one of relu, exp"):
        build("basset", {**SMALL["basset"], "first_activation": "gelu"})


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_round_trip(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = build(name, SMALL[name])
    x = random_x(6, model.seq_len)
    warm_batch_norm(model, x)
    tasks = [f"task_{i}" for i in range(model.n_tasks)]
    save(model, tmp_path / "ckpt", tasks, task_type="multitask")

    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "model.json",
        "model.safetensors",
    ]
    meta = json.loads((tmp_path / "ckpt" / "model.json").read_text())
    assert meta["format"] == "dnacnn-model/1"
    assert meta["name"] == name
    assert meta["tasks"] == tasks
    assert meta["seq_len"] == model.seq_len
    assert meta["rc_average"] is False

    loaded = load(tmp_path / "ckpt")
    assert isinstance(loaded, LoadedModel)
    assert not loaded.model.training
    assert (loaded.name, loaded.tasks, loaded.seq_len) == (name, tasks, model.seq_len)
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))


def test_save_load_rc_average(tmp_path) -> None:
    torch.manual_seed(0)
    model = build("basset", SMALL["basset"])
    x = random_x(4, 100)
    warm_batch_norm(model, x)
    wrapped = RCAverage(model).eval()
    save(wrapped, tmp_path, [f"t{i}" for i in range(5)], task_type="multitask")
    assert json.loads((tmp_path / "model.json").read_text())["rc_average"] is True
    loaded = load(tmp_path)
    assert loaded.rc_average and isinstance(loaded.model, RCAverage)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), wrapped(x))


def test_save_rejects_wrong_task_count(tmp_path) -> None:
    model = build("simple", SMALL["simple"])
    with pytest.raises(ValueError, match="2 outputs"):
        save(model, tmp_path, ["only_one"], task_type="multitask")
    with pytest.raises(ValueError, match="distinct"):
        save(model, tmp_path, ["same", "same"], task_type="multitask")


def test_load_rejects_other_formats(tmp_path) -> None:
    save(build("simple", SMALL["simple"]), tmp_path, ["a", "b"], task_type="multitask")
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**meta, "format": "other/9"}))
    with pytest.raises(ValueError, match="dnacnn-model/1"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")


def _broken_checkpoints(tmp_path):
    """(name, folder, what the error must say) for broken copies of one good checkpoint."""
    good = tmp_path / "good"
    save(build("simple", SMALL["simple"]), good, ["a", "b"], task_type="multitask")
    meta = json.loads((good / "model.json").read_text())
    weights = (good / "model.safetensors").read_bytes()
    cases = []

    def copy(name: str, json_text: str | None = None, weight_bytes: bytes | None = None):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps(meta) if json_text is None else json_text)
        (folder / "model.safetensors").write_bytes(weights if weight_bytes is None else weight_bytes)
        return folder

    cases.append((copy("truncated", weight_bytes=weights[:-10]), "model.safetensors", "truncated"))
    cases.append((copy("header-only", weight_bytes=weights[:100]), "model.safetensors", "truncated"))
    cases.append((copy("empty-weights", weight_bytes=b""), "model.safetensors", "not a whole safetensors file"))
    cases.append((copy("trailing", weight_bytes=weights + b"junk"), "model.safetensors", "the file"))
    cases.append((copy("pickle", weight_bytes=b"\x80\x04\x95" + bytes(200)), "model.safetensors",
                  "not a whole safetensors file"))
    import struct

    for name, offsets in (("one-offset", [4]), ("three-offsets", [0, 4, 8]), ("text-offset", [0, "4"])):
        # Were "not enough values to unpack" (no file named) or a TypeError traceback.
        header = json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": offsets}}).encode()
        cases.append((copy(name, weight_bytes=struct.pack("<Q", len(header)) + header + bytes(4)),
                      "model.safetensors", "data_offsets are not two byte offsets"))
    cases.append((copy("not-json", json_text="{name: simple"), "model.json", "not JSON"))
    cases.append((copy("no-config", json_text=json.dumps({k: v for k, v in meta.items() if k != "config"})),
                  "model.json", "'config' is missing"))
    cases.append((copy("task-names", json_text=json.dumps({**meta, "tasks": [1, 2]})), "model.json", "tasks"))
    cases.append((copy("task-type", json_text=json.dumps({**meta, "task_type": "regression"})), "model.json",
                  "regression"))
    cases.append((copy("bad-config", json_text=json.dumps({**meta, "config": {**meta["config"], "filters": "x"}})),
                  "model.json", "cannot build"))
    # model.json at odds with itself: found after Ray had started, or (rc_average "false"
    # read as true, duplicate task names) not at all.
    config = meta["config"]
    cases.append((copy("unknown-name", json_text=json.dumps({**meta, "name": "resnet"})), "model.json",
                  "unknown model 'resnet'"))
    cases.append((copy("more-tasks", json_text=json.dumps({**meta, "tasks": ["a", "b", "c"]})), "model.json",
                  "inconsistent: its config has n_tasks=2, its tasks say 3"))
    cases.append((copy("no-tasks", json_text=json.dumps({**meta, "tasks": []})), "model.json", "non-empty"))
    cases.append((copy("same-tasks", json_text=json.dumps({**meta, "tasks": ["a", "a"]})), "model.json", "distinct"))
    cases.append((copy("empty-config", json_text=json.dumps({**meta, "config": {}})), "model.json",
                  "its config has seq_len=None"))
    cases.append((copy("seq-len-0", json_text=json.dumps({**meta, "seq_len": 0, "config": {**config, "seq_len": 0}})),
                  "model.json", "'seq_len' must be >= 1"))
    cases.append((copy("rc-string", json_text=json.dumps({**meta, "rc_average": "false"})), "model.json",
                  "'rc_average' must be true or false"))
    from safetensors.torch import load as load_bytes, save as save_bytes

    tensors = load_bytes(weights)
    cases.append((copy("int-weights", weight_bytes=save_bytes({k: v.to(torch.int64) for k, v in tensors.items()})),
                  "model.safetensors", "has dtype torch.int64, the model in"))
    # Found when the weights load (torch): integer weights were cast silently, NaN weights scored every variant NaN; a config too
    # big for memory was a RuntimeError traceback.
    cases.append((copy("nan-weights", weight_bytes=save_bytes({k: torch.full_like(v, float("nan"))
                                                               for k, v in tensors.items()})),
                  "model.safetensors", "holds NaN or infinite values"))
    huge = {**meta, "seq_len": 10**12, "config": {**config, "seq_len": 10**12}}
    cases.append((copy("huge", json_text=json.dumps(huge)), "model.json", "cannot build its model"))
    other = tmp_path / "other"  # weights of another model beside this model.json
    save(build("simple", {**SMALL["simple"], "n_tasks": 3}), other, ["a", "b", "c"], task_type="multitask")
    cases.append((copy("foreign", weight_bytes=(other / "model.safetensors").read_bytes()), "model.safetensors",
                  "does not hold the weights"))
    return cases


def test_broken_checkpoints_are_refused_by_name_without_torch(tmp_path) -> None:
    """Every broken file is named in one error; the torch-free reader that a job's driver runs
    before Ray starts catches all but weights that do not fit their config."""
    from dnacnn.checkpoint_files import read_checkpoint_meta

    for folder, file_name, said in _broken_checkpoints(tmp_path):
        with pytest.raises(ValueError) as err:
            load(folder)
        message = str(err.value)
        assert str(folder / file_name) in message and said in message, (folder.name, message)
        assert "\n" not in message
        if folder.name not in ("bad-config", "foreign", "int-weights", "nan-weights", "huge"):
            with pytest.raises(ValueError, match=said):
                read_checkpoint_meta(folder)
    assert read_checkpoint_meta(tmp_path / "good")["name"] == "simple"


def test_the_torch_free_reader_knows_the_family() -> None:
    from dnacnn.checkpoint_files import MODEL_NAMES

    assert set(MODEL_NAMES) == set(MODELS)


def test_build_validates_configs() -> None:
    with pytest.raises(ValueError, match="'conv_filter'.*allowed keys: seq_len"):
        build("basset", {"conv_filter": (10, 10, 10)})
    with pytest.raises(ValueError, match="basset, multiscale, simple|'basset', 'multiscale'"):
        build("resnet", {})
    with pytest.raises(TypeError, match="BassetConfig"):
        build("basset", MultiScaleConfig())
    with pytest.raises(ValueError, match="one entry per layer"):
        build("basset", {"conv_widths": (19, 11)})
    # Lists (as read from YAML or JSON) become tuples.
    model = build("basset", {**SMALL["basset"], "conv_filters": [16, 16, 16]})
    assert model.config == BassetConfig(**SMALL["basset"])
    assert isinstance(build("basset", BassetConfig(**SMALL["basset"])), Basset)


def test_basset_cell_types() -> None:
    names = basset_cell_types()
    assert len(names) == BassetConfig().n_tasks == 164
    assert len(set(names)) == 164
    assert names[0] == "8988T"
    assert all(n and n == n.strip() for n in names)


def fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, lr: float, steps: int = 20
) -> list[float]:
    """Adam steps on one fixed batch; returns the training loss of each step."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


# Dropout off, so that the loss on a fixed batch follows the optimiser alone.
NO_DROPOUT = {
    "basset": {"hidden_dropouts": (0.0, 0.0)},
    "multiscale": {"branch_dropout": 0.0, "dense_dropouts": (0.0, 0.0)},
    "simple": {"conv_dropout": 0.0, "hidden_dropout": 0.0},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_training_lowers_the_loss(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, {**SMALL[name], **NO_DROPOUT[name]})
    x = random_x(16, model.seq_len, seed=1)
    if name == "multiscale":  # 3 classes: a softmax over the logits
        y = torch.randint(0, 3, (16,))
        losses = fit(model, x, y, F.cross_entropy, lr=3e-3)
    else:  # independent binary tasks
        y = torch.randint(0, 2, (16, model.n_tasks)).float()
        losses = fit(model, x, y, F.binary_cross_entropy_with_logits, lr=3e-3)
    assert losses[-1] < 0.9 * losses[0]


def test_published_basset_trains_at_600_bp() -> None:
    torch.manual_seed(0)
    model = build("basset")  # published shapes, dropout included
    x = random_x(2, 600, seed=2)
    y = torch.randint(0, 2, (2, 164)).float()
    losses = fit(model, x, y, F.binary_cross_entropy_with_logits, lr=1e-3)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_load_onto_gpu(tmp_path) -> None:
    torch.manual_seed(0)
    model = build("basset", SMALL["basset"])
    x = random_x(4, 100)
    warm_batch_norm(model, x)
    save(model, tmp_path, [f"t{i}" for i in range(5)], task_type="multitask")
    loaded = load(tmp_path, map_location="cuda")
    assert next(loaded.model.parameters()).is_cuda
    with torch.no_grad():
        on_gpu = loaded.model(x.cuda()).cpu()
    torch.testing.assert_close(on_gpu, model(x), rtol=1e-3, atol=1e-3)  # TF32 convolutions
