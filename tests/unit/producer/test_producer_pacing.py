"""Pacers, without a broker."""

from __future__ import annotations

import pytest

from producer.pacing import DateClock, TokenBucket, parse_review_date

pytestmark = pytest.mark.unit


def test_token_bucket_never_bursts_beyond_its_small_depth() -> None:
    bucket = TokenBucket(1000)
    bucket.tokens = bucket.capacity
    sent = 0
    while bucket.wait(None) == 0:
        bucket.sent()
        sent += 1
    assert sent <= 1000 * 0.05 + 1
    assert 0 < bucket.wait(None) <= 0.002


def test_date_clock_compresses_review_dates() -> None:
    clock = DateClock(speedup=86_400)  # one day per second
    assert clock.wait("1 May 2017") == 0
    assert 9.5 < clock.wait("11 May 2017") <= 10
    assert clock.wait("30 April 2017") == 0  # earlier than the clock: at once
    assert clock.wait("not a date") == 0


def test_parse_review_date() -> None:
    assert parse_review_date("3 February 2017") is not None
    assert parse_review_date("February 2017") is None


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        DateClock(-1)
