"""Jobs checked against the declared infrastructure: a queue that exists, a share identifier where the queue shares
by fair share, and compute that can run them. What would otherwise be a job stuck RUNNABLE for days, or refused by
SubmitJob, is an error before anything is queued."""

from __future__ import annotations

from compute_on_aws.declared.infrastructure import (
    FARGATE_MAX_MEMORY,
    FARGATE_MAX_VCPUS,
    ComputeEnvironment,
    Infrastructure,
    JobQueue,
)
from compute_on_aws.declared.manifest import Job
from compute_on_aws.errors import did_you_mean
from compute_on_aws.planning import instances

# The instances' architecture (as EC2 names it) that runs a Nix image built for a system.
ARCHITECTURES = {"x86_64-linux": "x86_64", "aarch64-linux": "arm64"}


def _fits(job: Job, ce: ComputeEnvironment, architecture: str | None) -> bool:
    if job.vcpus > ce.max_vcpus or ce.fargate != (job.platform == "FARGATE"):
        return False
    if ce.fargate:
        # Fargate runs both architectures, but Fargate Spot runs no ARM64 task.
        arm_on_spot = architecture == "arm64" and ce.type == "FARGATE_SPOT"
        return job.vcpus <= FARGATE_MAX_VCPUS and job.memory <= FARGATE_MAX_MEMORY and not job.gpus and not arm_on_spot
    return instances.can_run(
        ce.instance_types, vcpus=job.vcpus, memory=job.memory, gpus=job.gpus, architecture=architecture
    )


# AWS Batch replaces `Ref::<name>` in a job's command with the job's parameter of that name; the local backend has no
# such parameters. Refused on both (here in the declared command, planning.plan in a run's arguments).
PARAMETER_REFERENCE = "Ref::"


def _parameter_reference(job: Job) -> str | None:
    referenced = [w for w in job.program.command or () if PARAMETER_REFERENCE in w]
    if not referenced:
        return None
    return (
        f"{job.name}: command: {referenced[0][:60]!r}: AWS Batch would replace {PARAMETER_REFERENCE}... with a job "
        "parameter and the local backend would not; take the value from a variable or an argument"
    )


def _beyond_any_instance(job: Job) -> str | None:
    """What no EC2 instance type has (checked even with no compute declared: Batch would take the job and leave it
    RUNNABLE for ever)."""
    if job.platform != "EC2":
        return None
    most = instances.any_type()
    asked = [
        f"{what} {value:.12g}{unit} (the most of any instance type: {limit:.12g}{unit})"
        for what, value, limit, unit in (
            ("vcpus", job.vcpus, most.vcpus, ""),
            ("memory", job.memory, most.memory, " MiB"),
            ("gpus", job.gpus, most.gpus, ""),
        )
        if value > limit
    ]
    if not asked:
        return None
    return f"{job.name}: {'; '.join(asked)}: no EC2 instance can run it, and Batch would leave it RUNNABLE for ever"


def _offer(ce: ComputeEnvironment) -> str:
    """What a compute environment can give one job at most, for the error."""
    if ce.fargate:
        arm = ", x86_64 only" if ce.type == "FARGATE_SPOT" else ""
        return f"{ce.name} ({ce.type}, at most {ce.max_vcpus} vCPU, 16 vCPU and 120 GiB a task{arm})"
    largest = instances.largest(ce.instance_types)
    if largest is None:
        return f"{ce.name} ({ce.type}, at most {ce.max_vcpus} vCPU)"
    gpus = f", {largest.gpus} GPU" if largest.gpus else ""
    return (
        f"{ce.name} ({ce.type}, at most {ce.max_vcpus} vCPU; {'/'.join(ce.instance_types)} instances: up to "
        f"{largest.vcpus} vCPU, {largest.memory} MiB{gpus}, {'/'.join(largest.architectures)})"
    )


def consumable_problems(job: Job, infra: Infrastructure) -> list[str]:
    """A consumable resource the job holds must be declared (infra apply makes it), with at least that much of it:
    otherwise Batch refuses the definition, or the job waits in RUNNABLE for ever."""
    problems = []
    for name, quantity in job.container.consumes.items():
        declared = infra.consumables.get(name)
        if declared is None:
            hint = did_you_mean(name, infra.consumables, listing="declared")
            problems.append(
                f"{job.name}: consumes: {name!r} is not among the consumable_resources compute-on-aws.yaml "
                f"declares{hint}"
            )
        elif quantity > declared.total:
            problems.append(
                f"{job.name}: consumes: {name}: the job holds {quantity} and only {declared.total} exist "
                f"(consumable_resources.{name}.total), so it could never start"
            )
    return problems


def _share_problems(job: Job, queue: str, declared: JobQueue) -> list[str]:
    """A share identifier where the queue schedules by fair share, and none elsewhere (Batch refuses both)."""
    problems = []
    if declared.shares_fairly and job.share_identifier is None:
        shares = declared.fair_share.shares if declared.fair_share else {}
        listed = f" (its shares: {', '.join(sorted(shares))})" if shares else ""
        problems.append(
            f"{job.name}: shareIdentifier: queue {queue} schedules by fair share, and Batch refuses a job without a "
            f"share identifier there{listed}"
        )
    if not declared.shares_fairly and job.share_identifier is not None:
        problems.append(
            f"{job.name}: shareIdentifier: queue {queue} has no fair-share policy, and Batch refuses a share "
            "identifier there: remove it, or declare fair_share on the queue"
        )
    return problems


def job_problems(job: Job, queue: str | None, infra: Infrastructure, system: str | None = None) -> list[str]:
    """Why `job`, sent to `queue`, could never run on the declared infrastructure (nothing when none is declared).
    `system`: what Nix builds images for (image.system), whose architecture the instances must have."""
    if job.container.consumes and (consumables := consumable_problems(job, infra)):
        return consumables
    if own := [p for p in (_beyond_any_instance(job), _parameter_reference(job)) if p is not None]:
        return own[:1]
    if not infra.queues or queue is None:
        return []
    declared = infra.queues.get(queue)
    if declared is None:
        hint = did_you_mean(queue, infra.queues, listing="declared")
        return [f"{job.name}: queue: {queue!r} is not among the queues compute-on-aws.yaml declares{hint}"]
    problems = _share_problems(job, queue, declared)
    environments = [infra.compute[name] for name in declared.compute if name in infra.compute]
    # Only an image Nix builds has one known architecture; a registry image may hold several.
    architecture = ARCHITECTURES.get(system or "") if job.image.kind == "nix" else None
    if environments and not any(_fits(job, ce, architecture) for ce in environments):
        on = f" ({system} image)" if architecture else ""
        needs = f"{job.vcpus:g} vCPU, {job.memory} MiB{f', {job.gpus} GPU' if job.gpus else ''} on {job.platform}{on}"
        offers = ", ".join(_offer(ce) for ce in environments)
        problems.append(f"{job.name}: needs {needs}, which no compute environment of queue {queue} can give: {offers}")
    return problems
