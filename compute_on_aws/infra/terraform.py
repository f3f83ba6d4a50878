"""The declared infrastructure and the jobs' definitions as Terraform JSON (`*.tf.json`), for teams whose account is
managed with Terraform. Attribute names follow the hashicorp/aws provider, version 6 (its `name` of a compute
environment was `compute_environment_name` before). Pure: the same input gives the same text."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from compute_on_aws.declared import infrastructure as model
from compute_on_aws.declared.container import DEFAULT_LOG_GROUP
from compute_on_aws.declared.infrastructure import MANAGED_TAG, STUCK_REASONS
from compute_on_aws.infra import monitoring
from compute_on_aws.infra.monitoring import Wanted
from compute_on_aws.infra.plan import Settings, compute_request, policy_request
from compute_on_aws.infra.roles import EC2_TRUST, INSTANCE_POLICY

PROVIDER = {"aws": {"source": "hashicorp/aws", "version": ">= 6.0"}}
# Consumable resources are in hashicorp/aws's issue 41881, not in a release known here: the Cloud Control provider has
# them, generated from CloudFormation's AWS::Batch::ConsumableResource.
AWSCC = {"awscc": {"source": "hashicorp/awscc", "version": ">= 1.0"}}


def identifier(name: str) -> str:
    """A Terraform resource name for a Batch name: letters, digits, _ and -, not starting with a digit."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"_{cleaned}"


# CreateComputeEnvironment's computeResources -> the provider's compute_resources block.
_RESOURCE_KEYS = {
    "type": "type",
    "maxvCpus": "max_vcpus",
    "minvCpus": "min_vcpus",
    "subnets": "subnets",
    "securityGroupIds": "security_group_ids",
    "instanceTypes": "instance_type",
    "allocationStrategy": "allocation_strategy",
    "instanceRole": "instance_role",
    "launchTemplate": "launch_template",
    "tags": "tags",
}
_TEMPLATE_KEYS = {"launchTemplateId": "launch_template_id", "launchTemplateName": "launch_template_name"}


def _compute(ce: model.ComputeEnvironment, settings: Settings) -> dict[str, Any]:
    """The CreateComputeEnvironment request apply sends, in the provider's names."""
    request = compute_request(ce, settings)
    resources = {_RESOURCE_KEYS[k]: v for k, v in request["computeResources"].items()}
    if "launch_template" in resources:
        resources["launch_template"] = [{_TEMPLATE_KEYS.get(k, k): v for k, v in resources["launch_template"].items()}]
    resource: dict[str, Any] = {
        "name": ce.name,
        "type": request["type"],
        "state": ce.state,
        "compute_resources": [resources],
        "tags": request["tags"],
    }
    if "serviceRole" in request:
        resource["service_role"] = request["serviceRole"]
    # ecsSettings (container_insights) is left out: see export_notes.
    return resource


def _queue(queue: model.JobQueue, settings: Settings) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": queue.name,
        "state": queue.state,
        "priority": queue.priority,
        "compute_environment_order": [
            {"order": i + 1, "compute_environment": f"${{aws_batch_compute_environment.{identifier(name)}.arn}}"}
            for i, name in enumerate(queue.compute)
        ],
        "tags": {**settings.tags, MANAGED_TAG: settings.scope},
    }
    if queue.scheduling_policy is not None:
        resource["scheduling_policy_arn"] = queue.scheduling_policy
    elif queue.fair_share is not None:
        resource["scheduling_policy_arn"] = f"${{aws_batch_scheduling_policy.{identifier(queue.name)}.arn}}"
    if queue.cancel_stuck_runnable_after is not None:
        resource["job_state_time_limit_action"] = [
            {
                "action": "CANCEL",
                "max_time_seconds": queue.cancel_stuck_runnable_after,
                "reason": r,
                "state": "RUNNABLE",
            }
            for r in STUCK_REASONS
        ]
    return resource


def _policy(name: str, fair_share: model.FairShare, settings: Settings) -> dict[str, Any]:
    """A queue's declared fair share as the scheduling policy apply creates under the queue's name."""
    request = policy_request(name, fair_share, settings)
    policy = request["fairsharePolicy"]
    return {
        "name": name,
        "fair_share_policy": [
            {
                "compute_reservation": policy["computeReservation"],
                "share_decay_seconds": policy["shareDecaySeconds"],
                "share_distribution": [
                    {"share_identifier": s["shareIdentifier"], "weight_factor": s["weightFactor"]}
                    for s in policy["shareDistribution"]
                ],
            }
        ],
        "tags": request["tags"],
    }


_RULE_KEYS = {
    "action": "action",
    "onExitCode": "on_exit_code",
    "onReason": "on_reason",
    "onStatusReason": "on_status_reason",
}


