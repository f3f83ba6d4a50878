"""Scheduled runs: the runs due in a window, each named after its slot and told its time, so a second pipeline for
the same slot finds the first one's job and skips it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from compute_on_aws.declared.cron import Schedule, runs_between
from compute_on_aws.declared.manifest import Job, Manifest
from compute_on_aws.planning import naming

# The run's slot, given to every scheduled run (from CI or from EventBridge Scheduler) as an ISO 8601 UTC time.
SCHEDULED_TIME_VARIABLE = "COMPUTE_ON_AWS_SCHEDULED_TIME"


def slot_name(job: Job, slot: datetime, args: tuple[str, ...]) -> str:
    """`observes-etl_2026-11-28T0500Z`: a second pipeline (or a retried one) for the same slot is a duplicate of the
    first. Arguments always count in a scheduled name, so two schedules of one job never share a run."""
    return naming.job_name(f"{job.name}_{slot.astimezone(UTC):%Y-%m-%dT%H%MZ}", args, include_args=True)


def scheduled_time(slot: datetime) -> str:
    return f"{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Due:
    job: Job
    schedule: Schedule
    slot: datetime


def due(manifest: Manifest, at: datetime, window: timedelta) -> list[Due]:
    """Every slot of every enabled schedule in (at - window, at], oldest first."""
    found = [
        Due(job, schedule, slot)
        for job in manifest.jobs.values()
        for schedule in job.schedules
        if schedule.enabled
        for slot in runs_between(schedule, at - window, at)
    ]
    return sorted(found, key=lambda d: (d.slot, d.job.name))
