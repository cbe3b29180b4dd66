"""Prometheus from Debian's package with the project's config and rules."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

from devstack.exceptions import StackError
from devstack.procs import read_pid, require_port_free, spawn, stop_pid, wait_until
from spoiler_common.settings import REPO_ROOT, StackSettings

CONFIG = REPO_ROOT / "infra" / "prometheus" / "prometheus.yml"


def binary(name: str = "prometheus") -> str:
    found = shutil.which(name)
    if found is None:
        raise StackError(f"`{name}` is not installed: run `make deps` (apt package prometheus)")
    return found


def check_config(config: Path = CONFIG) -> None:
    result = subprocess.run([binary("promtool"), "check", "config", str(config)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"promtool rejected {config}:\n{result.stdout}{result.stderr}")


def start(config: Path, data_dir: Path, port: int, log: Path, pidfile: Path,
          timeout_s: float, extra: tuple[str, ...] = ()) -> float:
    """Start a Prometheus process and wait until /-/ready answers. Used by tests too."""
    pid = spawn(
        [binary(), f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
         "--web.enable-admin-api", *extra],
        log, pidfile,
    )
    return wait_until(lambda: _ready(port), timeout_s, "Prometheus", log, pid)


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as resp:
        return bool(resp.status == 200)


def up(stack: StackSettings) -> str:
    pdir = stack.state_dir / "prometheus"
    pdir.mkdir(parents=True, exist_ok=True)
    pidfile = pdir / "prometheus.pid"
    where = f"http://127.0.0.1:{stack.prometheus_port}"
    if read_pid(pidfile) is not None:
        return f"Prometheus   {where:28} already running"
    check_config()
    require_port_free(stack.prometheus_port, "Prometheus", "SPOILER_STACK_PROMETHEUS_PORT")
    waited = start(CONFIG, pdir / "data", stack.prometheus_port, pdir / "prometheus.log",
                   pidfile, stack.start_timeout_s)
    return f"Prometheus   {where:28} started in {waited:.1f}s"


def down(stack: StackSettings) -> str:
    stopped = stop_pid(stack.state_dir / "prometheus" / "prometheus.pid", "Prometheus")
    return "Prometheus   stopped" if stopped else "Prometheus   was not running"


def status(stack: StackSettings) -> str:
    pid = read_pid(stack.state_dir / "prometheus" / "prometheus.pid")
    where = f"http://127.0.0.1:{stack.prometheus_port}"
    return f"Prometheus   {where:28} " + (f"running (pid {pid})" if pid else "stopped")
