"""What `queue` and `render` print: JSON for scripts, one line per job for people. Propagated values never appear."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from compute_on_aws.declared.cron import Schedule
from compute_on_aws.declared.manifest import Job
from compute_on_aws.planning.plan import Outcome, Plan
from compute_on_aws.planning.runs import SCHEDULED_TIME_VARIABLE

REDACTED = "<redacted>"


def redacted(request: dict[str, Any]) -> dict[str, Any]:
    """The request with the values of propagated variables replaced: they may be tokens. Only what changes is
    copied (the request is printed, never changed, so the rest may be shared)."""
    overrides = request.get("containerOverrides")
    if not overrides or not overrides.get("environment"):
        return request
    environment = [
        # The slot is set by compute-on-aws: no secret.
        variable if variable["name"] == SCHEDULED_TIME_VARIABLE else {**variable, "value": REDACTED}
        for variable in overrides["environment"]
    ]
    return {**request, "containerOverrides": {**overrides, "environment": environment}}


def queue_result(plan: Plan, outcome: Outcome) -> dict[str, Any]:
    return {
        "job": plan.job.name,
        "jobName": plan.job_name,
        "jobId": outcome.job_id,
        "outcome": outcome.outcome,
        "jobQueue": plan.queue,
        "jobDefinition": outcome.definition_ref,
        "request": redacted(outcome.request),
    }


def definitions(plans: Iterable[Plan]) -> dict[str, dict[str, Any]]:
    """Each declared job's RegisterJobDefinition request, once however many of its jobs were queued."""
    return {plan.job.name: plan.definition for plan in plans}


def not_queued(plan: Plan, error: Exception) -> dict[str, Any]:
    return {"job": plan.job.name, "jobName": plan.job_name, "args": list(plan.args), "error": str(error)}


def _resources(job: Job) -> str:
    vcpus = f"{job.vcpus:g} vCPU"
    gpus = f", {job.gpus} GPU" if job.gpus else ""
    array = f", array of {job.parallel}" if job.parallel > 1 else ""
    return f"{vcpus}, {job.memory} MiB{gpus}{array}"


def queue_line(plan: Plan, outcome: Outcome, *, where: str) -> str:
    """One line per job queued: `where` is its queue as the backend tells it."""
    if outcome.outcome == "duplicate":
        return (
            f"duplicate: {plan.job_name} is already {outcome.existing_status} as job {outcome.job_id} "
            f"in {where}; not submitted again"
        )
    if outcome.outcome == "dry-run":
        image = plan.definition["containerProperties"]["image"]
        return (
            f"dry run: would submit {plan.job_name} to {plan.queue} with definition {outcome.definition_ref} "
            f"({image}; {_resources(plan.job)}); nothing sent (--json shows the requests)"
        )
    notes = []
    if outcome.image_pushed and plan.image_push is not None:
        notes.append(f"pushed {plan.image_push.target}: {outcome.image_pushed}")
    notes.append(f"{'registered' if outcome.definition_registered else 'reused'} {outcome.definition_ref}")
    return f"submitted {plan.job_name} to {where} as job {outcome.job_id} ({'; '.join(notes)})"


def jobs_table(jobs: list[Job]) -> list[str]:
    rows = [("JOB", "QUEUE", "VCPUS", "MEMORY", "ARRAY", "PROGRAM", "AFTER", "SCHEDULE", "DESCRIPTION")]
    for job in jobs:
        rows.append(
            (
                job.name,
                job.queue or "(config)",
                f"{job.vcpus:g}",
                str(job.memory),
                str(job.parallel) if job.parallel > 1 else "-",
                job.program.kind,
                ",".join(d.job + (f"({d.type})" if d.type else "") for d in job.after) or "-",
                "; ".join(_schedule_cell(s) for s in job.schedules) or "-",
                job.description,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1] for row in rows
    ]


def _schedule_cell(schedule: Schedule) -> str:
    zone = "" if schedule.timezone == "UTC" else f" {schedule.timezone}"
    args = "".join(f" {a}" for a in schedule.args)
    return f"{schedule.cron}{zone}{args}" + ("" if schedule.enabled else " (disabled)")


def schedule_summary(schedule: Schedule) -> dict[str, Any]:
    return {
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "args": list(schedule.args),
        "enabled": schedule.enabled,
    }


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "name": job.name,
        "description": job.description,
        "queue": job.queue,
        "platform": job.platform,
        "vcpus": job.vcpus,
        "memory": job.memory,
        "gpus": job.gpus,
        "parallel": job.parallel,
        "program": job.program.kind,
        "after": [{"job": d.job, "type": d.type} for d in job.after],
        "sequential": job.sequential,
        "definitionName": job.definition_name,
        "schedules": [schedule_summary(s) for s in job.schedules],
    }
