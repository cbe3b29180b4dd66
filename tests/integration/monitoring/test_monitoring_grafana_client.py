"""grafana-client code paths against a stub Grafana HTTP API that checks request shapes.

A real Grafana cannot run here; the stub answers like Grafana 11's HTTP API and
rejects any request whose method, path, auth or body shape is wrong.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from monitoring import grafana
from monitoring.cli import app
from monitoring.exceptions import GrafanaError
from monitoring.settings import MonitorSettings

pytestmark = pytest.mark.integration
TOKEN = "glsa_test_token"


@dataclass
class StubGrafana:
    port: int
    requests: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    datasources: set[str] = field(default_factory=lambda: {"spoiler-prometheus"})
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(stub: StubGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any] | None:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _check_auth(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                stub.errors.append(f"bad auth on {self.path}: {self.headers.get('Authorization')}")
                self._reply(401, {"message": "Unauthorized"})
                return False
            return True

        def do_GET(self) -> None:
            stub.requests.append(("GET", self.path, None))
            if not self._check_auth():
                return
            if self.path.startswith("/api/folders/"):
                uid = self.path.rsplit("/", 1)[1]
                if uid in stub.folders:
                    self._reply(200, {"uid": uid, "title": uid})
                else:
                    self._reply(404, {"message": "folder not found"})
            elif self.path.startswith("/api/datasources/uid/"):
                uid = self.path.rsplit("/", 1)[1]
                if uid in stub.datasources:
                    self._reply(200, {"uid": uid})
                else:
                    self._reply(404, {"message": "Data source not found"})
            else:
                stub.errors.append(f"unexpected GET {self.path}")
                self._reply(404, {"message": "not found"})

        def do_POST(self) -> None:
            body = self._body()
            stub.requests.append(("POST", self.path, body))
            if not self._check_auth():
                return
            if self.headers.get_content_type() != "application/json" or body is None:
                stub.errors.append(f"POST {self.path} without a JSON body")
                self._reply(400, {"message": "bad request"})
                return
            if self.path == "/api/folders":
                if not isinstance(body.get("title"), str) or "uid" not in body:
                    stub.errors.append(f"bad folder body {body}")
                    self._reply(400, {"message": "bad folder"})
                    return
                stub.folders.add(body["uid"])
                self._reply(200, {"uid": body["uid"], "title": body["title"]})
            elif self.path == "/api/dashboards/db":
                board = body.get("dashboard") or {}
                problems = [k for k in ("uid", "title", "panels", "schemaVersion")
                            if k not in board]
                if problems or "id" in board or body.get("overwrite") is not True \
                        or body.get("folderUid") not in stub.folders:
                    stub.errors.append(f"bad dashboard request: missing={problems} "
                                       f"keys={sorted(body)}")
                    self._reply(400, {"message": "bad dashboard"})
                    return
                stub.dashboards[board["uid"]] = board
                self._reply(200, {"status": "success", "uid": board["uid"], "version": 1,
                                  "url": f"/d/{board['uid']}/x"})
            elif self.path == "/api/annotations":
                ok = (isinstance(body.get("time"), int) and body["time"] > 1_600_000_000_000
                      and isinstance(body.get("tags"), list) and isinstance(body.get("text"), str))
                if not ok:
                    stub.errors.append(f"bad annotation {body}")
                    self._reply(400, {"message": "bad annotation"})
                    return
                stub.annotations.append(body)
                self._reply(200, {"id": len(stub.annotations), "message": "Annotation added"})
            else:
                stub.errors.append(f"unexpected POST {self.path}")
                self._reply(404, {"message": "not found"})

    return Handler


@pytest.fixture
def stub() -> Iterator[StubGrafana]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = StubGrafana(port=server.server_address[1])
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def settings(stub: StubGrafana) -> MonitorSettings:
    return MonitorSettings(grafana_url=stub.url, grafana_token=TOKEN, kafka_lag=False)


def test_push_dashboards_creates_folder_and_overwrites_each_dashboard(
        stub: StubGrafana, caplog: pytest.LogCaptureFixture) -> None:
    boards = grafana.load_dashboards()
    with caplog.at_level(logging.WARNING):
        urls = grafana.push_dashboards(grafana.api(settings(stub)), boards)
    assert not stub.errors, stub.errors
    assert set(stub.dashboards) == {b["uid"] for b in boards}
    assert len(urls) == len(boards)
    assert "spoiler-stream" in stub.folders
    # The stub lacks the PostgreSQL datasource: the push says so.
    assert "spoiler-postgres" in caplog.text
    # A second push finds the folder and overwrites.
    grafana.push_dashboards(grafana.api(settings(stub)), boards)
    assert [r[1] for r in stub.requests].count("/api/folders") == 1
    assert not stub.errors


def test_push_dashboards_cli(stub: StubGrafana, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOILER_MONITOR_GRAFANA_URL", stub.url)
    monkeypatch.setenv("SPOILER_MONITOR_GRAFANA_TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["push-dashboards"])
    assert result.exit_code == 0, result.output
    assert result.output.count("pushed ") == 3
    assert not stub.errors


def test_wrong_token_is_a_clear_error(stub: StubGrafana) -> None:
    bad = MonitorSettings(grafana_url=stub.url, grafana_token="wrong", kafka_lag=False)
    with pytest.raises(GrafanaError, match="refused"):
        grafana.push_dashboards(grafana.api(bad), grafana.load_dashboards())


def test_notifier_writes_annotations(stub: StubGrafana) -> None:
    notifier = grafana.notifier(settings(stub))
    notifier.model_version_changed("v1", "v2")
    notifier.drift("score", "psi", "1h", "v2", 0.31, 0.12)
    assert not stub.errors, stub.errors
    tags = [a["tags"] for a in stub.annotations]
    assert tags == [["spoiler-stream", "model-version"], ["spoiler-stream", "drift", "score"]]
    assert "v1 → v2" in stub.annotations[0]["text"]
    assert "PSI 0.310 above its threshold 0.120" in stub.annotations[1]["text"]


def test_notifier_survives_grafana_errors(stub: StubGrafana,
                                          caplog: pytest.LogCaptureFixture) -> None:
    bad = MonitorSettings(grafana_url=stub.url, grafana_token="wrong", kafka_lag=False)
    with caplog.at_level(logging.WARNING):
        grafana.notifier(bad).drift("rating", "chi2", "1h", "v1", 50.0, 21.7)
    assert "Could not write a Grafana annotation" in caplog.text


def test_notifier_is_off_without_url_and_says_so_once(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        notifier = grafana.notifier(MonitorSettings(grafana_url=None, kafka_lag=False))
        notifier.drift("score", "psi", "1h", "v1", 0.5, 0.1)
        notifier.model_version_changed(None, "v1")
    assert caplog.text.count("Grafana annotations are off") == 1


def test_annotate_cli(stub: StubGrafana, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOILER_MONITOR_GRAFANA_URL", stub.url)
    monkeypatch.setenv("SPOILER_MONITOR_GRAFANA_TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["annotate", "deployed v3", "--tag", "deploy"])
    assert result.exit_code == 0, result.output
    assert stub.annotations[-1]["tags"] == ["spoiler-stream", "deploy"]
