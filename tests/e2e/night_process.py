"""One nightly run in its own process, for the crash-safety tests: the real steps, in DAG order.

    python tests/e2e/night_process.py 2026-06-30 [--kill-at dbt|publish|published_copy]

``--kill-at`` kills this process with SIGKILL (no cleanup, no exit handlers: what ``kill -9`` or
the kernel's OOM killer does) at one point of the night. The hook is installed here, by wrapping a
function of the pipeline in this test process only; the pipeline's own code has no such switch.

* ``dbt``: inside ``dbt build``, once a few models have been built and committed.
* ``publish``: inside the publishing transaction, after the version is marked published and
  before the commit.
* ``published_copy``: after the publish committed, while the published copy is being written
  (filled, not yet swapped into place).

The settings (data dir, landing dir) come from the environment, as in an Airflow task.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Models dbt has finished before the ``dbt`` kill point fires.
MODELS_BEFORE_KILL = 6


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install_kill(point: str) -> None:
    if point == "dbt":
        from transform import dbt_build

        original = dbt_build._log_finished_node
        finished = []

        def log_then_maybe_die(event):
            original(event)
            try:
                is_model = (
                    event.info.name == "NodeFinished"
                    and event.data.node_info.resource_type == "model"
                )
            except AttributeError:
                is_model = False
            if is_model:
                finished.append(event.data.node_info.node_name)
                if len(finished) >= MODELS_BEFORE_KILL:
                    print(f"KILL inside dbt build after models {finished}", flush=True)
                    _die()

        dbt_build._log_finished_node = log_then_maybe_die
    elif point == "publish":
        from ml_tasks import versions

        original_mark = versions._mark_published

        def mark_then_die(con, version_id, as_of_date):
            original_mark(con, version_id, as_of_date)
            print(f"KILL inside the publish transaction of version {version_id}", flush=True)
            _die()

        versions._mark_published = mark_then_die
    elif point == "published_copy":
        from core import read_copy

        original_fill = read_copy._fill

        def fill_then_die(con, version_id, as_of_date):
            original_fill(con, version_id, as_of_date)
            print(f"KILL while writing the published copy of version {version_id}", flush=True)
            _die()

        read_copy._fill = fill_then_die
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("day", type=date.fromisoformat)
    parser.add_argument("--kill-at", choices=["dbt", "publish", "published_copy"])
    args = parser.parse_args()
    if args.kill_at:
        _install_kill(args.kill_at)

    from pipeline import steps

    run_id = f"night-{args.day}"
    ingest = steps.ingest(args.day, run_id=run_id)
    steps.validate_raw(args.day, ingest["validation_scope"], run_id=run_id)
    steps.build_marts(args.day)
    steps.validate_marts(args.day, run_id=run_id)
    version = steps.recluster(args.day, run_id=run_id)
    steps.publish(args.day, version["version_id"])
    print(f"PUBLISHED version {version['version_id']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
