"""The AWS Batch backend: reuse or register the definition, skip duplicates, publish the image, submit."""

from __future__ import annotations

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


def find_active(batch: BatchClient, queue: str, job_name: str, definition_name: str) -> tuple[str, str] | None:
    """(job id, status) of an active job with exactly this name and definition in the queue, if any.

    The JOB_NAME filter matches case-insensitively and returns every status, so both are checked here. A job of
    another definition that happens to share the name is not this job's duplicate.
    """
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
                return job["jobId"].split(":", 1)[0], job["status"]
    return None


def queue(aws: Aws, config: Config, plan: Plan) -> Outcome:
    batch = aws.batch()
    done: list[str] = []
    definition_name = plan.definition["jobDefinitionName"]
    if not plan.job.allow_duplicates:
        with calling(f"{plan.job.name}: looking for a duplicate of {plan.job_name} in {plan.queue}"):
            active = find_active(batch, plan.queue, plan.job_name, definition_name)
        if active is not None:
            return Outcome(
                outcome="duplicate",
                job_id=active[0],
                request=plan.request,
                definition_ref=definition_name,
                existing_status=active[1],
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
        submitted = batch.submit_job(**request)
    return Outcome(
        outcome="submitted",
        job_id=submitted["jobId"],
        request=request,
        definition_ref=ref,
        definition_registered=registered,
        image_pushed=pushed,
    )
