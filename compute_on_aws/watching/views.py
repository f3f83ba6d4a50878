"""What a user sees of a job on either backend: state, reasons (with hints: watching/hints.py), attempts, arrays."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from compute_on_aws.watching import hints

if TYPE_CHECKING:
    from compute_on_aws.declared.manifest import Job

FINAL = ("SUCCEEDED", "FAILED")
QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")
STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


@dataclass(frozen=True, kw_only=True)
class Attempt:
    exit_code: int | None = None
    status_reason: str | None = None
    log_stream: str | None = None
    started_at: float | None = None
    stopped_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class Place:
    """A RUNNABLE job's place in line: 1 starts next. On AWS, its place among the first RUNNABLE jobs of its queue
    (GetJobQueueSnapshot lists 100, in the order Batch starts them: submission order, or share usage and priority
    on a fair-share queue); locally, among the jobs waiting for the machine."""

    position: int | None  # None: behind the `listed` jobs at the head
    since: float | None  # when it reached this place (seconds since the epoch)
    listed: int  # how many waiting jobs the head of the line holds
    # On a queue with a quota-share policy, the job's share and its place at that share's head (frontOfQuotaShares)
    share: str | None = None
    share_position: int | None = None


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True, kw_only=True)
class JobView:
    job_id: str
    job_name: str
    status: str
    status_reason: str | None = None
    queue: str | None = None
    definition: str | None = None
    # Seconds since the epoch.
    created_at: float | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    exit_code: int | None = None
    attempts: tuple[Attempt, ...] = ()
    # Array jobs: their size and how many children are in each state.
    array_size: int | None = None
    array_counts: dict[str, int] = field(default_factory=dict)
    log_group: str | None = None
    # The latest attempt's log stream (AWS) or log file (local).
    log_stream: str | None = None
    # What the job was given, for the hints: memory in MiB, each attempt's timeout in seconds, attempts allowed.
    memory: int | None = None
    timeout: int | None = None
    max_attempts: int | None = None
    place: Place | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def in_line(self) -> str | None:
        """`3rd in line` (or `behind the first 100 in line`) for a RUNNABLE job whose place is known, and `1st of share
        teamA` when its share's head lists it."""
        place = self.place
        if place is None or self.status != "RUNNABLE":
            return None
        if place.position is not None:
            line = f"{ordinal(place.position)} in line"
        elif place.listed:
            line = f"behind the first {place.listed} in line"
        else:
            line = ""
        if place.share is not None and place.share_position is not None:
            line += f"{', ' if line else ''}{ordinal(place.share_position)} of share {place.share}"
        return line or None

    @property
    def hint(self) -> str | None:
        return hints.hint(self)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["hint"] = self.hint
        return data


def of_declared(views: Iterable[JobView], jobs: Iterable[Job]) -> list[JobView]:
    """The jobs queued for these declared jobs: named as one, or `<name>_...` (with arguments or a slot), and made from
    its definition. A job of another project that shares the queue is left out."""
    definitions = {job.name: job.definition_name for job in jobs}

    def declared(view: JobView) -> bool:
        definition = (view.definition or "").split(":", 1)[0] or None
        # Every prefix ending before a `_` could be the declared name (a name may hold `_` itself).
        names = [view.job_name, *(view.job_name[:i] for i, c in enumerate(view.job_name) if c == "_")]
        return any(n in definitions and definition in (None, definitions[n]) for n in names)

    return [view for view in views if declared(view)]