def _definition(request: Mapping[str, Any]) -> dict[str, Any]:
    """A RegisterJobDefinition request as an aws_batch_job_definition (container properties stay Batch's JSON)."""
    resource: dict[str, Any] = {
        "name": request["jobDefinitionName"],
        "type": request["type"],
        "container_properties": json.dumps(request["containerProperties"], sort_keys=True),
        "parameters": dict(request.get("parameters", {})),
        "propagate_tags": bool(request.get("propagateTags", False)),
        "tags": dict(request.get("tags", {})),
    }
    if "platformCapabilities" in request:
        resource["platform_capabilities"] = list(request["platformCapabilities"])
    retry = request.get("retryStrategy")
    if retry is not None:
        rules = [{_RULE_KEYS[k]: v for k, v in rule.items()} for rule in retry.get("evaluateOnExit", [])]
        resource["retry_strategy"] = [{"attempts": retry["attempts"], "evaluate_on_exit": rules}]
    if "timeout" in request:
        resource["timeout"] = [{"attempt_duration_seconds": request["timeout"]["attemptDurationSeconds"]}]
    if "schedulingPriority" in request:
        resource["scheduling_priority"] = request["schedulingPriority"]
    return resource


def _roles(settings: Settings, *, linked: bool, partition: str) -> dict[str, Any]:
    """What roles.create makes: Batch's service-linked role, and the instances' role with its instance profile."""
    resources: dict[str, Any] = {}
    if linked:
        resources["aws_iam_service_linked_role"] = {"batch": {"aws_service_name": "batch.amazonaws.com"}}
    if settings.instance_profile is not None:
        # The role bears the profile's name, as roles.create makes them.
        profile = settings.instance_profile.rsplit("/", 1)[-1]
        name = identifier(profile)
        tags = {**settings.tags, MANAGED_TAG: settings.scope}
        resources["aws_iam_role"] = {name: {"name": profile, "assume_role_policy": json.dumps(EC2_TRUST), "tags": tags}}
        resources["aws_iam_role_policy_attachment"] = {
            name: {"role": f"${{aws_iam_role.{name}.name}}", "policy_arn": f"arn:{partition}:{INSTANCE_POLICY}"}
        }
        resources["aws_iam_instance_profile"] = {
            name: {"name": profile, "role": f"${{aws_iam_role.{name}.name}}", "tags": tags}
        }
    return resources


# The account and region of the apply, as Terraform reads them (the ARNs of the topic's policy name them).
_ACCOUNT = "${data.aws_caller_identity.current.account_id}"
_REGION = "${data.aws_region.current.region}"


