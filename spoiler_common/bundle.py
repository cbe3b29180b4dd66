"""bundle.json, the manifest of a model bundle: its one typed model, reader and writer.

A bundle directory holds ``model.onnx`` (int8), ``model.fp32.onnx``,
``tokenizer.json`` and ``bundle.json``. Training writes the manifest (export a
provisional one, package the final one), the runtime, the monitor, the registry
and the native stack read it, all through :func:`read_manifest` and
:func:`write_manifest`; nothing else parses the file.

    manifest = read_manifest(Path("models/serving"))
    manifest.threshold, manifest.calibration.calibration(), manifest.reference

Format 2 (docs/model.md, "Bundle"): scores are calibrated (the ``calibration``
block) and the monitor's blocks (``reference``, ``drift_thresholds``,
``quality_floors``) are bootstrapped from held-out data. Another
``format_version`` is refused with "rebuild the bundle". Blocks the provisional
bundle of the export stage does not have yet (metrics, reference, ...) are
optional; the reader that needs one says so when it is absent. Keys this
release does not know are refused (``extra="forbid"``): a writer's typo fails
at once instead of producing a block nobody reads.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from spoiler_common.calibration import Calibration, CalibrationMethod
from spoiler_common.drift import Statistic
from spoiler_common.exceptions import ModelBundleError

# 2: scores are calibrated (the `calibration` block), the reference has drift
# thresholds and quality floors. A format-1 bundle's scores mean something else.
FORMAT_VERSION: Literal[2] = 2
BUNDLE_JSON = "bundle.json"
TOKENIZER_FILE = "tokenizer.json"
Variant = Literal["int8", "fp32", "fp32-fused", "int8-selective", "int8-static"]
# What a service may be told to load: a variant, or "auto", the graph the bundle names as
# `default_variant` (the fastest that passed the export's parity gate).
# Spelled out, not `Literal["auto"] | Variant`, so a wrong value gets one error listing
# all choices; a unit test keeps it equal to Variant plus "auto".
VariantChoice = Literal["auto", "int8", "fp32", "fp32-fused", "int8-selective", "int8-static"]
# Graph variants a bundle may carry (training/graphs.py builds them; export's parity
# gate picks the served one). fp32 and int8 are in every bundle; the others where
# export built them, and `files` lists what a bundle has.
VARIANT_FILES: dict[Variant, str] = {
    "int8": "model.onnx",                           # dynamic int8, every MatMul and Gather
    "fp32": "model.fp32.onnx",                      # the export itself
    "fp32-fused": "model.fp32-fused.onnx",          # fp32 + transformer optimizer fusions
    "int8-selective": "model.int8-selective.onnx",  # int8 except the sensitive layers
    "int8-static": "model.int8-static.onnx",        # static QDQ int8, calibrated ranges
}
# The files every bundle has and whose sha256 bundle.json records (everything but itself).
BUNDLE_FILES = (VARIANT_FILES["int8"], VARIANT_FILES["fp32"], TOKENIZER_FILE)


def bundle_files(bundle_dir: Path) -> list[str]:
    """The files a bundle directory carries: the required ones and each variant present."""
    extra = [f for f in VARIANT_FILES.values()
             if f not in BUNDLE_FILES and (bundle_dir / f).is_file()]
    return [*BUNDLE_FILES, *extra]
Truncation = Literal["head", "head_tail"]
# The classifier's two outputs; the runtime reads index 1 as P(spoiler).
LABEL_MAP = {"0": "not_spoiler", "1": "spoiler"}
REBUILD = ("rebuild the bundle with this release's training code (`python -m training "
           "ensure-bundle --force` or `dvc repro`) and point SPOILER_BUNDLE_PATH at it")
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Block(BaseModel):
    """A block of bundle.json: immutable, no unknown keys."""

    # NaN stays NaN (a one-class split has no ROC-AUC), as json.dumps writes it.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class Metrics(Block):
    """Classification metrics of one split at the bundle's threshold (calibrated scores)."""

    roc_auc: float
    pr_auc: float
    f1_spoiler: float
    macro_f1: float
    accuracy: float
    brier: float
    ece: float
    precision_spoiler: float
    recall_spoiler: float
    spoiler_rate: float
    n: NonNegativeInt

    def as_floats(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.model_dump().items()}


