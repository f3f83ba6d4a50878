"""Scheduled runs: the runs due in a window, each named after its slot and told its time, so a second pipeline for
the same slot finds the first one's job and skips it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from compute_on_aws.declared.cron import Schedule, runs_between
from compute_on_aws.declared.manifest import Job, Manifest
from compute_on_aws.planning import naming

# The run's slot, given to every scheduled run (from CI or from EventBridge Scheduler) as an ISO 8601 UTC time.
SCHEDULED_TIME_VARIABLE = "COMPUTE_ON_AWS_SCHEDULED_TIME"


# The tags every run carries (SubmitJob's tags), so that cost allocation can group by job, arguments, slot and commit.
JOB_TAG = "compute-on-aws:job"
ARGS_TAG = "compute-on-aws:args"
SLOT_TAG = "compute-on-aws:slot"
COMMIT_TAG = "compute-on-aws:commit"
# Where the commit comes from: set by the user, by GitHub Actions, by GitLab CI (the first one set wins).
COMMIT_VARIABLES = ("COMPUTE_ON_AWS_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA")
# What a tag value may hold (AWS's tag restrictions), and its length.
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9 +=._:/@-]+")
# A commit id (git's SHA-1 or SHA-256, or a short one): anything else in those variables is not taken.
_COMMIT = re.compile(r"[0-9a-f]{7,64}")
TAG_VALUE_LENGTH = 256


def tag_value(text: str) -> str:
    """`text` as a tag value: characters AWS refuses become `-`, cut to 256."""
    return _NOT_IN_TAG.sub("-", text)[:TAG_VALUE_LENGTH]


def run_tags(job: Job, args: tuple[str, ...], slot: datetime | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The tags of one run: the job's name, its arguments' slug, its slot when scheduled, the commit when the
    environment names one (a commit id only: a value of another shape is no commit, and may be a secret), and the
    job's declared runTags."""
    tags = {JOB_TAG: job.name}
    if args:
        tags[ARGS_TAG] = tag_value(" ".join(args))
    if slot is not None:
        tags[SLOT_TAG] = scheduled_time(slot)
    commit = next((environ[v] for v in COMMIT_VARIABLES if environ.get(v)), None)
    if commit is not None and _COMMIT.fullmatch(commit):
        tags[COMMIT_TAG] = commit
    return {**tags, **job.container.run_tags}


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