def _monitoring(w: Wanted, settings: Settings, partition: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The topic and its policy, the rules with their targets, and the alarms, as apply makes them; and the data
    sources they read."""
    tags = {**settings.tags, MANAGED_TAG: settings.scope}
    resources: dict[str, Any] = {}
    if w.topic_name is not None:
        name = identifier(w.topic_name)
        topic = f"${{aws_sns_topic.{name}.arn}}"
        resources["aws_sns_topic"] = {name: {"name": w.topic_name, "tags": tags}}
        policy = monitoring.topic_policy(
            topic, partition=partition, region=_REGION, account=_ACCOUNT, scope=settings.scope
        )
        resources["aws_sns_topic_policy"] = {name: {"arn": topic, "policy": json.dumps(policy, sort_keys=True)}}
    else:
        topic = str(w.topic_arn)
    rules = monitoring.rules(w, settings.scope, topic, tags)
    resources["aws_cloudwatch_event_rule"] = {
        identifier(n): {
            "name": n,
            "description": r["rule"]["Description"],
            "event_pattern": r["rule"]["EventPattern"],
            "state": r["rule"]["State"],
            "tags": tags,
        }
        for n, r in rules.items()
    }
    resources["aws_cloudwatch_event_target"] = {
        identifier(n): {
            "rule": f"${{aws_cloudwatch_event_rule.{identifier(n)}.name}}",
            "target_id": t["Id"],
            "arn": t["Arn"],
            "input_transformer": [
                {
                    "input_paths": t["InputTransformer"]["InputPathsMap"],
                    "input_template": t["InputTransformer"]["InputTemplate"],
                }
            ],
        }
        for n, r in rules.items()
        for t in r["targets"]
    }
    resources["aws_cloudwatch_metric_alarm"] = {
        identifier(n): {
            "alarm_name": n,
            "alarm_description": a["AlarmDescription"],
            "namespace": a["Namespace"],
            "metric_name": a["MetricName"],
            "dimensions": {
                d["Name"]: f"${{aws_cloudwatch_event_rule.{identifier(d['Value'])}.name}}" for d in a["Dimensions"]
            },
            "statistic": a["Statistic"],
            "period": a["Period"],
            "evaluation_periods": a["EvaluationPeriods"],
            "threshold": a["Threshold"],
            "comparison_operator": a["ComparisonOperator"],
            "treat_missing_data": a["TreatMissingData"],
            "alarm_actions": a["AlarmActions"],
            "tags": tags,
        }
        for n, a in monitoring.alarms(w, settings.scope, topic, tags).items()
    }
    data: dict[str, Any] = (
        {"aws_caller_identity": {"current": {}}, "aws_region": {"current": {}}} if w.topic_name else {}
    )
    return resources, data


def _rule_reference(name: str) -> str:
    return f"${{aws_cloudwatch_event_rule.{identifier(name)}.name}}"


def _log_groups(named: Sequence[str], settings: Settings, retention_days: int | None) -> dict[str, Any]:
    """Batch's default group and those the jobs name (apply creates them: the awslogs driver does not)."""
    groups: dict[str, Any] = {}
    for name in [DEFAULT_LOG_GROUP, *(g for g in named if g != DEFAULT_LOG_GROUP)]:
        group: dict[str, Any] = {"name": name, "tags": dict(settings.tags)}
        if retention_days is not None:
            group["retention_in_days"] = retention_days
        groups["batch_jobs" if name == DEFAULT_LOG_GROUP else identifier(name.strip("/"))] = group
    return groups


def _consumables(infra: model.Infrastructure, settings: Settings) -> dict[str, Any]:
    return {
        identifier(r.name): {
            "consumable_resource_name": r.name,
            "total_quantity": r.total,
            "resource_type": r.resource_type,
            "tags": {**settings.tags, MANAGED_TAG: settings.scope},
        }
        for r in infra.consumables.values()
    }


def export(
    infra: model.Infrastructure,
    settings: Settings,
    definitions: Sequence[Mapping[str, Any]],
    *,
    create_roles: bool = False,
    partition: str = "aws",
    log_retention_days: int | None = None,
    notifications: Wanted | None = None,
    log_groups: Sequence[str] = (),
) -> dict[str, Any]:
    """Terraform JSON: the compute environments and fair-share policies, the queues (which name them by reference:
    Terraform creates them first), a definition per job, the log group Batch writes to, with create_roles the roles
    apply would create, and the notifications' topic, rules and alarms."""
    made = _roles(settings, linked=settings.service_role is None, partition=partition) if create_roles else {}
    compute = {identifier(ce.name): _compute(ce, settings) for ce in infra.compute.values()}
    if "aws_iam_instance_profile" in made:
        reference = f"${{aws_iam_instance_profile.{next(iter(made['aws_iam_instance_profile']))}.arn}}"
        for resource in compute.values():
            for block in resource["compute_resources"]:
                if "instance_role" in block:
                    block["instance_role"] = reference
    groups = _log_groups(log_groups, settings, log_retention_days)
    consumables = _consumables(infra, settings)
    resources: dict[str, Any] = {
        **made,
        "aws_batch_compute_environment": compute,
        "aws_batch_scheduling_policy": {
            identifier(q.name): _policy(q.name, q.fair_share, settings)
            for q in infra.queues.values()
            if q.fair_share is not None
        },
        "aws_batch_job_queue": {identifier(q.name): _queue(q, settings) for q in infra.queues.values()},
        "aws_batch_job_definition": {identifier(d["jobDefinitionName"]): _definition(d) for d in definitions},
        "aws_cloudwatch_log_group": groups,
        "awscc_batch_consumable_resource": consumables,
    }
    data: dict[str, Any] = {}
    if notifications is not None and notifications.any:
        watched, data = _monitoring(notifications, settings, partition)
        resources |= watched
    providers = {**PROVIDER, **(AWSCC if consumables else {})}
    document: dict[str, Any] = {"terraform": {"required_providers": providers}}
    if data:
        document["data"] = data
    document["resource"] = {k: v for k, v in resources.items() if v}
    return document


def text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def export_notes(infra: model.Infrastructure, definitions: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """What the export cannot say, one line each."""
    consuming = [d["jobDefinitionName"] for d in definitions if "consumableResourceProperties" in d]
    held = (
        [
            f"note: the consumableResourceProperties of {', '.join(consuming)} are not in the export (no argument of "
            "hashicorp/aws's aws_batch_job_definition known here sets it): queue registers them, or set them beside "
            "Terraform"
        ]
        if consuming
        else []
    )
    return held + [
        f"note: compute.{ce.name}.container_insights is not in the export (no argument of hashicorp/aws's "
        "aws_batch_compute_environment known here sets it): infra apply sets it, or set it beside Terraform"
        for ce in infra.compute.values()
        if ce.container_insights is not None
    ]