class BaselineMetrics(Block):
    """A simple model's test metrics, beside the served model's (same split, same tuning)."""

    roc_auc: float
    pr_auc: float
    f1_spoiler: float
    accuracy: float
    brier: float


class CalibrationScore(Block):
    """A calibration candidate's cross-fitted validation scores."""

    brier: float
    ece: float


class CalibrationBlock(Block):
    """The map the runtime applies to every raw score (identity when the bundle has none)."""

    method: CalibrationMethod = "identity"
    params: dict[str, float | list[float]] = Field(default_factory=dict)
    selected_by: str | None = None
    candidates: dict[str, CalibrationScore] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _loads(self) -> Self:
        try:
            self.calibration()
        except ModelBundleError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def calibration(self) -> Calibration:
        return Calibration.from_params(self.method, self.params)


class ConfusionMatrix(Block):
    """Test-split counts at the threshold; spoiler is the positive class."""

    tn: NonNegativeInt
    fp: NonNegativeInt
    fn: NonNegativeInt
    tp: NonNegativeInt

    @model_validator(mode="before")
    @classmethod
    def _matrix(cls, data: Any) -> Any:
        # [[tn, fp], [fn, tp]] (sklearn's layout, the format-2 contract's example) reads
        # the same as the {tn, fp, fn, tp} packaging writes.
        if isinstance(data, list | tuple):
            try:
                (tn, fp), (fn, tp) = data
            except (TypeError, ValueError):
                raise ValueError("expected [[tn, fp], [fn, tp]] or {tn, fp, fn, tp}") from None
            return {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
        return data

    @property
    def n(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    @property
    def predicted_spoiler_ratio(self) -> float | None:
        return (self.fp + self.tp) / self.n if self.n else None


class Agreement(Block):
    """Two graphs' scores on the same texts: label agreement at a threshold and |Δp|."""

    label_agreement: Probability
    max_abs_diff: float
    mean_abs_diff: float
    n: NonNegativeInt


class VariantParity(Agreement):
    """One graph variant against fp32: calibrated scores, at the tuned threshold."""

    passed: bool
    build_seconds: float | None = None
    fused_operators: dict[str, int] | None = None       # fp32-fused
    sensitivity_mean_abs_diff: dict[str, float] | None = None  # int8-selective, per layer
    budget: float | None = None
    int8_layers: list[int] | None = None
    fp32_layers: list[int] | None = None
    calibration: Literal["minmax"] | None = None           # int8-static: how ranges were set
    calibration_texts: int | None = None                   # int8-static: training texts used


class Parity(Block):
    """The export's parity gate and which graph it chose to serve.

    `variants` (this release): every graph built, scored on all `n` validation texts
    and compared with fp32 on the calibrated score at the tuned `threshold`. Bundles
    of the previous export carry `int8_vs_fp32` (raw scores at 0.5) instead.
    """

    n: NonNegativeInt
    threshold: Probability
    min_label_agreement: Probability
    fp32_vs_torch: Agreement
    passed: bool
    served_variant: Variant
    calibration: str | None = None
    reference: str | None = None
    speed_order: list[str] = Field(default_factory=list)
    variants: dict[str, VariantParity] = Field(default_factory=dict)
    not_built: dict[str, str] = Field(default_factory=dict)
    refused: dict[str, str] = Field(default_factory=dict)
    int8_vs_fp32: Agreement | None = None
    int8_refused: str | None = None
    seconds: float | None = None


class SpecialTokens(Block):
    """Names of the BERT-style special tokens in tokenizer.json."""

    cls: str = "[CLS]"
    sep: str = "[SEP]"
    pad: str = "[PAD]"
    unk: str = "[UNK]"


class Histogram(Block):
    """Counts over bins: `edges` (increasing), one count fewer than edges."""

    edges: list[float] = Field(min_length=2)
    counts: list[NonNegativeInt]

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if any(b <= a for a, b in itertools.pairwise(self.edges)):
            raise ValueError("edges must increase strictly")
        if len(self.counts) != len(self.edges) - 1:
            raise ValueError(f"{len(self.counts)} counts for {len(self.edges) - 1} bins")
        if sum(self.counts) <= 0:
            raise ValueError("the counts are all 0")
        return self


class Reference(Block):
    """Held-out histograms of the drift features (`spoiler_common.drift.FEATURES`)."""

    source: str
    n: NonNegativeInt
    features: dict[str, Histogram]


def _check_sizes(sizes: list[int]) -> list[int]:
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ValueError("sizes must increase strictly")
    return sizes


def _check_curve(where: str, values: list[float], sizes: list[int]) -> None:
    if len(values) != len(sizes):
        raise ValueError(f"{where}: {len(values)} values for {len(sizes)} sizes")


Sizes = Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]


class DriftThresholds(Block):
    """Per feature and statistic, the value an unchanged stream exceeds only `alpha` of the
    time, tabulated at window sizes `sizes` (read at any n with `drift.SizeCurve`)."""

    alpha: Probability
    family_alpha: Probability
    statistics: NonNegativeInt
    draws: NonNegativeInt
    sizes: Sizes
    method: str
    features: dict[str, dict[Statistic, list[float]]]

    _sizes = field_validator("sizes")(_check_sizes)

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        for feature, stats in self.features.items():
            for stat, values in stats.items():
                _check_curve(f"features.{feature}.{stat}", values, self.sizes)
        return self


class QualityFloor(Block):
    """A quality metric's test value and its floor at each window size."""

    expected: float
    floor: list[float]


class QualityFloors(Block):
    """`expected - z * SE(n)` per quality metric, at window sizes `sizes`."""

    z: float = Field(gt=0)
    source: str
    n: NonNegativeInt
    sizes: Sizes
    metrics: dict[str, QualityFloor]

    _sizes = field_validator("sizes")(_check_sizes)

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        for name, block in self.metrics.items():
            _check_curve(f"metrics.{name}.floor", block.floor, self.sizes)
        return self


class BundleManifest(Block):
    """bundle.json (format 2). Build one with the keyword arguments; read with read_manifest."""

    format_version: Literal[2] = FORMAT_VERSION
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    created_at: AwareDatetime
    base_model: str
    max_length: int = Field(ge=8)
    truncation: Truncation = "head"
    # The graph to serve: the fastest that passed the export's parity gate.
    default_variant: Variant = "int8"
    # On the calibrated probability.
    threshold: Probability
    label_map: dict[str, str] = Field(default_factory=lambda: dict(LABEL_MAP))
    special_tokens: SpecialTokens = SpecialTokens()
    metrics: Metrics | None = None
    validation_metrics: Metrics | None = None
    baselines: dict[str, BaselineMetrics] = Field(default_factory=dict)
    calibration: CalibrationBlock = CalibrationBlock()
    confusion_matrix: ConfusionMatrix | None = None
    parity: Parity | None = None
    data_hash: str | None = None
    training_spoiler_rate: Probability | None = None
    split_sizes: dict[str, NonNegativeInt] = Field(default_factory=dict)
    reference: Reference | None = None
    drift_thresholds: DriftThresholds | None = None
    quality_floors: QualityFloors | None = None
    # File name -> sha256 of every file of the bundle but bundle.json.
    files: dict[str, Sha256] = Field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, where: str = BUNDLE_JSON) -> BundleManifest:
        """The manifest in `data` (parsed JSON); ModelBundleError says what is wrong."""
        if not isinstance(data, Mapping):
            raise ModelBundleError(f"{where} must hold a JSON object; {REBUILD}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelBundleError(
                f"{where} has format_version {version!r}; this release reads format_version "
                f"{FORMAT_VERSION} (calibrated scores, drift thresholds and quality floors): "
                f"{REBUILD}, or run the release that built it")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ModelBundleError(f"{where} is not a valid bundle manifest "
                                   f"({_problems(exc)}); {REBUILD}") from exc

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form as a dict (what GET /model shows)."""
        return self.model_dump(mode="json", exclude_none=True)

    def updated(self, **changes: Any) -> BundleManifest:
        """A copy with `changes`, validated like a read (model_copy would skip that)."""
        return BundleManifest.from_json({**self.model_dump(), **changes})

    def served_variant(self, choice: str = "auto") -> Variant:
        """The graph to load for `choice`: the bundle's `default_variant` when "auto"."""
        wanted = self.default_variant if choice == "auto" else choice
        if wanted not in VARIANT_FILES:
            raise ModelBundleError(f"variant must be one of auto, "
                                   f"{', '.join(sorted(VARIANT_FILES))}, got {wanted!r}")
        return wanted  # type: ignore[return-value]


