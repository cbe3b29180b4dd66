"""Pipeline parameters: `params.yaml` (what DVC tracks), parsed once into typed models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from training.exceptions import TrainingError

DEFAULT_PARAMS = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateParams(_Section):
    n: int = Field(6000, ge=10, description="Synthetic reviews to generate.")
    seed: int = 42
    scenario: str = "none"
    out: str = "data/generated/reviews.jsonl"


class PrepareParams(_Section):
    # Used instead of the generated data when the file exists (data.dvc tracks data/raw/).
    raw_path: str = "data/raw/IMDB_reviews.json"
    split_by: Literal["random", "movie"] = "random"
    validation_size: float = Field(0.15, gt=0, lt=0.5)
    test_size: float = Field(0.15, gt=0, lt=0.5)
    seed: int = 42
    max_rows: int = Field(0, ge=0, description="Use at most this many rows (0 = all).")


class TrainParams(_Section):
    base_model: str = "distilbert-base-uncased"
    max_length: int = Field(256, ge=8, le=512)
    truncation: Literal["head", "head_tail"] = "head_tail"
    epochs: float = Field(3, gt=0)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = 0.01
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    class_weights: Literal["balanced", "none"] = "balanced"
    early_stopping_patience: int = Field(1, ge=0, description="Epochs without AUC gain; 0=off.")
    seed: int = 42
    threads: int = Field(0, ge=0, description="torch threads (0 = torch's default).")
    max_steps: int = Field(0, ge=0, description="Stop after this many steps (0 = no limit).")


class ExportParams(_Section):
    min_label_agreement: float = Field(0.995, ge=0, le=1)
    opset: int = 18


class PackageParams(_Section):
    name: str = "spoiler-distilbert"
    version: str = Field("auto", description="'auto' = <UTC date>-<data hash prefix>.")


class MlflowParams(_Section):
    experiment: str = "spoiler-stream"
    registered_model: str = "spoiler-detector"
    # The first registered version gets the alias so a fresh setup has something to serve.
    alias: str = "champion"
    alias_first_version: bool = True


class Params(_Section):
    generate: GenerateParams = GenerateParams()
    prepare: PrepareParams = PrepareParams()
    train: TrainParams = TrainParams()
    export: ExportParams = ExportParams()
    package: PackageParams = PackageParams()
    mlflow: MlflowParams = MlflowParams()


def load_params(path: Path = DEFAULT_PARAMS, **overrides: dict[str, Any]) -> Params:
    """Read a params file; `overrides` maps a section to fields replacing the file's."""
    try:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError as exc:
        raise TrainingError(f"params file {path} not found: run from the repository root "
                            "or pass --params") from exc
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise TrainingError(f"invalid parameters in {path}:\n{exc}") from exc
