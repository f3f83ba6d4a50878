"""The Batch infrastructure a config declares: compute environments and job queues, checked whole (every problem at
once) before anything reads or changes AWS."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from compute_on_aws.declared.cron import parse_duration
from compute_on_aws.errors import UserError, did_you_mean

COMPUTE_TYPES = ("EC2", "SPOT", "FARGATE", "FARGATE_SPOT")
ALLOCATION_STRATEGIES = ("BEST_FIT", "BEST_FIT_PROGRESSIVE", "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED")
# AWS's default is BEST_FIT, which Batch cannot update in place and which needs a Spot Fleet role with spot: the
# progressive strategies are what AWS recommends for each.
DEFAULT_STRATEGY = {"EC2": "BEST_FIT_PROGRESSIVE", "SPOT": "SPOT_PRICE_CAPACITY_OPTIMIZED"}
STATES = ("ENABLED", "DISABLED")
# Why a job waits in RUNNABLE that Batch can cancel it for (jobStateTimeLimitActions): none of them resolves itself.
STUCK_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
)
# Fargate's largest task (16 vCPU, 120 GiB).
FARGATE_MAX_VCPUS = 16
FARGATE_MAX_MEMORY = 120 * 1024
# Tag on every resource `infra apply` creates: `infra apply --prune` deletes only what carries it, with this value.
MANAGED_TAG = "compute-on-aws:infra"


def managed_scope(environment: str | None) -> str:
    """MANAGED_TAG's value for a config environment (--env): its name, or default."""
    return environment or "default"


COMPUTE_KEYS = {
    "type",
    "max_vcpus",
    "min_vcpus",
    "instance_types",
    "allocation_strategy",
    "subnets",
    "security_groups",
    "launch_template",
    "instance_tags",
    "state",
    "container_insights",
}
QUEUE_KEYS = {
    "priority",
    "compute",
    "state",
    "scheduling_policy",
    "fair_share",
    "cancel_stuck_runnable_after",
    "alarms",
}
# CloudWatch Container Insights on a compute environment's ECS cluster (ecsSettings.containerInsights). Undeclared, it
# is left as it is (AWS's default: DISABLED): it is billed as custom metrics, per compute environment and per job.
CONTAINER_INSIGHTS = ("ENABLED", "ENHANCED", "DISABLED")
# What a queue's alarm counts: its jobs that FAILED, or its "Batch Job Queue Blocked" events.
ALARM_KINDS = ("failed", "blocked")
ALARM_KEYS = {"count", "within"}
# A CloudWatch alarm's period: whole minutes, at most a day.
ALARM_WITHIN = (60, 86400)
FAIR_SHARE_KEYS = {"share_decay", "compute_reservation", "shares"}
# Batch's bounds of a fair-share policy: shareDecaySeconds, computeReservation, weightFactor, shareDistribution.
MAX_SHARE_DECAY = 7 * 24 * 3600
MAX_COMPUTE_RESERVATION = 99
WEIGHT_RANGE = (0.0001, 999.9999)
MAX_SHARES = 500
# A share identifier, or a prefix of them ending in *.
_SHARE = re.compile(r"[A-Za-z0-9_]{1,255}\*?")
LAUNCH_TEMPLATE_KEYS = {"id", "name", "version"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,126}[A-Za-z0-9]|[A-Za-z0-9]")


@dataclass(frozen=True, kw_only=True)
class LaunchTemplate:
    id: str | None = None
    name: str | None = None
    version: str | None = None


@dataclass(frozen=True, kw_only=True)
class ComputeEnvironment:
    name: str
    type: str
    max_vcpus: int
    min_vcpus: int = 0
    instance_types: tuple[str, ...] = ()
    allocation_strategy: str | None = None
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    launch_template: LaunchTemplate | None = None
    # Tags of the instances Batch launches (computeResources.tags); the environment's own tags are the config's.
    instance_tags: Mapping[str, str] = field(default_factory=dict)
    state: str = "ENABLED"
    # ENABLED, ENHANCED or DISABLED; None: not managed.
    container_insights: str | None = None

    @property
    def fargate(self) -> bool:
        return self.type.startswith("FARGATE")


