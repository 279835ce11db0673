"""Airflow on this machine, without Docker: the same components and settings as docker-compose.yml.

``make ui`` runs ``python -m tools.local_airflow``: it migrates the metadata DB, creates the
admin user and the ``duckdb_warehouse`` pool, starts ``airflow api-server``, ``scheduler``,
``dag-processor`` and ``triggerer`` as separate processes (like the compose services), prints the
URL and the login, and stops them all on Ctrl-C. The end-to-end tests start the same
``LocalAirflow`` against a PostgreSQL metadata DB.

The Airflow settings (executor, the task libraries its workers preload, auth manager, execution
API URL, paused-at-creation, no examples) are the ones docker-compose.yml sets;
``tests/deployment/test_compose.py`` checks they agree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import PROJECT_ROOT
from dag_support.schedule import END_ENV as SCHEDULE_END_ENV
from pipeline.preload import forkserver_preload

WAREHOUSE_POOL = "duckdb_warehouse"
# The components docker-compose.yml runs as services, by their `airflow` sub-command.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
EXECUTOR_PARALLELISM = 2
PROGRESS_EVERY_S = 10.0
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def compose_settings(api_url: str) -> dict[str, str]:
    """The Airflow settings docker-compose.yml's x-airflow-common also sets (same values)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "true",
        # The LocalExecutor starts this many worker processes (default 32, ~4 GB); every task
        # of the pipeline waits for the warehouse pool's one slot, so one runs at a time and a
        # second worker is headroom for a task that needs no warehouse.
        "AIRFLOW__CORE__PARALLELISM": str(EXECUTOR_PARALLELISM),
        # The workers start from a process that imported the tasks' heavy libraries once, and
        # each task is forked from a worker: no task imports Great Expectations, dbt or
        # scikit-learn itself (pipeline/preload.py).
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": forkserver_preload(),
        "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow",
    }


