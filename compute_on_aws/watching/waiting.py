"""Polling until jobs end: a jittered exponential backoff and a loop that asks only about jobs still running.

Pure apart from the injected clock and sleep: the backends' describe functions do the I/O.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from compute_on_aws.errors import AwsError, UserError
from compute_on_aws.watching.views import JobView

# Right after SubmitJob, DescribeJobs may not know a job yet (eventual consistency): that many polls are tolerated.
_UNKNOWN_POLLS = 3


@dataclass(frozen=True)
class Backoff:
    """Delays between polls: quick first, then slower by `factor`, capped, each jittered by +-`jitter`."""

    first: float = 1.0
    factor: float = 1.6
    cap: float = 30.0
    jitter: float = 0.2

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        rng = rng or random.Random()
        delay = self.first
        while True:
            yield delay * rng.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(self.cap, delay * self.factor)


@dataclass(frozen=True)
class WaitResult:
    jobs: dict[str, JobView]
    timed_out: bool

    @property
    def failed(self) -> list[JobView]:
        return [j for j in self.jobs.values() if j.status == "FAILED"]

    @property
    def unfinished(self) -> list[JobView]:
        return [j for j in self.jobs.values() if not j.final]


def _described(
    describe: Callable[[Sequence[str]], dict[str, JobView]], asking: Sequence[str], views: dict[str, JobView]
) -> bool:
    """Adds what `describe` tells of `asking` to `views`: False if AWS throttled the call."""
    try:
        views.update(describe(asking))
    except AwsError as e:
        if not e.throttled:
            raise
        return False
    return True


def wait_for(
    describe: Callable[[Sequence[str]], dict[str, JobView]],
    job_ids: Sequence[str],
    *,
    on_update: Callable[[list[JobView]], None],
    timeout: float | None = None,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitResult:
    """Polls until every job is SUCCEEDED or FAILED, or `timeout` seconds passed. Throttling only slows it down."""
    backoff = backoff or Backoff()
    delays = backoff.delays()
    deadline = None if timeout is None else clock() + timeout
    views: dict[str, JobView] = {}
    unknown_polls = 0
    while True:
        asking = [j for j in job_ids if j not in views or not views[j].final]
        if not _described(describe, asking, views):
            sleep(2 * next(delays))  # throttled beyond botocore's own retries: pause longer, then go on
            continue
        missing = [j for j in job_ids if j not in views]
        if missing:
            unknown_polls += 1
            if unknown_polls > _UNKNOWN_POLLS:
                raise UserError(f"no such job: {', '.join(missing)}")
        on_update([views[j] for j in job_ids if j in views])
        if not missing and all(v.final for v in views.values()):
            return WaitResult(views, timed_out=False)
        now = clock()
        if deadline is not None and now >= deadline:
            return WaitResult(views, timed_out=True)
        delay = next(delays)
        sleep(delay if deadline is None else max(0.0, min(delay, deadline - now)))
