"""`spoiler-topics`: create or check the topics declared in spoiler_common/topics.yaml."""

from __future__ import annotations

import sys

import typer
from confluent_kafka import KafkaException

from spoiler_common.kafka import admin_client
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import ensure_topics, topic_specs

app = typer.Typer(add_completion=False, help="Topics as code, from spoiler_common/topics.yaml.")


@app.command("ensure")
def ensure(
    replication_factor: int | None = typer.Option(
        None, "--replication-factor", help="Override the spec's replication factor."
    ),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the broker."),
) -> None:
    """Create missing topics and check existing ones against the spec."""
    settings = KafkaSettings()
    specs = topic_specs(settings.topic_prefix, replication_factor)
    try:
        reports = ensure_topics(admin_client(settings), specs, timeout_s=timeout)
    except KafkaException as exc:
        typer.echo(
            f"error: Kafka at {settings.bootstrap_servers} did not answer ({exc}); "
            "start it with `make up` or set SPOILER_KAFKA_BOOTSTRAP_SERVERS",
            err=True,
        )
        raise typer.Exit(2) from None
    bad = False
    for report in reports:
        typer.echo(f"{report.action:9} {report.name} {report.detail}".rstrip())
        bad |= report.action == "mismatch"
    if bad:
        typer.echo("error: some topics differ from the spec (see above)", err=True)
        raise typer.Exit(1)


@app.command("list")
def list_specs() -> None:
    """Print the declared topics."""
    settings = KafkaSettings()
    for spec in topic_specs(settings.topic_prefix):
        typer.echo(
            f"{spec.role:13} {spec.name:30} partitions={spec.partitions} "
            f"rf={spec.replication_factor} key={spec.key} contract={spec.contract}"
        )


if __name__ == "__main__":
    sys.exit(app())
