"""Write a synthetic stream to JSON lines, byte-for-byte reproducibly."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synth.stats import SynthStats


def dumps(record: dict[str, Any]) -> str:
    """One record as the dataset writes it: default separators, UTF-8, not ASCII-escaped."""
    return json.dumps(record, ensure_ascii=False)


def write_jsonl(records: Iterable[dict[str, Any]], out: Path) -> SynthStats:
    """Write one JSON object a line (gzip when `out` ends in .gz); return their statistics.

    The gzip header carries no file name and mtime 0, so the same records give
    the same bytes whenever and wherever they are written (DVC hashes them).
    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    stats = SynthStats()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as raw:
        binary: Any = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            if out.name.endswith(".gz")
            else raw
        )
        with io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as text:
            for record in records:
                stats.add(record)
                text.write(dumps(record))
                text.write("\n")
    tmp.replace(out)
    return stats
