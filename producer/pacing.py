"""How fast to send: a token bucket (`--rate`), review-date time (`--speedup`), or flat out.

A pacer's `wait(...)` returns the seconds to wait before the next message may go;
the caller spends them serving delivery reports (`producer.poll(wait)`), not asleep.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

# Token-bucket depth in seconds of rate: small, so the rate is steady over a
# second (no bursts after a pause), large enough to absorb timer jitter.
BUCKET_SECONDS = 0.05
MIN_WAIT_S = 0.001


class Pacer(Protocol):
    def wait(self, review_date: str | None) -> float:
        """Seconds to wait before the next message may go (0: send now)."""
        ...

    def sent(self) -> None:
        """One message went."""
        ...


class Unpaced:
    def wait(self, review_date: str | None) -> float:
        return 0.0

    def sent(self) -> None:
        return None


class TokenBucket:
    """`rate` messages per second on average, at most `rate * BUCKET_SECONDS` at once."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate * BUCKET_SECONDS)
        self.tokens = 1.0
        self._monotonic = time.monotonic
        self.last = self._monotonic()

    def wait(self, review_date: str | None) -> float:
        if self.tokens >= 1.0:
            return 0.0
        now = self._monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            return 0.0
        return max((1.0 - self.tokens) / self.rate, MIN_WAIT_S)

    def sent(self) -> None:
        self.tokens -= 1.0


def parse_review_date(text: str) -> float | None:
    """'3 February 2017' → POSIX seconds (UTC midnight); None when unparseable."""
    try:
        return datetime.strptime(text.strip(), "%d %B %Y").timestamp()
    except (ValueError, AttributeError):
        return None


class DateClock:
    """Replays review dates compressed by `speedup` (86,400: one day per second).

    The virtual clock starts at the first review's date and never goes back: a
    review dated before the latest one seen (an unsorted file) is sent at once.
    """

    def __init__(self, speedup: float) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        self.speedup = speedup
        self.origin: float | None = None
        self.started = 0.0

    def wait(self, review_date: str | None) -> float:
        when = parse_review_date(review_date) if review_date else None
        if when is None:
            return 0.0
        now = time.monotonic()
        if self.origin is None:
            self.origin, self.started = when, now
            return 0.0
        due = self.started + (when - self.origin) / self.speedup
        return max(due - now, 0.0)

    def sent(self) -> None:
        return None
