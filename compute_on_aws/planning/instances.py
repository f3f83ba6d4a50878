"""What the instances a compute environment may launch offer (vCPUs, memory, GPUs, architecture), known without
calling AWS: a job that no one of them can hold would wait RUNNABLE for ever, and is better an error before queueing.

The table (instance_types.json, beside this file) is EC2's DescribeInstanceTypes reduced to those four facts; it is
rewritten from moto's copy by `python tests/instance_types_source.py`, and tests/test_instances.py keeps the two equal.
A family or type newer than the table proves nothing: the check then says yes rather than refuse a job AWS could run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

# The names Batch accepts in instanceTypes for a set of families it chooses from. Batch API reference, ComputeResource
# instanceTypes (https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeResource.html, as in botocore's
# batch model, 1.44): default_x86_64 chooses among m6i, c6i, r6i and c7i; default_arm64 among m6g, c6g, r6g and c7g;
# optimal is "semantically equivalent to default_x86_64" since the change announced for 2025-11-01, and was c4, m4, r4,
# c5, m5 and r5 before it (the earlier reference; and AWS's HPC blog, https://aws.amazon.com/blogs/hpc/
# introducing-default-instance-categories-for-aws-batch/: c4, m4, r4 where the Region has them, else the cheapest
# generation, most often c5, m5, r5). Which one an environment gets depends on its Region and on when, so optimal is
# the union of both: never refuse what either runs.
# The same reference says Batch "periodically updates" the default bundles to newer families: when it names them,
# add them here (a newer family may be larger, and then the check would be too strict).
DEFAULT_X86_64 = ("m6i", "c6i", "r6i", "c7i")
DEFAULT_ARM64 = ("m6g", "c6g", "r6g", "c7g")
BUNDLES: dict[str, tuple[str, ...]] = {
    "optimal": ("c4", "m4", "r4", "c5", "m5", "r5", *DEFAULT_X86_64),
    "default_x86_64": DEFAULT_X86_64,
    "default_arm64": DEFAULT_ARM64,
}

# Memory is the nominal size (MemoryInfo.SizeInMiB), not what a job gets. Batch's "Compute resource memory management"
# (https://docs.aws.amazon.com/batch/latest/userguide/memory-management.html, and "Reserve system memory",
# ecs-reserved-memory.html) says the ECS agent registers the memory the OS reports, less than installed (an m4.large's
# 8192 MiB register as 7985), minus ECS_RESERVED_MEMORY (32 MiB in Batch's AMI; a launch template may set another).
# The kernel's share is given only by that example and varies with size and AMI, so no reserve is subtracted here:
# a job asking for more than the nominal memory can never be placed and is refused; one asking for a little less may
# still not fit, and is let through (never refusing a job AWS would place matters more).


@dataclass(frozen=True)
class Capacity:
    """One instance type's capacity: what a single job on it can have at most (memory nominal, see above)."""

    vcpus: int
    memory: int  # MiB
    gpus: int
    architectures: tuple[str, ...]  # as EC2 names them: "x86_64", "arm64" (also "i386", "x86_64_mac", ...)

    def holds(self, *, vcpus: float, memory: int, gpus: int, architecture: str | None = None) -> bool:
        """Whether a job needing all of this at once fits this type."""
        return (
            vcpus <= self.vcpus
            and memory <= self.memory
            and gpus <= self.gpus
            and (architecture is None or architecture.lower() in self.architectures)
        )


@cache
def _table() -> dict[str, Capacity]:
    """The shipped table, read on first use only (most commands never check capacity)."""
    text = (files("compute_on_aws.planning") / "instance_types.json").read_text(encoding="utf-8")
    rows: dict[str, tuple[int, int, int, list[str]]] = json.loads(text)
    return {
        name: Capacity(vcpus=vcpus, memory=memory, gpus=gpus, architectures=tuple(architectures))
        for name, (vcpus, memory, gpus, architectures) in rows.items()
    }


@cache
def _families() -> dict[str, tuple[str, ...]]:
    """Family ("m6i", "c7i-flex") -> every type of it in the table: a family in instanceTypes means all its sizes."""
    members: dict[str, list[str]] = {}
    for name in sorted(_table()):
        members.setdefault(name.partition(".")[0], []).append(name)
    return {family: tuple(names) for family, names in members.items()}


def capacities(instance_types: Sequence[str]) -> list[Capacity] | None:
    """Every instance type a compute environment with these instanceTypes may launch (families expanded, optimal and
    default_* as above), or None when nothing can be concluded: an entry the table does not know (newer than it, or
    misspelt: Batch itself rejects those), or no entry at all."""
    found = _capacities(tuple(instance_types))
    return None if found is None else list(found)


@cache
def _capacities(instance_types: tuple[str, ...]) -> tuple[Capacity, ...] | None:
    """capacities, once per compute environment however many jobs are checked against it."""
    table, families = _table(), _families()
    names: set[str] = set()
    for entry in instance_types:
        for item in BUNDLES.get(entry, (entry,)):
            if item in table:
                names.add(item)
            elif item in families:
                names.update(families[item])
            else:
                return None
    if not names:
        return None
    return tuple(table[name] for name in sorted(names))


def can_run(
    instance_types: Sequence[str], *, vcpus: float, memory: int, gpus: int, architecture: str | None = None
) -> bool:
    """Whether one of these instance types alone has the vCPUs, memory (MiB) and GPUs (and, when given, the
    architecture, "x86_64" or "arm64") the job needs: a job runs on one instance, so the most vCPUs of one type and the
    most memory of another do not add up. True when the table cannot tell (see capacities)."""
    offered = capacities(instance_types)
    return offered is None or any(
        capacity.holds(vcpus=vcpus, memory=memory, gpus=gpus, architecture=architecture) for capacity in offered
    )


def largest(instance_types: Sequence[str]) -> Capacity | None:
    """For error messages: the most vCPUs, the most memory and the most GPUs that any one of these types offers, each
    maximum taken on its own (they may come from different types, so this may be no real instance: a job asking more
    than any of them cannot run, one within all of them still may not), with every architecture among them (sorted).
    None as for capacities."""
    offered = capacities(instance_types)
    if offered is None:
        return None
    return Capacity(
        vcpus=max(capacity.vcpus for capacity in offered),
        memory=max(capacity.memory for capacity in offered),
        gpus=max(capacity.gpus for capacity in offered),
        architectures=tuple(sorted({arch for capacity in offered for arch in capacity.architectures})),
    )


@cache
def any_type() -> Capacity:
    """The most vCPUs, memory and GPUs of any one type in the table, each taken on its own: a job asking more than
    this can run nowhere on EC2, whatever compute it is sent to. Computed once: every plan asks."""
    table = _table().values()
    return Capacity(
        vcpus=max(c.vcpus for c in table),
        memory=max(c.memory for c in table),
        gpus=max(c.gpus for c in table),
        architectures=tuple(sorted({a for c in table for a in c.architectures})),
    )
