"""Fixtures for the model pipeline's tests: one tiny real bundle per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete bundle from the project's own pipeline (tiny DistilBERT), ~20-60 s."""
    from training.tiny import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("model") / "bundle")