@dataclass(frozen=True, kw_only=True)
class FairShare:
    """A fair-share scheduling policy `infra apply` keeps under its queue's name."""

    share_decay_seconds: int = 0
    compute_reservation: int = 0
    # Share identifier (or prefix*) -> weight factor: the lower, the larger its part of the compute.
    shares: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Alarm:
    """A CloudWatch alarm of a queue: `count` or more of its `kind` events within `within_seconds`."""

    kind: str
    count: int = 1
    within_seconds: int = 3600


@dataclass(frozen=True, kw_only=True)
class JobQueue:
    name: str
    priority: int
    compute: tuple[str, ...]
    state: str = "ENABLED"
    # A scheduling policy managed elsewhere (its ARN), or one declared here (fair_share); at most one of them.
    scheduling_policy: str | None = None
    fair_share: FairShare | None = None
    # Seconds a job may wait in RUNNABLE for a reason that never resolves itself before Batch cancels it.
    cancel_stuck_runnable_after: int | None = None
    alarms: tuple[Alarm, ...] = ()

    @property
    def shares_fairly(self) -> bool:
        """Whether Batch schedules the queue by fair share: every job sent to it then needs a share identifier."""
        return self.scheduling_policy is not None or self.fair_share is not None


@dataclass(frozen=True, kw_only=True)
class ConsumableResource:
    """At most `total` held at once by running jobs (REPLENISHABLE: given back when a job ends), or in all (not)."""

    name: str
    total: int
    replenishable: bool = True

    @property
    def resource_type(self) -> str:
        return "REPLENISHABLE" if self.replenishable else "NON_REPLENISHABLE"


@dataclass(frozen=True, kw_only=True)
class Infrastructure:
    compute: Mapping[str, ComputeEnvironment] = field(default_factory=dict)
    queues: Mapping[str, JobQueue] = field(default_factory=dict)
    consumables: Mapping[str, ConsumableResource] = field(default_factory=dict)

    @property
    def declared(self) -> bool:
        return bool(self.compute or self.queues or self.consumables)


