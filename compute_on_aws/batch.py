"""The AWS Batch backend: reuse or register the definition, skip duplicates, publish the image, submit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compute_on_aws import images, views
from compute_on_aws.aws import Aws, OutcomeUnknown, calling
from compute_on_aws.config import Config
from compute_on_aws.errors import AwsError
from compute_on_aws.model import Job
from compute_on_aws.plan import Outcome, Plan
from compute_on_aws.render import HASH_PARAMETER
from compute_on_aws.views import JobView

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

# A job in one of these states is still going to run (or running): submitting the same name again is a duplicate.
ACTIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
ALL_STATUSES = (*ACTIVE_STATUSES, "SUCCEEDED", "FAILED")
DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids
# A unique value per SubmitJob request, to recognise the job it created when its answer was lost.
SUBMISSION_PARAMETER = "computeOnAwsSubmission"
SUBMIT_ATTEMPTS = 3
LOOKUP_DELAYS = (1.0, 2.0, 4.0)  # seconds before each search for a job whose submission went unanswered


def definition_name_of(arn: str) -> str:
    """`arn:aws:batch:...:job-definition/NAME:REV` -> NAME."""
    return arn.rsplit("/", 1)[-1].split(":", 1)[0]


def find_definition(batch: BatchClient, definition: dict[str, Any]) -> str | None:
    """`name:revision` of the newest ACTIVE revision with the same content hash, if any."""
    name = definition["jobDefinitionName"]
    wanted = definition["parameters"][HASH_PARAMETER]
    same = [
        d["revision"]
        for page in batch.get_paginator("describe_job_definitions").paginate(jobDefinitionName=name, status="ACTIVE")
        for d in page["jobDefinitions"]
        if d.get("parameters", {}).get(HASH_PARAMETER) == wanted
    ]
    return f"{name}:{max(same)}" if same else None


def ensure_definition(batch: BatchClient, definition: dict[str, Any]) -> tuple[str, bool]:
    """`name:revision` of an ACTIVE revision with the same content hash, registering one only when none has it."""
    found = find_definition(batch, definition)
    if found is not None:
        return found, False
    name = definition["jobDefinitionName"]
    registered = batch.register_job_definition(**definition)
    return f"{name}:{registered['revision']}", True


@dataclass(frozen=True)
class ActiveJob:
    job_id: str
    status: str
    created_at: int


def _duplicate_statuses(plan: Plan) -> Sequence[str]:
    """A scheduled slot is done once a job holds its name, finished or not; other names only while one is active."""
    return ALL_STATUSES if plan.slot is not None else ACTIVE_STATUSES


def survivor(active: Sequence[ActiveJob]) -> ActiveJob:
    """Of same-named active jobs, the one that runs: the earliest created, ties broken by id. The duplicate check, the
    settlement after a race and chains all use this rule, so every caller names the same job."""
    return min(active, key=lambda j: (j.created_at, j.job_id))


def find_active(
    batch: BatchClient, queue: str, job_name: str, definition_name: str, statuses: Sequence[str] = ACTIVE_STATUSES
) -> list[ActiveJob]:
    """Active jobs (or jobs in `statuses`) with exactly this name and definition in the queue.

    The JOB_NAME filter matches case-insensitively and returns every status, so both are checked here. A job of
    another definition that happens to share the name is not this job's duplicate.
    """
    found: dict[str, ActiveJob] = {}
    pages = batch.get_paginator("list_jobs").paginate(
        jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [job_name]}]
    )
    for page in pages:
        for job in page["jobSummaryList"]:
            arn = job.get("jobDefinition")
            if (
                job["jobName"] == job_name
                and job.get("status") in statuses
                and (arn is None or definition_name_of(arn) == definition_name)
            ):
                # Array children are listed as <parent id>:<index>; the parent is the job the user knows.
                job_id = job["jobId"].split(":", 1)[0]
                if job_id not in found or job_id == job["jobId"]:
                    found[job_id] = ActiveJob(job_id, job["status"], job.get("createdAt", 0))
    return list(found.values())


def submit_once(batch: BatchClient, request: dict[str, Any]) -> str:
    """SubmitJob, without the second job a blind retry makes after a lost answer (SubmitJob takes no client token).

    The request carries a unique SUBMISSION_PARAMETER. When a failure leaves it unknown whether AWS created the job
    (a 5xx, a connection closed or timed out after the request was written: botocore is kept from retrying those, see
    aws.py), the queue is searched for the job holding it before submitting again, after every attempt.
    """
    for _ in range(SUBMIT_ATTEMPTS):
        try:
            return batch.submit_job(**request)["jobId"]
        except OutcomeUnknown as e:
            unknown = e
            found = _find_submission(batch, request)
            if found is not None:
                return found
    marker = request["parameters"][SUBMISSION_PARAMETER]
    raise AwsError(
        f"submitting {request['jobName']} to {request['jobQueue']}: no usable answer from AWS {SUBMIT_ATTEMPTS} times "
        f"(last: {unknown.error}), and no job with {SUBMISSION_PARAMETER}={marker} is listed yet: the job may exist. "
        f"Check with `compute-on-aws list --queue {request['jobQueue']}` before queueing it again"
    )


def _find_submission(batch: BatchClient, request: dict[str, Any]) -> str | None:
    """The id of the job this very request created, if any: every same-named job, newest first, checked for its
    marker in batches of 100 until found."""
    marker = request["parameters"][SUBMISSION_PARAMETER]
    for delay in LOOKUP_DELAYS:  # ListJobs may lag behind a job just created
        time.sleep(delay)
        summaries = [
            job
            for page in batch.get_paginator("list_jobs").paginate(
                jobQueue=request["jobQueue"], filters=[{"name": "JOB_NAME", "values": [request["jobName"]]}]
            )
            for job in page["jobSummaryList"]
            if job["jobName"] == request["jobName"] and ":" not in job["jobId"]
        ]
        newest_first = [j["jobId"] for j in sorted(summaries, key=lambda j: j.get("createdAt", 0), reverse=True)]
        for chunk in _chunks(newest_first, DESCRIBE_BATCH):
            for job in batch.describe_jobs(jobs=chunk)["jobs"]:
                if job.get("parameters", {}).get(SUBMISSION_PARAMETER) == marker:
                    return job["jobId"]
    return None


def _settle_race(batch: BatchClient, plan: Plan, definition_name: str, job_id: str) -> ActiveJob | None:
    """After submitting, the earliest of same-named active jobs wins; returns it when it is not ours (ours is then
    terminated). Two pipelines queueing the same job at once both see both jobs and agree on the winner. When our own
    job is not listed yet, nothing is decided: better a rare duplicate than none running.
    """
    active = find_active(batch, plan.queue, plan.job_name, definition_name, _duplicate_statuses(plan))
    if not any(j.job_id == job_id for j in active):
        return None
    first = survivor(active)
    if first.job_id == job_id:
        return None
    batch.terminate_job(jobId=job_id, reason=f"compute-on-aws: duplicate of {first.job_id}, queued at the same time")
    return first


def queue(aws: Aws, config: Config, plan: Plan) -> Outcome:
    batch = aws.batch()
    done: list[str] = []
    definition_name = plan.definition["jobDefinitionName"]
    deduplicated = not plan.job.allow_duplicates or plan.slot is not None
    if deduplicated:
        with calling(f"{plan.job.name}: looking for a duplicate of {plan.job_name} in {plan.queue}"):
            active = find_active(batch, plan.queue, plan.job_name, definition_name, _duplicate_statuses(plan))
        if active:
            running = survivor(active)
            return Outcome(
                outcome="duplicate",
                job_id=running.job_id,
                request=plan.request,
                definition_ref=definition_name,
                existing_status=running.status,
            )
    pushed = False
    if plan.image_push is not None:
        pushed = images.publish(plan.image_push, config.image, aws, what=f"the image of {plan.job.name}")
        done.append(f"{'pushed' if pushed else 'found'} image {plan.image_push.target}")
    with calling(f"{plan.job.name}: registering job definition {definition_name}", done):
        ref, registered = ensure_definition(batch, plan.definition)
    done.append(f"{'registered' if registered else 'reused'} job definition {ref}")
    request = {**plan.request, "jobDefinition": ref, "parameters": {SUBMISSION_PARAMETER: uuid.uuid4().hex}}
    with calling(f"{plan.job.name}: submitting {plan.job_name} to {plan.queue}", done):
        job_id = submit_once(batch, request)
    done.append(f"submitted job {job_id}")
    if deduplicated:
        with calling(f"{plan.job.name}: checking that {plan.job_name} was not queued twice at once", done):
            winner = _settle_race(batch, plan, definition_name, job_id)
        if winner is not None:
            return Outcome(
                outcome="duplicate",
                job_id=winner.job_id,
                request=request,
                definition_ref=ref,
                definition_registered=registered,
                image_pushed=pushed,
                existing_status=winner.status,
            )
    return Outcome(
        outcome="submitted",
        job_id=job_id,
        request=request,
        definition_ref=ref,
        definition_registered=registered,
        image_pushed=pushed,
    )


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class AwsControl:
    """Watching and controlling jobs on AWS Batch: DescribeJobs in batches of 100, cancel vs terminate, logs."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def describe(self, job_ids: Sequence[str]) -> dict[str, JobView]:
        batch = self.aws.batch()
        found: dict[str, JobView] = {}
        for chunk in _chunks(job_ids, DESCRIBE_BATCH):
            with calling("describing jobs"):
                for job in batch.describe_jobs(jobs=chunk)["jobs"]:
                    found[job["jobId"]] = views.from_batch(dict(job))
        return found

    def cancel(self, job_ids: Sequence[str], reason: str) -> list[tuple[str, str]]:
        """CancelJob for queued jobs, TerminateJob for started ones (Batch ignores CancelJob once a job starts)."""
        batch = self.aws.batch()
        known = self.describe(job_ids)
        done = []
        for job_id in job_ids:
            view = known.get(job_id)
            if view is None:
                done.append((job_id, "not found"))
            elif view.final:
                done.append((job_id, f"already {view.status}"))
            elif view.status in views.QUEUED:
                with calling(f"cancelling {job_id}"):
                    batch.cancel_job(jobId=job_id, reason=reason)
                done.append((job_id, f"cancelled (was {view.status})"))
            else:
                with calling(f"terminating {job_id}"):
                    batch.terminate_job(jobId=job_id, reason=reason)
                done.append((job_id, f"terminating (was {view.status})"))
        return done

    def list_jobs(self, queue: str, job: Job, status: str | None) -> list[JobView]:
        """This declared job's jobs in a queue, newest first: its name or `name_...`, made from its definition."""
        batch = self.aws.batch()
        found = []
        with calling(f"listing {job.name} in {queue}"):
            pages = batch.get_paginator("list_jobs").paginate(
                jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"{job.name}*"]}]
            )
            for page in pages:
                for summary in page["jobSummaryList"]:
                    name, arn = summary["jobName"], summary.get("jobDefinition")
                    if ":" in summary["jobId"] or not (name == job.name or name.startswith(f"{job.name}_")):
                        continue
                    if arn is not None and definition_name_of(arn) != job.definition_name:
                        continue
                    if status is None or summary.get("status") == status:
                        found.append(views.from_batch({**summary, "jobQueue": queue}))
        return found

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
