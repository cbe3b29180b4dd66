"""The model being served, and its hot reload.

The agent reads `holder.current` once per batch, so a reload (a reference swap
on the event loop) takes effect between batches: no batch mixes two models and
no message waits on a reload, which loads in a thread. A bundle that fails to
load is refused and the previous one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from spoiler_common.batching import BatchPolicy
from stream_processor.exceptions import ModelLoadError

log = logging.getLogger(__name__)

Fingerprint = tuple[str, tuple[tuple[str, int, int], ...]]
ReloadOutcome = Literal["ok", "failed", "unchanged"]
_BUNDLE_SUFFIXES = (".json", ".onnx", ".data")


class Batch(Protocol):
    probabilities: Any
    input_tokens: list[int]
    unknown_tokens: list[int]


class Model(Protocol):
    """What the worker needs of `spoiler_common.model_runtime.ModelBundle`."""

    name: str
    version: str
    threshold: float
    max_length: int
    metadata: dict[str, Any]

    def predict(self, texts: list[str]) -> Batch: ...


Loader = Callable[[Path, str, int], Model]


def runtime_loader(path: Path, variant: str, threads: int,
                   batching: BatchPolicy | None = None) -> Model:
    # Imported here so the worker's other modules (and their unit tests) do
    # not pull onnxruntime in.
    from spoiler_common.model_runtime import load_bundle

    # ModelBundle satisfies Model structurally at run time; its attributes are read-only
    # properties, which a Protocol of plain attributes cannot express.
    return cast(Model, load_bundle(path, variant=cast(Any, variant), threads=threads,
                                   batching=batching))


def fingerprint(path: Path) -> Fingerprint:
    """What identifies the bundle on disk: where the path points and its files' mtimes/sizes.

    Covers both roll-out styles: swapping a symlink, or copying files in place
    (a half-copied bundle fails to load; the next change is tried again).
    """
    real = path.resolve()
    files: list[tuple[str, int, int]] = []
    try:
        with os.scandir(real) as entries:
            for entry in entries:
                # Only the bundle's own files: logs or notes beside them are not a change.
                if entry.is_file() and entry.name.endswith(_BUNDLE_SUFFIXES):
                    st = entry.stat()
                    files.append((entry.name, st.st_mtime_ns, st.st_size))
    except OSError:
        pass
    return str(real), tuple(sorted(files))


@dataclass(frozen=True)
class ReloadResult:
    outcome: ReloadOutcome
    version: str
    previous_version: str
    error: str | None = None
    seconds: float = 0.0


class ModelHolder:
    """Holds the served model; loads a new one on request or when the bundle changes."""

    def __init__(
        self,
        path: Path,
        *,
        variant: str = "int8",
        threads: int = 1,
        loader: Loader = runtime_loader,
        on_change: Callable[[Model], None] | None = None,
        setting: str = "SPOILER_BUNDLE_PATH",
        role: str = "champion",
    ) -> None:
        self.path = path
        # Named in errors and logs: which setting to fix, which model it is.
        self.setting = setting
        self.role = role
        self.variant = variant
        self.threads = threads
        self._loader = loader
        self._on_change = on_change
        self._current: Model | None = None
        self._fingerprint: Fingerprint | None = None
        self._lock = asyncio.Lock()
        self.loaded_at: float | None = None
        self.last_error: str | None = None

    @property
    def current(self) -> Model:
        if self._current is None:
            raise ModelLoadError(f"no model loaded from {self.path}")
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    def _load(self) -> tuple[Model, Fingerprint]:
        before = fingerprint(self.path)
        try:
            # Load from where the link points now, not through it: a link swapped again
            # mid-load cannot mix two bundles' files (the next poll sees the new target).
            model = self._loader(Path(before[0]), self.variant, self.threads)
        except Exception as exc:  # any failure means: keep what we have
            raise ModelLoadError(
                f"could not load the model bundle at {self.path} ({type(exc).__name__}: {exc}); "
                f"check {self.setting} points at a complete bundle "
                "(bundle.json, model.onnx, tokenizer.json)"
            ) from exc
        return model, before

    def load_initial(self) -> Model:
        """Load at start-up; raises ModelLoadError (the worker cannot serve without a model)."""
        model, fp = self._load()
        self._install(model, fp)
        log.info(
            "Model loaded role=%s model_name=%s model_version=%s variant=%s path=%s",
            self.role, model.name, model.version, self.variant, self.path,
        )
        return model

    def try_load_initial(self) -> bool:
        """Load at start-up, or log why not and wait for the bundle to change on disk.

        For a model the worker can serve without (the challenger): the failing state
        is remembered, so polling tries again only once the bundle changes.
        """
        try:
            self.load_initial()
        except ModelLoadError as exc:
            self._fingerprint = fingerprint(self.path)
            self.last_error = str(exc)
            log.error("Model not loaded; serving without it until its bundle changes "
                      "role=%s error=%s", self.role, exc)
            return False
        return True

    def _install(self, model: Model, fp: Fingerprint) -> None:
        self._current, self._fingerprint = model, fp
        self.loaded_at = time.time()
        self.last_error = None
        if self._on_change is not None:
            self._on_change(model)

    def changed_on_disk(self) -> bool:
        return fingerprint(self.path) != self._fingerprint

    async def reload(self, *, force: bool = True, reason: str = "request") -> ReloadResult:
        """Load the bundle again (in a thread) and swap it in; keep the old one on failure."""
        async with self._lock:
            previous = self._current.version if self._current is not None else ""
            if not force and not self.changed_on_disk():
                return ReloadResult("unchanged", previous, previous)
            started = time.perf_counter()
            try:
                model, fp = await asyncio.to_thread(self._load)
            except ModelLoadError as exc:
                # Remember the failing state so polling does not retry it every
                # few seconds; a later change on disk is tried again.
                self._fingerprint = fingerprint(self.path)
                self.last_error = str(exc)
                log.error(
                    "Model reload refused; still serving role=%s model_version=%s reason=%s "
                    "error=%s", self.role, previous or "none", reason, exc,
                )
                return ReloadResult(
                    "failed", previous, previous, str(exc), time.perf_counter() - started
                )
            self._install(model, fp)
            seconds = time.perf_counter() - started
            log.info(
                "Model reloaded role=%s model_name=%s model_version=%s previous_version=%s "
                "reason=%s seconds=%.2f", self.role, model.name, model.version, previous, reason,
                seconds,
            )
            return ReloadResult("ok", model.version, previous, None, seconds)


__all__ = ["Model", "ModelHolder", "ReloadResult", "fingerprint", "runtime_loader"]
