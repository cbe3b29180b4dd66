"""Native supervision: supervisord restarts a crashed service with backoff and counts it."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from devstack.procs import pid_alive
from devstack.supervise import Program, Supervisor

pytestmark = pytest.mark.integration


def _wait(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_crashed_service_is_restarted_with_backoff_and_counted(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "pipeline", tmp_path)
    steady = Program("steady", (sys.executable, "-c", "import time; time.sleep(600)"),
                     start_secs=1)
    # Dies at once every time: supervisord must back off (1 s, 2 s, ...), not spin.
    # start_secs well above Python's start-up time on a loaded machine: a run that
    # outlived start_secs would count as started and be restarted once outside backoff.
    crashing = Program("crashing", (sys.executable, "-c", "raise SystemExit(7)"), start_secs=5,
                       start_retries=3)
    done = Program("done", (sys.executable, "-c", "print('finished')"), start_secs=0)
    sup.start([steady, crashing, done])
    try:
        sup.start_program("steady")
        sup.ctl("start", "crashing")  # answers "spawn error" once it gives up
        sup.ctl("start", "done")
        first = _wait(lambda: sup.pid("steady"), 20, "steady to run")
        os.kill(first, signal.SIGKILL)  # a crash
        second = _wait(lambda: (p := sup.pid("steady")) and p != first and p, 30,
                       "steady to be restarted")
        assert pid_alive(second) and sup.restarts("steady") == 1
        # 1 + 2 + 3 s of backoff, then FATAL: it is not restarted in a tight loop.
        assert _wait(lambda: sup.state("crashing") == "FATAL", 30, "crashing to give up")
        assert sup.restarts("crashing") == 3
        # A clean exit (code 0) is a finished job, not a crash.
        assert _wait(lambda: sup.state("done") == "EXITED", 20, "done to finish")
        assert sup.restarts("done") == 0
        assert "finished" in sup.program_log("done").read_text()
    finally:
        assert sup.stop()
    assert not sup.running() and not pid_alive(second)
