"""Process bookkeeping for the native stack: PID files, ports, readiness waits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devstack.exceptions import StackError


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def require_port_free(port: int, what: str, setting: str) -> None:
    if port_open(port):
        raise StackError(
            f"port {port} is already in use, so {what} cannot start: stop whatever listens "
            f"there (`ss -ltnp 'sport = :{port}'`) or set {setting} to another port"
        )


def spawn(cmd: Sequence[str], log: Path, pidfile: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> int:
    """Start a daemon in its own session, output to `log`, PID to `pidfile`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env=env, start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, log: Path | None,
               pid: int | None = None) -> float:
    """Poll `check` until true; fail early if the process died. Returns seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if pid is not None and not pid_alive(pid):
            raise StackError(f"{what} exited during start-up; see {log}{_tail(log)}")
        with contextlib.suppress(Exception):
            if check():
                return time.monotonic() - start
        time.sleep(0.25)
    raise StackError(
        f"{what} did not become ready within {timeout_s:.0f}s; see {log}{_tail(log)} "
        "(raise SPOILER_STACK_START_TIMEOUT_S on a slow machine)"
    )


def _tail(log: Path | None, lines: int = 8) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n  | " + "\n  | ".join(text) if text else ""


def stop_pid(pidfile: Path, what: str, timeout_s: float = 30.0) -> bool:
    """SIGTERM the recorded process group, SIGKILL after `timeout_s`. False if none ran."""
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True
