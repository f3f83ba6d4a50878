"""AWS Batch calls with rules of their own: a definition per content hash, same-named jobs, SubmitJob exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compute_on_aws.aws import OutcomeUnknown
from compute_on_aws.errors import AwsError
from compute_on_aws.render import HASH_PARAMETER

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


def survivor(active: Sequence[ActiveJob]) -> ActiveJob:
    """Of same-named active jobs, the one that runs: the earliest created, ties broken by id. The duplicate check, the
    settlement after a race and chains all use this rule, so every caller names the same job."""
    return min(active, key=lambda j: (j.created_at, j.job_id))


def _active_job(job: Mapping[str, Any]) -> ActiveJob:
    # Array children are listed as <parent id>:<index>; the parent is the job the user knows.
    return ActiveJob(job["jobId"].split(":", 1)[0], job["status"], job.get("createdAt", 0))


def list_queue(
    batch: BatchClient, queue: str, statuses: Sequence[str], budget: int | None = None
) -> list[dict[str, Any]] | None:
    """Every job in `statuses` in the queue, following every page (AWS pages at 100); None once `budget` calls were
    made without reaching the end. A status asked for lists top-level jobs only: no array children."""
    found: list[dict[str, Any]] = []
    calls = 0
    for status in statuses:
        token: str | None = None
        while True:
            if budget is not None and calls >= budget:
                return None
            args: dict[str, Any] = {"jobQueue": queue, "jobStatus": status}
            if token is not None:
                args["nextToken"] = token
            page = batch.list_jobs(**args)
            calls += 1
            found += [dict(job) for job in page["jobSummaryList"] if job.get("status", status) == status]
            token = page.get("nextToken")
            if not token:
                break
    return found


def find_many(
    batch: BatchClient,
    queue: str,
    wanted: Mapping[str, tuple[str, Sequence[str]]],
    map_each: Callable[[Callable[[str], list[ActiveJob]], Sequence[str]], list[list[ActiveJob]]],
) -> dict[str, list[ActiveJob]]:
    """`find_active` for many names of one queue (name -> (definition name, statuses)), in the fewest ListJobs calls
    the numbers allow: one listing of the statuses asked for, page by page, unless it takes more calls than one
    lookup per name would; then one lookup per name (`map_each` runs them, concurrently)."""
    statuses = [s for s in ALL_STATUSES if any(s in w[1] for w in wanted.values())]
    # A listing costs a call per status at least: below that many names, lookups by name are cheaper for sure.
    listed = list_queue(batch, queue, statuses, budget=len(wanted)) if len(wanted) > len(statuses) else None
    if listed is None:
        names = list(wanted)
        found = map_each(lambda name: find_active(batch, queue, name, *wanted[name]), names)
        return dict(zip(names, found, strict=True))
    result: dict[str, dict[str, ActiveJob]] = {name: {} for name in wanted}
    for job in listed:
        name, arn = job["jobName"], job.get("jobDefinition")
        if name not in wanted:
            continue
        definition_name, name_statuses = wanted[name]
        if job["status"] in name_statuses and (arn is None or definition_name_of(arn) == definition_name):
            active = _active_job(job)
            if active.job_id not in result[name] or active.job_id == job["jobId"]:
                result[name][active.job_id] = active
    return {name: list(jobs.values()) for name, jobs in result.items()}


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
                active = _active_job(job)
                if active.job_id not in found or active.job_id == job["jobId"]:
                    found[active.job_id] = active
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
        for chunk in chunks(newest_first, DESCRIBE_BATCH):
            for job in batch.describe_jobs(jobs=chunk)["jobs"]:
                if job.get("parameters", {}).get(SUBMISSION_PARAMETER) == marker:
                    return job["jobId"]
    return None


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
