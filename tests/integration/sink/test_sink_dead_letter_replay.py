"""`spoiler-dead-letters`: list dead letters, re-publish chosen ones to their source topic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from sink.dead_letters_cli import app
from sink.replay import REPLAY_HEADER, Selection, replay
from spoiler_common.kafka import consumer

pytestmark = pytest.mark.integration


def _source_messages(sink_kit: Any) -> list[Any]:
    c = consumer(sink_kit.kafka, f"{sink_kit.group_id}-replay-check", "replay-check")
    c.subscribe([sink_kit.topic("reviews")])
    out: list[Any] = []

    def four_read() -> bool:
        out.extend(m for m in c.consume(100, 1.0) if not m.error())
        return len(out) >= 4

    try:
        sink_kit.wait_for(four_read, 60, "the re-published messages", every_s=0)
    finally:
        c.close()
    return out


def test_replay_republishes_chosen_dead_letters_once(sink_kit: Any, monkeypatch: Any) -> None:
    base = json.loads(sink_kit.review("r1", 1).model_dump_json())
    big = json.dumps({**base, "review_id": "big", "review_text": "x" * 400_000}).encode()
    sink_kit.publish([("reviews", b"bad", b"{not json"), ("reviews", b"big", big)],
                     **{"message.max.bytes": 2_000_000})
    with sink_kit.running():
        sink_kit.wait_counts({"dead_letters": 2})
        monkeypatch.setenv("SPOILER_PG_DATABASE", sink_kit.pg.database)
        monkeypatch.setenv("SPOILER_KAFKA_TOPIC_PREFIX", sink_kit.kafka.topic_prefix)
        listed = CliRunner().invoke(app, ["list"])
        assert listed.exit_code == 0 and "invalid_json" in listed.output, listed.output

        conninfo = sink_kit.pg.conninfo()
        everything = Selection(services=["sink"])
        dry = replay(conninfo, sink_kit.kafka, everything, dry_run=True)
        assert (dry.messages, dry.published) == (2, 0)
        report = replay(conninfo, sink_kit.kafka, everything)
        # The 400 kB value was cut to 256 KiB in the dead letter: read back from its topic.
        assert (report.published, report.from_source_topic, report.failed) == (2, 1, [])
        assert replay(conninfo, sink_kit.kafka, everything).messages == 0  # not twice
        # Re-published, still bad: rejected again, at their new offsets.
        sink_kit.wait_counts({"dead_letters": 4})
    messages = _source_messages(sink_kit)
    values = sorted(m.value() for m in messages)
    assert values == sorted([b"{not json", b"{not json", big, big])
    replayed = [m for m in messages if m.headers()]
    assert len(replayed) == 2 and all(h[0] == REPLAY_HEADER for m in replayed
                                      for h in m.headers())
    assert sink_kit.query("SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL") \
        == [(2,)]
    refused = CliRunner().invoke(app, ["replay"])
    assert refused.exit_code == 2 and "choose what to replay" in refused.output
