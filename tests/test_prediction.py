"""The one prediction path: scorer, MLflow pyfunc and training evaluation agree for
binary, multitask and multiclass models (task type read from the checkpoint)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from dnacnn import models
from dnacnn.models import SimpleCNN, SimpleCNNConfig, predict_sequences
from dnacnn.genome import Genome
from dnacnn.scoring.scorer import VariantScorer
from dnacnn.sequence import encode_batch
from dnacnn.train.loop import predict_batches

from conftest import FIXTURE_FASTA

L = 60
CASES = {"binary": ["yes"], "multitask": ["a", "b", "c"], "multiclass": ["human", "mouse", "fly", "yeast"]}


def checkpoint(directory, task_type: str, seed: int = 0):
    torch.manual_seed(seed)
    tasks = CASES[task_type]
    model = models.build("simple", dict(seq_len=L, n_tasks=len(tasks), filters=6, width=5,
                                        pool_width=4, hidden_units=8))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    models.save(model.eval(), directory, tasks, task_type=task_type)
    return directory


def random_sequences(n: int, seed: int = 3) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), L)) for _ in range(n)]


@pytest.mark.parametrize("task_type", sorted(CASES))
def test_task_type_is_recorded_and_read_back(tmp_path, task_type):
    directory = checkpoint(tmp_path, task_type)
    assert json.loads((directory / "model.json").read_text())["task_type"] == task_type
    assert models.load(directory).task_type == task_type


def test_save_refuses_an_unknown_task_type(tmp_path):
    model = models.build("simple", dict(seq_len=L, n_tasks=2, filters=4, width=5, hidden_units=8))
    with pytest.raises(ValueError, match="regression"):
        models.save(model, tmp_path, ["a", "b"], task_type="regression")


@pytest.mark.parametrize("task_type", sorted(CASES))
def test_probabilities_follow_the_task_type(tmp_path, task_type):
    loaded = models.load(checkpoint(tmp_path, task_type))
    onehot = encode_batch(random_sequences(7), L)
    prob = models.predict(loaded.model, onehot, loaded.task_type, batch_size=3)
    with torch.no_grad():
        logits = loaded.model(torch.as_tensor(onehot).permute(0, 2, 1).float()).double()
    expected = torch.softmax(logits, 1) if task_type == "multiclass" else torch.sigmoid(logits)
    np.testing.assert_allclose(prob, expected.numpy(), atol=1e-6)
    if task_type == "multiclass":
        np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("task_type", sorted(CASES))
def test_pyfunc_scorer_and_evaluation_agree(tmp_path, mlflow_uri, task_type):
    import mlflow

    from dnacnn import registry

    directory = checkpoint(tmp_path / "ckpt", task_type)
    loaded = models.load(directory)
    seqs = random_sequences(5)
    onehot = encode_batch(seqs, L)
    expected = models.predict(loaded.model, onehot, task_type)

    # MLflow pyfunc, loaded as another team would.
    with mlflow.start_run():
        info = registry.log_pyfunc_model(directory, loaded.tasks, task_type, loaded.seq_len)
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    out = pyfunc.predict(pd.DataFrame({"sequence": seqs}))
    assert list(out.columns) == loaded.tasks
    np.testing.assert_allclose(out.to_numpy(), expected, atol=1e-6)

    # Training's evaluation: the same logits, the same probabilities.
    y, logits, _ = predict_batches(loaded.model, [{"onehot": onehot, "labels": np.zeros_like(expected)}],
                                   len(loaded.tasks), torch.device("cpu"))
    np.testing.assert_allclose(models.probabilities(task_type, logits), expected, atol=1e-6)

    # The variant scorer's p_ref of a window is the same probability.
    scorer = VariantScorer(directory, Genome(FIXTURE_FASTA))
    assert scorer.task_type == task_type
    scores = scorer.score_onehot(onehot, onehot)
    np.testing.assert_allclose(scores["p_ref"], expected, atol=1e-6)


def test_multiclass_deltas_sum_to_zero(tmp_path):
    genome = Genome(FIXTURE_FASTA)
    scorer = VariantScorer(checkpoint(tmp_path, "multiclass"), genome, rc=True)
    rng = np.random.default_rng(0)
    onehot_ref = encode_batch(random_sequences(6, seed=5), L)
    onehot_alt = onehot_ref.copy()
    onehot_alt[:, L // 2] = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, size=6)]
    scores = scorer.score_onehot(onehot_ref, onehot_alt)
    np.testing.assert_allclose(scores["delta"].sum(axis=1), 0.0, atol=1e-6)
    assert np.abs(scores["delta"]).max() > 1e-4  # the mutations do change the classes' odds
    # logit_delta is the log-probability difference, averaged over both strands
    assert np.isfinite(scores["logit_delta"]).all()


def test_fp32_convolutions_hold_tf32_off_while_any_thread_is_inside():
    """cuDNN's TF32 flag is process-wide: a thread leaving its block (the service's /predict)
    must not turn TF32 back on under another still scoring; the flag comes back after the last."""
    import threading

    from dnacnn.models.prediction import fp32_convolutions

    cuda = torch.device("cuda")  # only the flag is touched: no GPU needed
    before = torch.backends.cudnn.allow_tf32
    inside, leave = threading.Event(), threading.Event()

    def other_thread():
        with fp32_convolutions(cuda):
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=other_thread)
    try:
        with fp32_convolutions(cuda):  # this thread first, then the other joins
            assert torch.backends.cudnn.allow_tf32 is False
            worker.start()
            assert inside.wait(10)
        assert torch.backends.cudnn.allow_tf32 is False  # the other thread is still inside
    finally:
        leave.set()
        worker.join(10)
    assert torch.backends.cudnn.allow_tf32 is before
    with fp32_convolutions(torch.device("cpu")):
        assert torch.backends.cudnn.allow_tf32 is before  # off CUDA: nothing changes


def test_predict_sequences_names_the_argument_that_is_not_what_it_takes():
    """A bare string was read letter by letter ('sequence 0 has 1 bases'), a DataFrame by its
    column names ('sequence 0 has 8 bases': the word 'sequence'); seq_len "40" said a 40-base
    sequence had the wrong length; batch_size None was '<' not supported."""
    model = SimpleCNN(SimpleCNNConfig(seq_len=40, n_tasks=2)).eval()
    seqs = ["ACGT" * 10] * 3
    cases = [
        ((seqs[0], 40, 8), "sequences must be a list of DNA strings, got a str"),
        ((pd.DataFrame({"sequence": seqs}), 40, 8), "got a DataFrame (give its 'sequence' column)"),
        ((seqs, "40", 8), "seq_len must be an integer >= 1, got '40'"),
        ((seqs, 40, None), "batch_size must be an integer >= 1, got None"),
        ((seqs, 40, 2.5), "batch_size must be an integer >= 1, got 2.5"),
    ]
    for (given, seq_len, batch_size), said in cases:
        with pytest.raises(ValueError, match=re.escape(said)):
            predict_sequences(model, given, seq_len, "multitask", batch_size=batch_size)
    assert predict_sequences(model, seqs, 40, "multitask", batch_size=2).shape == (3, 2)
