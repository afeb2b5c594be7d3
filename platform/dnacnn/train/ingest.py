"""The dataset's splits as Ray Datasets for Ray Train, and how they are shared out
among the training workers (every evaluation row scored exactly once)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ray.data
from ray.train import DataConfig

from dnacnn.data.dataset_io import SPLITS, split_dir
from dnacnn.ray_cluster import configure_data_context


def load_datasets(dataset_dir: str | Path, materialize: bool = True, num_workers: int = 2,
                  seed: int = 0) -> dict[str, Any]:
    """The train / valid / test splits as Ray Datasets (Ray must be initialised).

    With ``materialize``, each split is read on the driver with pyarrow and put
    in the object store as blocks of at most 4,096 rows (at least two per
    worker): no Ray Data task needs a CPU while the training workers hold them
    all; a ``row`` column (the row's index in its split) lets the loop put
    test predictions back in split order. The train split's rows are shuffled
    once (with ``seed``) before they are cut into blocks of at most 1,024 rows,
    so that a split written in label order (``dnacnn data fasta`` writes class
    after class) does not hand the model batches of one class for hundreds of
    steps; each epoch then shuffles the block order and, in the loop, the rows
    within a buffer. Without ``materialize``, splits stream from Parquet with
    ``ray.data.read_parquet`` in file order (test predictions in arbitrary order).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    configure_data_context()
    datasets = {}
    for split in SPLITS:
        path = split_dir(dataset_dir, split)
        if not path.is_dir() or not any(path.glob("*.parquet")):
            raise FileNotFoundError(
                f"no Parquet files in {path}; a dataset folder needs train/, valid/ and test/ "
                "splits (write one with `dnacnn simulate ...`)"
            )
        if materialize:
            table = pq.read_table(path, columns=["onehot", "labels"])
            table = table.append_column("row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
            block_rows = 4096
            if split == "train":
                table = table.take(np.random.default_rng(seed).permutation(table.num_rows))
                block_rows = 1024
            n_blocks = min(max(2 * num_workers, math.ceil(table.num_rows / block_rows)),
                           max(1, table.num_rows))
            size = math.ceil(table.num_rows / n_blocks)
            datasets[split] = ray.data.from_arrow(
                [table.slice(i, size) for i in range(0, table.num_rows, size)] or [table])
        else:
            datasets[split] = ray.data.read_parquet(str(path.resolve()), columns=["onehot", "labels"])
    datasets["train"] = datasets["train"].randomize_block_order()
    for ds in datasets.values():  # the loop's progress lines say how training goes
        ds.context.enable_progress_bars = False
        ds.context.print_on_execution_start = False
    return datasets


class EvalSplitDataConfig(DataConfig):
    """Ray Train's DataConfig, but valid / test are split without dropping rows.

    ``train`` is split in equal shards (Ray's default: every DDP rank takes the
    same number of steps). The evaluation splits are shared out so that every
    row is scored exactly once (``equal=False``); the loop gathers the predictions.
    """

    def configure(self, datasets, world_size, worker_handles, worker_node_ids, **kwargs):
        train_only = {k: v for k, v in datasets.items() if k == "train"}
        output = super().configure(train_only, world_size, worker_handles, worker_node_ids,
                                   **kwargs)
        for name, ds in datasets.items():
            if name == "train":
                continue
            if ds.name is None:
                ds.set_name(name)
            ds = ds.copy(ds)
            ds.context.execution_options = DataConfig.default_ingest_options()
            for i, split in enumerate(ds.streaming_split(world_size, equal=False)):
                output[i][name] = split
        return output
