"""Child processes of the benchmarks: a process per measured step, as Airflow gives each task
its own process (``run_forked`` for the pipeline's steps, ``run_process`` for the scripts they
are compared with)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


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


def run_forked(
    target: Callable[..., Any],
    args: tuple,
    *,
    what: str,
    env: dict[str, str],
    preload: Iterable[str],
) -> Any:
    """``target(*args)`` in a process forked from a server that imported ``preload`` once, the
    way Airflow's LocalExecutor forks each task from a worker that started with the task
    libraries imported (``pipeline.preload``); its return value. The child runs with ``env``;
    its output goes to a file, shown when it fails (``RuntimeError`` naming ``what``)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))  # no effect once the server runs
    receiver, sender = context.Pipe(duplex=False)
    with tempfile.NamedTemporaryFile(prefix="forked-", suffix=".log") as output:
        child = context.Process(target=_forked, args=(target, args, env, output.name, sender))
        child.start()
        sender.close()
        with receiver:
            try:
                sent = receiver.recv()  # a one-tuple, so that a step may return None
            except EOFError:  # the child died before sending a result
                sent = ()
        child.join()
        if child.exitcode != 0 or not sent:
            text = Path(output.name).read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{what} failed (exit {child.exitcode}):\n{text}")
    return sent[0]


def _forked(
    target: Callable[..., Any], args: tuple, env: dict[str, str], output_path: str, sender: Any
) -> None:
    os.environ.clear()
    os.environ.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    output = os.open(output_path, os.O_WRONLY | os.O_TRUNC)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    sender.send((target(*args),))
    sender.close()
