"""The mutant-effect engine: the same numbers as whole windows through the model, for less work."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch import nn

from conftest import FIXTURE_FASTA
from dnacnn.models import (
    Basset,
    BassetConfig,
    MultiScaleCNN,
    MultiScaleConfig,
    RCAverage,
    SimpleCNN,
    SimpleCNNConfig,
    link,
    predict_logits,
    probabilities,
)
from dnacnn.models.prediction import onehot_to_x
from dnacnn.scoring import VariantScorer
from dnacnn.scoring.folded import fold, fold_batch_norm
from dnacnn.scoring.mutant_effect import MutantEffect, changed_positions, ism
from dnacnn.scoring.shared_reference import shared_tower, union_segments
from dnacnn.scoring.tower_map import TowerMap
from dnacnn.sequence import reverse_complement_onehot

L = 120
BASES = np.eye(4, dtype=np.uint8)


def _eval_with_running_stats(model: nn.Module, seed: int) -> nn.Module:
    """Eval mode, batch norm with non-trivial running statistics and affine weights, larger
    weights (so that mutants change the outputs by far more than float rounding)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.rand(n, generator=gen) * 0.6 - 0.3)
            elif isinstance(module, (nn.Conv1d, nn.Linear)):
                module.weight.mul_(3.0)
    return model.eval()


def small_basset(rc_first: bool = False, first_activation: str = "relu") -> nn.Module:
    torch.manual_seed(1)
    config = BassetConfig(seq_len=L, n_tasks=5, conv_filters=(16, 12, 8), conv_widths=(7, 5, 3),
                          pool_widths=(3, 2, 2), hidden_units=(20, 10), hidden_dropouts=(0.1, 0.1),
                          rc_equivariant_first_layer=rc_first, first_activation=first_activation)
    model = _eval_with_running_stats(Basset(config), 1)
    if first_activation == "exp":  # exp of the tripled first-layer weights: logits in the hundreds,
        # where float32 rounding alone exceeds the tests' 1e-5
        with torch.no_grad():
            model.conv_tower[0].weight.div_(4.5)
    return model


def small_simple() -> nn.Module:
    torch.manual_seed(2)
    return _eval_with_running_stats(SimpleCNN(SimpleCNNConfig(seq_len=L, n_tasks=3)), 2)


def small_multiscale() -> nn.Module:
    torch.manual_seed(3)
    config = MultiScaleConfig(seq_len=L, widths=(3, 7), filters=8, dense=(16,), dense_dropouts=(0.1,), n_tasks=3)
    return _eval_with_running_stats(MultiScaleCNN(config), 3)


MODELS = {
    "basset": small_basset,
    "basset_rc_first_conv": lambda: small_basset(rc_first=True),
    "basset_exp_first_layer": lambda: small_basset(first_activation="exp"),
    "simple": small_simple,
    "multiscale": small_multiscale,
    "basset_rc_average": lambda: RCAverage(small_basset()),
}


def random_windows(n: int, seed: int) -> np.ndarray:
    """(n, L, 4) uint8 random one-hot windows, with a few N (all-zero) positions."""
    rng = np.random.default_rng(seed)
    onehot = BASES[rng.integers(0, 4, (n, L))]
    onehot[:, :2] = 0  # past a contig's start
    onehot[rng.integers(0, n, 3), rng.integers(0, L, 3)] = 0
    return onehot


