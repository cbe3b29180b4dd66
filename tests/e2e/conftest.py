"""End-to-end fixtures: the pipeline's real services as subprocesses.

Each service runs as `python -m <service> ...` exactly as `make up` starts it,
configured only through SPOILER_* environment variables (unique topic prefix,
database, consumer groups and ports per test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.procs import free_port, pid_alive
from spoiler_common.settings import REPO_ROOT

# The sink's throw-away PostgreSQL cluster, reused here to crash it on purpose.
from tests.integration.sink.conftest import private_postgres  # noqa: F401

PY = str(REPO_ROOT / ".venv" / "bin" / "python")


@dataclass
class ServiceProcess:
    """One service subprocess; restartable, killable with SIGKILL like a crash."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = field(default=0)

    def start(self) -> ServiceProcess:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([PY, *self.args], env=self.env, cwd=REPO_ROOT,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def restart(self) -> None:
        self.restarts += 1
        self.start()

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and pid_alive(self.proc.pid)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             services: list[ServiceProcess] | None = None, interval: float = 0.5) -> float:
    """Poll until `check` holds; on timeout, fail with the services' log tails."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except Exception:  # a service still starting refuses connections
            pass
        time.sleep(interval)
    logs = "\n".join(f"--- {s.name} ---\n{s.tail()}" for s in services or [])
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return bool(resp.status == 200)


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def make(name: str, args: list[str], env: dict[str, str]) -> ServiceProcess:
        # Shadow scoring off whatever .env says (tests/conftest.py); a test passes its own.
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
                    "SPOILER_WORKER_CHALLENGER_PATH": "", **env}
        service = ServiceProcess(name, args, full_env, tmp_path / f"{name}.log")
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


@pytest.fixture
def ports() -> Callable[[], int]:
    return free_port


@dataclass
class SinkAndWorker:
    """A sink and a worker started together, both healthy."""

    sink: ServiceProcess
    worker: ServiceProcess
    sink_port: int
    worker_port: int

    @property
    def services(self) -> list[ServiceProcess]:
        return [self.sink, self.worker]

    def healthy(self) -> bool:
        return (http_ok(f"http://127.0.0.1:{self.worker_port}/readyz")
                and http_ok(f"http://127.0.0.1:{self.sink_port}/healthz"))


def start_sink_and_worker(service_factory: Callable[..., ServiceProcess],
                          ports: Callable[[], int], env: dict[str, str], datadir: Path,
                          worker_env: dict[str, str]) -> SinkAndWorker:
    """Start `python -m sink run` and `python -m stream_processor worker` on `env` (the
    worker also on `worker_env`, which names its bundle) and wait until both are healthy."""
    sink_port, worker_port = ports(), ports()
    sink = service_factory("sink", ["-m", "sink", "run"],
                           {**env, "SPOILER_SINK_METRICS_PORT": str(sink_port)}).start()
    worker = service_factory("worker", ["-m", "stream_processor", "worker"], {
        **env, "SPOILER_WORKER_WEB_PORT": str(worker_port),
        "SPOILER_WORKER_DATADIR": str(datadir), **worker_env}).start()
    pair = SinkAndWorker(sink, worker, sink_port, worker_port)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{sink_port}/healthz"), 90, "sink",
             pair.services)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{worker_port}/readyz"), 120, "worker",
             pair.services)
    return pair


@pytest.fixture
def own_prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Start a private Prometheus scraping the given targets every second."""
    from tests.integration.monitoring.conftest import OwnPrometheus

    started: list[OwnPrometheus] = []

    def make(targets: dict[str, list[str]], rules: Path | None = None) -> OwnPrometheus:
        root = tmp_path / f"prometheus-{len(started)}"
        root.mkdir()
        prom = OwnPrometheus(root, free_port())
        started.append(prom)
        prom.start(targets, rules)
        return prom

    yield make
    for prom in started:
        prom.stop()
