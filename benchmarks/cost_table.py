"""docs/performance.md's cost table from benchmark results (bench-results/*.json).

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks --only graphs stream_processor scaleout \\
        pipeline --out bench-results/cost.json
    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.cost_table bench-results/cost.json \\
        --write docs/performance.md

Also reads one file per benchmark (`--out bench-results/<name>.json` of single runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

START, END = "<!-- cost-table:start -->", "<!-- cost-table:end -->"


def load(paths: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in paths:
        data = json.loads(path.read_text())
        merged.update({k: v for k, v in data.items() if isinstance(v, dict)})
    return merged


def _busy(block: dict[str, Any]) -> str:
    """"; 2 cores, 1-min load L at start" from a benchmark's machine note: each section
    says how busy the machine was when it ran (the figures most hurt by other work)."""
    note = block.get("machine")
    return f"; {note.split(' (')[0]}" if isinstance(note, str) and note else ""


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    graphs = results.get("graphs")
    if graphs and "rows" in graphs:
        lines += [f"Model graph, one thread, one text per call ({graphs['bundle']}, "
                  f"{graphs['n']} {graphs['texts']} texts, medians of {graphs['rounds']} "
                  f"alternated rounds{_busy(graphs)}):", "",
                  "| max_length | graph | reviews/s per core (per CPU-s) | CPU-ms/review | "
                  "RSS MB per worker | parity (label agreement, max abs dp) |",
                  "|---|---|---|---|---|---|"]
        for r in graphs["rows"]:
            if " " in r["graph"]:
                continue
            parity = ("" if r["label_agreement"] is None else
                      f"{'pass' if r['passed'] else 'fail'} ({r['label_agreement']:.4f}, "
                      f"{r['max_abs_diff']:.4f})")
            served = " (served)" if r["graph"] == graphs["served_variant"] else ""
            lines.append(f"| {r['max_length']} | {r['graph']}{served} | "
                         f"{1000 / r['cpu_ms_per_review']:.1f} | {r['cpu_ms_per_review']} | "
                         f"{r.get('rss_mb', '')} | {parity} |")
        lines.append("")
    sp = results.get("stream_processor")
    if sp and "worker" in sp:
        w = sp["worker"]
        lines += [f"Worker ({sp['bundle']} {sp['variant']}, max_length {sp['max_length']}, "
                  f"{sp['n']} {sp['texts']} reviews{_busy(sp)}):", "",
                  "| what | reviews/s | CPU-ms/review | RSS MB |", "|---|---|---|---|",
                  f"| raw loader loop | {sp['raw_loop']['reviews_per_s']:.1f} | "
                  f"{sp['raw_loop']['cpu_ms_per_review']:.0f} | |"]
        if "naive" in sp:
            lines.append(f"| naive PyTorch pipeline per message | "
                         f"{sp['naive']['reviews_per_s']:.1f} | | |")
        lines.append(f"| worker, pre-filled topic | {w['reviews_per_s']:.1f} | "
                     f"{w['cpu_ms_per_review']:.0f} | {w['rss_mb_per_worker']:.0f} |")
        pl = sp["worker_predict_load"]
        lines.append(f"| worker while /predict is kept busy | {pl['reviews_per_s']:.1f} | "
                     f"{pl['cpu_ms_per_review']:.0f} | {pl['rss_mb_per_worker']:.0f} |")
        if "worker_2_threads" in sp:
            w2 = sp["worker_2_threads"]
            lines.append(f"| worker, 2 onnxruntime threads | {w2['reviews_per_s']:.1f} | "
                         f"{w2['cpu_ms_per_review']:.0f} | {w2['rss_mb_per_worker']:.0f} |")
        for key, label in (("paced", "1 thread"), ("paced_2_threads", "2 threads")):
            if key in sp:
                p = sp[key]
                lines.append(f"| worker, {label}, paced at half capacity "
                             f"({p['rate']:.1f}/s): p50 / p99 produce -> prediction | "
                             f"{p['e2e_p50_s']:.3f} / {p['e2e_p99_s']:.3f} s | | |")
        lines.append("")
    so = results.get("scaleout")
    if so and "rows" in so:
        lines += [f"Scale-out ({so['n']} {so['texts']} reviews per run, medians of "
                  f"{so['rounds']} alternated rounds{_busy(so)}):", "",
                  "| configuration | reviews/s | vs 1 worker | CPU-ms/review | RSS MB/worker |",
                  "|---|---|---|---|---|"]
        for name, r in so["rows"].items():
            lines.append(f"| {name} | {r['reviews_per_s']:.1f} | {r['vs_one_worker']:.2f}x | "
                         f"{r['cpu_ms_per_review']:.0f} | {r['rss_mb_per_worker']:.0f} |")
        lines.append("")
    pipe = results.get("pipeline")
    if pipe and "pipeline_reviews_per_s" in pipe:
        lines += ["Whole pipeline (producer -> Kafka -> worker -> Kafka -> sink -> PostgreSQL, "
                  f"bundle {pipe['bundle']}):", "",
                  f"- {pipe['pipeline_reviews_per_s']:.1f} reviews/s first produce -> last "
                  f"stored row ({pipe['ratio_to_raw']:.2f}x the raw model loop on the same "
                  f"texts); produce -> stored p99 {pipe['produce_to_stored_ms_p99']:.0f} ms "
                  "(a burst: queueing included)", ""]
    if any(_busy(v) for v in results.values() if isinstance(v, dict)):
        lines.append("A shared machine: other work competes for its cores, so compare "
                     "within a section (one run), not across sections.")
    return "\n".join(lines).rstrip() + "\n"


def write(doc: Path, body: str) -> None:
    text = doc.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{body}{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    args = parser.parse_args()
    body = table(load(args.results))
    if args.write:
        write(args.write, body)
    else:
        print(body)


if __name__ == "__main__":
    main()
