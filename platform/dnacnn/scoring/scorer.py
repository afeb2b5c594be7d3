"""``VariantScorer``: variant -> ref/alt windows -> predictions -> per-task deltas.

One implementation for every caller: the Python API (:meth:`VariantScorer.score_dataframe`),
the batch job (its shard workers call :meth:`VariantScorer.__call__` on Arrow
tables; the class is also a valid Ray Data ``map_batches`` callable class) and the
HTTP service. The model is passed in: a loaded model, a bare ``nn.Module``, a
checkpoint folder, a registry URI (``models:/NAME@alias``) or a zero-argument
loader; strings are loaded where the scorer is built, so a Ray actor loads its
model once.

Scores, per variant and task t (T tasks, in the model's task order), by the one
prediction path (:mod:`dnacnn.models.prediction`):

- ``p_ref``, ``p_alt``: probabilities on the ref / alt window, by the model's task
  type: a sigmoid per task (binary, multitask) or a softmax over the T classes
  (multiclass; the deltas of one variant then sum to 0);
- ``delta = p_alt - p_ref`` (SAD, as in Basset), in [-1, 1];
- ``logit_delta = link_alt - link_ref``: the logit (log-odds) difference for
  sigmoid tasks, the log-probability difference for multiclass;
- ``max_abs_delta = max_t |delta_t|`` and ``max_task``, the name of that task.

With ``rc=True`` the model also sees the reverse complement of both windows:
``p_ref`` and ``p_alt`` are the **means of the two strands' probabilities**
(not of their logits), ``delta`` is their difference, and ``logit_delta`` is
the mean of the two strands' link differences. Scoring a variant from either
strand then gives the same numbers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import nn

from dnacnn.arguments import check_count, check_flag
from dnacnn.genome import Genome
from dnacnn.models import LoadedModel, link, probabilities, usable_device
from dnacnn.models import load as load_model_folder
from dnacnn.registry.uris import is_model_uri
from dnacnn.tasks import check_task_type
from dnacnn.scoring.allele_windows import variant_windows, window_start
from dnacnn.scoring.mutant_effect import MutantEffect
from dnacnn.scoring.shard_run import scores_metadata
from dnacnn.scoring.shared_reference import reverse_strand_starts
from dnacnn.scoring.variant_tables import append_arrow, assign_pandas, check_dataframe, input_columns, positional_columns
from dnacnn.sequence import reverse_complement_onehot
from dnacnn.variants.alleles import check_allele, contig_text

log = logging.getLogger(__name__)

ModelSpec = Union[LoadedModel, nn.Module, str, os.PathLike, Callable[[], LoadedModel]]

#: How ``VariantScorer`` computes (see its ``mode``).
MODES = ("exact",)


def load_model_spec(
    spec: ModelSpec,
    device: str | torch.device = "cpu",
    tasks: Sequence[str] | None = None,
    seq_len: int | None = None,
    task_type: str | None = None,
) -> LoadedModel:
    """A :class:`LoadedModel` from any model argument the scorer accepts.

    Args:
        spec: a ``LoadedModel``; an ``nn.Module`` of the family (``.seq_len``,
            ``.n_tasks``, optionally ``.tasks``); a checkpoint folder written by
            ``dnacnn.models.save``; a registry URI (``models:/NAME@alias``,
            ``models:/NAME/VERSION``, ``runs:/...``) read by ``dnacnn.registry``;
            or a zero-argument callable returning a ``LoadedModel``.
        device: where to put a model loaded from disk.
        tasks, seq_len: for a bare ``nn.Module`` without ``.tasks`` / ``.seq_len``.
        task_type: for a bare ``nn.Module``: how its outputs become probabilities
            (default "multitask": a sigmoid per output).
    """
    if isinstance(spec, LoadedModel):
        return spec
    if isinstance(spec, nn.Module):
        n_tasks = getattr(spec, "n_tasks", None)
        names = list(tasks if tasks is not None else getattr(spec, "tasks", None) or [])
        if not names:
            if n_tasks is None:
                raise ValueError("pass tasks=[...] for a model without .n_tasks or .tasks")
            names = [f"task_{i}" for i in range(n_tasks)]
            log.warning("model has no task names; calling its outputs %s..%s", names[0], names[-1])
        length = seq_len if seq_len is not None else getattr(spec, "seq_len", None)
        if length is None:
            raise ValueError("pass seq_len=L for a model without .seq_len")
        return LoadedModel(
            model=spec.eval(), name=getattr(spec, "name", type(spec).__name__),
            config=getattr(spec, "config", None), tasks=names, seq_len=int(length),
            task_type=check_task_type(task_type or "multitask"),
        )
    if is_model_uri(spec):
        from dnacnn import registry  # MLflow is imported only when a URI is used

        return registry.load_model(spec)
    if isinstance(spec, (str, os.PathLike)):
        return load_model_folder(spec, map_location=device)
    if callable(spec):
        loaded = spec()
        if not isinstance(loaded, LoadedModel):
            raise TypeError(f"the model loader returned a {type(loaded).__name__}, not a LoadedModel")
        return loaded
    raise TypeError(
        f"cannot use a {type(spec).__name__} as a model: pass a LoadedModel, an nn.Module, "
        "a checkpoint folder, a models:/ URI or a loader function"
    )


class VariantScorer:
    """Scores (variant, ALT allele) rows with one model against one genome.

    Args:
        model: see :func:`load_model_spec`; a string is loaded here, once.
        genome: a :class:`Genome` or the path of an indexed FASTA.
        rc: also score the reverse complement and average the two strands'
            probabilities (see the module docstring).
        batch_size: variants per forward pass (each pass runs 2 or, with ``rc``,
            4 windows per variant).
        device: torch device, e.g. "cpu" or "cuda:0".
        num_threads: ``torch.set_num_threads`` for this process (e.g. the CPUs of
            a Ray actor); None leaves torch's setting alone.
        tasks, seq_len, task_type: only for a bare ``nn.Module`` that lacks them.
        mode: "exact": the mutant-effect engine (:mod:`dnacnn.scoring.mutant_effect`), which
            recomputes only the columns a variant changes (whole windows for indels and for
            models it cannot recompute in part); the numbers are those of whole windows.
        precision: "fp32", or "bf16" (convs and dense layers in bfloat16: faster, deltas
            within about 1e-2; see BENCHMARKS.md).
    Attributes:
        tasks: T task names, the order of every per-task array.
        seq_len: L, the window length.
    """

    def __init__(
        self,
        model: ModelSpec,
        genome: Genome | str | os.PathLike,
        rc: bool = False,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        num_threads: int | None = None,
        tasks: Sequence[str] | None = None,
        seq_len: int | None = None,
        task_type: str | None = None,
        mode: str = "exact",
        precision: str = "fp32",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        batch_size, rc = check_count("batch_size", batch_size), check_flag("rc", rc)
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.device = usable_device(device)
        loaded = load_model_spec(model, self.device, tasks=tasks, seq_len=seq_len, task_type=task_type)
        self.model = loaded.model.to(self.device).eval()
        self.model_name = loaded.name
        self.tasks: list[str] = list(loaded.tasks)
        self.seq_len = int(loaded.seq_len)
        self.task_type = loaded.task_type
        self.genome = genome if isinstance(genome, Genome) else Genome(genome)
        self.rc, self.batch_size = rc, batch_size
        self.mode = mode
        self.precision = precision
        self.engine = MutantEffect(self.model, precision=precision, device=self.device)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    # ---- arrays -------------------------------------------------------------------------

    def score_onehot(self, onehot_ref: np.ndarray, onehot_alt: np.ndarray,
                     starts: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Scores of windows already built.

        Args:
            onehot_ref, onehot_alt: (N, L, 4) uint8 (or 0/1 float), L == ``seq_len``.
            starts: (N,) int, optional: where each reference window starts (as
                :meth:`MutantEffect.pair_logits` takes them): overlapping reference windows
                share their conv tower. The same numbers either way.
        Returns:
            dict of float32 arrays: ``p_ref``, ``p_alt``, ``delta`` = p_alt - p_ref and
            ``logit_delta``, each (N, T); strand-averaged when ``rc`` (module docstring).
        """
        onehot_ref, onehot_alt = np.asarray(onehot_ref), np.asarray(onehot_alt)
        if onehot_ref.shape != onehot_alt.shape or onehot_ref.ndim != 3 or onehot_ref.shape[2] != 4:
            raise ValueError(
                f"expected two (N, L, 4) arrays of one shape, got {onehot_ref.shape} and {onehot_alt.shape}"
            )
        if onehot_ref.shape[1] != self.seq_len:
            raise ValueError(
                f"windows of length {onehot_ref.shape[1]} for a model of length {self.seq_len}; "
                "build them with dnacnn.scoring.allele_windows.variant_windows(..., seq_len=scorer.seq_len)"
            )
        n, t = len(onehot_ref), self.n_tasks
        out = {k: np.empty((n, t), dtype=np.float32) for k in ("p_ref", "p_alt", "delta", "logit_delta")}
        for lo in range(0, n, self.batch_size):
            hi = min(n, lo + self.batch_size)
            parts = [onehot_ref[lo:hi], onehot_alt[lo:hi]]
            if self.rc:
                parts += [reverse_complement_onehot(p) for p in parts]
            strands = len(parts) // 2  # 1, or 2 with rc: [ref, alt, ref_rc, alt_rc]
            window_starts = None if starts is None else np.asarray(starts, dtype=np.int64)[lo:hi]
            if self.rc:
                window_starts = reverse_strand_starts(window_starts, self.seq_len)
            logits_ref, logits_alt = self.engine.pair_logits(
                np.concatenate(parts[0::2]), np.concatenate(parts[1::2]), window_starts
            )  # (S/2 * B, T) each, strand by strand
            logits = np.stack([logits_ref.reshape(strands, hi - lo, t),
                               logits_alt.reshape(strands, hi - lo, t)], axis=1)  # (S/2, 2, B, T)
            logits = logits.reshape(len(parts), hi - lo, t)  # (S, B, T): ref, alt[, ref_rc, alt_rc]
            probs = probabilities(self.task_type, logits)  # (S, B, T)
            scores = link(self.task_type, logits)  # (S, B, T)
            p_ref = probs[0::2].mean(axis=0)  # (B, T)
            p_alt = probs[1::2].mean(axis=0)
            logit_delta = (scores[1::2] - scores[0::2]).sum(axis=0) / strands
            out["p_ref"][lo:hi] = p_ref
            out["p_alt"][lo:hi] = p_alt
            out["delta"][lo:hi] = p_alt - p_ref
            out["logit_delta"][lo:hi] = logit_delta
        return out

    def _score_checked(
        self, chrom: list[str], pos: list[int], ref: list[str], alt: list[str]
    ) -> dict[str, np.ndarray]:
        """Scores of N sequence alleles that :func:`dnacnn.variants.check_allele` has passed
        (:meth:`score_columns` checks them; rows not checked would be scored as given).

        Args:
            chrom, pos, ref, alt: N rows, as lists; ``pos`` 1-based; ``ref``, ``alt`` upper case.
        Returns:
            :meth:`score_onehot`'s dict plus ``max_abs_delta`` (N,) float32 and
            ``max_task`` (N,) object (task names).
        """
        n = len(chrom)
        pos0 = np.asarray(pos, dtype=np.int64).reshape(n) - 1
        # reference windows in one coordinate system (contigs 2**40 apart): near ones share work
        contig_base = {name: (k + 1) << 40 for k, name in enumerate(self.genome.contigs)}
        out: dict[str, np.ndarray] = {}
        chunks = []
        for lo in range(0, n, self.batch_size):  # windows built batch by batch: memory bounded
            hi = min(n, lo + self.batch_size)
            onehot_ref, onehot_alt = variant_windows(
                self.genome, chrom[lo:hi], pos0[lo:hi], ref[lo:hi], alt[lo:hi], self.seq_len
            )
            starts = window_start(pos0[lo:hi], self.seq_len) + np.array(
                [contig_base[self.genome.resolve(c)] for c in chrom[lo:hi]], dtype=np.int64)
            chunks.append(self.score_onehot(onehot_ref, onehot_alt, starts))
        for key in ("p_ref", "p_alt", "delta", "logit_delta"):
            out[key] = (
                np.concatenate([c[key] for c in chunks]) if chunks
                else np.zeros((0, self.n_tasks), dtype=np.float32)
            )
        abs_delta = np.abs(out["delta"])
        best = abs_delta.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
        out["max_abs_delta"] = abs_delta[np.arange(n), best].astype(np.float32)
        out["max_task"] = np.array([self.tasks[i] for i in best], dtype=object)
        return out

    def score_columns(self, chrom, pos, ref, alt, kinds: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Check and score N rows: the per-row result columns of :data:`~dnacnn.scoring.variant_tables.SCORE_COLUMNS`.

        Rejected rows get ``reason`` / ``message`` and NaN scores (``max_task`` None).
        ``kinds``: the rows' kinds when :func:`~dnacnn.variants.check_allele` has passed every
        one of them against this genome already (the batch job's VCF reader checks each
        allele as it reads it), so that they are not checked twice.
        Args:
            chrom, pos, ref, alt: N rows each (lists, arrays, or Series read by position).
        Returns:
            dict: ``kind``, ``reason``, ``message``, ``max_task`` (N,) object;
            ``delta``, ``logit_delta`` (N, T) float32; ``max_abs_delta`` (N,) float32.
        Raises:
            TypeError: a single value for a column. ValueError: columns of different lengths.
        """
        chrom, pos, ref, alt = positional_columns(chrom, pos, ref, alt)
        n = len(chrom)
        if kinds is None:
            checks = [check_allele(self.genome, *row) for row in zip(chrom, pos, ref, alt)]
        elif len(kinds) == n:
            checks = [(k, None, "") for k in kinds]
        else:
            raise ValueError(f"{len(kinds)} kinds for {n} rows")
        kind = np.array([c[0] for c in checks], dtype=object)
        reason = np.array([c[1] for c in checks], dtype=object)
        message = np.array([c[2] for c in checks], dtype=object)
        ok = np.flatnonzero(reason == None)  # noqa: E711  (object array)
        delta = np.full((n, self.n_tasks), np.nan, dtype=np.float32)
        logit_delta = np.full((n, self.n_tasks), np.nan, dtype=np.float32)
        max_abs = np.full(n, np.nan, dtype=np.float32)
        max_task = np.full(n, None, dtype=object)
        if len(ok):
            scores = self._score_checked(
                [contig_text(chrom[i]) for i in ok], [int(pos[i]) for i in ok],
                [str(ref[i]).upper() for i in ok], [str(alt[i]).upper() for i in ok],
            )
            delta[ok], logit_delta[ok] = scores["delta"], scores["logit_delta"]
            max_abs[ok], max_task[ok] = scores["max_abs_delta"], scores["max_task"]
        return {
            "kind": kind, "delta": delta, "logit_delta": logit_delta, "max_abs_delta": max_abs,
            "max_task": max_task, "reason": reason, "message": message,
        }

    # ---- tables -------------------------------------------------------------------------

    def __call__(self, batch: Mapping[str, Any] | pa.Table | pd.DataFrame, kinds: Sequence[str] | None = None):
        """Score a batch, for Ray Data ``map_batches`` (any batch format) or a service.

        Args:
            batch: columns ``chrom``, ``pos`` (1-based), ``ref``, ``alt`` and any others
                (passed through): a dict of numpy arrays, a ``pyarrow.Table`` or a
                ``pandas.DataFrame``.
            kinds: the rows' kinds, when they are checked already (see :meth:`score_columns`).
        Returns:
            the same kind of batch with :data:`~dnacnn.scoring.variant_tables.SCORE_COLUMNS` added. In Arrow,
            ``delta`` and ``logit_delta`` are ``fixed_size_list<float32>[T]`` (null for
            rejected rows) and the schema metadata holds ``dnacnn.tasks`` (JSON).
        """
        cols = input_columns(batch)
        scores = self.score_columns(cols["chrom"], cols["pos"], cols["ref"], cols["alt"], kinds)
        if isinstance(batch, pa.Table):
            return append_arrow(batch, scores, self.n_tasks, self.arrow_schema_metadata())
        if isinstance(batch, pd.DataFrame):
            return assign_pandas(batch.copy(), scores)
        out = dict(batch)
        out.update(scores)
        return out

    def arrow_schema_metadata(self) -> dict[bytes, bytes]:
        """Schema metadata of scored tables: task names and how they were scored."""
        return scores_metadata(self.tasks, self.seq_len, self.rc, self.task_type, self.model_name, self.mode,
                               self.precision)

    def score_dataframe(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score a table of variants: the Python API.

        Args:
            df: one row per (variant, ALT allele) with ``chrom``, ``pos`` (1-based VCF
                POS), ``ref``, ``alt`` and optionally ``id`` and other columns.
        Returns:
            a new DataFrame, same rows in the same order and with the same index, with ``id`` ('.' when absent),
            ``kind``, ``delta`` and ``logit_delta`` ((T,) float32 arrays in the order
            of ``self.tasks``), ``max_abs_delta``, ``max_task``, and ``reason`` /
            ``message`` (None / '' for scored rows; NaN scores for rejected ones).
        Raises:
            TypeError: ``df`` is not a DataFrame. ValueError: it lacks or repeats a column.
        """
        check_dataframe(df)
        out = df.copy()  # its index kept: the scores join back to the caller's frame
        if "id" not in out.columns:
            out.insert(min(2, len(out.columns)), "id", ".")
        scores = self.score_columns(out["chrom"], out["pos"], out["ref"], out["alt"])
        return assign_pandas(out, scores)
