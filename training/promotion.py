"""Promote a registered bundle to champion, or roll back to the previous one.

One switch does, in order: resolve the target (an MLflow alias such as
`challenger`, a version number, `latest`, or a bundle directory), install it
under models/versions/, refuse it unless it loads and passed its parity gate,
move the MLflow aliases (`champion`, and `previous-champion` to the one it
replaces), swap the serving link atomically (the worker hot-reloads it between
two batches), then record the event: models/promotions.jsonl (what `rollback`
reads), PostgreSQL's `model_promotions` (the dashboards' annotations) and a
Grafana annotation when a Grafana URL is set. The recording never undoes a
switch: a database or Grafana that is down is logged, with what to do.
"""

from __future__ import annotations

import getpass
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from spoiler_common.bundle import BUNDLE_JSON, BundleManifest, read_manifest
from spoiler_common.model_runtime import load_bundle
from spoiler_common.settings import PostgresSettings, load_settings
from training import serving
from training.exceptions import PromotionError, RegistryError
from training.settings import TrainingSettings

log = logging.getLogger(__name__)

Action = Literal["promote", "rollback"]
CHAMPION = "champion"
PREVIOUS = "previous-champion"
HISTORY_FILE = "promotions.jsonl"
INSERT = """\
INSERT INTO model_promotions (happened_at, action, from_version, to_version, registered_model,
    from_registry_version, to_registry_version, reason, actor)
VALUES (%(happened_at)s, %(action)s, %(from_version)s, %(to_version)s, %(registered_model)s,
    %(from_registry_version)s, %(to_registry_version)s, %(reason)s, %(actor)s)"""


@dataclass(frozen=True)
class Candidate:
    bundle_dir: Path
    bundle_version: str
    registry_version: str | None


def history_path(settings: TrainingSettings) -> Path:
    return settings.versions_dir.parent / HISTORY_FILE


def read_history(settings: TrainingSettings) -> list[dict[str, Any]]:
    path = history_path(settings)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def gate(bundle: Path) -> BundleManifest:
    """Refuse a bundle that does not load or did not pass its export's parity gate."""
    try:
        loaded = load_bundle(bundle)
    except Exception as exc:  # any load failure: never serve it
        raise PromotionError(f"refusing {bundle}: it does not load ({exc}); rebuild it "
                             "(`make retrain`) or pick another version") from exc
    manifest = loaded.manifest
    if manifest.parity is None or not manifest.parity.passed:
        recorded = "none" if manifest.parity is None else manifest.parity.model_dump_json()[:200]
        raise PromotionError(
            f"refusing bundle {manifest.version}: its ONNX export did not pass the parity gate "
            f"(bundle.json parity={recorded}); re-export it")
    return manifest


# -- MLflow ------------------------------------------------------------------------------

