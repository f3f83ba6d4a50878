"""Batch's DescribeJobs and ListJobs entries read as the JobViews users see of a job on either backend."""

from __future__ import annotations

from typing import Any

from compute_on_aws.declared.container import DEFAULT_LOG_GROUP
from compute_on_aws.watching.views import FINAL, Attempt, JobView


def seconds(ms: Any) -> float | None:
    return ms / 1000 if isinstance(ms, int | float) and ms > 0 else None


def _memory(container: dict[str, Any]) -> int | None:
    """MiB: the MEMORY requirement (or the legacy `memory` field)."""
    for requirement in container.get("resourceRequirements", []):
        if requirement.get("type") == "MEMORY" and str(requirement.get("value", "")).isdigit():
            return int(requirement["value"])
    memory = container.get("memory")
    return memory if isinstance(memory, int) and memory > 0 else None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def from_batch(job: dict[str, Any]) -> JobView:
    """A DescribeJobs entry as a JobView."""
    container = job.get("container", {})
    log_config = container.get("logConfiguration", {})
    group = DEFAULT_LOG_GROUP
    if log_config.get("logDriver") == "awslogs":
        group = log_config.get("options", {}).get("awslogs-group", DEFAULT_LOG_GROUP)
    attempts = tuple(
        Attempt(
            exit_code=a.get("container", {}).get("exitCode"),
            # The container's own reason (OutOfMemoryError: ...) says more than the attempt's ("Essential container
            # in task exited").
            status_reason=a.get("container", {}).get("reason") or a.get("statusReason"),
            log_stream=a.get("container", {}).get("logStreamName"),
            started_at=seconds(a.get("startedAt")),
            stopped_at=seconds(a.get("stoppedAt")),
        )
        for a in job.get("attempts", [])
    )
    array = job.get("arrayProperties", {})
    size = array.get("size") if "statusSummary" in array else None
    counts = {k: v for k, v in array.get("statusSummary", {}).items() if v} if size else {}
    status = job["status"]
    if size and status not in FINAL and counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0) == size:
        # Every child ended: the parent's own status follows with a delay (and moto never moves it on a failure).
        status = "FAILED" if counts.get("FAILED") else "SUCCEEDED"
    queue = job.get("jobQueue")
    return JobView(
        job_id=job["jobId"],
        job_name=job["jobName"],
        status=status,
        status_reason=job.get("statusReason"),
        queue=queue.rsplit("/", 1)[-1] if queue else None,
        definition=job.get("jobDefinition", "").rsplit("/", 1)[-1] or None,
        created_at=seconds(job.get("createdAt")),
        started_at=seconds(job.get("startedAt")),
        stopped_at=seconds(job.get("stoppedAt")),
        exit_code=container.get("exitCode", attempts[-1].exit_code if attempts else None),
        attempts=attempts,
        array_size=size,
        array_counts=counts,
        log_group=group,
        log_stream=container.get("logStreamName")
        or next((a.log_stream for a in reversed(attempts) if a.log_stream), None),
        memory=_memory(container),
        timeout=_positive(job.get("timeout", {}).get("attemptDurationSeconds")),
        max_attempts=_positive(job.get("retryStrategy", {}).get("attempts")),
    )