class _Problems:
    """Problems found while reading, each one line naming where; raised together."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{self.where}: {path}: {message}")

    def raise_any(self) -> None:
        if self.lines:
            raise UserError("\n".join(self.lines))


def _strings(problems: _Problems, path: str, value: Any, *, required: bool) -> tuple[str, ...]:
    if value is None:
        if required:
            problems.add(path, "required: a list of strings")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.add(path, f"expected a list of strings, got {value!r}")
        return ()
    if required and not value:
        problems.add(path, "expected at least one")
    return tuple(value)


def _integer(problems: _Problems, path: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum else f">= {minimum}"
        problems.add(path, f"expected a whole number {bound}, got {value!r}")
        return minimum
    return value


def _choice(problems: _Problems, path: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        problems.add(path, f"expected one of {', '.join(choices)}, got {value!r}")
        return choices[0]
    return str(value)


def _unknown_keys(problems: _Problems, path: str, data: dict[str, Any], known: set[str]) -> None:
    for key in data:
        if key not in known:
            problems.add(f"{path}.{key}", f"unknown key{did_you_mean(str(key), known)}")


def _fair_share(problems: _Problems, path: str, data: Any) -> FairShare | None:
    if not isinstance(data, dict):
        problems.add(path, "expected a mapping with share_decay, compute_reservation and shares")
        return None
    _unknown_keys(problems, path, data, FAIR_SHARE_KEYS)
    decay = _share_decay(problems, path, data.get("share_decay"))
    reservation = _integer(
        problems,
        f"{path}.compute_reservation",
        data.get("compute_reservation", 0),
        minimum=0,
        maximum=MAX_COMPUTE_RESERVATION,
    )
    shares = _shares(problems, f"{path}.shares", data.get("shares", {}))
    return FairShare(share_decay_seconds=decay, compute_reservation=reservation, shares=shares)


def _share_decay(problems: _Problems, path: str, value: Any) -> int:
    # 0 (Batch's default: only current use counts) has no unit to give.
    if value in (None, 0):
        return 0
    try:
        decay = int(parse_duration(str(value), f"{path}.share_decay").total_seconds())
    except UserError as e:
        problems.lines.append(f"{problems.where}: {e}")
        return 0
    if decay > MAX_SHARE_DECAY:
        problems.add(f"{path}.share_decay", f"Batch takes at most 7d, got {value}")
    return decay


def _shares(problems: _Problems, path: str, shares: Any) -> dict[str, float]:
    """Share identifiers and their weight factors, as Batch takes them: at most MAX_SHARES, none overlapping."""
    if not isinstance(shares, dict):
        problems.add(path, "expected share identifiers mapped to weight factors")
        return {}
    if len(shares) > MAX_SHARES:
        problems.add(path, f"{len(shares)} shares; Batch takes at most {MAX_SHARES}")
    low, high = WEIGHT_RANGE
    for share, weight in shares.items():
        if not isinstance(share, str) or not _SHARE.fullmatch(share):
            problems.add(
                f"{path}.{share}", "a share identifier takes 1-255 letters, digits and _, optionally ending in *"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not low <= weight <= high:
            problems.add(f"{path}.{share}", f"expected a weight factor from {low} to {high}, got {weight!r}")
    prefixes = [str(s)[:-1] for s in shares if str(s).endswith("*")]
    for share in shares:
        # Batch refuses overlapping entries, such as etl* with etl_daily.
        covering = [p for p in prefixes if str(share).startswith(p) and str(share) != f"{p}*"]
        if covering:
            problems.add(f"{path}.{share}", f"overlaps {covering[0]}*, which Batch refuses")
    return {str(k): float(v) for k, v in shares.items() if isinstance(v, int | float)}


def _entry(problems: _Problems, path: str, name: str, data: Any, known: set[str]) -> bool:
    """Whether a named entry of a section is a mapping to read further; its unknown keys and a bad name noted."""
    if not isinstance(data, dict):
        problems.add(path, f"expected a mapping, got {type(data).__name__}")
        return False
    _unknown_keys(problems, path, data, known)
    if not _NAME.fullmatch(name):
        problems.add(path, "the name takes 1-128 letters, digits, - and _, starting and ending with a letter or digit")
    return True


def _compute(problems: _Problems, name: str, data: Any) -> ComputeEnvironment | None:
    path = f"compute.{name}"
    if not _entry(problems, path, name, data, COMPUTE_KEYS):
        return None
    kind = _choice(problems, f"{path}.type", data.get("type"), COMPUTE_TYPES)
    fargate = kind.startswith("FARGATE")
    max_vcpus = _integer(problems, f"{path}.max_vcpus", data.get("max_vcpus"), minimum=1)
    min_vcpus = _integer(problems, f"{path}.min_vcpus", data.get("min_vcpus", 0), minimum=0)
    if min_vcpus > max_vcpus:
        problems.add(f"{path}.min_vcpus", f"{min_vcpus} is more than max_vcpus ({max_vcpus})")
    for key in ("min_vcpus", "instance_types", "allocation_strategy", "launch_template", "instance_tags"):
        if fargate and key in data:
            problems.add(f"{path}.{key}", f"does not apply to {kind} (Fargate chooses the machines)")
    strategy = data.get("allocation_strategy", DEFAULT_STRATEGY.get(kind))
    if strategy is not None:
        strategy = _choice(problems, f"{path}.allocation_strategy", strategy, ALLOCATION_STRATEGIES)
        if strategy.startswith("SPOT_") and kind != "SPOT":
            problems.add(f"{path}.allocation_strategy", f"{strategy} is for SPOT compute, this is {kind}")
    template = data.get("launch_template")
    launch_template = None
    if template is not None:
        if not isinstance(template, dict):
            problems.add(f"{path}.launch_template", "expected a mapping with id or name, and version")
        else:
            _unknown_keys(problems, f"{path}.launch_template", template, LAUNCH_TEMPLATE_KEYS)
            if ("id" in template) == ("name" in template):
                problems.add(f"{path}.launch_template", "give either id or name")
            launch_template = LaunchTemplate(
                id=template.get("id"), name=template.get("name"), version=template.get("version")
            )
    tags = data.get("instance_tags", {})
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        problems.add(f"{path}.instance_tags", "expected string keys mapped to string values (quote numbers)")
        tags = {}
    return ComputeEnvironment(
        name=name,
        type=kind,
        max_vcpus=max_vcpus,
        min_vcpus=0 if fargate else min_vcpus,
        instance_types=()
        if fargate
        else _strings(problems, f"{path}.instance_types", data.get("instance_types", ["optimal"]), required=True),
        allocation_strategy=None if fargate else strategy,
        subnets=_strings(problems, f"{path}.subnets", data.get("subnets"), required=True),
        security_groups=_strings(problems, f"{path}.security_groups", data.get("security_groups"), required=True),
        launch_template=launch_template,
        instance_tags=dict(tags),
        state=_choice(problems, f"{path}.state", data.get("state", "ENABLED"), STATES),
        container_insights=_insights(problems, f"{path}.container_insights", data.get("container_insights")),
    )


def _insights(problems: _Problems, path: str, value: Any) -> str | None:
    # YAML reads a bare `true` as a boolean: taken as ENABLED.
    if value is None:
        return None
    if isinstance(value, bool):
        return "ENABLED" if value else "DISABLED"
    return _choice(problems, path, value, CONTAINER_INSIGHTS)


def _alarms(problems: _Problems, path: str, data: Any) -> tuple[Alarm, ...]:
    if data is None:
        return ()
    if not isinstance(data, dict):
        problems.add(path, f"expected a mapping of {' and '.join(ALARM_KINDS)} to count and within")
        return ()
    _unknown_keys(problems, path, data, set(ALARM_KINDS))
    alarms = []
    for kind in ALARM_KINDS:
        entry = data.get(kind)
        if kind not in data:
            continue
        where = f"{path}.{kind}"
        if not isinstance(entry, dict):
            problems.add(where, f"expected a mapping with count and within, got {entry!r}")
            continue
        _unknown_keys(problems, where, entry, ALARM_KEYS)
        count = _integer(problems, f"{where}.count", entry.get("count", 1), minimum=1, maximum=10000)
        within = entry.get("within", "1h")
        seconds = 3600
        try:
            seconds = int(parse_duration(str(within), f"{where}.within").total_seconds())
        except UserError as e:
            problems.lines.append(f"{problems.where}: {e}")
        else:
            low, high = ALARM_WITHIN
            if seconds % 60 or not low <= seconds <= high:
                problems.add(f"{where}.within", f"CloudWatch takes whole minutes from 1m to 24h, got {within}")
        alarms.append(Alarm(kind=kind, count=count, within_seconds=seconds))
    return tuple(alarms)


def _queue(problems: _Problems, name: str, data: Any, compute: Mapping[str, ComputeEnvironment]) -> JobQueue | None:
    path = f"queues.{name}"
    if not _entry(problems, path, name, data, QUEUE_KEYS):
        return None
    names = _strings(problems, f"{path}.compute", data.get("compute"), required=True)
    if len(names) > 3:
        problems.add(f"{path}.compute", f"{len(names)} compute environments; a queue takes at most 3")
    for ce in names:
        if ce not in compute:
            hint = did_you_mean(ce, compute, listing="declared")
            problems.add(f"{path}.compute", f"no compute environment {ce!r} is declared{hint}")
    kinds = {compute[ce].fargate for ce in names if ce in compute}
    if len(kinds) > 1:
        problems.add(f"{path}.compute", "mixes Fargate and EC2 compute environments, which Batch refuses in one queue")
    stuck = data.get("cancel_stuck_runnable_after")
    seconds = None
    if stuck is not None:
        try:
            seconds = int(parse_duration(str(stuck), f"{path}.cancel_stuck_runnable_after").total_seconds())
        except UserError as e:
            problems.lines.append(f"{problems.where}: {e}")
        else:
            if not 600 <= seconds <= 86400:
                problems.add(f"{path}.cancel_stuck_runnable_after", f"Batch takes 10m to 24h, got {stuck}")
    policy = data.get("scheduling_policy")
    if policy is not None and (not isinstance(policy, str) or ":scheduling-policy/" not in policy):
        problems.add(f"{path}.scheduling_policy", f"expected a scheduling policy ARN, got {policy!r}")
    fair_share = None
    if data.get("fair_share") is not None:
        if policy is not None:
            problems.add(f"{path}.fair_share", "give either fair_share or scheduling_policy (an existing one's ARN)")
        fair_share = _fair_share(problems, f"{path}.fair_share", data["fair_share"])
    return JobQueue(
        name=name,
        priority=_integer(problems, f"{path}.priority", data.get("priority", 1), minimum=0, maximum=1000),
        compute=names,
        state=_choice(problems, f"{path}.state", data.get("state", "ENABLED"), STATES),
        scheduling_policy=policy,
        fair_share=fair_share,
        cancel_stuck_runnable_after=seconds,
        alarms=_alarms(problems, f"{path}.alarms", data.get("alarms")),
    )


CONSUMABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
CONSUMABLE_KEYS = {"total", "replenishable"}
# Batch's totalQuantity is a long; a licence count or a connection pool is far below this.
MAX_CONSUMABLE = 2**31 - 1


def _consumable(problems: _Problems, name: str, data: Any) -> ConsumableResource | None:
    path = f"consumable_resources.{name}"
    if not CONSUMABLE_NAME.fullmatch(name):
        problems.add(path, "a consumable resource name is 1-128 letters, digits, - or _")
        return None
    if not isinstance(data, dict):
        problems.add(path, f"expected {{total: <count>, replenishable: true}}, got {data!r}")
        return None
    _unknown_keys(problems, path, data, CONSUMABLE_KEYS)
    if "total" not in data:
        problems.add(f"{path}.total", "required: how many exist (a whole number)")
    total = _integer(problems, f"{path}.total", data.get("total", 0), minimum=0, maximum=MAX_CONSUMABLE)
    replenishable = data.get("replenishable", True)
    if not isinstance(replenishable, bool):
        problems.add(f"{path}.replenishable", f"expected true or false, got {replenishable!r}")
        replenishable = True
    return ConsumableResource(name=name, total=total, replenishable=replenishable)


def parse_infrastructure(compute: Any, queues: Any, *, where: str, consumables: Any = None) -> Infrastructure:
    """The `compute`, `queues` and `consumable_resources` sections of a config; every problem in them raised at once,
    a line each."""
    problems = _Problems(where)
    environments: dict[str, ComputeEnvironment] = {}
    for label, section in (("compute", compute), ("queues", queues), ("consumable_resources", consumables)):
        if section is not None and not isinstance(section, dict):
            problems.add(label, "expected a mapping of names to settings")
    for name, data in (compute if isinstance(compute, dict) else {}).items():
        if (ce := _compute(problems, str(name), data)) is not None:
            environments[str(name)] = ce
    job_queues: dict[str, JobQueue] = {}
    for name, data in (queues if isinstance(queues, dict) else {}).items():
        if (queue := _queue(problems, str(name), data, environments)) is not None:
            job_queues[str(name)] = queue
    resources: dict[str, ConsumableResource] = {}
    for name, data in (consumables if isinstance(consumables, dict) else {}).items():
        if (resource := _consumable(problems, str(name), data)) is not None:
            resources[str(name)] = resource
    problems.raise_any()
    return Infrastructure(compute=environments, queues=job_queues, consumables=resources)