def variant_pairs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ref windows and alt windows: SNVs and MNVs at the centre, near both ends, at N,
    one MNV longer than the first conv's width, an unchanged pair, and two indel-like
    pairs (the alt's flank shifted)."""
    rng = np.random.default_rng(seed)
    ref = random_windows(16, seed)
    alt = ref.copy()
    spans = [(60, 1), (60, 2), (60, 3), (0, 1), (L - 1, 1), (L - 3, 3), (1, 2), (33, 1),
             (60, 1), (90, 4), (5, 1), (40, 12), (59, 2)]
    for i, (start, width) in enumerate(spans):
        alt[i, start:start + width] = BASES[(ref[i, start:start + width].argmax(axis=1) + 1 + rng.integers(0, 3, width)) % 4]
    # row 13 unchanged; rows 14, 15: a deletion and an insertion at the centre
    alt[14, 60:] = np.concatenate([ref[14, 62:], BASES[[0, 1]]])
    alt[15, 61:] = ref[15, 60:-1]
    return ref, alt


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pair_logits_equal_whole_windows(name):
    model = MODELS[name]()
    ref, alt = variant_pairs(7)
    engine = MutantEffect(model)
    assert engine.incremental == (name != "multiscale")
    logits_ref, logits_alt = engine.pair_logits(ref, alt)
    want_ref, want_alt = predict_logits(model, ref), predict_logits(model, alt)
    np.testing.assert_allclose(logits_ref, want_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits_alt - logits_ref, want_alt - want_ref, atol=1e-5, rtol=0)
    assert np.abs(want_alt - want_ref).max() > 1e-3  # the mutants do change the outputs
    np.testing.assert_array_equal(logits_alt[13], logits_ref[13])  # no change, same logits


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("rc", [False, True])
def test_scorer_deltas_equal_the_naive_ones(name, rc):
    model = MODELS[name]()
    ref, alt = variant_pairs(11)
    task_type = "multiclass" if name == "simple" else "multitask"
    scorer = VariantScorer(model, FIXTURE_FASTA, rc=rc, batch_size=5, seq_len=L,
                           tasks=[f"t{i}" for i in range(model.n_tasks)], task_type=task_type)
    got = scorer.score_onehot(ref, alt)
    # naive: every window through the model, then the one prediction path
    windows = [ref, alt] + ([reverse_complement_onehot(ref), reverse_complement_onehot(alt)] if rc else [])
    logits = [predict_logits(model, w) for w in windows]
    probs = [probabilities(task_type, z) for z in logits]
    p_ref, p_alt = np.mean(probs[0::2], axis=0), np.mean(probs[1::2], axis=0)
    logit_delta = np.mean([link(task_type, a) - link(task_type, r) for r, a in zip(logits[0::2], logits[1::2])], axis=0)
    np.testing.assert_allclose(got["p_ref"], p_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["p_alt"], p_alt, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["delta"], p_alt - p_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["logit_delta"], logit_delta, atol=1e-5, rtol=0)
    assert np.abs(p_alt - p_ref).max() > 1e-3


def dense_windows(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference windows of variants a few bases apart, as a dense VCF has them, cut from
    one random sequence (with N stretches, and windows that start before its first base,
    as a contig's first variants have), two at one start (a multi-allelic site), windows
    of a second sequence far away in the coordinates, and one window whose bases are not
    those of its start; alt windows: SNVs and an MNV at the centre."""
    rng = np.random.default_rng(seed)
    sequence = np.concatenate([np.zeros((L, 4), np.uint8), BASES[rng.integers(0, 4, 3 * L)]])  # N before 0
    sequence[L + 50:L + 58] = 0
    starts = np.sort(np.concatenate([rng.integers(0, 2 * L, 30), [37, 37]]))  # index into `sequence`
    ref = np.stack([sequence[s:s + L] for s in starts])
    other_starts = np.array([0, 4, 8, 300, 304, 308])  # a second sequence's: two runs of three
    other = BASES[rng.integers(0, 4, 308 + L)]
    ref = np.concatenate([ref, np.stack([other[s:s + L] for s in other_starts])])
    starts = np.concatenate([starts + (1 << 40) - L, (2 << 40) + other_starts])
    ref[3] = BASES[rng.integers(0, 4, L)]  # not the sequence at its start: run alone
    alt = ref.copy()
    c = L // 2
    alt[:, c] = BASES[(ref[:, c].argmax(axis=1) + 1) % 4]
    alt[5, c:c + 3] = BASES[(ref[5, c:c + 3].argmax(axis=1) + 2) % 4]
    return ref, alt, starts


@pytest.mark.parametrize("name", ["basset", "basset_rc_first_conv", "basset_exp_first_layer", "simple",
                                  "basset_rc_average"])
def test_overlapping_reference_windows_share_their_tower_with_the_same_numbers(name, monkeypatch):
    from dnacnn.scoring import shared_reference

    model = MODELS[name]()
    ref, alt, starts = dense_windows(5)
    engine = MutantEffect(model)
    inner = MutantEffect(model.model) if isinstance(model, RCAverage) else engine
    segments = union_segments(ref, starts)
    assert len(segments) < len(ref) // 3  # shared: a few runs hold most windows
    assert any(3 in rows and len(rows) == 1 for _, rows, _ in segments)  # the odd window runs alone
    columns = []  # input columns each stage's conv runs over
    conv = shared_reference._conv
    monkeypatch.setattr(shared_reference, "_conv", lambda segs, *a: columns.append(
        sum(h.shape[0] for h, _, _ in segs)) or conv(segs, *a))
    # every map of the shared tower is the per-window one (the mutant pass reads them)
    shared = shared_tower(inner.folded.stages, inner._weights_2d, segments, len(ref), L, inner.device)
    assert shared[0].data.shape[0] < 0.25 * len(ref) * L  # held as the unions' maps, not per window
    logits_shared = inner._dense_first(shared, shared[-1].windows().transpose(1, 2).flatten(1))
    stages = inner.folded.stages
    assert columns[0] < 0.25 * len(ref) * L  # the first conv runs over the runs' unions
    if name.startswith("basset"):  # and the second over each pooling phase's
        assert columns[1] < 0.6 * len(ref) * ((L - stages[0].width + 1) // stages[0].pool)
    alone, logits_alone = inner._reference(onehot_to_x(ref, "cpu"))
    assert len(shared) == len(alone)
    for got, want in zip(shared, alone):
        got, want = (m.windows() if isinstance(m, TowerMap) else m for m in (got, want))
        np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits_shared, logits_alone, atol=1e-5, rtol=0)
    # and the pairs' logits are those of unshared windows, their deltas those of whole windows
    logits_ref, logits_alt = engine.pair_logits(ref, alt, starts)
    unshared_ref, unshared_alt = engine.pair_logits(ref, alt)
    np.testing.assert_allclose(logits_ref, unshared_ref, atol=1e-5, rtol=2e-6)
    np.testing.assert_allclose(logits_alt, unshared_alt, atol=1e-5, rtol=2e-6)
    np.testing.assert_allclose(logits_alt - logits_ref, predict_logits(model, alt) - predict_logits(model, ref),
                               atol=1e-5, rtol=0)


def test_the_scorer_shares_the_windows_of_dense_variants(monkeypatch):
    """VariantScorer gives the engine its windows' genome starts: SNVs every 3 bp of the
    fixture genome (both strands with rc) share their towers and score as whole windows do."""
    model = MODELS["basset"]()
    scorer = VariantScorer(model, FIXTURE_FASTA, rc=True, batch_size=64, seq_len=L, tasks=[f"t{i}" for i in range(5)],
                           task_type="multitask")
    pos = np.arange(1_000_000, 1_000_000 + 3 * 40, 3)  # 1-based
    refs = [scorer.genome.fetch("20", int(p) - 1, int(p)) for p in pos]
    alts = ["ACGT"[("ACGT".index(r) + 1) % 4] if r in "ACGT" else "A" for r in refs]
    runs = []
    real = union_segments
    monkeypatch.setattr("dnacnn.scoring.mutant_effect.union_segments",
                        lambda onehot, starts: runs.append(len(real(onehot, starts))) or real(onehot, starts))
    got = scorer.score_columns(["20"] * len(pos), pos, refs, alts)
    assert runs and max(runs) <= 2  # one run per strand of each batch
    from dnacnn.scoring.allele_windows import variant_windows

    ref_w, alt_w = variant_windows(scorer.genome, ["20"] * len(pos), pos - 1, refs, alts, L)
    p = [probabilities("multitask", predict_logits(model, w)) for w in
         (ref_w, alt_w, reverse_complement_onehot(ref_w), reverse_complement_onehot(alt_w))]
    np.testing.assert_allclose(got["delta"], (p[1] + p[3]) / 2 - (p[0] + p[2]) / 2, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["basset", "basset_exp_first_layer", "simple", "multiscale", "basset_rc_average"])
def test_ism_equals_brute_force(name):
    model = MODELS[name]()
    onehot = random_windows(2, 5)
    n_tasks = model.n_tasks
    brute = np.empty((2, L, 4, n_tasks), dtype=np.float32)
    for n in range(2):
        mutants = np.repeat(onehot[n][None], L * 4, axis=0).reshape(L, 4, L, 4)
        mutants[np.arange(L), :, np.arange(L)] = BASES  # mutant (i, b): position i set to base b
        brute[n] = predict_logits(model, mutants.reshape(L * 4, L, 4)).reshape(L, 4, n_tasks)
    np.testing.assert_allclose(ism(model, onehot), brute, atol=1e-5, rtol=0)
    # probabilities of mutant - unmutated window, by task type
    unmutated = probabilities("multiclass", predict_logits(model, onehot))  # (2, T)
    got = ism(model, onehot, task_type="multiclass", diff=True)
    np.testing.assert_allclose(got, probabilities("multiclass", brute) - unmutated[:, None, None, :],
                               atol=1e-5, rtol=0)
    own = onehot.astype(bool)  # each window's own base: no change
    assert np.abs(got[own]).max() < 1e-6


def test_fold_batch_norm_equals_the_two_layers():
    torch.manual_seed(0)
    conv, bn = nn.Conv1d(4, 6, 5), nn.BatchNorm1d(6)
    _eval_with_running_stats(nn.Sequential(conv, bn), 4)
    weight, bias = fold_batch_norm(conv.weight, conv.bias, bn)
    x = torch.randn(3, 4, 30)
    with torch.no_grad():
        np.testing.assert_allclose(torch.nn.functional.conv1d(x, weight, bias), bn(conv(x)), atol=1e-5)


def test_fold_refuses_layouts_it_cannot_recompute_in_part():
    assert fold(small_multiscale()) is None
    folded = fold(small_basset())
    assert [s.pool for s in folded.stages] == [3, 2, 2]
    assert [s.activation for s in folded.stages] == ["relu", "relu", "relu"]
    assert [d.relu for d in folded.dense] == [True, True, False]
    exp_first = fold(small_basset(first_activation="exp"))
    assert [s.activation for s in exp_first.stages] == ["exp", "relu", "relu"]


@pytest.mark.parametrize("name", ["basset", "basset_exp_first_layer"])
def test_bf16_is_close_to_fp32(name):
    model = MODELS[name]()
    ref, alt = variant_pairs(3)
    exact = np.subtract(*MutantEffect(model).pair_logits(alt, ref))
    fast_ref, fast_alt = MutantEffect(model, precision="bf16").pair_logits(ref, alt)
    fast = fast_alt - fast_ref
    scale = np.abs(exact).max()
    assert scale > 0.1
    # bf16 keeps 8 bits of mantissa: through three convs of tripled weights, a few % of the largest delta
    assert np.abs(fast - exact).max() < 0.1 * scale
    assert np.corrcoef(fast.ravel(), exact.ravel())[0, 1] > 0.99
    # the engine's bf16 is the model's own bf16 forward (an exp stage in float32 in both)
    naive_ref = predict_logits(model, ref, precision="bf16")
    assert np.abs(fast_ref - naive_ref).max() < 0.02 * np.abs(naive_ref).max()


def test_scorer_records_mode_and_precision_and_refuses_unknown_ones():
    model = small_basset()
    scorer = VariantScorer(model, FIXTURE_FASTA, seq_len=L, tasks=list("abcde"), precision="bf16")
    meta = scorer.arrow_schema_metadata()
    assert meta[b"dnacnn.mode"] == b"exact" and meta[b"dnacnn.precision"] == b"bf16"
    table = scorer(pa.table({"chrom": ["20"], "pos": [1_000_000], "ref": ["N"], "alt": ["A"]}))
    assert table.schema.metadata[b"dnacnn.precision"] == b"bf16"
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, got 'fp16'"):
        VariantScorer(model, FIXTURE_FASTA, seq_len=L, tasks=list("abcde"), precision="fp16")
    with pytest.raises(ValueError, match="mode 'fast' is not one of exact"):
        VariantScorer(model, FIXTURE_FASTA, seq_len=L, tasks=list("abcde"), mode="fast")


def test_changed_positions_finds_every_differing_position_in_any_layout():
    """The word compare of uint8 windows finds what the per-channel compare finds: SNVs,
    MNVs, N (all-zero) positions, shifted flanks; for float and non-contiguous windows too."""
    ref, alt = variant_pairs(5)
    alt[2, 10] = 0  # an N in the alt
    want = (ref != alt).any(axis=2)
    assert want.sum() > 20
    for a, b in ((ref, alt), (ref[:, ::-1], alt[:, ::-1]), (ref.astype(np.float32), alt.astype(np.float32))):
        np.testing.assert_array_equal(changed_positions(a, b), (a != b).any(axis=2))
    np.testing.assert_array_equal(changed_positions(ref, alt), want)


def test_shared_towers_can_be_switched_off_and_on(monkeypatch):
    """On a CPU windows given their starts share by default; ``share_towers=False`` runs
    each reference window whole (as on a GPU by default), with the same numbers."""
    from dnacnn.scoring import mutant_effect

    model = small_basset()
    ref, alt, starts = dense_windows(5)
    calls = []
    real = mutant_effect.shared_tower
    monkeypatch.setattr(mutant_effect, "shared_tower", lambda *a: calls.append(1) or real(*a))
    shared = MutantEffect(model).pair_logits(ref, alt, starts)
    assert calls
    calls.clear()
    engine = MutantEffect(model, share_towers=False)
    alone = engine.pair_logits(ref, alt, starts)
    assert not calls and not engine.share_towers
    for got, want in zip(alone, shared):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_shared_towers_match_the_cpu_ones(precision):
    """Reference windows sharing their tower on the GPU (off there by default, until measured)
    give the CPU's numbers: fp32 within 1e-5, bf16 within its own error."""
    model = small_basset()
    ref, alt, starts = dense_windows(5)
    cpu = np.subtract(*MutantEffect(model).pair_logits(alt, ref, starts))
    engine = MutantEffect(small_basset().to("cuda"), precision=precision, share_towers=True)
    assert not MutantEffect(small_basset().to("cuda")).share_towers
    got = np.subtract(*engine.pair_logits(alt, ref, starts))
    np.testing.assert_allclose(got, cpu, atol=1e-5 if precision == "fp32" else 0.05 * np.abs(cpu).max(), rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_path_matches_the_cpu_one(precision):
    """fp32 on the GPU is float32 (cuDNN's default TF32 convolutions are off): the exact
    path's 1e-5, the naive forward's too; bf16 within its own error."""
    model = small_basset()
    ref, alt = variant_pairs(13)
    cpu = np.subtract(*MutantEffect(model).pair_logits(alt, ref))
    cuda_model = small_basset().to("cuda")
    engine = MutantEffect(cuda_model, precision=precision)
    assert engine.device.type == "cuda"
    got = np.subtract(*engine.pair_logits(alt, ref))
    tolerance = 1e-5 if precision == "fp32" else 0.05 * np.abs(cpu).max()
    np.testing.assert_allclose(got, cpu, atol=tolerance, rtol=0)
    np.testing.assert_allclose(ism(cuda_model, ref[:1], precision=precision), ism(model, ref[:1]),
                               atol=1e-5 if precision == "fp32" else 0.1, rtol=0)
    if precision == "fp32":
        np.testing.assert_allclose(predict_logits(cuda_model, ref), predict_logits(model, ref), atol=1e-5, rtol=0)
        assert torch.backends.cudnn.allow_tf32  # restored after each call

