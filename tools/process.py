"""Child processes of the benchmarks: a fresh interpreter per measured step, as Airflow gives
each task its own process."""

from __future__ import annotations

import subprocess


def run_process(command: list[str], *, what: str, env: dict[str, str] | None = None) -> str:
    """Run ``command``; its standard output. A failure raises ``RuntimeError`` naming ``what``
    with the end of the process's output."""
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = (completed.stderr + completed.stdout)[-4000:]
        raise RuntimeError(f"{what} failed (exit {completed.returncode}):\n{output}")
    return completed.stdout


def last_line(output: str) -> str:
    """The last line a child printed: where the benchmarks' children put their result."""
    return output.strip().splitlines()[-1]