def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def _registry_version(name: str, target: str) -> Any:
    """The MLflow model version `target` names: a number, 'latest' or an alias."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        if target.isdigit():
            return client.get_model_version(name, target)
        if target == "latest":
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise RegistryError(
                    f"no registered model {name!r} at {mlflow.get_tracking_uri()}: run the "
                    "pipeline (`dvc repro`, `make retrain`) first, or set MLFLOW_TRACKING_URI")
            return max(versions, key=lambda v: int(v.version))
        return client.get_model_version_by_alias(name, target)
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version or alias {target!r} at "
                            f"{mlflow.get_tracking_uri()} ({exc}); list them in the MLflow UI "
                            "or set MLFLOW_TRACKING_URI") from exc


def _registered_as(name: str, bundle_version: str) -> str | None:
    """The registered version of a bundle given as a directory (None when not registered)."""
    from mlflow.exceptions import MlflowException

    try:
        found = _client().search_model_versions(
            f"name = '{name}' and tags.bundle_version = '{bundle_version}'")
    except MlflowException:  # no registry, or no such model: a bundle from elsewhere
        return None
    return str(max(int(v.version) for v in found)) if found else None


def _champion_registry_version(name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _set_aliases(name: str, new: str | None, old: str | None) -> None:
    if new is None:
        return
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        client.set_registered_model_alias(name, CHAMPION, new)
        if old is not None and old != new:
            client.set_registered_model_alias(name, PREVIOUS, old)
    except MlflowException as exc:
        raise RegistryError(f"could not move the {CHAMPION!r} alias of {name!r} ({exc})") from exc


def resolve(target: str, registered_model: str, settings: TrainingSettings) -> Candidate:
    """A bundle to serve: a directory on disk, or a registered version (installed locally)."""
    path = Path(target)
    if (path / BUNDLE_JSON).is_file():
        version = gate(path).version  # before installing: never replace a good copy
        return Candidate(serving.install(path, settings.versions_dir), version,
                         _registered_as(registered_model, version))
    mv = _registry_version(registered_model, target)
    version = str(mv.version)
    bundle_version = (mv.tags or {}).get("bundle_version", "")
    local = serving.version_dir(settings.versions_dir, bundle_version) if bundle_version else None
    if local is not None and serving.bundle_version(local) == bundle_version:
        gate(local)
        return Candidate(local, bundle_version, version)
    import mlflow

    with tempfile.TemporaryDirectory(prefix="promote-") as tmp:
        downloaded = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{registered_model}/{version}", dst_path=tmp))
        gate(downloaded)
        installed = serving.install(downloaded, settings.versions_dir)
    return Candidate(installed, read_manifest(installed).version, version)


# -- recording -----------------------------------------------------------------------------

def record_postgres(event: dict[str, Any], pg: PostgresSettings | None = None) -> bool:
    import psycopg

    try:
        pg = pg or load_settings(PostgresSettings)
        with psycopg.connect(pg.conninfo(), connect_timeout=5) as conn:
            conn.execute(INSERT, event)
    except psycopg.errors.UndefinedTable:
        log.warning("The %s is not in PostgreSQL's model_promotions: the table is missing; apply "
                    "the migrations (`python -m sink migrate`). The switch itself happened.",
                    event["action"])
        return False
    except Exception as exc:  # the switch happened; the audit row is best effort
        log.warning("Could not record the %s in PostgreSQL (%s); the switch itself happened and "
                    "is in %s", event["action"], exc, HISTORY_FILE)
        return False
    return True


def annotate_grafana(event: dict[str, Any], settings: TrainingSettings) -> bool:
    if not settings.grafana_url:
        log.info("No Grafana annotation: SPOILER_TRAINING_GRAFANA_URL is not set (the dashboards "
                 "show the event from PostgreSQL's model_promotions).")
        return False
    from grafana_client import GrafanaApi

    token = settings.grafana_token.get_secret_value() if settings.grafana_token else None
    text = (f"Model {event['action']}: {event['from_version'] or 'none'} → "
            f"{event['to_version']}" + (f" ({event['reason']})" if event["reason"] else ""))
    try:
        GrafanaApi.from_url(settings.grafana_url, credential=token, timeout=5.0
                            ).annotations.add_annotation(
            time_from=int(time.time() * 1000), tags=["spoiler-stream", "model-promotion",
                                                     event["action"]], text=text)
    except Exception as exc:  # Grafana down or refusing: say so, keep going
        log.warning("Grafana at %s is unreachable or refused the annotation (%s); the %s is "
                    "recorded in PostgreSQL", settings.grafana_url, exc, event["action"])
        return False
    return True


# -- the switch ----------------------------------------------------------------------------

def switch(action: Action, candidate: Candidate, *, registered_model: str | None,
           settings: TrainingSettings, reason: str = "", actor: str | None = None,
           pg: PostgresSettings | None = None) -> dict[str, Any]:
    """Serve `candidate` (already through `gate`) as champion; returns the recorded event."""
    previous_version = serving.bundle_version(settings.bundle_path)
    previous_registry = (_champion_registry_version(registered_model)
                         if registered_model and candidate.registry_version else None)
    if previous_version == candidate.bundle_version:
        raise PromotionError(f"{settings.bundle_path} already serves {previous_version}: "
                             "nothing to do")
    if registered_model:
        _set_aliases(registered_model, candidate.registry_version, previous_registry)
    serving.point(settings.bundle_path, candidate.bundle_dir, settings.versions_dir)
    event: dict[str, Any] = {
        "happened_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": action,
        "from_version": previous_version,
        "to_version": candidate.bundle_version,
        "registered_model": registered_model,
        "from_registry_version": previous_registry,
        "to_registry_version": candidate.registry_version,
        "reason": reason,
        "actor": actor or getpass.getuser(),
    }
    history = history_path(settings)
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, sort_keys=True) + "\n")
    event["recorded_in_postgres"] = record_postgres(event, pg)
    event["next"] = "dvc commit -f models.dvc && git add models.dvc && dvc push"
    event["grafana_annotation"] = annotate_grafana(event, settings)
    protected = [settings.bundle_path, settings.challenger_path]
    if previous_version:
        protected.append(serving.version_dir(settings.versions_dir, previous_version))
    serving.prune(settings.versions_dir, settings.keep_versions, protected)
    log.info("Model %s done from_version=%s to_version=%s serving=%s", action, previous_version,
             candidate.bundle_version, settings.bundle_path)
    return event


def promote(target: str, *, registered_model: str, settings: TrainingSettings,
            reason: str = "", actor: str | None = None,
            pg: PostgresSettings | None = None) -> dict[str, Any]:
    candidate = resolve(target, registered_model, settings)
    return switch("promote", candidate, registered_model=registered_model, settings=settings,
                  reason=reason, actor=actor, pg=pg)


def rollback(*, registered_model: str | None, settings: TrainingSettings, reason: str = "",
             actor: str | None = None, pg: PostgresSettings | None = None) -> dict[str, Any]:
    """Serve the champion the current one replaced (like `cd -`: twice returns here)."""
    current = serving.bundle_version(settings.bundle_path)
    last = next((e for e in reversed(read_history(settings))
                 if e["to_version"] == current and e.get("from_version")), None)
    if last is None:
        raise PromotionError(f"nothing to roll back to: {history_path(settings)} records no "
                             f"promotion to the served version {current}; promote a version "
                             "explicitly (`python -m training promote VERSION`)")
    previous = serving.version_dir(settings.versions_dir, last["from_version"])
    if serving.bundle_version(previous) != last["from_version"]:
        if last.get("from_registry_version") and registered_model:
            return switch("rollback", resolve(last["from_registry_version"], registered_model,
                                              settings),
                          registered_model=registered_model, settings=settings, reason=reason,
                          actor=actor, pg=pg)
        raise PromotionError(f"the previous champion {last['from_version']} is no longer "
                             f"installed at {previous}; promote it from the registry")
    gate(previous)
    candidate = Candidate(previous, last["from_version"], last.get("from_registry_version"))
    return switch("rollback", candidate, registered_model=registered_model, settings=settings,
                  reason=reason, actor=actor, pg=pg)
