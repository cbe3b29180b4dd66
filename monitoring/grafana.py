"""Grafana HTTP API: push the dashboards, write annotations (grafana-client)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from monitoring.exceptions import GrafanaError
from monitoring.settings import MonitorSettings
from spoiler_common.settings import REPO_ROOT

log = logging.getLogger(__name__)
DASHBOARD_DIR = REPO_ROOT / "grafana" / "dashboards"
FOLDER_UID = "spoiler-stream"
FOLDER_TITLE = "spoiler-stream"
DATASOURCE_UIDS = ("spoiler-prometheus", "spoiler-postgres")


def api(settings: MonitorSettings) -> GrafanaApi:
    """A client for SPOILER_MONITOR_GRAFANA_URL with the token or user/password."""
    if not settings.grafana_url:
        raise GrafanaError("SPOILER_MONITOR_GRAFANA_URL is not set: point it at Grafana, "
                           "e.g. http://127.0.0.1:3000")
    credential: str | tuple[str, str] | None = None
    if settings.grafana_token is not None:
        credential = settings.grafana_token.get_secret_value()
    elif settings.grafana_user and settings.grafana_password is not None:
        credential = (settings.grafana_user, settings.grafana_password.get_secret_value())
    return GrafanaApi.from_url(settings.grafana_url, credential=credential, timeout=10.0)


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[dict[str, Any]]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise GrafanaError(f"no dashboard JSON files in {directory}")
    return [json.loads(f.read_text("utf-8")) for f in files]


def push_dashboards(client: GrafanaApi, dashboards: Iterable[dict[str, Any]],
                    folder_uid: str = FOLDER_UID) -> list[str]:
    """Create the folder if needed and create-or-overwrite each dashboard; returns URLs."""
    try:
        try:
            client.folder.get_folder(folder_uid)
        except GrafanaException as exc:
            if getattr(exc, "status_code", None) != 404:
                raise
            client.folder.create_folder(FOLDER_TITLE, uid=folder_uid)
        missing = []
        for uid in DATASOURCE_UIDS:
            try:
                client.datasource.get_datasource_by_uid(uid)
            except GrafanaException as exc:
                if getattr(exc, "status_code", None) != 404:
                    raise
                missing.append(uid)
        if missing:
            log.warning("Grafana lacks datasources the dashboards use; create them with these "
                        "uids (see grafana/provisioning/datasources). missing=%s",
                        ",".join(missing))
        urls = []
        for board in dashboards:
            body = {k: v for k, v in board.items() if k != "id"}
            result = client.dashboard.update_dashboard(
                {"dashboard": body, "folderUid": folder_uid, "overwrite": True,
                 "message": "spoiler-stream push-dashboards"})
            urls.append(str(result.get("url", body.get("uid"))))
        return urls
    except GrafanaException as exc:
        raise GrafanaError(f"Grafana refused the request: {exc}; check "
                           "SPOILER_MONITOR_GRAFANA_URL and the token's Editor role") from exc
    except OSError as exc:
        raise GrafanaError(f"cannot reach Grafana: {exc}") from exc


class Notifier(Protocol):
    def model_version_changed(self, old: str | None, new: str) -> None: ...

    def drift(self, feature: str, statistic: str, window: str, model_version: str,
              value: float, threshold: float) -> None: ...


class NullNotifier:
    """Annotations off (no Grafana URL); says so once."""

    def __init__(self) -> None:
        log.info("Grafana annotations are off: set SPOILER_MONITOR_GRAFANA_URL to turn them on.")

    def model_version_changed(self, old: str | None, new: str) -> None:
        return None

    def drift(self, feature: str, statistic: str, window: str, model_version: str,
              value: float, threshold: float) -> None:
        return None


class GrafanaNotifier:
    """Writes organisation-wide annotations; failures are logged, never raised."""

    def __init__(self, client: GrafanaApi) -> None:
        self.client = client

    def annotate(self, tags: list[str], text: str) -> bool:
        """Write one annotation tagged `spoiler-stream`; False (logged) if Grafana refused."""
        try:
            self.client.annotations.add_annotation(
                time_from=int(time.time() * 1000), tags=["spoiler-stream", *tags], text=text)
        except (GrafanaException, OSError) as exc:
            log.warning("Could not write a Grafana annotation. error=%s tags=%s", exc, tags)
            return False
        return True

    def model_version_changed(self, old: str | None, new: str) -> None:
        self.annotate(["model-version"], f"Model version {old or 'none'} → {new}")

    def drift(self, feature: str, statistic: str, window: str, model_version: str,
              value: float, threshold: float) -> None:
        self.annotate(["drift", feature],
                      f"Drift on {feature}: {statistic.upper()} {value:.3f} above its "
                      f"threshold {threshold:.3f} (window {window}, model {model_version})")


def notifier(settings: MonitorSettings) -> Notifier:
    if not settings.grafana_url:
        return NullNotifier()
    return GrafanaNotifier(api(settings))


__all__ = ["GrafanaNotifier", "Notifier", "NullNotifier", "load_dashboards", "notifier",
           "push_dashboards"]
