"""Summary statistics of a review stream: what makes a scenario switch visible."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SynthStats:
    """Running statistics, constant memory (word counts are kept as a histogram)."""

    n: int = 0
    spoilers: int = 0
    words_total: int = 0
    rating_total: int = 0
    rated: int = 0
    non_latin: int = 0
    words: Counter[int] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        self.n += 1
        self.spoilers += bool(record.get("is_spoiler"))
        text = record.get("review_text") or ""
        count = len(text.split())
        self.words_total += count
        self.words[count] += 1
        if isinstance(record.get("rating"), int):
            self.rating_total += record["rating"]
            self.rated += 1
        # Any character beyond Latin Extended: the vocabulary scenario's marker.
        if any(ord(ch) > 0x24F for ch in text):
            self.non_latin += 1

    @property
    def spoiler_rate(self) -> float:
        return self.spoilers / self.n if self.n else 0.0

    @property
    def mean_words(self) -> float:
        return self.words_total / self.n if self.n else 0.0

    @property
    def median_words(self) -> int:
        half, seen = self.n / 2, 0
        for count in sorted(self.words):
            seen += self.words[count]
            if seen >= half:
                return count
        return 0

    @property
    def rating_mean(self) -> float:
        return self.rating_total / self.rated if self.rated else 0.0

    @property
    def non_latin_share(self) -> float:
        return self.non_latin / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "spoiler_rate": round(self.spoiler_rate, 4),
            "mean_words": round(self.mean_words, 1),
            "median_words": self.median_words,
            "rating_mean": round(self.rating_mean, 3),
            "non_latin_share": round(self.non_latin_share, 4),
        }


def summarize(records: Iterable[dict[str, Any]]) -> SynthStats:
    stats = SynthStats()
    for record in records:
        stats.add(record)
    return stats
