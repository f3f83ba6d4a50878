"""AWS Batch calls with rules of their own: a definition per content hash, same-named jobs, SubmitJob exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compute_on_aws.aws.session import OutcomeUnknown
from compute_on_aws.planning.render import HASH_PARAMETER

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

# Runs a lookup per name, concurrently, within the process's rate limit (the backend's thread pool).
MapEach = Callable[[Callable[[str], list[dict[str, Any]]], Sequence[str]], list[list[dict[str, Any]]]]

# A job in one of these states is still going to run (or running): submitting the same name again is a duplicate.
ACTIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
ALL_STATUSES = (*ACTIVE_STATUSES, "SUCCEEDED", "FAILED")
DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids
# A unique value per SubmitJob request, to recognise the job it created when its answer was lost.
SUBMISSION_PARAMETER = "computeOnAwsSubmission"
SUBMIT_ATTEMPTS = 3
# Seconds after a SubmitJob without a usable answer before not finding its job counts as "not created": ListJobs may
# lag behind a job just created (AWS documents no bound; its indexes usually follow within a second).
LISTING_LAG = 1.0


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


# DescribeJobDefinitions' jobDefinitions: at most 100 revisions a call.
DESCRIBE_DEFINITIONS = 100


def active_with_hash(batch: BatchClient, wanted: Mapping[str, str]) -> set[str]:
    """Of revision ARN -> content hash, the revisions that are ACTIVE and have that hash: 100 per call, however many
    names (a lookup by name takes one call each). ARNs, not `name:revision`: Batch takes both, moto only ARNs."""
    arns = sorted(wanted)
    found: set[str] = set()
    for start in range(0, len(arns), DESCRIBE_DEFINITIONS):
        chunk = arns[start : start + DESCRIBE_DEFINITIONS]
        for d in batch.describe_job_definitions(jobDefinitions=chunk)["jobDefinitions"]:
            arn = d.get("jobDefinitionArn", "")
            if d.get("status") == "ACTIVE" and d.get("parameters", {}).get(HASH_PARAMETER) == wanted.get(arn):
                found.add(arn)
    return found


def ensure_definition(
    batch: BatchClient, definition: dict[str, Any], *, known_missing: bool = False
) -> tuple[str, bool]:
    """`name:revision` of an ACTIVE revision with the same content hash, registering one only when none has it.

    RegisterJobDefinition takes no idempotency token either: botocore does not send it again once AWS may have acted
    (aws/session.py). A lost answer is followed by a look for the revision (after LISTING_LAG), and only a revision
    not found is registered again: a lost answer leaves one revision, not two alike. `known_missing`: this process
    has just looked and found none (no second look)."""
    found = None if known_missing else find_definition(batch, definition)
    if found is not None:
        return found, False
    lost: OutcomeUnknown | None = None
    for _ in range(SUBMIT_ATTEMPTS):
        try:
            registered = batch.register_job_definition(**definition)
        except OutcomeUnknown as e:
            lost = e
            time.sleep(LISTING_LAG)
            found = find_definition(batch, definition)
            if found is not None:
                return found, True
            continue
        return f"{definition['jobDefinitionName']}:{registered['revision']}", True
    assert lost is not None
    raise lost.error from None


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
    made without reaching the end. A status asked for lists top-level jobs only: no array children. The statuses are
    listed one after another, in the order jobs move through them, never at once: a job moving on meanwhile is then
    listed in its next status, where listing them at once could miss it in both (and a race's settlement would keep
    a duplicate)."""
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


def _named(batch: BatchClient, queue: str, name: str) -> list[dict[str, Any]]:
    """Every job of the queue with exactly this name, whatever its status. (The JOB_NAME filter matches
    case-insensitively and makes ListJobs ignore the status, so both are checked by the callers.)"""
    pages = batch.get_paginator("list_jobs").paginate(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    return [dict(job) for page in pages for job in page["jobSummaryList"] if job["jobName"] == name]


def same_named(
    batch: BatchClient, queue: str, names: Collection[str], statuses: Sequence[str], map_each: MapEach
) -> dict[str, list[dict[str, Any]]]:
    """The jobs of the queue in `statuses` named one of `names` (name -> summaries), in the fewest ListJobs calls the
    numbers allow: one listing of the statuses, page by page, unless it takes more calls than one lookup per name
    would; then one lookup per name (`map_each` runs them, concurrently)."""
    # A listing costs a call per status at least: below that many names, lookups by name are cheaper for sure.
    listed = list_queue(batch, queue, statuses, budget=len(names)) if len(names) > len(statuses) else None
    if listed is None:
        listed = [job for jobs in map_each(lambda name: _named(batch, queue, name), list(names)) for job in jobs]
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for job in listed:
        if job["jobName"] in found and job.get("status") in statuses:
            found[job["jobName"]].append(job)
    return found


def find_many(
    batch: BatchClient, queue: str, wanted: Mapping[str, tuple[str, Sequence[str]]], map_each: MapEach
) -> dict[str, list[ActiveJob]]:
    """For many names of one queue (name -> (definition name, statuses)), the jobs with exactly that name and
    definition in those statuses. A job of another definition that happens to share the name is not a duplicate."""
    statuses = [s for s in ALL_STATUSES if any(s in w[1] for w in wanted.values())]
    result: dict[str, list[ActiveJob]] = {}
    for name, jobs in same_named(batch, queue, wanted, statuses, map_each).items():
        definition_name, name_statuses = wanted[name]
        found: dict[str, ActiveJob] = {}
        for job in jobs:
            arn = job.get("jobDefinition")
            if job["status"] in name_statuses and (arn is None or definition_name_of(arn) == definition_name):
                active = _active_job(job)
                if active.job_id not in found or active.job_id == job["jobId"]:
                    found[active.job_id] = active
        result[name] = list(found.values())
    return result


def submit(batch: BatchClient, request: dict[str, Any]) -> str:
    """One SubmitJob. SubmitJob takes no client token, so botocore does not retry it once AWS may have acted (see
    aws/session.py): that raises OutcomeUnknown, and `find_submissions` tells whether the job exists before it is sent
    again. The request carries a unique SUBMISSION_PARAMETER for that."""
    return batch.submit_job(**request)["jobId"]


def find_submissions(
    batch: BatchClient, queue: str, requests: Sequence[dict[str, Any]], map_each: MapEach
) -> dict[str, str]:
    """marker -> job id, for the requests to this queue whose job exists: the same-named jobs, in any status, are
    described in batches of 100 to read their SUBMISSION_PARAMETER. Where one request made two jobs, the earliest."""
    markers = {r["parameters"][SUBMISSION_PARAMETER] for r in requests}
    listed = same_named(batch, queue, {r["jobName"] for r in requests}, ALL_STATUSES, map_each)
    candidates = sorted({job["jobId"] for jobs in listed.values() for job in jobs if ":" not in job["jobId"]})
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunks(candidates, DESCRIBE_BATCH):
        for job in batch.describe_jobs(jobs=chunk)["jobs"]:
            marker = job.get("parameters", {}).get(SUBMISSION_PARAMETER)
            if marker is not None and marker in markers:
                earliest = (job.get("createdAt", 0), job["jobId"])
                found[marker] = min(found.get(marker, earliest), earliest)
    return {marker: job_id for marker, (_, job_id) in found.items()}


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
