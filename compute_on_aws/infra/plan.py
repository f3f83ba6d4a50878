"""What `infra apply` would change: the declared compute environments and queues as Batch requests, compared with
what AWS describes. Pure: the caller reads AWS and carries the changes out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from compute_on_aws.declared.container import DEFAULT_LOG_GROUP
from compute_on_aws.declared.infrastructure import (
    MANAGED_TAG,
    STUCK_REASONS,
    ComputeEnvironment,
    ConsumableResource,
    FairShare,
    Infrastructure,
    JobQueue,
)

Kind = Literal[
    "role",
    "instance profile",
    "log group",
    "compute environment",
    "scheduling policy",
    "job queue",
    "sns topic",
    "event rule",
    "alarm",
    "consumable resource",
]
Action = Literal["create", "update", "delete", "keep", "replace"]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the requests take from the rest of the config."""

    # The role Batch acts with (None: AWS's service-linked role), and the instance profile of EC2 and spot instances.
    service_role: str | None = None
    instance_profile: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # The value of MANAGED_TAG on what this config's apply creates: its environment's name, or "default".
    scope: str = "default"


@dataclass(frozen=True, kw_only=True)
class Change:
    action: Action
    kind: Kind
    name: str
    # Field by field, "field: old -> new" (create: the main settings; replace: why it cannot be updated).
    details: tuple[str, ...] = ()
    # The request that creates (create) or updates (update) it; names of compute environments stand for their ARNs.
    request: Mapping[str, Any] = field(default_factory=dict)

    @property
    def line(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-", "keep": "=", "replace": "-/+"}[self.action]
        what = f"{sign} {self.kind} {self.name}"
        return f"{what}: {'; '.join(self.details)}" if self.details else what


def compute_request(ce: ComputeEnvironment, settings: Settings) -> dict[str, Any]:
    """CreateComputeEnvironment for a declared compute environment."""
    resources: dict[str, Any] = {
        "type": ce.type,
        "maxvCpus": ce.max_vcpus,
        "subnets": list(ce.subnets),
        "securityGroupIds": list(ce.security_groups),
    }
    if not ce.fargate:
        resources |= {
            "minvCpus": ce.min_vcpus,
            "instanceTypes": list(ce.instance_types),
            "allocationStrategy": ce.allocation_strategy,
        }
        if settings.instance_profile is not None:
            resources["instanceRole"] = settings.instance_profile
        if ce.launch_template is not None:
            template = {"launchTemplateId": ce.launch_template.id, "launchTemplateName": ce.launch_template.name}
            template["version"] = ce.launch_template.version
            resources["launchTemplate"] = {k: v for k, v in template.items() if v is not None}
        if ce.instance_tags:
            resources["tags"] = dict(ce.instance_tags)
    request: dict[str, Any] = {
        "computeEnvironmentName": ce.name,
        "type": "MANAGED",
        "state": ce.state,
        "computeResources": resources,
        "tags": {**settings.tags, MANAGED_TAG: settings.scope},
    }
    if settings.service_role is not None:
        request["serviceRole"] = settings.service_role
    if ce.container_insights is not None:
        request["ecsSettings"] = {"containerInsights": ce.container_insights}
    return request


def fairshare_policy(fair_share: FairShare) -> dict[str, Any]:
    """A declared fair share as Batch's fairsharePolicy."""
    return {
        "shareDecaySeconds": fair_share.share_decay_seconds,
        "computeReservation": fair_share.compute_reservation,
        "shareDistribution": [
            {"shareIdentifier": share, "weightFactor": weight} for share, weight in sorted(fair_share.shares.items())
        ],
    }


def policy_request(queue: str, fair_share: FairShare, settings: Settings) -> dict[str, Any]:
    """CreateSchedulingPolicy for a queue's declared fair share: the policy bears the queue's name."""
    return {
        "name": queue,
        "fairsharePolicy": fairshare_policy(fair_share),
        "tags": {**settings.tags, MANAGED_TAG: settings.scope},
    }


def queue_request(queue: JobQueue, settings: Settings, policies: Mapping[str, str] | None = None) -> dict[str, Any]:
    """CreateJobQueue for a declared queue. computeEnvironment holds names, and schedulingPolicyArn the name of a
    declared policy not yet created (`policies`: name -> ARN of those that exist); the applier puts ARNs."""
    stuck = queue.cancel_stuck_runnable_after
    request: dict[str, Any] = {
        "jobQueueName": queue.name,
        "state": queue.state,
        "priority": queue.priority,
        "computeEnvironmentOrder": [
            {"order": i + 1, "computeEnvironment": name} for i, name in enumerate(queue.compute)
        ],
        "jobStateTimeLimitActions": [
            {"reason": reason, "state": "RUNNABLE", "maxTimeSeconds": stuck, "action": "CANCEL"}
            for reason in (STUCK_REASONS if stuck is not None else ())
        ],
        "tags": {**settings.tags, MANAGED_TAG: settings.scope},
    }
    if queue.scheduling_policy is not None:
        request["schedulingPolicyArn"] = queue.scheduling_policy
    elif queue.fair_share is not None:
        request["schedulingPolicyArn"] = (policies or {}).get(queue.name, queue.name)
    return request


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return f"[{', '.join(map(str, value))}]"
    return "(none)" if value is None else str(value)


def _comparable(value: Any) -> Any:
    """Lists compared as sets (AWS may list subnets or instance types in another order)."""
    return sorted(value) if isinstance(value, list) else value


def _differences(fields: Sequence[tuple[str, Any, Any]]) -> list[str]:
    return [f"{label}: {_shown(old)} -> {_shown(new)}" for label, old, new in fields if old != new]


def _compute_change(ce: ComputeEnvironment, settings: Settings, current: Mapping[str, Any] | None) -> Change:
    request = compute_request(ce, settings)
    if current is None:
        shown = (
            f"{ce.type}, {ce.min_vcpus}-{ce.max_vcpus} vCPUs"
            if not ce.fargate
            else f"{ce.type}, up to {ce.max_vcpus} vCPUs"
        )
        if ce.container_insights is not None:
            shown += f", Container Insights {ce.container_insights}"
        return Change(action="create", kind="compute environment", name=ce.name, details=(shown,), request=request)
    have = current.get("computeResources", {})
    want = request["computeResources"]
    if have.get("type") != ce.type or current.get("type") != "MANAGED":
        why = f"type {have.get('type') or current.get('type')} -> {ce.type}: Batch cannot change it in place"
        return Change(action="replace", kind="compute environment", name=ce.name, details=(why,))
    fields = [
        ("state", current.get("state"), ce.state),
        ("max_vcpus", have.get("maxvCpus"), ce.max_vcpus),
        ("subnets", sorted(have.get("subnets", [])), sorted(ce.subnets)),
        ("security_groups", sorted(have.get("securityGroupIds", [])), sorted(ce.security_groups)),
    ]
    if not ce.fargate:
        fields += [
            ("min_vcpus", have.get("minvCpus"), ce.min_vcpus),
            ("instance_types", sorted(have.get("instanceTypes", [])), sorted(ce.instance_types)),
            ("allocation_strategy", have.get("allocationStrategy"), ce.allocation_strategy),
            ("launch_template", have.get("launchTemplate"), want.get("launchTemplate")),
            ("instance_tags", have.get("tags") or {}, want.get("tags") or {}),
        ]
    if ce.container_insights is not None:
        # Unset, AWS describes none: Container Insights is off.
        have_insights = (current.get("ecsSettings") or {}).get("containerInsights", "DISABLED")
        fields.append(("container_insights", have_insights, ce.container_insights))
    details = _differences(fields)
    if not details:
        return Change(action="keep", kind="compute environment", name=ce.name)
    update: dict[str, Any] = {"computeEnvironment": ce.name, "state": ce.state}
    if "ecsSettings" in request:
        update["ecsSettings"] = request["ecsSettings"]
    # Only what changed: Batch refuses some unchanged values in an update (a BEST_FIT allocation strategy).
    resources = {
        k: v
        for k, v in want.items()
        if k not in ("type", "instanceRole") and _comparable(v) != _comparable(have.get(k))
    }
    if resources:
        update["computeResources"] = resources
    return Change(action="update", kind="compute environment", name=ce.name, details=tuple(details), request=update)


def _policy_change(queue: str, fair_share: FairShare, settings: Settings, current: Mapping[str, Any] | None) -> Change:
    request = policy_request(queue, fair_share, settings)
    if current is None:
        shown = (
            f"share decay {fair_share.share_decay_seconds} s, compute reservation {fair_share.compute_reservation}%, "
            f"{len(fair_share.shares)} share(s)"
        )
        return Change(action="create", kind="scheduling policy", name=queue, details=(shown,), request=request)
    have = current.get("fairsharePolicy", {})
    want = request["fairsharePolicy"]

    def weights(policy: Mapping[str, Any]) -> list[str]:
        return sorted(
            f"{s['shareIdentifier']}={s.get('weightFactor', 1.0):g}" for s in policy.get("shareDistribution", [])
        )

    details = _differences(
        [
            ("share_decay", have.get("shareDecaySeconds", 0), want["shareDecaySeconds"]),
            ("compute_reservation", have.get("computeReservation", 0), want["computeReservation"]),
            ("shares", weights(have), weights(want)),
        ]
    )
    if not details:
        return Change(action="keep", kind="scheduling policy", name=queue)
    update = {"arn": current["arn"], "fairsharePolicy": want}
    return Change(action="update", kind="scheduling policy", name=queue, details=tuple(details), request=update)


def _queue_change(
    queue: JobQueue,
    settings: Settings,
    current: Mapping[str, Any] | None,
    names: Mapping[str, str],
    policies: Mapping[str, str],
) -> Change:
    """`names`: compute environment ARN -> name, for what AWS describes; `policies`: scheduling policy name -> ARN."""
    request = queue_request(queue, settings, policies)
    if current is None:
        shown = f"priority {queue.priority}, compute {_shown(queue.compute)}"
        if queue.shares_fairly:
            shown += ", fair share"
        return Change(action="create", kind="job queue", name=queue.name, details=(shown,), request=request)
    order = sorted(current.get("computeEnvironmentOrder", []), key=lambda o: o["order"])
    have_compute = [names.get(o["computeEnvironment"], o["computeEnvironment"]) for o in order]
    have_policy = current.get("schedulingPolicyArn")
    # A declared policy that exists stands by its ARN, one to be created by its name (see queue_request).
    want_policy = request.get("schedulingPolicyArn")
    if (have_policy is None) != (want_policy is None):
        why = f"scheduling_policy {_shown(have_policy)} -> {_shown(want_policy)}: a queue's fair-share "
        why += "policy can be replaced, not added or removed"
        return Change(action="replace", kind="job queue", name=queue.name, details=(why,), request=request)
    have_stuck = {a.get("maxTimeSeconds") for a in current.get("jobStateTimeLimitActions", [])}
    fields = [
        ("state", current.get("state"), queue.state),
        ("priority", current.get("priority"), queue.priority),
        ("compute", have_compute, list(queue.compute)),
        ("scheduling_policy", have_policy, want_policy),
        (
            "cancel_stuck_runnable_after",
            next(iter(have_stuck)) if len(have_stuck) == 1 else None,
            queue.cancel_stuck_runnable_after,
        ),
    ]
    details = _differences(fields)
    if not details:
        return Change(action="keep", kind="job queue", name=queue.name)
    update = {k: v for k, v in request.items() if k not in ("jobQueueName", "tags")} | {"jobQueue": queue.name}
    return Change(action="update", kind="job queue", name=queue.name, details=tuple(details), request=update)


def plan(
    infra: Infrastructure,
    settings: Settings,
    compute: Mapping[str, Mapping[str, Any]],
    queues: Mapping[str, Mapping[str, Any]],
    policies: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    prune: bool = False,
) -> list[Change]:
    """The changes that make AWS match the declarations, in the order `apply` makes them: compute environments and
    scheduling policies before the queues that use them; deletions of queues before what they used. `compute`,
    `queues` and `policies`: what AWS describes, by name. Only resources tagged MANAGED_TAG = settings.scope are
    deleted, and only with prune."""
    policies = policies or {}
    names = {c["computeEnvironmentArn"]: name for name, c in compute.items() if "computeEnvironmentArn" in c}
    arns = {name: p["arn"] for name, p in policies.items() if "arn" in p}
    fair = {q.name: q.fair_share for q in infra.queues.values() if q.fair_share is not None}
    changes = [_compute_change(ce, settings, compute.get(ce.name)) for ce in infra.compute.values()]
    changes += [_policy_change(name, f, settings, policies.get(name)) for name, f in fair.items()]
    changes += [_queue_change(q, settings, queues.get(q.name), names, arns) for q in infra.queues.values()]
    if prune:
        kinds: list[tuple[Kind, Mapping[str, Mapping[str, Any]], Mapping[str, Any]]] = [
            ("job queue", queues, infra.queues),
            ("scheduling policy", policies, fair),
            ("compute environment", compute, infra.compute),
        ]
        for kind, described, declared in kinds:
            for name, current in sorted(described.items()):
                if name not in declared and current.get("tags", {}).get(MANAGED_TAG) == settings.scope:
                    request = {"arn": current["arn"]} if kind == "scheduling policy" else {}
                    why = ("no longer declared",)
                    changes.append(Change(action="delete", kind=kind, name=name, details=why, request=request))
    return changes


def log_groups(retention_days: int | None, named: Iterable[str]) -> list[str]:
    """The log groups apply keeps: those the config and the jobs name (Batch's awslogs driver does not create them),
    and Batch's default group when a retention is declared (Batch creates that one with its first job)."""
    groups = set(named)
    if retention_days is not None:
        groups.add(DEFAULT_LOG_GROUP)
    return sorted(groups)


def log_group_change(name: str, retention_days: int | None, current: Mapping[str, Any] | None) -> Change | None:
    """A jobs' log group kept for `retention_days` (None: as it is). Batch's default group is managed only for its
    retention; a group a definition names is created when missing, or its jobs could not start."""
    if retention_days is None and name == DEFAULT_LOG_GROUP:
        return None
    request: dict[str, Any] = {"logGroupName": name}
    if retention_days is not None:
        request["retentionInDays"] = retention_days
    if current is None:
        shown = (f"retention {retention_days} days" if retention_days is not None else "retention: for ever",)
        return Change(action="create", kind="log group", name=name, details=shown, request=request)
    details = (
        _differences([("retention_days", current.get("retentionInDays"), retention_days)])
        if retention_days is not None
        else []
    )
    action: Action = "update" if details else "keep"
    return Change(action=action, kind="log group", name=name, details=tuple(details), request=request)


def consumable_change(resource: ConsumableResource, settings: Settings, current: Mapping[str, Any] | None) -> Change:
    """A declared consumable resource: created, its total set (Batch keeps what is in use), or replaced when its
    kind changed (Batch cannot change that in place)."""
    request: dict[str, Any] = {
        "consumableResourceName": resource.name,
        "totalQuantity": resource.total,
        "resourceType": resource.resource_type,
        "tags": {**settings.tags, MANAGED_TAG: settings.scope},
    }
    if current is None:
        details = (f"total {resource.total}", resource.resource_type)
        return Change(action="create", kind="consumable resource", name=resource.name, details=details, request=request)
    if current.get("resourceType", "REPLENISHABLE") != resource.resource_type:
        why = (f"resource_type: {current.get('resourceType')} -> {resource.resource_type} (Batch cannot change it)",)
        return Change(action="replace", kind="consumable resource", name=resource.name, details=why, request=request)
    differences = _differences([("total", current.get("totalQuantity"), resource.total)])
    update = {"consumableResource": resource.name, "operation": "SET", "quantity": resource.total}
    action: Action = "update" if differences else "keep"
    return Change(
        action=action, kind="consumable resource", name=resource.name, details=tuple(differences), request=update
    )


def consumable_changes(
    infra: Infrastructure, settings: Settings, current: Mapping[str, Mapping[str, Any]], *, prune: bool = False
) -> list[Change]:
    """The declared consumable resources against what Batch lists (by name); with prune, deleting this
    environment's no longer declared."""
    changes = [consumable_change(r, settings, current.get(r.name)) for r in infra.consumables.values()]
    if prune:
        for name, described in sorted(current.items()):
            if name not in infra.consumables and described.get("tags", {}).get(MANAGED_TAG) == settings.scope:
                why = ("no longer declared",)
                changes.append(Change(action="delete", kind="consumable resource", name=name, details=why))
    return changes
