"""The benchmark's forked steps: preloaded libraries inherited, the step's environment and
result, and a failure's output."""

from __future__ import annotations

import os
import sys

import pytest

from tools.process import run_forked

PRELOADED = "great_expectations"


def _what_the_child_sees(name: str) -> dict:
    # Read before anything else runs in the child: only the server's preload can have put it here.
    return {"preloaded": PRELOADED in sys.modules, "env": os.environ.get(name), "pid": os.getpid()}


def _returns_nothing() -> None:
    print("a step that only writes")


def _dies() -> None:
    os._exit(3)  # no result sent, no exception: what a killed step looks like


def _fails() -> None:
    print("the step's own words before it fails")
    raise ValueError("broken step")


def test_a_forked_step_inherits_the_preloaded_library_and_runs_with_its_environment():
    env = {**os.environ, "SEGMENTS_FORKED_CHECK": "night 2"}
    seen = run_forked(
        _what_the_child_sees,
        ("SEGMENTS_FORKED_CHECK",),
        what="check",
        env=env,
        preload=[PRELOADED],
    )
    assert seen["preloaded"] is True
    assert seen["env"] == "night 2"
    assert seen["pid"] != os.getpid()
    assert "SEGMENTS_FORKED_CHECK" not in os.environ


def test_a_failing_forked_step_raises_with_its_output():
    with pytest.raises(RuntimeError) as failure:
        run_forked(_fails, (), what="Stage broken", env=dict(os.environ), preload=[PRELOADED])
    message = str(failure.value)
    assert message.startswith("Stage broken failed (exit 1)")
    assert "the step's own words before it fails" in message
    assert "ValueError: broken step" in message


def test_a_forked_step_may_return_none():
    assert (
        run_forked(_returns_nothing, (), what="writer", env=dict(os.environ), preload=[PRELOADED])
        is None
    )


def test_a_forked_step_that_dies_without_a_result_raises():
    with pytest.raises(RuntimeError, match=r"^killed step failed \(exit 3\)"):
        run_forked(_dies, (), what="killed step", env=dict(os.environ), preload=[PRELOADED])
