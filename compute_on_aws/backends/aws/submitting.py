"""SubmitJob for a batch of plans, each job created once, at the pace of the rate limit.

SubmitJob takes no idempotency token. When an attempt gets no usable answer (a 5xx, a connection lost after the
request was written), AWS may or may not have created the job, so it is not sent again blind: the unanswered attempts
are looked for together by their marker (one search for all of them, not one per job). Those found are done; one not
found once batch.LISTING_LAG has passed since it went unanswered is sent again, with the same marker, before any first
attempt still waiting, up to batch.SUBMIT_ATTEMPTS times.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from compute_on_aws import interrupts
from compute_on_aws.aws import batch as calls
from compute_on_aws.aws.session import CONNECTIONS, OutcomeUnknown
from compute_on_aws.errors import AwsError, ComputeOnAwsError
from compute_on_aws.planning.plan import Outcome, Plan

# Seconds between looks at what finished: how soon a due search starts, and Ctrl-C is seen.
TICK = 0.05


@dataclass(frozen=True)
class Prepared:
    """What is known before SubmitJob: the definition revision, and what was done to get there."""

    ref: str
    registered: bool
    pushed: str


Finish = Callable[[int, Outcome | ComputeOnAwsError], None]
# SubmitJob of a plan's request (raises OutcomeUnknown when AWS may have acted); marker -> job id of the requests whose
# job exists; what stops the calls waiting for their turn (Ctrl-C).
Send = Callable[[Plan, dict[str, Any], Prepared], str]
Find = Callable[[Sequence[dict[str, Any]]], dict[str, str]]


class Submission:
    def __init__(
        self,
        plans: Sequence[Plan],
        prepared: Mapping[int, Prepared],
        finish: Finish,
        *,
        send: Send,
        find: Find,
        stop: Callable[[], None],
    ) -> None:
        self.send = send
        self.find = find
        self.stop = stop
        self.plans = plans
        self.prepared = prepared
        self.finish = finish
        self.requests = {
            i: {
                **plans[i].request,
                "jobDefinition": p.ref,
                "parameters": {calls.SUBMISSION_PARAMETER: uuid.uuid4().hex},
            }
            for i, p in prepared.items()
        }
        self.attempts = dict.fromkeys(self.requests, 0)
        self.waiting: deque[int] = deque(self.requests)
        self.sent: dict[Future[str], int] = {}
        # index -> when its last attempt failed, and how.
        self.unknown: dict[int, tuple[float, OutcomeUnknown]] = {}
        # The search under way: its answer, the attempts looked for, and those of them due to be sent again.
        self.search: tuple[Future[dict[str, str]], list[int], set[int]] | None = None
        self.last_search = float("-inf")

    def run(self) -> None:
        """Until every plan has its outcome. On Ctrl-C nothing more is sent; what is under way finishes, so that
        every job created is reported, and a job whose outcome is unknown is named with its marker. The signal is
        deferred to the loop's own check: raised inside concurrent.futures' waiting, it could leave a future's lock
        held and the senders blocked on it for ever."""
        if not self.requests:
            return
        with interrupts.deferred():
            self._run()

    def _run(self) -> None:
        senders = ThreadPoolExecutor(CONNECTIONS)
        searcher = ThreadPoolExecutor(1)
        try:
            while self.waiting or self.sent or self.unknown or self.search:
                self._step(senders, searcher)
        except BaseException:
            self.stop()
            raise
        finally:
            senders.shutdown(wait=True, cancel_futures=True)
            searcher.shutdown(wait=True, cancel_futures=True)
            for future, index in list(self.sent.items()):
                if future.done() and not future.cancelled():
                    self._answered(index, future)
            if self.search is not None and self.search[0].done() and not self.search[0].cancelled():
                self._searched()
            # Never sent (stopped before their turn): no job, nothing to report. Unanswered: the job may exist.
            for index, (_, error) in self.unknown.items():
                self.finish(index, self._unknown_error(index, error, stopped=True))

    def _step(self, senders: ThreadPoolExecutor, searcher: ThreadPoolExecutor) -> None:
        # As many attempts under way as connections, the others wait here: one sent again goes before first attempts.
        interrupts.check()
        while self.waiting and len(self.sent) < CONNECTIONS:
            index = self.waiting.popleft()
            self.attempts[index] += 1
            future = senders.submit(self.send, self.plans[index], self.requests[index], self.prepared[index])
            self.sent[future] = index
        pending: set[Future[Any]] = set(self.sent)
        if self.search is not None:
            pending.add(self.search[0])
        if pending:
            wait(pending, timeout=TICK, return_when=FIRST_COMPLETED)
        else:
            time.sleep(TICK)
        for future in [f for f in self.sent if f.done()]:
            self._answered(self.sent.pop(future), future)
        if self.search is not None and self.search[0].done():
            self._searched()
        self._search_if_due(searcher)

    def _answered(self, index: int, future: Future[str]) -> None:
        error = future.exception()
        if error is None:
            self.finish(index, self._submitted(index, future.result()))
        elif isinstance(error, OutcomeUnknown):
            self.unknown[index] = (time.monotonic(), error)
        elif isinstance(error, ComputeOnAwsError):
            self.finish(index, error)
        else:
            raise error

    def _search_if_due(self, searcher: ThreadPoolExecutor) -> None:
        """A search once an attempt has been unanswered for LISTING_LAG: for every unanswered attempt, so that a job
        created is found as soon as it can be; one not found is sent again only once it was due. While attempts are
        still being sent, at most one search a LISTING_LAG (more will be due by then)."""
        if self.search is not None or not self.unknown:
            return
        now = time.monotonic()
        oldest = min(failed for failed, _ in self.unknown.values())
        busy = bool(self.waiting or self.sent)
        if now - oldest < calls.LISTING_LAG or (busy and now - self.last_search < calls.LISTING_LAG):
            return
        self.last_search = now
        due = {i for i, (failed, _) in self.unknown.items() if now - failed >= calls.LISTING_LAG}
        looked_for = list(self.unknown)
        self.search = (searcher.submit(self.find, [self.requests[i] for i in looked_for]), looked_for, due)

    def _searched(self) -> None:
        assert self.search is not None
        future, indexes, due = self.search
        self.search = None
        try:
            found = future.result()
        except ComputeOnAwsError as e:
            for index in indexes:
                _, error = self.unknown.pop(index)
                self.finish(index, AwsError(f"{self._unknown_error(index, error)} ({e})"))
            return
        for index in indexes:
            marker = self.requests[index]["parameters"][calls.SUBMISSION_PARAMETER]
            if marker in found:
                self.unknown.pop(index)
                self.finish(index, self._submitted(index, found[marker]))
            elif index in due:
                _, error = self.unknown.pop(index)
                if self.attempts[index] < calls.SUBMIT_ATTEMPTS:
                    self.waiting.appendleft(index)
                else:
                    self.finish(index, self._unknown_error(index, error))

    def _submitted(self, index: int, job_id: str) -> Outcome:
        prepared = self.prepared[index]
        return Outcome(
            outcome="submitted",
            job_id=job_id,
            request=self.requests[index],
            definition_ref=prepared.ref,
            definition_registered=prepared.registered,
            image_pushed=prepared.pushed,
        )

    def _unknown_error(self, index: int, error: OutcomeUnknown, *, stopped: bool = False) -> AwsError:
        request = self.requests[index]
        queue, marker = request["jobQueue"], request["parameters"][calls.SUBMISSION_PARAMETER]
        tries = self.attempts[index]
        held = f"{calls.SUBMISSION_PARAMETER}={marker}"
        looked = (
            f"the process stopped before looking for a job with {held}"
            if stopped
            else f"no job with {held} is listed yet"
        )
        return AwsError(
            f"submitting {request['jobName']} to {queue}: no usable answer from AWS "
            f"{tries} time{'s' if tries > 1 else ''} (last: {error.error}), and {looked}: the job may exist. "
            f"Check with `compute-on-aws list --queue {queue}` before queueing it again"
        )
