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


def render_rules(dst: Path, windows: str | Sequence[str], for_: str) -> Path:
    """Copy the real rule files, with the alerts' window(s) and `for:` made test-sized.

    One window replaces `window="1h"` by that window; several make the rules watch all
    of them (`window=~"a|b"`): the comparisons match on `window`, so each window is
    compared with its own thresholds.
    """
    names = [windows] if isinstance(windows, str) else list(windows)
    matcher = f'window="{names[0]}"' if len(names) == 1 else f'window=~"{"|".join(names)}"'
    dst.mkdir(parents=True, exist_ok=True)
    for file in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(file.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule["expr"] = re.sub(r'window="[^"]+"', matcher, rule["expr"])
                if "for" in rule:
                    rule["for"] = for_
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
