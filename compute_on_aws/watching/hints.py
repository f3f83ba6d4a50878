"""What to do about a job that is stuck or failed: Batch's reasons read as the declaration or setting to change.

Pure: from what DescribeJobs (or the local store) says of the job. Each hint names the attribute of the job's
declaration (`memory`, `attempts`, `attemptDurationSeconds`, `image`, ...) or the setting of compute-on-aws.yaml that
changes the outcome, and what `compute-on-aws` command shows more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class _Attempt(Protocol):
    @property
    def status_reason(self) -> str | None: ...


class JobView(Protocol):
    """What a hint reads of a job (views.JobView has it): kept here so that views may ask for hints."""

    @property
    def job_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def status_reason(self) -> str | None: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def attempts(self) -> Sequence[_Attempt]: ...
    @property
    def memory(self) -> int | None: ...
    @property
    def timeout(self) -> int | None: ...
    @property
    def max_attempts(self) -> int | None: ...


# Why a RUNNABLE job does not start (Batch's statusReason prefixes, docs: "Jobs stuck in a RUNNABLE status").
_RUNNABLE = (
    (
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "the compute environment's maxvCpus is below what the job needs: raise max_vcpus of its compute in "
        "compute-on-aws.yaml (then infra apply), or lower the job's vcpus",
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
        "CAPACITY:INSUFFICIENT_INSTANCE",
        "EC2 has no capacity for the allowed instance types right now: it starts when capacity returns; allowing "
        "more instance types or subnets helps",
    ),
    ("CAPACITY", "waiting for capacity: it starts when the compute environment can place it"),
    (
        "ACTION_REQUIRED",
        "a compute environment of the queue is INVALID: `compute-on-aws infra plan` shows what differs from the "
        "declaration; fix it and `infra apply` (the job starts then)",
    ),
    (
        "UNDETERMINED",
        "Batch cannot tell why the queue is blocked: look at the compute environment's instances (do they join "
        "its ECS cluster? can the subnets reach ECS and the registry?) and its launch template",
    ),
    (
        "waiting for consumable resource",
        "other jobs hold the resource: it starts when they end; raise its total under consumable_resources in "
        "compute-on-aws.yaml for more at once",
    ),
)

OUT_OF_MEMORY = "OutOfMemoryError"
PULL = "CannotPullContainerError"
INIT = "ResourceInitializationError"
HOST_GONE = "Host EC2"
TIMED_OUT = "Job attempt duration exceeded timeout"
DEPENDENCY = "Dependent Job failed"


def _reasons(view: JobView) -> list[str]:
    """Every reason Batch gave: the job's, then its attempts' (a container's own reason is in its attempt)."""
    return [r for r in (view.status_reason, *(a.status_reason for a in reversed(view.attempts))) if r]


def _memory(view: JobView) -> str:
    return f"its {view.memory} MiB" if view.memory else "its memory"


def _pull_hint(reason: str) -> str:
    lowered = reason.lower()
    if "no space left" in lowered:
        return (
            "the instance's disk is full, so the image could not be unpacked: on Fargate raise `ephemeralStorage`; "
            "on EC2 give the compute environment larger volumes (a launch template)"
        )
    if any(w in lowered for w in ("not found", "manifest unknown", "does not exist", "no such")):
        return (
            "the image tag is not in the registry: queue the job again (queue pushes a Nix-built image first), "
            "or fix the job's `image`"
        )
    if any(w in lowered for w in ("auth", "denied", "401", "403", "forbidden", "credentials")):
        return (
            "the registry refused the pull: the execution role (roles.execution, executionRoleArn) needs to pull "
            "from it; `compute-on-aws iam-policy --role execution` prints what it needs"
        )
    return "the image could not be pulled: check the job's `image`, and that the subnets reach the registry"


def _failed_hint(view: JobView) -> str | None:
    reasons = _reasons(view)
    joined = " ".join(reasons)
    if OUT_OF_MEMORY in joined:
        return f"the container used more than {_memory(view)}: raise `memory` in the job's declaration"
    if PULL in joined:
        return _pull_hint(next(r for r in reasons if PULL in r))
    if INIT in joined:
        return (
            "ECS could not read the job's secrets or registry credentials: the execution role needs them "
            "(`compute-on-aws iam-policy --role execution`), each secret or parameter must exist, and the subnets "
            "must reach Secrets Manager, SSM and the registry"
        )
    if TIMED_OUT in joined:
        limit = f" of {view.timeout} s" if view.timeout else ""
        return f"an attempt ran past its timeout{limit}: raise `attemptDurationSeconds` in the job's declaration"
    if any(r.startswith(HOST_GONE) for r in reasons):
        used, allowed = len(view.attempts), view.max_attempts
        if allowed is not None and used < allowed:
            return (
                "its instance went away (a Spot reclaim or a host failure) and its `retryRules` did not retry it: "
                'add { action = "retry"; onStatusReason = "Host EC2*"; } (the default rules do)'
            )
        return (
            f"its instance went away (a Spot reclaim or a host failure) on the last of {used} attempts: raise "
            "`attempts`, or queue it on on-demand compute"
        )
    if DEPENDENCY in joined:
        return "a job it runs after failed: `compute-on-aws status` of that one says why; queue again once it succeeds"
    if view.exit_code == 137:
        return (
            f"the program was killed (SIGKILL, exit 137), most often for using more than {_memory(view)}: raise "
            "`memory` in the job's declaration"
        )
    if view.exit_code == 143:
        return "it was stopped (SIGTERM, exit 143): terminated by `cancel`, TerminateJob or Batch, not by itself"
    if view.exit_code:
        return f"the program exited with {view.exit_code}: `compute-on-aws logs {view.job_id}` shows its output"
    return None


def hint(view: JobView) -> str | None:
    """What to change for a stuck RUNNABLE or a FAILED job; None when there is nothing to add to Batch's reason."""
    if view.status == "RUNNABLE" and view.status_reason:
        return next((advice for prefix, advice in _RUNNABLE if view.status_reason.startswith(prefix)), None)
    if view.status == "FAILED":
        return _failed_hint(view)
    return None
