"""What a user sees of a job on either backend: state, reasons (with hints for stuck ones), attempts, arrays."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compute_on_aws.declared.manifest import Job

FINAL = ("SUCCEEDED", "FAILED")
QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")
STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")

# Why a RUNNABLE job does not start (Batch's statusReason prefixes) and what to do about it.
_HINTS = (
    (
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "the compute environment's maxvCpus is below what the job needs: raise maxvCpus or lower vcpus",
    ),
    (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        "no instance type of the compute environment fits the job's vcpus/memory/gpus: lower them or allow "
        "larger instance types",
    ),
    (
        "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS",
        "the compute environment's service role lacks permissions: check its IAM policy",
    ),
    (
        "MISCONFIGURATION:EC2_INSTANCE_PROFILE",
        "the compute environment's instance profile is missing or invalid: check its instanceRole",
    ),
    (
        "MISCONFIGURATION",
        "the job will not start until the compute environment or the job definition is fixed; cancel it meanwhile",
    ),
    (
        "CAPACITY:INSUFFICIENT_INSTANCES_AVAILABLE",
        "EC2 has no capacity for the allowed instance types right now: it starts when capacity returns; allowing "
        "more instance types or subnets helps",
    ),
    ("CAPACITY", "waiting for capacity: it starts when the compute environment can place it"),
)


def hint(status: str, reason: str | None) -> str | None:
    if status != "RUNNABLE" or not reason:
        return None
    return next((advice for prefix, advice in _HINTS if reason.startswith(prefix)), None)


@dataclass(frozen=True, kw_only=True)
class Attempt:
    exit_code: int | None = None
    status_reason: str | None = None
    log_stream: str | None = None
    started_at: float | None = None
    stopped_at: float | None = None


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

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def hint(self) -> str | None:
        return hint(self.status, self.status_reason)

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
