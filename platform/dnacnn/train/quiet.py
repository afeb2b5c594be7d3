"""One door to a Ray Train internal: its per-report console line (Ray 2.60).

Every ``ray.train.report`` call logs ``Reporting training result N: TrainingReport(...)``
at INFO on every worker: the whole metrics dict and checkpoint, once per rank and
epoch. ``RunConfig(logging_config=LoggingConfig(log_level=...))`` is meant to
filter Ray Train's INFO lines, but this one comes from a logger named after its
source *file* (``logging.getLogger(__file__)`` in ``ray/train/v2/_internal/execution/
context.py``), not ``ray.train...``, so it escapes the filter and reaches the root
logger that Ray Train gives a console handler. The job's own epoch line carries the
same numbers. ``tests/test_train_console.py`` pins the logger's name.
"""

from __future__ import annotations

import logging


def report_logger() -> logging.Logger:
    """The logger of Ray Train's "Reporting training result" line."""
    from ray.train.v2._internal.execution import context

    return logging.getLogger(context.__file__)


def quiet_report_lines() -> None:
    """In a Ray Train worker: keep the per-report INFO line off the console (warnings stay)."""
    report_logger().setLevel(logging.WARNING)
