"""Ray job entrypoint: train a model on Ray Train, log and register it in MLflow.

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/train.py --config jobs/configs/basset_accessibility.yaml --set train.epochs=10

Parses arguments and calls ``dnacnn.train.trainer.train_and_register`` (which
joins the job's cluster through RAY_ADDRESS). Submit it again with the same
``train.run_name`` and ``train.storage_path`` to resume the run. Paths in the
config are relative to the job's copy of the working directory: give absolute ones
(a dataset in a git-ignored folder is not uploaded; ``train.storage_path`` and a local
MLflow store inside the copy are refused, as they would be lost with it).
"""

from __future__ import annotations

import argparse
import json
import sys

from dnacnn import console_logging
from dnacnn.cli.errors import USER_ERRORS, report
from dnacnn.config import load_config
from dnacnn.job_paths import check_input_paths
from dnacnn.ray_cluster import Interrupted
from dnacnn.train.trainer import train_and_register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="job config YAML (jobs/configs/...)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. train.epochs=4 (repeatable)")
    parser.add_argument("--epochs", type=int, help="shorthand for --set train.epochs=N")
    parser.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS)")
    args = parser.parse_args(argv)
    console_logging.setup()
    overrides = args.set + ([f"train.epochs={args.epochs}"] if args.epochs is not None else [])
    try:
        check_input_paths({"--config": args.config})
        job = load_config(args.config, overrides)
        check_input_paths({"data.dataset": job.data.dataset})
        summary = train_and_register(job, args.address).to_dict()
    except (Interrupted, *USER_ERRORS) as err:  # a bad input, Ctrl-C: as the dnacnn command says them
        return report(err)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