def _problems(exc: ValidationError, most: int = 3) -> str:
    errors = exc.errors()
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: "
                     f"{e['msg'].removeprefix('Value error, ')}" for e in errors[:most])
    return text + (f"; and {len(errors) - most} more" if len(errors) > most else "")


def now() -> datetime:
    """created_at of a manifest written now (whole seconds, UTC)."""
    return datetime.now(UTC).replace(microsecond=0)


def manifest_file(path: Path) -> Path:
    """bundle.json of `path`, a bundle directory or the file itself."""
    return path / BUNDLE_JSON if path.is_dir() else path


def read_manifest(path: Path | str) -> BundleManifest:
    """The manifest of a bundle directory (or of a bundle.json); ModelBundleError with the fix."""
    path = Path(path)
    if not path.exists():
        raise ModelBundleError(
            f"model bundle directory {path} does not exist: build one with "
            f"`python -m training ensure-bundle --out {path}` or `dvc pull models.dvc`, "
            "or set SPOILER_BUNDLE_PATH")
    file = manifest_file(path)
    try:
        data = json.loads(file.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ModelBundleError(
            f"{file} is missing: {path} is not a model bundle (or was copied "
            "incompletely); copy the whole bundle directory again") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelBundleError(f"{file} is not valid JSON ({exc}); {REBUILD}") from exc
    return BundleManifest.from_json(data, str(file))


def write_manifest(bundle_dir: Path, manifest: BundleManifest) -> None:
    """Write bundle.json atomically (a reader never sees half a file)."""
    tmp = bundle_dir / f".{BUNDLE_JSON}.tmp"
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    os.replace(tmp, bundle_dir / BUNDLE_JSON)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(bundle_dir: Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """name -> sha256 of the bundle's files (what `files` records; default: all it has)."""
    names = list(names) if names is not None else bundle_files(bundle_dir)
    missing = [name for name in names if not (bundle_dir / name).is_file()]
    if missing:
        raise ModelBundleError(f"{bundle_dir} lacks {', '.join(missing)}: re-run the export")
    return {name: sha256_file(bundle_dir / name) for name in names}


def verify_files(bundle_dir: Path, manifest: BundleManifest, needed: Iterable[str]) -> None:
    """Every listed file exists with its recorded sha256; the needed ones are listed."""
    for name in needed:
        if name not in manifest.files:
            raise ModelBundleError(f"{bundle_dir / BUNDLE_JSON} does not list {name} under "
                                   f"`files`; {REBUILD}")
    for name, expected in manifest.files.items():
        file = bundle_dir / name
        if not file.is_file():
            raise ModelBundleError(
                f"bundle {bundle_dir} is missing {name} (listed in bundle.json): copy the whole "
                "bundle directory again or rebuild it")
        actual = sha256_file(file)
        if actual != expected:
            raise ModelBundleError(
                f"checksum mismatch for {file}: bundle.json says sha256 {expected[:12]}…, "
                f"the file has {actual[:12]}… (corrupted or half-copied); copy the bundle again")


def calibration_of(data: Mapping[str, Any]) -> Calibration:
    """The calibration a bundle.json-shaped mapping prescribes (identity when it has none)."""
    block = data.get("calibration")
    try:
        return CalibrationBlock.model_validate(block or {}).calibration()
    except ValidationError as exc:
        raise ModelBundleError(f"bundle.json calibration: {_problems(exc)}; {REBUILD}") from exc


__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_JSON",
    "FORMAT_VERSION",
    "LABEL_MAP",
    "REBUILD",
    "TOKENIZER_FILE",
    "VARIANT_FILES",
    "Agreement",
    "BaselineMetrics",
    "BundleManifest",
    "CalibrationBlock",
    "CalibrationScore",
    "ConfusionMatrix",
    "DriftThresholds",
    "Histogram",
    "Metrics",
    "Parity",
    "QualityFloor",
    "QualityFloors",
    "Reference",
    "SpecialTokens",
    "Truncation",
    "Variant",
    "VariantChoice",
    "VariantParity",
    "bundle_files",
    "calibration_of",
    "checksums",
    "manifest_file",
    "now",
    "read_manifest",
    "sha256_file",
    "verify_files",
    "write_manifest",
]
