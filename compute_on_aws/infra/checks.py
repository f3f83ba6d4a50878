"""Jobs checked against the declared infrastructure: a queue that exists, and compute that can run them. What would
otherwise be a job stuck RUNNABLE for days is an error before anything is queued."""

from __future__ import annotations

from compute_on_aws.errors import did_you_mean
from compute_on_aws.infra.model import FARGATE_MAX_MEMORY, FARGATE_MAX_VCPUS, Infrastructure
from compute_on_aws.model import Job


def job_problems(job: Job, queue: str | None, infra: Infrastructure) -> list[str]:
    """Why `job`, sent to `queue`, could never run on the declared infrastructure (nothing when none is declared)."""
    if not infra.queues or queue is None:
        return []
    declared = infra.queues.get(queue)
    if declared is None:
        hint = did_you_mean(queue, infra.queues, listing="declared")
        return [f"{job.name}: queue: {queue!r} is not among the queues compute-on-aws.yaml declares{hint}"]
    environments = [infra.compute[name] for name in declared.compute if name in infra.compute]
    fits = []
    for ce in environments:
        if job.vcpus > ce.max_vcpus:
            continue
        if ce.fargate and (job.vcpus > FARGATE_MAX_VCPUS or job.memory > FARGATE_MAX_MEMORY or job.gpus):
            continue
        if not ce.fargate and job.platform == "FARGATE":
            continue
        if ce.fargate and job.platform != "FARGATE":
            continue
        fits.append(ce.name)
    if environments and not fits:
        needs = f"{job.vcpus:g} vCPU, {job.memory} MiB{f', {job.gpus} GPU' if job.gpus else ''} on {job.platform}"
        offers = ", ".join(
            f"{ce.name} ({ce.type}, at most {ce.max_vcpus} vCPU{', 16 vCPU and 120 GiB a task' if ce.fargate else ''})"
            for ce in environments
        )
        return [f"{job.name}: needs {needs}, which no compute environment of queue {queue} can give: {offers}"]
    return []
