"""autopilot: promote the challenger, or roll back a new champion, on live evidence.

Runs beside the services (`python -m training autopilot`; no torch imported):
every `SPOILER_AUTOPILOT_INTERVAL_S` it reads from PostgreSQL the labelled
reviews both the champion and the challenger scored (predictions keyed by
`(review_id, model_version)`, so it needs nothing but the two versions) and

- promotes the challenger when spoiler_common.comparison's paired test says it
  is significantly better over at least `SPOILER_AUTOPILOT_MIN_LABELS` labels;
- rolls back when the champion the last promotion installed scores, on the
  labelled reviews it served since, below its bundle's quality floor
  (`quality_floors`, read at that number of labels).

With `SPOILER_AUTOPILOT_ENABLED=false` (the default) it logs what it would do.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from spoiler_common.bundle import BundleManifest, read_manifest
from spoiler_common.comparison import compare_paired
from spoiler_common.drift import SizeCurve
from spoiler_common.settings import PostgresSettings, load_settings
from training import promotion, serving
from training.exceptions import TrainingError
from training.settings import AutopilotSettings, TrainingSettings

log = logging.getLogger(__name__)

Decision = Literal["promote", "rollback", "hold"]

PAIRED = """\
SELECT l.is_spoiler, c.spoiler_probability, h.spoiler_probability
FROM labels l
JOIN predictions c ON c.review_id = l.review_id AND c.model_version = %(champion)s
JOIN predictions h ON h.review_id = l.review_id AND h.model_version = %(challenger)s
WHERE c.predicted_at >= now() - make_interval(secs => %(window_s)s)"""

SERVED_SINCE = """\
SELECT l.is_spoiler, p.is_spoiler
FROM labels l
JOIN predictions p ON p.review_id = l.review_id AND p.model_version = %(version)s
WHERE p.predicted_at >= %(since)s::timestamptz"""


@dataclass(frozen=True)
class Check:
    decision: Decision
    reason: str
    details: dict[str, Any]


def live_quality(rows: list[tuple[bool, bool]]) -> dict[str, float]:
    y = np.asarray([r[0] for r in rows], dtype=bool)
    p = np.asarray([r[1] for r in rows], dtype=bool)
    tp, fp, fn = int((y & p).sum()), int((~y & p).sum()), int((y & ~p).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if y.any() else math.nan
    return {"accuracy": float((y == p).mean()), "f1_spoiler": f1, "n": float(len(y))}


def below_floor(manifest: BundleManifest, quality: dict[str, float]) -> str | None:
    """The first metric under its floor at this many labels, as a sentence; None if none."""
    floors = manifest.quality_floors
    if floors is None:
        return None
    for metric, block in floors.metrics.items():
        if metric not in quality:
            continue
        floor = SizeCurve.from_json(floors.sizes, block.floor).at(quality["n"])
        value = quality[metric]
        if math.isfinite(floor) and math.isfinite(value) and value < floor:
            return (f"live {metric} {value:.3f} over {int(quality['n'])} labels is below its "
                    f"floor {floor:.3f}")
    return None


def decide(auto: AutopilotSettings, settings: TrainingSettings,
           pg: PostgresSettings) -> Check:
    import psycopg

    champion = serving.bundle_version(settings.bundle_path)
    challenger = serving.bundle_version(settings.challenger_path)
    history = promotion.read_history(settings)
    last = history[-1] if history else None
    with psycopg.connect(pg.conninfo(), connect_timeout=10) as conn:
        if (last and last["action"] == "promote" and last["to_version"] == champion
                and last.get("from_version")):
            rows = conn.execute(SERVED_SINCE, {"version": champion,
                                               "since": last["happened_at"]}).fetchall()
            if len(rows) >= auto.rollback_min_labels:
                quality = live_quality(rows)
                assert champion is not None
                failed = below_floor(read_manifest(settings.bundle_path), quality)
                if failed:
                    return Check("rollback", f"champion {champion}: {failed}", quality)
        if not champion or not challenger or champion == challenger:
            return Check("hold", "no challenger distinct from the champion", {})
        paired = conn.execute(PAIRED, {"champion": champion, "challenger": challenger,
                                       "window_s": auto.window_s}).fetchall()
    if not paired:
        return Check("hold", f"no labelled review scored by both {champion} and {challenger}",
                     {"n": 0})
    labels, champ, chall = (np.asarray(c) for c in zip(*paired, strict=True))
    cmp = compare_paired(labels, champ, chall,
                         read_manifest(settings.bundle_path).threshold,
                         read_manifest(settings.challenger_path).threshold,
                         min_labels=auto.min_labels, alpha=auto.alpha)
    if cmp is None:
        return Check("hold", f"{len(paired)} paired labels, fewer than "
                     f"SPOILER_AUTOPILOT_MIN_LABELS={auto.min_labels}", {"n": len(paired)})
    details = {"n": cmp.n, "accuracy_diff": cmp.accuracy_diff.estimate,
               "mcnemar_p": cmp.mcnemar_p, "verdict": cmp.verdict}
    if cmp.verdict == "better":
        return Check("promote", f"challenger {challenger} is significantly better than "
                     f"{champion} over {cmp.n} labels (accuracy {cmp.accuracy_diff.estimate:+.3f},"
                     f" McNemar p={cmp.mcnemar_p:.3g})", details)
    return Check("hold", f"verdict {cmp.verdict} over {cmp.n} labels", details)


def step(auto: AutopilotSettings, settings: TrainingSettings, registered_model: str,
         pg: PostgresSettings) -> Check:
    check = decide(auto, settings, pg)
    if check.decision == "hold":
        log.info("Autopilot holds: %s", check.reason)
        return check
    if not auto.enabled:
        log.info("Autopilot would %s (SPOILER_AUTOPILOT_ENABLED is false): %s", check.decision,
                 check.reason)
        return check
    if check.decision == "promote":
        promotion.promote(str(settings.challenger_path), registered_model=registered_model,
                          settings=settings, reason=f"autopilot: {check.reason}",
                          actor="autopilot", pg=pg)
    else:
        promotion.rollback(registered_model=registered_model, settings=settings,
                           reason=f"autopilot: {check.reason}", actor="autopilot", pg=pg)
    return check


def run(auto: AutopilotSettings, settings: TrainingSettings, registered_model: str, *,
        once: bool = False) -> None:
    pg = load_settings(PostgresSettings)
    log.info("Autopilot started enabled=%s min_labels=%d alpha=%s interval_s=%s", auto.enabled,
             auto.min_labels, auto.alpha, auto.interval_s)
    import psycopg

    while True:
        try:
            step(auto, settings, registered_model, pg)
        except psycopg.Error as exc:
            if once:
                why = " ".join(str(exc).split())
                raise TrainingError(f"autopilot cannot read PostgreSQL at {pg.host}:{pg.port}/"
                                    f"{pg.database} ({why}); start the stack or set "
                                    "SPOILER_PG_*") from exc
            log.warning("Autopilot check failed (%s); retrying in %.0fs", exc, auto.interval_s)
        except Exception as exc:  # a blip must not end the loop; the next try may work
            if once:
                raise
            log.warning("Autopilot check failed (%s); retrying in %.0fs", exc, auto.interval_s)
        if once:
            return
        time.sleep(auto.interval_s)
