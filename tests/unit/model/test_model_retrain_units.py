"""Retrain, promotion and autopilot logic without services: snapshots, mixing, links, floors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.bundle import BundleManifest
from stream_processor.model_holder import ModelHolder
from training import autopilot, collect, serving
from training.exceptions import DataError, PromotionError
from training.params import CollectParams, PrepareParams
from training.prepare import prepare_records

pytestmark = pytest.mark.unit
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(i: int, spoiler: bool) -> dict[str, Any]:
    return {"review_id": f"r{i}", "movie_id": f"tt{i % 7}", "user_id": f"u{i}",
            "review_date": "1 May 2020", "rating": (i % 10) + 1, "review_summary": "",
            "review_text": f"review number {i} {'ending reveals' if spoiler else 'nice'}",
            "is_spoiler": spoiler, "produced_at": T0 + timedelta(seconds=i),
            "labelled_at": T0 + timedelta(seconds=i + 30)}


def records(n: int, spoiler_every: int = 3) -> list[dict[str, Any]]:
    return [record(i, i % spoiler_every == 0) for i in range(n)]


PARAMS = CollectParams(min_labels=50, min_per_class=5)
TOTALS = {"count": 300, "first": T0.isoformat(), "last": T0.isoformat()}


def test_same_rows_give_byte_identical_snapshot_and_manifest() -> None:
    a = collect.build(records(120), PARAMS, TOTALS)
    b = collect.build([dict(r) for r in records(120)], PARAMS, TOTALS)
    assert collect.encode(a.rows) == collect.encode(b.rows)
    assert json.dumps(a.manifest, sort_keys=True) == json.dumps(b.manifest, sort_keys=True)
    m = a.manifest
    assert m["rows"] == 120 and m["class_counts"] == {"spoiler": 40, "not_spoiler": 80}
    assert m["window"]["first_produced_at"] == T0.isoformat()
    assert "review_outcomes" in m["query"] and m["parameters"]["limit"] is None
    # One more label changes the hash.
    c = collect.build(records(121), PARAMS, TOTALS)
    assert c.manifest["data_hash"] != m["data_hash"]


def test_written_snapshot_is_left_untouched_when_unchanged(tmp_path: Path) -> None:
    snap = collect.build(records(80), PARAMS, TOTALS)
    collect.write(snap, tmp_path)
    first = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    collect.write(collect.build(records(80), PARAMS, TOTALS), tmp_path)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == first


@pytest.mark.parametrize(("rows", "message"), [
    ([], "no labelled reviews in the window"),
    (records(20), "only 20 labelled reviews"),
    ([record(i, True) for i in range(80)], "are spoilers: a classifier needs both classes"),
    (records(80, spoiler_every=40), "only 2 reviews of one class"),
])
def test_unusable_windows_stop_with_one_line(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(DataError) as err:
        collect.build(rows, PARAMS, TOTALS)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "collect.since" in str(err.value)  # says what to do


def test_window_bounds_must_be_iso_times() -> None:
    with pytest.raises(DataError, match="not an ISO-8601 time"):
        collect._query_args(CollectParams(since="yesterday"))
    args = collect._query_args(CollectParams(since="2026-12-01T12:00:00", max_rows=10))
    assert args == {"since": "2026-12-01T12:00:00+00:00", "until": None, "limit": 10}


def test_mixed_reviews_join_the_train_split_only() -> None:
    recent = collect.snapshot_rows(records(200))
    older = [{"review_text": f"an older review {i} plot twist", "is_spoiler": i % 2 == 0}
             for i in range(60)] + [recent[0]]  # a held-out text must not leak into train
    splits, stats = prepare_records(recent, PrepareParams(), older)
    held_out = {r["text"] for name in ("validation", "test") for r in splits[name]}
    assert not any("older review" in t for t in held_out)
    assert sum("older review" in r["text"] for r in splits["train"]) == 60
    assert stats.mixed_in in (60, 61)
    texts = [r["text"] for part in splits.values() for r in part]
    assert len(texts) == len(set(texts))


def fake_bundle(path: Path, version: str) -> Path:
    path.mkdir(parents=True)
    meta = {"format_version": 2, "name": "n", "version": version, "max_length": 8,
            "threshold": 0.5, "files": {}, "created_at": "2026-12-01T12:00:00+00:00",
            "base_model": "tiny"}
    (path / "bundle.json").write_text(json.dumps(meta))
    return path


def test_link_swap_is_atomic_and_adopts_a_plain_directory(tmp_path: Path) -> None:
    versions = tmp_path / "models" / "versions"
    link = tmp_path / "models" / "serving"
    fake_bundle(link, "v1")  # what older releases installed: a plain directory
    v2 = serving.install(fake_bundle(tmp_path / "build" / "b2", "v2"), versions)
    serving.point(link, v2, versions)
    assert link.is_symlink() and serving.bundle_version(link) == "v2"
    assert serving.bundle_version(versions / "v1") == "v1"  # the old one kept for rollback
    serving.point(link, versions / "v1", versions)
    assert serving.bundle_version(link) == "v1"
    assert not list(link.parent.glob(".serving*"))  # no temporary link left behind


def test_a_directory_that_is_not_a_bundle_is_not_replaced(tmp_path: Path) -> None:
    link = tmp_path / "serving"
    link.mkdir()
    (link / "notes.txt").write_text("mine")
    target = fake_bundle(tmp_path / "versions" / "v1", "v1")
    with pytest.raises(PromotionError, match="not a loadable bundle"):
        serving.point(link, target, tmp_path / "versions")
    assert (link / "notes.txt").read_text() == "mine"


def test_worker_holder_sees_a_link_swap_and_loads_the_new_target(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    a = fake_bundle(versions / "a", "a")
    b = fake_bundle(versions / "b", "b")
    link = tmp_path / "serving"
    serving.point(link, a, versions)
    loaded: list[Path] = []

    class StandIn:
        def __init__(self, path: Path) -> None:
            self.name, self.version = "n", json.loads((path / "bundle.json").read_text())[
                "version"]

    def loader(path: Path, variant: str, threads: int) -> Any:
        loaded.append(path)
        return StandIn(path)

    holder = ModelHolder(link, loader=loader)
    holder.load_initial()
    assert not holder.changed_on_disk()
    serving.point(link, b, versions)
    assert holder.changed_on_disk()
    import asyncio

    result = asyncio.run(holder.reload(force=False, reason="poll"))
    assert result.outcome == "ok" and holder.current.version == "b"
    assert loaded[-1] == b.resolve()  # through the link's target, not the link


def test_prune_keeps_linked_and_newest(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    dirs = [fake_bundle(versions / f"v{i}", f"v{i}") for i in range(5)]
    link = tmp_path / "serving"
    serving.point(link, dirs[0], versions)
    removed = serving.prune(versions, keep=2, protected=[link])
    assert sorted(removed) == ["v1", "v2"]
    assert sorted(p.name for p in versions.iterdir()) == ["v0", "v3", "v4"]


def test_rollback_floor_reads_the_bundle_quality_floors() -> None:
    meta = BundleManifest.from_json({
        "format_version": 2, "name": "n", "version": "v", "max_length": 8, "threshold": 0.5,
        "created_at": "2026-12-01T12:00:00+00:00", "base_model": "tiny",
        "quality_floors": {"z": 3.0, "source": "test", "n": 450, "sizes": [30, 100, 1000],
                           "metrics": {"accuracy": {"expected": 0.9,
                                                    "floor": [0.7, 0.8, 0.85]}}}})
    good = autopilot.live_quality([(True, True)] * 90 + [(False, True)] * 10)
    assert autopilot.below_floor(meta, good) is None
    bad = autopilot.live_quality([(True, True)] * 70 + [(False, True)] * 30)
    assert "below its floor 0.800" in (autopilot.below_floor(meta, bad) or "")
    # Under the first tabulated size there is no floor: no decision on too few labels.
    few = autopilot.live_quality([(True, False)] * 20)
    assert autopilot.below_floor(meta, few) is None
