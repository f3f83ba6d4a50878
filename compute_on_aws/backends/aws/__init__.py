"""AWS Batch, the backend for real scale: many jobs per call within one budget of API calls, watched in batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from compute_on_aws.aws import batch as calls
from compute_on_aws.aws.session import Aws, calling
from compute_on_aws.backends.aws.described import from_batch, seconds
from compute_on_aws.backends.aws.submitting import Prepared, Submission
from compute_on_aws.errors import AwsError, ComputeOnAwsError, UserError
from compute_on_aws.planning.plan import Outcome, Plan
from compute_on_aws.planning.render import HASH_PARAMETER
from compute_on_aws.planning.rerun import Rerun, RerunOutcome, check_rerunnable, plan_reruns
from compute_on_aws.watching import views
from compute_on_aws.watching.waiting import Backoff

if TYPE_CHECKING:
    from pathlib import Path

    from compute_on_aws.backends import OnResult
    from compute_on_aws.declared.config import Config
    from compute_on_aws.watching.views import JobView

# GetJobQueueSnapshot lists at most this many RUNNABLE jobs of a queue.
SNAPSHOT_SIZE = 100

T = TypeVar("T")
R = TypeVar("R")


def deduplicated(plan: Plan) -> bool:
    return not plan.job.allow_duplicates or plan.slot is not None


def duplicate_statuses(plan: Plan) -> Sequence[str]:
    """A scheduled slot is done once a job holds its name, finished or not; other names only while one is active."""
    return calls.ALL_STATUSES if plan.slot is not None else calls.ACTIVE_STATUSES


class AwsBackend:
    name = "aws"
    pushes_images = True

    def __init__(self, config: Config, aws: Aws | None = None, *, state_dir: Path | None = None) -> None:
        del state_dir  # where the local backend keeps its state: AWS keeps its own
        self.config = config
        self.aws = aws or Aws(config.region, batch_calls_per_second=config.batch_calls_per_second)
        # One lookup (or registration) per definition and one push per image, however many plans share them.
        self._definitions: dict[tuple[str, str], tuple[str, bool] | ComputeOnAwsError] = {}
        self._images: dict[str, str | ComputeOnAwsError] = {}

    def place(self, queue: str) -> str:
        return queue

    def _map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return self.aws.map(function, items)

    def _stop(self) -> None:
        self.aws.stop()

    # --- queueing ---

    def _existing(self, plans: Sequence[Plan]) -> dict[str, dict[str, list[calls.ActiveJob]] | ComputeOnAwsError]:
        """Per queue: job name -> the same-named jobs of the same definition there, in the statuses each plan counts;
        or why the queue could not be searched (that fails its plans only)."""
        batch = self.aws.batch()
        by_queue: dict[str, dict[str, tuple[str, Sequence[str]]]] = {}
        owner: dict[str, str] = {}
        for plan in plans:
            by_queue.setdefault(plan.queue, {})[plan.job_name] = (
                plan.definition["jobDefinitionName"],
                duplicate_statuses(plan),
            )
            owner[plan.job_name] = plan.job.name
        found: dict[str, dict[str, list[calls.ActiveJob]] | ComputeOnAwsError] = {}
        for queue, wanted in by_queue.items():
            if len(wanted) == 1:
                name = next(iter(wanted))
                what = f"{owner[name]}: looking for a duplicate of {name} in {queue}"
            else:
                what = f"looking for duplicates of {len(wanted)} job names in {queue}"
            try:
                with calling(what):
                    found[queue] = calls.find_many(batch, queue, wanted, self._map)
            except ComputeOnAwsError as e:
                found[queue] = e
        return found

    def _prepare(self, plan: Plan) -> Prepared:
        """The image pushed and the definition registered (or found), each once per process: a failure too, so that a
        thousand jobs sharing a definition AWS refuses make one call, not a thousand."""
        pushed = ""
        done: list[str] = []
        if plan.image_push is not None:
            target = plan.image_push.target
            if target not in self._images:
                # Imported here: a job with an image of its own (most bulk calls) never pays for the registry client.
                from compute_on_aws import images

                try:
                    sent = images.push_image(
                        plan.image_push, self.config.image, self.aws, what=f"the image of {plan.job.name}"
                    )
                    self._images[target] = sent.summary() if sent else ""
                except ComputeOnAwsError as e:
                    self._images[target] = e
            published = self._images[target]
            if isinstance(published, ComputeOnAwsError):
                raise published
            pushed = published
            done.append(f"{'pushed' if pushed else 'found'} image {target}")
        definition = plan.definition
        key = (definition["jobDefinitionName"], definition["parameters"][HASH_PARAMETER])
        if key not in self._definitions:
            try:
                with calling(f"{plan.job.name}: registering job definition {key[0]}", done):
                    self._definitions[key] = calls.ensure_definition(self.aws.batch(), definition)
            except ComputeOnAwsError as e:
                self._definitions[key] = e
        found = self._definitions[key]
        if isinstance(found, ComputeOnAwsError):
            raise found
        ref, registered = found
        return Prepared(ref=ref, registered=registered, pushed=pushed)

    def _send(self, plan: Plan, request: dict[str, Any], prepared: Prepared) -> str:
        done = [f"{'registered' if prepared.registered else 'reused'} job definition {prepared.ref}"]
        with calling(f"{plan.job.name}: submitting {plan.job_name} to {plan.queue}", done):
            return calls.submit(self.aws.batch(), request)

    def _find(self, requests: Sequence[dict[str, Any]]) -> dict[str, str]:
        """marker -> job id of the requests whose job exists, a search per queue."""
        found: dict[str, str] = {}
        for queue in {r["jobQueue"] for r in requests}:
            mine = [r for r in requests if r["jobQueue"] == queue]
            with calling(f"looking for {len(mine)} job(s) in {queue} whose submission got no usable answer"):
                found.update(calls.find_submissions(self.aws.batch(), queue, mine, self._map))
        return found

    def queue(self, plans: Sequence[Plan], on_result: OnResult) -> list[Outcome | ComputeOnAwsError]:
        results: dict[int, Outcome | ComputeOnAwsError] = {}

        def finish(index: int, result: Outcome | ComputeOnAwsError) -> None:
            results[index] = result
            on_result(plans[index], result)

        checked = [plan for plan in plans if deduplicated(plan)]
        existing = self._existing(checked) if checked else {}
        prepared: dict[int, Prepared] = {}
        for index, plan in enumerate(plans):
            in_queue = existing.get(plan.queue) if deduplicated(plan) else None
            if isinstance(in_queue, ComputeOnAwsError):
                finish(index, in_queue)
                continue
            found = in_queue.get(plan.job_name) if in_queue is not None else None
            if found:
                finish(
                    index, _duplicate(plan, calls.survivor(found), plan.request, plan.definition["jobDefinitionName"])
                )
                continue
            try:
                prepared[index] = self._prepare(plan)
            except ComputeOnAwsError as e:
                finish(index, e)
        Submission(plans, prepared, finish, send=self._send, find=self._find, stop=self._stop).run()
        # Races are settled after the whole batch: one listing for all of its names, not one per job.
        racing = {
            i: result
            for i, result in results.items()
            if isinstance(result, Outcome) and result.outcome == "submitted" and deduplicated(plans[i])
        }
        if racing:
            results.update(self._settle(plans, racing))
        return [results[i] for i in range(len(plans))]

    def _settle(self, plans: Sequence[Plan], submitted: dict[int, Outcome]) -> dict[int, Outcome | ComputeOnAwsError]:
        """After submitting, the earliest of same-named active jobs wins; ours are terminated where another won. Two
        pipelines queueing the same jobs at once both see both and agree on the winner. Where our job is not listed
        yet, nothing is decided: better a rare duplicate than none running."""
        batch = self.aws.batch()
        listed = self._existing([plans[i] for i in submitted])
        settled: dict[int, Outcome | ComputeOnAwsError] = {}
        for index, outcome in submitted.items():
            plan = plans[index]
            in_queue = listed.get(plan.queue)
            if isinstance(in_queue, ComputeOnAwsError):
                # The job is queued; only the check failed. Reported as a failure, so that nobody assumes less.
                settled[index] = AwsError(
                    f"{in_queue} (after submitting {plan.job_name} as job {outcome.job_id}, which stays queued: "
                    "whether another run queued it at the same moment is unknown)",
                    in_queue.code if isinstance(in_queue, AwsError) else None,
                )
                continue
            same = (in_queue or {}).get(plan.job_name, [])
            if not any(j.job_id == outcome.job_id for j in same):
                continue
            first = calls.survivor(same)
            if first.job_id == outcome.job_id:
                continue
            try:
                with calling(f"{plan.job.name}: terminating {outcome.job_id}, a duplicate of {first.job_id}"):
                    batch.terminate_job(
                        jobId=str(outcome.job_id),
                        reason=f"compute-on-aws: duplicate of {first.job_id}, queued at the same time",
                    )
            except ComputeOnAwsError as e:
                settled[index] = e
                continue
            settled[index] = _duplicate(
                plan,
                first,
                outcome.request,
                outcome.definition_ref,
                definition_registered=outcome.definition_registered,
                image_pushed=outcome.image_pushed,
            )
        return settled

    # --- watching ---

    def describe(self, job_ids: Sequence[str]) -> dict[str, JobView]:
        batch = self.aws.batch()
        found: dict[str, JobView] = {}
        for chunk in calls.chunks(job_ids, calls.DESCRIBE_BATCH):
            with calling("describing jobs"):
                for job in batch.describe_jobs(jobs=chunk)["jobs"]:
                    found[job["jobId"]] = from_batch(dict(job))
        waiting = sorted({v.queue for v in found.values() if v.status == "RUNNABLE" and v.queue})
        for queue in waiting:
            places = self._places(queue)
            for job_id, view in found.items():
                if view.status == "RUNNABLE" and view.queue == queue and places is not None:
                    found[job_id] = dataclasses.replace(view, place=places.get(job_id, places.get("")))
        return found

    def plan_rerun(self, job_id: str) -> list[Rerun]:
        """The new jobs for the failed children of the ended array `job_id` (or for the failed job itself)."""
        with calling(f"describing {job_id}"):
            described = self.aws.batch().describe_jobs(jobs=[job_id])["jobs"]
        if not described:
            raise UserError(f"{job_id}: no such job in this account and region (a job of the local backend?)")
        job: dict[str, Any] = dict(described[0])
        failed = self._failed_children(job) if "size" in job.get("arrayProperties", {}) else []
        view = from_batch(job)
        return plan_reruns(job, check_rerunnable(job_id, view.status, array=bool(view.array_size), failed=failed))

    def submit_reruns(self, reruns: Sequence[Rerun]) -> list[RerunOutcome]:
        """Each re-run submitted, unless one of its name is still active in its queue (one lookup per queue)."""
        batch = self.aws.batch()
        by_queue: dict[str, list[str]] = {}
        for rerun in reruns:
            by_queue.setdefault(rerun.request["jobQueue"], []).append(rerun.request["jobName"])
        active: dict[str, list[dict[str, Any]]] = {}
        for queue, names in by_queue.items():
            with calling(f"looking for active re-runs in {queue.rsplit('/', 1)[-1]}"):
                found = calls.same_named(batch, queue, names, calls.ACTIVE_STATUSES, self._map)
            active |= {f"{queue} {name}": jobs for name, jobs in found.items()}
        outcomes = []
        for rerun in reruns:
            name = rerun.request["jobName"]
            running = active.get(f"{rerun.request['jobQueue']} {name}")
            if running:
                outcomes.append(RerunOutcome(name, running[0]["jobId"], rerun.indices, "active", rerun.request))
                continue
            with calling(f"submitting {name}"):
                answer = batch.submit_job(**rerun.request)
            outcomes.append(RerunOutcome(name, answer["jobId"], rerun.indices, "submitted", rerun.request))
        return outcomes

    def _failed_children(self, job: dict[str, Any]) -> list[int]:
        batch = self.aws.batch()
        with calling(f"listing the failed children of {job['jobId']}"):
            pages = batch.get_paginator("list_jobs").paginate(arrayJobId=job["jobId"], jobStatus="FAILED")
            children = [c for page in pages for c in page["jobSummaryList"] if c.get("status", "FAILED") == "FAILED"]
        return sorted(int(c["jobId"].rsplit(":", 1)[1]) for c in children if ":" in c["jobId"])

    def _places(self, queue: str) -> dict[str, views.Place | None] | None:
        """The places of the first RUNNABLE jobs of a queue (one GetJobQueueSnapshot), by job id; under "" the place
        of a job behind them (None when the snapshot lists them all: it lags, so such a job's place is unknown).
        A job at the head of its quota share (frontOfQuotaShares) has that place too.
        None when the snapshot cannot be read (a policy without it, an endpoint without it): places are extra."""
        try:
            with calling(f"reading the head of queue {queue}"):
                snapshot = self.aws.batch().get_job_queue_snapshot(jobQueue=queue)
        except ComputeOnAwsError:
            return None
        jobs = snapshot.get("frontOfQueue", {}).get("jobs", [])
        places: dict[str, views.Place | None] = {
            _job_id(j): views.Place(position=i, since=seconds(j.get("earliestTimeAtPosition")), listed=len(jobs))
            for i, j in enumerate(jobs, 1)
        }
        behind = views.Place(position=None, since=None, listed=len(jobs)) if len(jobs) >= SNAPSHOT_SIZE else None
        places[""] = behind
        shares = snapshot.get("frontOfQuotaShares", {}).get("quotaShares", {})
        for share, heads in shares.items():
            for i, j in enumerate(heads, 1):
                job_id = _job_id(j)
                place = places.get(job_id) or behind or views.Place(position=None, since=None, listed=0)
                places[job_id] = dataclasses.replace(place, share=share, share_position=i)
        return places

    def cancel(self, job_ids: Sequence[str], reason: str) -> list[tuple[str, str]]:
        """CancelJob for queued jobs, TerminateJob for started ones (Batch ignores CancelJob once a job starts): a call
        per job (Batch has none for many), concurrently within the rate limit. A failure is that job's answer."""
        batch = self.aws.batch()
        known = self.describe(job_ids)

        def stop(job_id: str) -> str:
            view = known.get(job_id)
            if view is None:
                return "not found"
            if view.final:
                return f"already {view.status}"
            queued = view.status in views.QUEUED
            try:
                with calling(f"{'cancelling' if queued else 'terminating'} {job_id}"):
                    if queued:
                        batch.cancel_job(jobId=job_id, reason=reason)
                    else:
                        batch.terminate_job(jobId=job_id, reason=reason)
            except ComputeOnAwsError as e:
                return f"failed: {e}"
            return f"{'cancelled' if queued else 'terminating'} (was {view.status})"

        return list(zip(job_ids, self._map(stop, job_ids), strict=True))

    def list_jobs(self, queues: Sequence[str], status: str | None) -> list[JobView]:
        """Each queue listed once per status, every page: calls grow with the jobs in the queues, not with the jobs
        declared. (ListJobs without a status lists RUNNING jobs only.)"""
        batch = self.aws.batch()
        found: list[JobView] = []
        for queue in queues:
            with calling(f"listing the jobs in {queue}"):
                listed = calls.list_queue(batch, queue, [status] if status else calls.ALL_STATUSES) or []
            found += [from_batch({**job, "jobQueue": queue}) for job in listed if ":" not in job["jobId"]]
        return found

    def named(self, queue: str, names: Collection[str]) -> dict[str, list[JobView]]:
        batch = self.aws.batch()
        with calling(f"listing the jobs in {queue}"):
            found = calls.same_named(batch, queue, names, calls.ALL_STATUSES, self._map)
        return {
            name: [from_batch({**job, "jobQueue": queue}) for job in jobs if ":" not in job["jobId"]]
            for name, jobs in found.items()
        }

    def log_lines(self, view: JobView, attempt: int | None, token: str | None) -> tuple[list[str], str | None]:
        """New lines of the job's log stream since `token`; none yet when the stream does not exist yet."""
        stream = view.log_stream if attempt is None else view.attempts[attempt - 1].log_stream
        if stream is None:
            return [], token
        logs = self.aws.logs()
        lines: list[str] = []
        while True:
            args: dict[str, Any] = {"logGroupName": view.log_group, "logStreamName": stream, "startFromHead": True}
            if token is not None:
                args["nextToken"] = token
            try:
                with calling(f"reading the log of {view.job_id} ({view.log_group} {stream})"):
                    page = logs.get_log_events(**args)
            except AwsError as e:
                if e.code == "ResourceNotFoundException":
                    return lines, token
                raise
            lines += [event["message"] for event in page["events"]]
            if page["nextForwardToken"] == token or not page["events"]:
                return lines, page["nextForwardToken"]
            token = page["nextForwardToken"]

    def backoff(self, follow: bool) -> Backoff:
        # Each poll costs DescribeJobs calls (one per 100 jobs) of the account's 50 a second: back off.
        return Backoff(cap=5.0 if follow else 30.0)

    def keep_alive(self) -> None:
        pass

    def warm_up(self) -> None:
        self.aws.warm("batch")


def _duplicate(plan: Plan, running: calls.ActiveJob, request: dict[str, Any], ref: str, **done: Any) -> Outcome:
    return Outcome(
        outcome="duplicate",
        job_id=running.job_id,
        request=request,
        definition_ref=ref,
        existing_status=running.status,
        **done,
    )


def _job_id(summary: Any) -> str:
    """The job id of a snapshot's job summary (its ARN ends in job/<id>)."""
    return str(summary.get("jobArn", "")).rsplit("/", 1)[-1]
