"""Missed schedules: the slots of a window whose scheduled job never succeeded, told by the queue's own history.

A slot's run is the job named after it (planning/runs.slot_name), whoever queued it: a CI pipeline (`queue --due`),
EventBridge Scheduler or a person. Nobody has to watch: a pipeline or an alarm runs this after the window and fails
when a slot has no SUCCEEDED job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from compute_on_aws.backends import Backend
from compute_on_aws.declared.config import Config
from compute_on_aws.declared.cron import Schedule, runs_between
from compute_on_aws.declared.manifest import Manifest
from compute_on_aws.errors import UserError
from compute_on_aws.planning import runs
from compute_on_aws.watching.views import FINAL, JobView

# What a slot came to: succeeded, still on its way (queued or running: not missed yet), failed (every job of its
# name failed), or missing (no job of its name at all).
Outcome = Literal["succeeded", "running", "failed", "missing"]
MISSED: tuple[Outcome, ...] = ("failed", "missing")
# Batch lists a finished job for about a week after it ends (AWS does not promise longer): a longer window would
# report as missing slots whose jobs are only forgotten.
LONGEST_WINDOW = timedelta(days=7)
MOST_SLOTS = 10_000


@dataclass(frozen=True)
class Slot:
    job: str
    schedule: Schedule
    at: datetime
    # The name its run bears, and the queue it runs on.
    name: str
    queue: str


@dataclass(frozen=True)
class Checked:
    slot: Slot
    outcome: Outcome
    # The job that decided the outcome (None when missing).
    view: JobView | None

    def to_json(self) -> dict[str, object]:
        return {
            "job": self.slot.job,
            "slot": f"{self.slot.at:%Y-%m-%dT%H:%M:%SZ}",
            "schedule": self.slot.schedule.cron,
            "timezone": self.slot.schedule.timezone,
            "name": self.slot.name,
            "queue": self.slot.queue,
            "outcome": self.outcome,
            "job_id": self.view.job_id if self.view else None,
            "status": self.view.status if self.view else None,
            "status_reason": self.view.status_reason if self.view else None,
        }


def slots(manifest: Manifest, config: Config, *, start: datetime, end: datetime, only: str | None = None) -> list[Slot]:
    """Every slot of every enabled schedule in (start, end], oldest first. Pure."""
    if end - start > LONGEST_WINDOW:
        raise UserError(
            f"--window: at most {LONGEST_WINDOW.days}d: AWS Batch lists finished jobs for about a week, so older slots "
            "would all look missed"
        )
    found: list[Slot] = []
    for job in manifest.jobs.values():
        if only is not None and job.name != only:
            continue
        queue = job.queue or config.queue
        for schedule in (s for s in job.schedules if s.enabled):
            for at in runs_between(schedule, start, end):
                if queue is None:
                    raise UserError(f"{job.name}: no queue declared or configured, so no run of it can be found")
                found.append(Slot(job.name, schedule, at, runs.slot_name(job, at, schedule.args), queue))
                if len(found) > MOST_SLOTS:
                    raise UserError(f"--window: more than {MOST_SLOTS} scheduled slots in it: give a shorter one")
    return sorted(found, key=lambda s: (s.at, s.job))


def outcome(views: Sequence[JobView]) -> tuple[Outcome, JobView | None]:
    """A slot's outcome from the jobs bearing its name: one success is enough (a rerun that succeeded mends it); the
    newest job of the deciding kind is the one shown."""
    succeeded = [v for v in views if v.status == "SUCCEEDED"]
    active = [v for v in views if v.status not in FINAL]
    kinds: tuple[tuple[Outcome, list[JobView]], ...] = (
        ("succeeded", succeeded),
        ("running", active),
        ("failed", list(views)),
    )
    for kind, match in kinds:
        if match:
            return kind, max(match, key=lambda v: v.created_at or 0)
    return "missing", None


def check(slots: Sequence[Slot], found: Mapping[tuple[str, str], Sequence[JobView]]) -> list[Checked]:
    """Pure: `found` holds the jobs of each (queue, name)."""
    return [Checked(s, *outcome(found.get((s.queue, s.name), ()))) for s in slots]


def look_up(backend: Backend, slots: Sequence[Slot]) -> list[Checked]:
    """The slots' outcomes, from one search per queue for all of its slots' names."""
    by_queue: dict[str, set[str]] = {}
    for s in slots:
        by_queue.setdefault(s.queue, set()).add(s.name)
    found: dict[tuple[str, str], list[JobView]] = {}
    for queue, names in sorted(by_queue.items()):
        for name, views in backend.named(queue, names).items():
            found[queue, name] = views
    return check(slots, found)
