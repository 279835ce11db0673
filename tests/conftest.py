"""Test-wide environment: Airflow and the pipeline never touch the developer's data/ folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SCRATCH = Path(tempfile.mkdtemp(prefix="segments-tests-"))

# Airflow reads its configuration at import time, so this must happen before any test imports it.
os.environ["AIRFLOW_HOME"] = str(_SCRATCH / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["SEGMENTS_DATA_DIR"] = str(_SCRATCH / "data")
# dag.test() cannot run a DAG with a deadline alert in Airflow 3.3.2 (dag_support.task_defaults);
# the tests of the alert itself and of the real scheduler turn it back on.
os.environ["SEGMENTS_LATE_AFTER_HOURS"] = "0"
