"""Losses and classification metrics on numpy arrays: pure functions, no torch, no Ray.

Shapes used throughout:
    y       (N, T) float labels in the order of the dataset's tasks
            (binary: T = 1; multitask: 0/1 per task; multiclass: one-hot over T classes)
    logits  (N, T) float model outputs (no sigmoid / softmax)
    prob    (N, T) float probabilities: sigmoid(logits) for binary and multitask,
            softmax(logits) over T for multiclass

Labels are read as positive when > 0.5. AUROC and AUPRC (average precision)
are undefined for a task whose labels are all one class: such tasks are
skipped, counted in ``tasks_skipped``, and their per-task value is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    classification_report,
    confusion_matrix,
    roc_auc_score,
)

from dnacnn.models.prediction import probabilities
from dnacnn.tasks import TASK_TYPES



def metric_names(task_type: str) -> list[str]:
    """Keys of :func:`evaluate` (without prefix) for ``task_type``."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type {task_type!r} is not one of {TASK_TYPES}")
    if task_type == "binary":
        return ["loss", "accuracy", "precision", "recall", "auroc", "auprc"]
    return ["loss", "accuracy", "auroc", "auprc", "tasks_scored", "tasks_skipped"]


def _check(task_type: str, y: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type {task_type!r} is not one of {TASK_TYPES}")
    y = np.asarray(y, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if other.ndim == 1:
        other = other[:, None]
    if y.shape != other.shape:
        raise ValueError(f"labels {y.shape} and predictions {other.shape} differ in shape")
    return y, other


def loss(task_type: str, y: np.ndarray, logits: np.ndarray) -> float:
    """The training loss on a whole set, as torch computes it per batch.

    Binary and multitask: binary cross-entropy with logits, mean over N * T
    (``nn.BCEWithLogitsLoss``). Multiclass: cross-entropy with one-hot (or
    soft) targets, mean over N (``nn.CrossEntropyLoss``).
    """
    y, logits = _check(task_type, y, logits)
    if len(y) == 0:
        return math.nan
    if task_type == "multiclass":
        z = logits - logits.max(axis=1, keepdims=True)
        log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-(y * log_softmax).sum(axis=1).mean())
    # log(1 + exp(-|x|)) form: stable for large |x|.
    per = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    return float(per.mean())


def accuracy(task_type: str, y: np.ndarray, prob: np.ndarray) -> float:
    """Binary / multitask: share of (row, task) cells right at threshold 0.5.
    Multiclass: share of rows whose argmax is the true class."""
    y, prob = _check(task_type, y, prob)
    if len(y) == 0:
        return math.nan
    if task_type == "multiclass":
        return float((prob.argmax(axis=1) == y.argmax(axis=1)).mean())
    return float(((prob > 0.5) == (y > 0.5)).mean())


def per_task_auc(y: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and AUPRC of each column; NaN where the column's labels are one class.

    Args:
        y: (N, T) labels; prob: (N, T) scores.
    Returns:
        auroc (T,), auprc (T,) float64.
    """
    y = np.asarray(y) > 0.5
    prob = np.asarray(prob, dtype=np.float64)
    if y.ndim == 1:
        y, prob = y[:, None], prob[:, None]
    n_tasks = y.shape[1]
    auroc = np.full(n_tasks, np.nan)
    auprc = np.full(n_tasks, np.nan)
    for t in range(n_tasks):
        positives = int(y[:, t].sum())
        if 0 < positives < len(y):
            auroc[t] = roc_auc_score(y[:, t], prob[:, t])
            auprc[t] = average_precision_score(y[:, t], prob[:, t])
    return auroc, auprc


def binary_metrics(y: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """accuracy, precision, recall, auroc, auprc of one task.

    Args:
        y: (N,) or (N, 1) labels; prob: the same shape, P(positive).
    Precision with no predicted positive is 0 (sklearn's ``zero_division=0``).
    """
    y = (np.asarray(y) > 0.5).reshape(-1)
    prob = np.asarray(prob, dtype=np.float64).reshape(-1)
    pred = prob > threshold
    tp = int((pred & y).sum())
    auroc, auprc = per_task_auc(y[:, None], prob[:, None])
    return {
        "accuracy": float((pred == y).mean()) if len(y) else math.nan,
        "precision": tp / int(pred.sum()) if pred.any() else 0.0,
        "recall": tp / int(y.sum()) if y.any() else 0.0,
        "auroc": float(auroc[0]),
        "auprc": float(auprc[0]),
    }


def multitask_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Mean AUROC / AUPRC over the tasks that have both classes, and counts.

    Returns:
        accuracy (over all cells), auroc, auprc (means over scored tasks; NaN if
        none), tasks_scored, tasks_skipped.
    """
    auroc, auprc = per_task_auc(y, prob)
    scored = ~np.isnan(auroc)
    return {
        "accuracy": accuracy("multitask", y, prob),
        "auroc": float(auroc[scored].mean()) if scored.any() else math.nan,
        "auprc": float(auprc[scored].mean()) if scored.any() else math.nan,
        "tasks_scored": int(scored.sum()),
        "tasks_skipped": int((~scored).sum()),
    }


def multiclass_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Accuracy, and macro one-vs-rest AUROC / AUPRC over the classes present in ``y``."""
    out = multitask_metrics(y, prob)  # one-vs-rest per class
    out["accuracy"] = accuracy("multiclass", y, prob)
    return out


def evaluate(task_type: str, y: np.ndarray, logits: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Loss and the metrics of ``task_type`` on a whole set.

    Args:
        task_type: "binary", "multitask" or "multiclass".
        y: (N, T) labels; logits: (N, T) model outputs.
        prefix: prepended to every key, e.g. "val_".
    Returns:
        {prefix + "loss", prefix + "accuracy", ...}: floats (NaN where undefined).
    """
    y, logits = _check(task_type, y, logits)
    prob = probabilities(task_type, logits)
    if task_type == "binary":
        metrics = binary_metrics(y, prob)
    elif task_type == "multitask":
        metrics = multitask_metrics(y, prob)
    else:
        metrics = multiclass_metrics(y, prob)
    metrics = {"loss": loss(task_type, y, logits), **metrics}
    return {prefix + k: v for k, v in metrics.items()}


def classification_summary(task_type: str, y: np.ndarray, prob: np.ndarray, tasks: list[str]) -> dict:
    """The tutorial's test-set summary: classification report and confusion matrix.

    Args:
        y: (N, T) labels; prob: (N, T) probabilities; tasks: T names.
    Returns:
        {"classification_report": text, "report": sklearn's dict,
         "confusion_matrix": list of lists (rows = actual, columns = predicted),
         "labels": the class names of those rows / columns,
         "per_task": {task: {"auroc", "auprc", "positives"}} (multitask and multiclass)}.
        Multitask confusion matrices are pooled over all (row, task) cells.
    """
    y, prob = _check(task_type, y, prob)
    if task_type == "multiclass":
        true, pred, names = y.argmax(axis=1), prob.argmax(axis=1), list(tasks)
        labels = list(range(len(tasks)))
    else:
        true = (y > 0.5).astype(int).reshape(-1)
        pred = (prob > 0.5).astype(int).reshape(-1)
        names = ["negative", "positive"]
        labels = [0, 1]
    out: dict = {
        "classification_report": classification_report(
            true, pred, labels=labels, target_names=names, zero_division=0
        ),
        "report": classification_report(
            true, pred, labels=labels, target_names=names, zero_division=0, output_dict=True
        ),
        "confusion_matrix": confusion_matrix(true, pred, labels=labels).tolist(),
        "labels": names,
    }
    if task_type != "binary":
        auroc, auprc = per_task_auc(y, prob)
        positives = (y > 0.5).sum(axis=0)
        out["per_task"] = {
            task: {"auroc": _none_if_nan(a), "auprc": _none_if_nan(p), "positives": int(n)}
            for task, a, p, n in zip(tasks, auroc, auprc, positives)
        }
    return out


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)