@dataclass
class LocalAirflow:
    """One Airflow installation: its home, metadata DB, API port and admin login."""

    home: Path
    db_url: str
    port: int = 8080
    admin_user: str = "admin"
    admin_password: str = ""
    jwt_secret: str = ""
    api_secret_key: str = ""
    dags_folder: Path = PROJECT_ROOT / "dags"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(compose_settings(self.url))
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__PORT": str(self.port),
                # Every component must share these: the scheduler signs the tasks' tokens and
                # the API server checks them (docker-compose.yml takes them from .env).
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                "AIRFLOW__API__SECRET_KEY": self.api_secret_key,
            }
        )
        env.update(self.extra_env)
        return env

    def airflow(
        self, *args: str, check: bool = True, progress: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command with this installation's settings; with ``progress``,
        print a line naming it and its latest log message every ``PROGRESS_EVERY_S`` seconds."""
        result = _run_with_progress([sys.executable, "-m", "airflow", *args], self.env(), progress)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args[:2])} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def init(self) -> None:
        """What compose's airflow-init does: migrate, admin user (if missing), the pool."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate", progress="migrating the metadata DB")
        users = self.airflow("users", "list", "--output", "json").stdout
        if f'"{self.admin_user}"' not in users:
            self.airflow(
                "users", "create", "--username", self.admin_user, "--password",
                self.admin_password, "--role", "Admin", "--email", f"{self.admin_user}@localhost",
                "--firstname", "Segments", "--lastname", "Admin",
            )  # fmt: skip
        self.airflow(
            "pools", "set", WAREHOUSE_POOL, "1", "Single writer of the DuckDB warehouse (one slot)"
        )

    def start(self, components: tuple[str, ...] = COMPONENTS) -> None:
        """Start each component in its own process group, logging to ``home/logs/<name>.log``."""
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in components:
            args = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            with (logs / f"{name}.log").open("ab") as log_file:
                self.processes[name] = subprocess.Popen(
                    args,
                    env=self.env(),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )

    def wait_healthy(self, timeout_s: float = 180.0) -> dict[str, Any]:
        """Wait until the API server reports the metadata DB, scheduler and DAG processor up."""
        deadline = time.monotonic() + timeout_s
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as r:
                    health = json.loads(r.read())
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(1)
                continue
            wanted = ["metadatabase", "scheduler"]
            if "dag-processor" in self.processes:
                wanted.append("dag_processor")
            if all(health.get(part, {}).get("status") == "healthy" for part in wanted):
                return health
            time.sleep(1)
        raise TimeoutError(f"Airflow at {self.url} not healthy after {timeout_s:.0f} s: {health}")

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log_tail = (self.home / "logs" / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"airflow {name} exited with {process.returncode}:\n{log_tail}")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every component and the task processes it started (their process groups)."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self.processes.clear()


def _run_with_progress(
    args: list[str], env: dict[str, str], label: str | None
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with captured output that, when ``label`` is given, prints a progress
    line while the command runs (a fresh ``airflow db migrate`` takes a minute on a slow disk)."""
    process = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    output: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def drain(name: str) -> None:
        for line in getattr(process, name):
            output[name].append(line)

    readers = [threading.Thread(target=drain, args=(name,), daemon=True) for name in output]
    for reader in readers:
        reader.start()
    started = time.monotonic()
    while True:
        try:
            process.wait(timeout=PROGRESS_EVERY_S)
            break
        except subprocess.TimeoutExpired:
            if label:
                lines = output["stdout"] + output["stderr"]
                latest = _log_message(lines[-1]) if lines else "no output yet"
                print(
                    f"  ... {label}: {time.monotonic() - started:.0f} s, "
                    f"{len(lines)} log lines so far, latest: {latest}",
                    flush=True,
                )
        except BaseException:
            process.kill()
            process.wait()
            raise
    for reader in readers:
        reader.join()
    return subprocess.CompletedProcess(
        args, process.returncode, "".join(output["stdout"]), "".join(output["stderr"])
    )


def _log_message(line: str, limit: int = 100) -> str:
    """The message of an Airflow log line (without timestamp, level and logger), shortened."""
    message = re.sub(r"^\S+\s+\[\s*\w+\s*\]\s*", "", line.strip())
    message = re.sub(r"\s+\[[\w.]+\].*$", "", message)
    return message if len(message) <= limit else message[: limit - 3] + "..."


def schedule_env(landing_dir: Path) -> dict[str, str]:
    """What ``make ui`` adds to the components' environment for the landed data: the scheduler
    creates nightly runs only up to the last landed day (the demo's history ends on a fixed
    day, dag_support/schedule.py), unless ``SEGMENTS_SCHEDULE_END_DATE`` is set already."""
    if os.environ.get(SCHEDULE_END_ENV):
        return {}
    last_day = landed_through(landing_dir)
    return {SCHEDULE_END_ENV: last_day} if last_day else {}


def landed_through(landing_dir: Path) -> str | None:
    """The last day every source has a landed partition for (``YYYY-MM-DD``), if any."""
    from core.contract import SOURCES

    last_days = []
    for source in SOURCES:
        days = [p.name.removeprefix("date=") for p in (landing_dir / source).glob("date=*")]
        if not days:
            return None
        last_days.append(max(days))
    return min(last_days)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _local_secrets(home: Path) -> dict[str, str]:
    """The local installation's secrets and admin password: generated once, kept in its home
    (git-ignored data/ by default), readable by the owner only."""
    path = home / "local-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    home.mkdir(parents=True, exist_ok=True)
    values = {
        "admin_password": secrets.token_urlsafe(12),
        "jwt_secret": secrets.token_hex(32),
        "api_secret_key": secrets.token_hex(32),
    }
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_UI_PORT", "8080")))
    parser.add_argument("--home", type=Path, default=Path(os.environ["AIRFLOW_HOME"]))
    parser.add_argument(
        "--db-url",
        default=os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
        help="metadata DB (default: SQLite in AIRFLOW_HOME; docker-compose uses PostgreSQL)",
    )
    args = parser.parse_args(argv)
    home = args.home.resolve()
    local = _local_secrets(home)
    airflow = LocalAirflow(
        home=home,
        db_url=args.db_url or f"sqlite:///{home / 'airflow.db'}",
        port=args.port,
        admin_password=local["admin_password"],
        jwt_secret=local["jwt_secret"],
        api_secret_key=local["api_secret_key"],
    )
    airflow.extra_env.update(
        schedule_env(Path(os.environ.get("SEGMENTS_LANDING_DIR") or _data_dir() / "landing"))
    )
    # Ctrl-C, `kill` and a closed terminal all stop the components (they run in their own process
    # groups, so only this process hears the signal); a background shell may have ignored SIGINT.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        return _run(airflow, home)
    except KeyboardInterrupt:
        print("\nStopping Airflow ...", flush=True)
        return 0
    finally:
        # A second Ctrl-C while stopping must not leave components behind (or a traceback).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        airflow.stop()
        print("Airflow stopped.", flush=True)


def _data_dir() -> Path:
    return Path(os.environ.get("SEGMENTS_DATA_DIR") or PROJECT_ROOT / "data")


def _run(airflow: LocalAirflow, home: Path) -> int:
    """Prepare, start and watch the components until interrupted (``main`` stops them)."""
    print(f"Preparing the metadata DB ({airflow.db_url.split('://')[0]}) in {home} ...", flush=True)
    airflow.init()
    airflow.start()
    airflow.wait_healthy()
    print(
        f"\nAirflow is up: {airflow.url}\n"
        f"  login     {airflow.admin_user} / {airflow.admin_password}\n"
        f"  DAGs      {airflow.dags_folder} (paused at creation: unpause in the UI)\n"
        f"  schedule  {_schedule_line(airflow)}\n"
        f"  parallel  {EXECUTOR_PARALLELISM} LocalExecutor workers "
        f"(pool {WAREHOUSE_POOL}: 1 slot)\n"
        f"  warehouse {_data_dir() / 'warehouse.duckdb'}\n"
        f"  logs      {home / 'logs'}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    while True:
        airflow._check_alive()
        time.sleep(2)


def _schedule_line(airflow: LocalAirflow) -> str:
    end = airflow.env().get(SCHEDULE_END_ENV)
    if not end:
        return "nightly at 02:00 UTC for the day before"
    return (
        f"nightly runs up to as-of {end}, the last landed day ({SCHEDULE_END_ENV}); trigger "
        "earlier days with the as_of_date param"
    )


if __name__ == "__main__":
    sys.exit(main())
