"""Apache Kafka (KRaft, single node) from Maven Central jars."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from devstack.exceptions import StackError
from devstack.procs import (
    port_open,
    read_pid,
    require_port_free,
    spawn,
    stop_pid,
    wait_until,
)
from spoiler_common.settings import REPO_ROOT, KafkaSettings, StackSettings
from spoiler_common.topics import ensure_topics, topic_specs

POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
TEMPLATE = REPO_ROOT / "infra" / "kafka" / "server.properties.template"
LOG4J = REPO_ROOT / "infra" / "kafka" / "log4j2.properties"


def _dir(stack: StackSettings) -> Path:
    path = stack.state_dir / "kafka"
    path.mkdir(parents=True, exist_ok=True)
    return path


def classpath(stack: StackSettings) -> str:
    """Resolve the broker and tools jars with Maven once; cached until the pom changes."""
    out = _dir(stack) / "classpath.txt"
    if out.exists() and out.stat().st_mtime >= POM.stat().st_mtime:
        return out.read_text().strip()
    for tool, hint in (("java", "openjdk-17-jre-headless"), ("mvn", "maven")):
        if shutil.which(tool) is None:
            raise StackError(f"`{tool}` is not installed: run `make deps` (apt package {hint})")
    print("Resolving Kafka jars with Maven (first run downloads ~100 MB)...", flush=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:build-classpath",
         f"-Dmdep.outputFile={out}"],
        capture_output=True, text=True,
    )
    if result.returncode != 0 or not out.exists():
        raise StackError(
            "Maven could not resolve the Kafka jars (is Maven Central reachable?):\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    return out.read_text().strip()


def java_cmd(stack: StackSettings, main: str, *args: str, heap: str = "-Xmx256m") -> list[str]:
    return [
        "java", *heap.split(),
        f"-Dlog4j2.configurationFile={LOG4J}",
        f"-Dkafka.logs.dir={_dir(stack) / 'logs'}",
        "-cp", classpath(stack), main, *args,
    ]


def _render_config(stack: StackSettings) -> Path:
    kdir = _dir(stack)
    config = kdir / "server.properties"
    config.write_text(
        TEMPLATE.read_text().format(
            kafka_port=stack.kafka_port,
            controller_port=stack.kafka_controller_port,
            log_dir=kdir / "data",
        )
    )
    return config


def _format_storage(stack: StackSettings, config: Path) -> None:
    if (_dir(stack) / "data" / "meta.properties").exists():
        return
    # StorageTool wants a URL-safe base64 UUID (which may begin with "-", hence
    # the `--cluster-id=` form below); `random-uuid` prints one, but
    # asking Java costs a JVM start, so derive it the same way locally.
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    result = subprocess.run(
        java_cmd(stack, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                 "-c", str(config), "--standalone"),
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")


def _ready(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    # Probe the socket first: an AdminClient against a closed port logs a line per retry.
    if not port_open(int(port), host):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    md = admin.list_topics(timeout=5)
    return bool(md.brokers)


def up(stack: StackSettings, kafka: KafkaSettings) -> str:
    kdir = _dir(stack)
    pidfile = kdir / "kafka.pid"
    bootstrap = f"127.0.0.1:{stack.kafka_port}"
    if read_pid(pidfile) is None:
        require_port_free(stack.kafka_port, "Kafka", "SPOILER_STACK_KAFKA_PORT")
        require_port_free(stack.kafka_controller_port, "the Kafka controller",
                          "SPOILER_STACK_KAFKA_CONTROLLER_PORT")
        config = _render_config(stack)
        _format_storage(stack, config)
        log = kdir / "kafka.out"
        pid = spawn(java_cmd(stack, "kafka.Kafka", str(config), heap=stack.kafka_heap),
                    log, pidfile)
        waited = wait_until(lambda: _ready(bootstrap), stack.start_timeout_s, "Kafka", log, pid)
        status = f"started in {waited:.1f}s"
    else:
        wait_until(lambda: _ready(bootstrap), stack.start_timeout_s, "Kafka",
                   kdir / "kafka.out")
        status = "already running"
    admin = AdminClient({**kafka.librdkafka(), "bootstrap.servers": bootstrap})
    for report in ensure_topics(admin, topic_specs(kafka.topic_prefix)):
        if report.action == "mismatch":
            raise StackError(f"topic {report.name} differs from the spec: {report.detail}")
    return f"Kafka        {bootstrap:28} {status}"


def down(stack: StackSettings) -> str:
    stopped = stop_pid(_dir(stack) / "kafka.pid", "Kafka", timeout_s=60)
    return "Kafka        stopped" if stopped else "Kafka        was not running"


def status(stack: StackSettings) -> str:
    pid = read_pid(_dir(stack) / "kafka.pid")
    where = f"127.0.0.1:{stack.kafka_port}"
    return f"Kafka        {where:28} " + (f"running (pid {pid})" if pid else "stopped")
