"""Training report figures (matplotlib, Agg backend): pure functions of history and predictions.

- ``training.png``: the tutorial's 2x2 figure: loss curves, accuracy curves,
  confusion matrix on the test split, prediction score distributions.
- ``roc_pr.png``: ROC and precision-recall curves on the test split.
- ``task_auroc.png``: multitask only, the histogram of per-task test AUROC.

Shapes: ``y`` and ``prob`` are (N, T) test labels and probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import auc, confusion_matrix, precision_recall_curve, roc_curve  # noqa: E402

from dnacnn.train.metrics import per_task_auc  # noqa: E402

MAX_CURVES = 8  # per-task / per-class curves drawn besides the pooled one


def _curve(history: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in history if key in r]
    return [r["epoch"] for r in rows], [r[key] for r in rows]


def _confusion(task_type: str, y: np.ndarray, prob: np.ndarray, tasks: Sequence[str]):
    if task_type == "multiclass":
        labels = list(tasks)
        cm = confusion_matrix(y.argmax(1), prob.argmax(1), labels=list(range(len(tasks))))
    else:  # binary, or multitask pooled over all (row, task) cells
        labels = ["negative", "positive"]
        cm = confusion_matrix((y > 0.5).reshape(-1), (prob > 0.5).reshape(-1), labels=[False, True])
    return cm, labels


def training_figure(
    history: Sequence[dict],
    y: np.ndarray,
    prob: np.ndarray,
    task_type: str,
    tasks: Sequence[str],
    path: str | Path,
) -> Path:
    """The tutorial's 2x2 figure; written to ``path`` (PNG)."""
    y, prob = np.asarray(y), np.asarray(prob)
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    for ax, metric, title in ((axes[0, 0], "loss", "Loss"), (axes[0, 1], "accuracy", "Accuracy")):
        for split, label in (("train", "Training"), ("val", "Validation")):
            epochs, values = _curve(history, f"{split}_{metric}")
            ax.plot(epochs, values, marker="o", label=f"{label} {metric}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"Training history - {title}")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(title)
        ax.legend()

    cm, labels = _confusion(task_type, y, prob, tasks)
    ax = axes[1, 0]
    ax.imshow(cm, cmap="Blues")
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, str(n), ha="center", va="center",
                color="white" if n > cm.max() / 2 else "black")
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=45 if len(labels) > 2 else 0)
    ax.set_yticks(ticks, labels)
    ax.set_title("Confusion matrix (test)" + (", all tasks pooled" if task_type == "multitask" else ""))
    ax.set_xlabel("Predicted")
    ax.set_ylabel("Actual")

    ax = axes[1, 1]
    bins = np.linspace(0, 1, 51)
    if task_type == "multiclass":  # probability given to the true class, right vs wrong rows
        p_true = prob[np.arange(len(y)), y.argmax(1)]
        right = prob.argmax(1) == y.argmax(1)
        groups = (("Correctly classified", p_true[right]), ("Misclassified", p_true[~right]))
        ax.set_xlabel("Probability of the true class")
    else:
        positive = y > 0.5
        groups = (("Negative", prob[~positive]), ("Positive", prob[positive]))
        ax.set_xlabel("Prediction score")
    for label, values in groups:
        if len(values):
            ax.hist(values, bins=bins, alpha=0.7, label=label, density=True)
    ax.set_title("Prediction score distribution (test)")
    ax.set_ylabel("Density")
    ax.legend()
    return _save(fig, path)


def roc_pr_figure(
    y: np.ndarray, prob: np.ndarray, task_type: str, tasks: Sequence[str], path: str | Path
) -> Path:
    """ROC and precision-recall curves: the task (binary), or the pooled cells plus
    up to ``MAX_CURVES`` tasks or classes (one-vs-rest)."""
    y, prob = np.asarray(y) > 0.5, np.asarray(prob, dtype=np.float64)
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(13, 5.5))
    curves = []
    if task_type == "binary":
        curves.append((tasks[0], y[:, 0], prob[:, 0], 2.0))
    else:
        curves.append(("all cells pooled" if task_type == "multitask" else "micro-average",
                       y.reshape(-1), prob.reshape(-1), 2.5))
        for t in range(min(len(tasks), MAX_CURVES)):
            curves.append((tasks[t], y[:, t], prob[:, t], 1.0))
    for name, yt, pt, width in curves:
        if yt.all() or not yt.any():
            continue  # one class only: no curve
        fpr, tpr, _ = roc_curve(yt, pt)
        precision, recall, _ = precision_recall_curve(yt, pt)
        ax_roc.plot(fpr, tpr, lw=width, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax_pr.plot(recall, precision, lw=width, label=f"{name} (AP {_ap(yt, pt):.3f})")
    ax_roc.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax_roc.set(title="ROC (test)", xlabel="False positive rate", ylabel="True positive rate")
    ax_pr.set(title="Precision-recall (test)", xlabel="Recall", ylabel="Precision")
    for ax in (ax_roc, ax_pr):
        ax.legend(fontsize=8, loc="lower right" if ax is ax_roc else "lower left")
    return _save(fig, path)


def _ap(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p))


def task_auroc_histogram(y: np.ndarray, prob: np.ndarray, path: str | Path) -> Path:
    """Histogram of per-task test AUROC (tasks with one class are left out and counted)."""
    auroc, _ = per_task_auc(y, prob)
    scored = auroc[~np.isnan(auroc)]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.hist(scored, bins=np.linspace(0.4, 1.0, 31), color="tab:blue", alpha=0.8)
    if len(scored):
        ax.axvline(scored.mean(), color="k", ls="--", label=f"mean {scored.mean():.3f}")
        ax.legend()
    skipped = len(auroc) - len(scored)
    ax.set_title(f"Per-task AUROC (test), {len(scored)} tasks"
                 + (f", {skipped} with one class skipped" if skipped else ""))
    ax.set_xlabel("AUROC")
    ax.set_ylabel("Tasks")
    return _save(fig, path)


def report_figures(
    out_dir: str | Path,
    history: Sequence[dict],
    y: np.ndarray,
    prob: np.ndarray,
    task_type: str,
    tasks: Sequence[str],
) -> list[Path]:
    """Write every figure of a run into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        training_figure(history, y, prob, task_type, tasks, out / "training.png"),
        roc_pr_figure(y, prob, task_type, tasks, out / "roc_pr.png"),
    ]
    if task_type == "multitask":
        paths.append(task_auroc_histogram(y, prob, out / "task_auroc.png"))
    return paths


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
