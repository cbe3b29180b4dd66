"""The sink's retry policy: exponential backoff, with a wait that others can cut short.

Both places the sink retries use it: the writer thread storing a batch (PostgreSQL
or the dead-letter topic failing) and the start-up wait for PostgreSQL before the
migrations. Neither gives up by counting: giving up would lose the batch, and
exiting would crash-loop on it. A retry ends when the attempt returns, which it
does on success or when it sees it should stop (the batch was revoked, the
shutdown deadline passed, SIGTERM). The `sleep` given is a wait that a revoke or a
stop interrupts, so that the next attempt happens, and notices, at once.

tenacity runs the loop and computes the delays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from sink.settings import SinkSettings

T = TypeVar("T")
# Called before each wait: (failed attempts so far, the last error, seconds to wait).
OnRetry = Callable[[int, BaseException, float], None]
RetryOn = type[BaseException] | tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Backoff:
    """Wait `initial_s` after the first failure, doubling each time up to `max_s`."""

    initial_s: float
    max_s: float

    @classmethod
    def of(cls, settings: SinkSettings) -> Backoff:
        """`SPOILER_SINK_RETRY_INITIAL_S` doubling up to `SPOILER_SINK_RETRY_MAX_S`."""
        return cls(settings.retry_initial_s, settings.retry_max_s)

    def run(
        self,
        attempt: Callable[[], T],
        *,
        retry_on: RetryOn,
        sleep: Callable[[float], object],
        on_retry: OnRetry,
    ) -> T:
        """Call `attempt` until it returns, and return what it returned.

        After a failure of a `retry_on` type: `on_retry(failures, error, delay)`, then
        `sleep(delay)`, then the next attempt. Other exceptions propagate at once.
        """

        def before_sleep(state: RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None
            error = state.outcome.exception()
            assert error is not None
            on_retry(state.attempt_number, error, state.next_action.sleep)

        def nap(seconds: float) -> None:
            sleep(seconds)

        retrying = Retrying(
            wait=wait_exponential(multiplier=self.initial_s, max=self.max_s),
            retry=retry_if_exception_type(retry_on),
            sleep=nap,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)


__all__ = ["Backoff", "OnRetry"]
