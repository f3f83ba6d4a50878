"""One budget of AWS Batch calls per second for the whole process, shared by its threads: a token bucket.

Batch allows about 50 calls per second per account, shared by every tool of the account. Each HTTP attempt takes a
token before it is sent (botocore's retries of a throttled call included), so a bulk submission keeps under the budget
instead of finding it with 429s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from compute_on_aws.errors import ComputeOnAwsError


class Stopped(ComputeOnAwsError):
    """A call that was waiting for its turn when the process stopped (Ctrl-C): it was never sent."""


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; a caller without a token sleeps until its turn.

    With the default burst of one, calls are spaced 1/rate apart and no one-second window holds more than rate + 1: a
    bucket of `rate` tokens would allow twice the rate in its first second, and AWS counts per second.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else 1.0
        self._clock = clock
        self._stopped = threading.Event()
        # Waiting is cut short by stop(); a test passes its own sleep.
        self._sleep = sleep or self._stopped.wait
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()
        self.taken = 0

    def stop(self) -> None:
        """Calls waiting for a token, and later ones, raise Stopped instead of being sent."""
        self._stopped.set()

    def take(self) -> None:
        if self._stopped.is_set():
            raise Stopped("not sent: stopped while waiting for its turn")
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            # Taken in advance (the count may go below zero): callers are served in the order they came.
            self._tokens -= 1
            self.taken += 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
            if self._stopped.is_set():
                raise Stopped("not sent: stopped while waiting for its turn")

    def before_send(self, **_: Any) -> None:
        """botocore's `before-send` hook: runs for each attempt; returning None lets it be sent."""
        self.take()
