"""The AWS Batch backend: reuse or register the definition, skip duplicates, publish the image, submit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compute_on_aws import images
from compute_on_aws.aws import Aws, calling
from compute_on_aws.config import Config
from compute_on_aws.plan import Outcome, Plan
from compute_on_aws.render import HASH_PARAMETER

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

# A job in one of these states is still going to run (or running): submitting the same name again is a duplicate.
ACTIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


def definition_name_of(arn: str) -> str:
    """`arn:aws:batch:...:job-definition/NAME:REV` -> NAME."""
    return arn.rsplit("/", 1)[-1].split(":", 1)[0]


def ensure_definition(batch: BatchClient, definition: dict[str, Any]) -> tuple[str, bool]:
    """`name:revision` of an ACTIVE revision with the same content hash, registering one only when none has it."""
    name = definition["jobDefinitionName"]
    wanted = definition["parameters"][HASH_PARAMETER]
    same = [
        d["revision"]
        for page in batch.get_paginator("describe_job_definitions").paginate(jobDefinitionName=name, status="ACTIVE")
        for d in page["jobDefinitions"]
        if d.get("parameters", {}).get(HASH_PARAMETER) == wanted
    ]
    if same:
        return f"{name}:{max(same)}", False
    registered = batch.register_job_definition(**definition)
    return f"{name}:{registered['revision']}", True


@dataclass(frozen=True)
class ActiveJob:
    job_id: str
    status: str
    created_at: int


def find_active(batch: BatchClient, queue: str, job_name: str, definition_name: str) -> list[ActiveJob]:
    """Active jobs with exactly this name and definition in the queue.

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
                and job.get("status") in ACTIVE_STATUSES
                and (arn is None or definition_name_of(arn) == definition_name)
            ):
                # Array children are listed as <parent id>:<index>; the parent is the job the user knows.
                job_id = job["jobId"].split(":", 1)[0]
                if job_id not in found or job_id == job["jobId"]:
                    found[job_id] = ActiveJob(job_id, job["status"], job.get("createdAt", 0))
    return list(found.values())


def _settle_race(batch: BatchClient, plan: Plan, definition_name: str, job_id: str) -> ActiveJob | None:
    """After submitting, the earliest of same-named active jobs wins; returns it when it is not ours (ours is then
    terminated). Two pipelines queueing the same job at once both see both jobs and agree on the winner. When our own
    job is not listed yet, nothing is decided: better a rare duplicate than none running.
    """
    active = find_active(batch, plan.queue, plan.job_name, definition_name)
    if not any(j.job_id == job_id for j in active):
        return None
    first = min(active, key=lambda j: (j.created_at, j.job_id))
    if first.job_id == job_id:
        return None
    batch.terminate_job(jobId=job_id, reason=f"compute-on-aws: duplicate of {first.job_id}, queued at the same time")
    return first


def queue(aws: Aws, config: Config, plan: Plan) -> Outcome:
    batch = aws.batch()
    done: list[str] = []
    definition_name = plan.definition["jobDefinitionName"]
    if not plan.job.allow_duplicates:
        with calling(f"{plan.job.name}: looking for a duplicate of {plan.job_name} in {plan.queue}"):
            active = find_active(batch, plan.queue, plan.job_name, definition_name)
        if active:
            newest = max(active, key=lambda j: j.created_at)
            return Outcome(
                outcome="duplicate",
                job_id=newest.job_id,
                request=plan.request,
                definition_ref=definition_name,
                existing_status=newest.status,
            )
    pushed = False
    if plan.image_push is not None:
        pushed = images.publish(plan.image_push, config.image, aws, what=f"the image of {plan.job.name}")
        done.append(f"{'pushed' if pushed else 'found'} image {plan.image_push.target}")
    with calling(f"{plan.job.name}: registering job definition {definition_name}", done):
        ref, registered = ensure_definition(batch, plan.definition)
    done.append(f"{'registered' if registered else 'reused'} job definition {ref}")
    request = {**plan.request, "jobDefinition": ref}
    with calling(f"{plan.job.name}: submitting {plan.job_name} to {plan.queue}", done):
        job_id = batch.submit_job(**request)["jobId"]
    done.append(f"submitted job {job_id}")
    if not plan.job.allow_duplicates:
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
