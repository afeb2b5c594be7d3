"""The MLflow pyfunc model: a checkpoint folder logged as a "model from code".

The network is rebuilt from the checkpoint artifact (``model.json`` +
``model.safetensors``) by :class:`DnaCnnModel`; no torch module and no Python
object is pickled. Other teams use it without this package's internals::

    model = mlflow.pyfunc.load_model("models:/basset-basset164@champion")
    probs = model.predict(pd.DataFrame({"sequence": ["ACGT...", ...]}))  # one column per task

The model carries this package's code (MLflow's ``code_paths``: put on ``sys.path`` when the
model loads), so a consumer needs only its requirements (mlflow, torch, safetensors, numpy,
pandas, numba), not dnacnn installed; where dnacnn is imported already, that copy is used.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

import dnacnn
from dnacnn.models import load, predict_sequences

MODEL_ARTIFACT = "model"  # name of the logged pyfunc model inside a run
CHECKPOINT_ARTIFACT = "checkpoint"  # key of the checkpoint folder in the pyfunc's artifacts
CHECKPOINT_FILES = ("model.json", "model.safetensors", "task.json")

# The pyfunc entry point, logged as a "model from code": executed when the model loads.
_MODEL_CODE = '''\
"""dnacnn pyfunc model: the network is rebuilt from the checkpoint artifact
(model.json + model.safetensors) by dnacnn.registry.DnaCnnModel; nothing is unpickled."""
import mlflow

from dnacnn.registry import DnaCnnModel

mlflow.models.set_model(DnaCnnModel())
'''


def model_signature(tasks: Sequence[str]) -> ModelSignature:
    """Input: a ``sequence`` string column. Output: one float column per task. Param: batch_size."""
    return ModelSignature(
        inputs=Schema([ColSpec("string", "sequence")]),
        outputs=Schema([ColSpec("double", t) for t in tasks]),
        params=ParamSchema([ParamSpec("batch_size", "long", 256)]),
    )


class DnaCnnModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: DataFrame with a ``sequence`` column -> per-task probabilities.

    The network is rebuilt in :meth:`load_context` from the ``checkpoint``
    artifact (``dnacnn.models.load``); its ``task_type`` is the checkpoint's, and
    probabilities come from the one prediction path (``dnacnn.models.predict``).
    """

    def load_context(self, context) -> None:
        self.loaded = load(Path(context.artifacts[CHECKPOINT_ARTIFACT]))

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """model_input: DataFrame with a ``sequence`` column of strings. Through
        ``mlflow.pyfunc`` MLflow checks it against the signature first (a list of strings or a
        Series without that name is refused there); called directly, a list or Series of
        strings is taken too.

        Returns:
            one row per input row, with the input's index (a frame indexed 5, 7 gives
            rows 5, 7: joining the two lines them up), one column per task.
        """
        index = None
        if isinstance(model_input, pd.DataFrame):
            if "sequence" not in model_input.columns:
                raise ValueError(
                    f"expected a DataFrame with a 'sequence' column, got columns "
                    f"{list(model_input.columns)}"
                )
            sequences, index = model_input["sequence"].tolist(), model_input.index
        else:
            sequences = list(model_input)
            index = model_input.index if isinstance(model_input, pd.Series) else None
        batch_size = (params or {}).get("batch_size", 256)  # checked by predict_sequences
        loaded = self.loaded
        prob = predict_sequences(loaded.model, sequences, loaded.seq_len, loaded.task_type, batch_size)
        return pd.DataFrame(prob, columns=list(loaded.tasks), index=index)


def copy_checkpoint(checkpoint_dir: Path, dst: Path) -> Path:
    """Copy the deployable files of a checkpoint (no optimizer, no training state) to ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        if (checkpoint_dir / name).exists():
            shutil.copy2(checkpoint_dir / name, dst / name)
    return dst


def log_pyfunc_model(checkpoint_dir: str | Path, tasks: Sequence[str], task_type: str, seq_len: int,
                     example: Sequence[str] | None = None):
    """Log the checkpoint as a pyfunc model in the active run; its MLmodel ``metadata`` says
    what the signature cannot: ``seq_len`` (the bases every sequence must have) and ``task_type``.

    Args:
        checkpoint_dir: a folder with model.json + model.safetensors.
        tasks: the T output names (the signature's columns).
        task_type: "binary", "multitask" or "multiclass" (softmax for multiclass).
        seq_len: L, the model's input window in bp.
        example: a few sequences for the input example (optional).
    Returns:
        MLflow's ModelInfo.
    """
    import numba
    import safetensors
    import torch

    with tempfile.TemporaryDirectory(prefix="dnacnn-pyfunc-") as tmp:
        code = Path(tmp) / "dnacnn_pyfunc.py"
        code.write_text(_MODEL_CODE)
        ckpt = copy_checkpoint(Path(checkpoint_dir), Path(tmp) / CHECKPOINT_ARTIFACT)
        package = shutil.copytree(Path(dnacnn.__file__).parent, Path(tmp) / "package" / "dnacnn",
                                  ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(code),
            code_paths=[str(package)],
            artifacts={CHECKPOINT_ARTIFACT: str(ckpt)},
            model_config={"task_type": task_type},
            metadata={"seq_len": int(seq_len), "task_type": task_type},
            signature=model_signature(tasks),
            input_example=pd.DataFrame({"sequence": list(example)}) if example else None,
            # Given, not inferred (inference loads the model in a subprocess): what the
            # carried dnacnn code imports on this path (dnacnn itself is not on PyPI)
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"torch=={torch.__version__.split('+')[0]}",
                f"safetensors=={safetensors.__version__}",
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
                f"numba=={numba.__version__}",  # the one-hot encoder's compiled loop (dnacnn.sequence)
            ],
        )
