"""Fault hooks for the worker (SPOILER_WORKER_FAULT_HOOK), loaded into the worker subprocess.

- a review whose value contains ``raise-in-worker`` makes the handling raise;
- sends of the review keyed ``flaky-1`` fail twice, then go through;
- a review containing ``start-outage`` makes every send of this process fail, once
  per test: the marker file (path in SP_TEST_FAULT_MARKER) remembers which process
  had the outage, so the restarted worker delivers;
- while the file named by SP_TEST_MODEL_BROKEN exists, every model call fails;
- while the file named by SP_TEST_CHALLENGER_BROKEN exists, every challenger call fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_state = {"flaky_left": 2, "outage": False}


def hook(stage: str, item: Any) -> None:
    if stage == "process":
        value = item.value or b""
        if b"raise-in-worker" in value:
            raise RuntimeError("injected by the test hook")
        if b"start-outage" in value:
            marker = Path(os.environ["SP_TEST_FAULT_MARKER"])
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                _state["outage"] = True
    elif stage == "predict":
        broken = os.environ.get("SP_TEST_MODEL_BROKEN")
        if broken and Path(broken).exists():
            raise RuntimeError("injected: the model is broken")
    elif stage == "shadow_predict":
        broken = os.environ.get("SP_TEST_CHALLENGER_BROKEN")
        if broken and Path(broken).exists():
            raise RuntimeError("injected: the challenger is broken")
    elif stage == "send":
        if _state["outage"]:
            raise RuntimeError("injected broker outage")
        if item.key == b"flaky-1" and _state["flaky_left"]:
            _state["flaky_left"] -= 1
            raise RuntimeError("injected send failure")
