"""bundle.json's one reader and writer (BundleManifest) and the one bundle-path setting."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from monitoring.settings import MonitorSettings
from spoiler_common.bundle import (
    BUNDLE_JSON,
    BundleManifest,
    checksums,
    now,
    read_manifest,
    verify_files,
    write_manifest,
)
from spoiler_common.exceptions import ModelBundleError
from spoiler_common.settings import DEFAULT_BUNDLE_PATH, BundleSettings
from stream_processor.settings import WorkerSettings

pytestmark = pytest.mark.unit


def manifest(**changes: object) -> BundleManifest:
    return BundleManifest.from_json({
        "format_version": 2, "name": "m", "version": "v1", "created_at": now(),
        "base_model": "tiny:distilbert", "max_length": 64, "threshold": 0.4, **changes})


def test_manifest_round_trips_through_bundle_json(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"graph")
    written = manifest(calibration={"method": "platt", "params": {"a": 2.0, "b": -1.0}},
                       confusion_matrix={"tn": 5, "fp": 1, "fn": 2, "tp": 2},
                       files=checksums(tmp_path, ["model.onnx"]))
    write_manifest(tmp_path, written)
    assert not list(tmp_path.glob(".*.tmp"))
    read = read_manifest(tmp_path)
    assert read == written == read_manifest(tmp_path / BUNDLE_JSON)
    assert read.calibration.calibration().method == "platt"
    assert read.confusion_matrix is not None and read.confusion_matrix.n == 10
    assert read.served_variant() == "int8" and read.served_variant("fp32") == "fp32"
    verify_files(tmp_path, read, ["model.onnx"])
    (tmp_path / "model.onnx").write_bytes(b"other")
    with pytest.raises(ModelBundleError, match="checksum mismatch"):
        verify_files(tmp_path, read, ["model.onnx"])


def test_confusion_matrix_reads_both_layouts() -> None:
    listed = manifest(confusion_matrix=[[5, 1], [2, 2]]).confusion_matrix
    named = manifest(confusion_matrix={"tn": 5, "fp": 1, "fn": 2, "tp": 2}).confusion_matrix
    assert listed == named and named is not None and named.predicted_spoiler_ratio == 0.3
    with pytest.raises(ModelBundleError, match="confusion_matrix"):
        manifest(confusion_matrix=[[5, 1, 0]])


@pytest.mark.parametrize("version", [1, 3, None, "2"])
def test_another_format_version_says_rebuild(tmp_path: Path, version: object) -> None:
    data = json.loads(manifest().to_json())
    data["format_version"] = version
    (tmp_path / BUNDLE_JSON).write_text(json.dumps(data))
    with pytest.raises(ModelBundleError, match=r"format_version .*rebuild the bundle"):
        read_manifest(tmp_path)


def test_bad_manifests_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ModelBundleError, match="typo_key"):
        manifest(typo_key=1)
    with pytest.raises(ModelBundleError, match="threshold"):
        manifest(threshold=1.5)
    with pytest.raises(ModelBundleError, match="does not exist"):
        read_manifest(tmp_path / "nowhere")
    with pytest.raises(ModelBundleError, match="is missing"):
        read_manifest(tmp_path)
    (tmp_path / BUNDLE_JSON).write_text("{not json")
    with pytest.raises(ModelBundleError, match="not valid JSON"):
        read_manifest(tmp_path)
    # updated() validates like a read (model_copy would not).
    with pytest.raises(ModelBundleError, match="max_length"):
        manifest().updated(max_length=2)


def test_one_bundle_path_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SPOILER_BUNDLE_PATH", "SPOILER_WORKER_BUNDLE_PATH",
                 "SPOILER_MONITOR_BUNDLE_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert WorkerSettings().bundle_path == MonitorSettings().bundle_path == DEFAULT_BUNDLE_PATH
    monkeypatch.setenv("SPOILER_BUNDLE_PATH", "/models/a")
    assert str(WorkerSettings().bundle_path) == str(MonitorSettings().bundle_path) == "/models/a"
    assert str(BundleSettings().bundle_path) == "/models/a"
    assert str(WorkerSettings(bundle_path=Path("/models/b")).bundle_path) == "/models/b"
    assert "worker_bundle_path" not in WorkerSettings().model_dump()


def test_old_bundle_path_names_are_deprecated_aliases(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SPOILER_BUNDLE_PATH", raising=False)
    monkeypatch.setenv("SPOILER_WORKER_BUNDLE_PATH", "/models/old-worker")
    monkeypatch.setenv("SPOILER_MONITOR_BUNDLE_PATH", "/models/old-monitor")
    with caplog.at_level(logging.WARNING, "spoiler_common.settings"):
        assert str(WorkerSettings().bundle_path) == "/models/old-worker"
        assert str(MonitorSettings().bundle_path) == "/models/old-monitor"
    assert "SPOILER_WORKER_BUNDLE_PATH is deprecated" in caplog.text
    assert "SPOILER_MONITOR_BUNDLE_PATH is deprecated" in caplog.text
    monkeypatch.setenv("SPOILER_BUNDLE_PATH", "/models/new")
    assert str(WorkerSettings().bundle_path) == "/models/new"  # the new name wins


def test_variant_choice_is_every_variant_plus_auto() -> None:
    from typing import get_args

    from spoiler_common.bundle import VARIANT_FILES, Variant, VariantChoice

    assert set(get_args(VariantChoice)) == {"auto", *get_args(Variant)}
    assert set(VARIANT_FILES) == set(get_args(Variant))
