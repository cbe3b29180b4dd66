"""An own Prometheus for experiments and tests, and the real rules rendered test-sized.

Never the shared Prometheus on 9090: each `OwnPrometheus` runs on a free port with
a generated config, and is stopped by its PID.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from devstack import prometheus
from devstack.procs import stop_pid
from spoiler_common.settings import REPO_ROOT

RULES_DIR = REPO_ROOT / "infra" / "prometheus" / "rules"


# Production alerts watch the 1h window for 15m: `for:` a quarter of the window.
FOR_SHARE_OF_WINDOW = 0.25


def _seconds(duration: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    return float(duration[:-1]) * units[duration[-1]] if duration[-1] in units else float(
        duration)


def render_rules(dst: Path, windows: str | Sequence[str], for_: str | None = None) -> Path:
    """Copy the real rule files with test-sized windows and `for:`.

    Each alert that watches a window (`window="1h"`) is rendered once per test window;
    its `for:` is `for_`, or else the production share of that window (15m of 1h). The
    comparisons match on `window`, so each copy compares a window with its own
    thresholds. Alerts without a window get `for_` or the shortest window's share;
    recording rules are copied once.
    """
    names = [windows] if isinstance(windows, str) else list(windows)

    def for_of(window: str) -> str:
        return for_ or f"{_seconds(window) * FOR_SHARE_OF_WINDOW:g}s"

    shortest = min(names, key=_seconds)
    dst.mkdir(parents=True, exist_ok=True)
    for file in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(file.read_text())
        for group in doc["groups"]:
            rules = []
            for rule in group["rules"]:
                if "alert" not in rule or not re.search(r'window="[^"]+"', rule["expr"]):
                    if "for" in rule:
                        rule["for"] = for_of(shortest)
                    rules.append(rule)
                    continue
                for window in names:
                    # The window as a static label too: copies must differ for promtool.
                    rules.append({**rule, "expr": re.sub(r'window="[^"]+"', f'window="{window}"',
                                                         rule["expr"]),
                                  "for": for_of(window),
                                  "labels": {**rule.get("labels", {}), "window": window},
                                  "annotations": dict(rule.get("annotations", {}))})
            group["rules"] = rules
        (dst / file.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst


class OwnPrometheus:
    """A Prometheus process on a free port with a generated config; stopped by its PID."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.pidfile = root / "prometheus.pid"
        self.log = root / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, targets: dict[str, list[str]], rules: Path | None,
              interval: str = "1s") -> None:
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval,
                       "scrape_timeout": interval},
            "rule_files": [f"{rules}/*.yml"] if rules else [],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": addrs}]}
                               for job, addrs in targets.items()],
        }
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "prometheus.yml"
        conf.write_text(yaml.safe_dump(config, sort_keys=False))
        prometheus.check_config(conf)
        prometheus.start(conf, self.root / "data", self.port, self.log, self.pidfile, 60.0)

    def stop(self) -> None:
        stop_pid(self.pidfile, "own Prometheus", timeout_s=10)

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} failed: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def value(self, expr: str) -> float | None:
        """The single value of an instant query (None if empty)."""
        found = self.query(expr)
        return float(found[0]["value"][1]) if found else None

    def firing(self) -> list[dict[str, str]]:
        return [a["labels"] for a in self.get("/api/v1/alerts")["alerts"]
                if a["state"] == "firing"]


__all__ = ["RULES_DIR", "OwnPrometheus", "render_rules"]
