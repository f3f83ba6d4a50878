"""Told when it matters: the EventBridge rules that send this project's job events to an SNS topic (with a message
that says what to do), the topic and its policy, and the CloudWatch alarms of the queues. Pure: what the declarations
ask for, as requests, and the changes that make what AWS describes match them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compute_on_aws.declared.config import Config
from compute_on_aws.declared.container import DEFAULT_LOG_GROUP
from compute_on_aws.declared.infrastructure import MANAGED_TAG, Alarm
from compute_on_aws.declared.manifest import Manifest
from compute_on_aws.declared.notifications import EVENTS
from compute_on_aws.errors import UserError
from compute_on_aws.infra.plan import Change

# What Batch sends to EventBridge, per event a notification can be about.
DETAIL_TYPES = {
    "FAILED": "Batch Job State Change",
    "SUCCEEDED": "Batch Job State Change",
    "BLOCKED": "Batch Job Queue Blocked",
}
# EventBridge takes patterns of up to 4096 characters: rules are split well below that.
PATTERN_BUDGET = 2048
# EventBridge rule and CloudWatch alarm names: at most 64 (rules) and 255 (alarms) characters.
RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")
TARGET_ID = "compute-on-aws"
# The message every notification carries: which job, why, its command (arguments included), its log stream, and the
# command that shows its logs. EventBridge fills the <placeholders> from the event (an input transformer).
INPUT_PATHS = {
    "event": "$.detail-type",
    "job": "$.detail.jobName",
    "id": "$.detail.jobId",
    "status": "$.detail.status",
    "reason": "$.detail.statusReason",
    "queue": "$.detail.jobQueue",
    "definition": "$.detail.jobDefinition",
    "command": "$.detail.container.command",
    "stream": "$.detail.container.logStreamName",
    "region": "$.region",
    "time": "$.time",
}
# The log group is no path of the event when the definition names none (Batch's default): each rule's message names
# the group of the definitions it matches, as a literal (rules are split by group).
INPUT_TEMPLATE = (
    '{"event": "<event>", "job": "<job>", "jobId": "<id>", "status": "<status>", "reason": "<reason>", '
    '"queue": "<queue>", "definition": "<definition>", "command": <command>, "logGroup": %s, "logStream": "<stream>", '
    '"logs": "compute-on-aws logs <id> --backend aws", "time": "<time>", '
    '"console": "https://<region>.console.aws.amazon.com/batch/home?region=<region>#jobs/detail/<id>"}'
)


def input_template(log_group: str) -> str:
    return INPUT_TEMPLATE % json.dumps(log_group)


@dataclass(frozen=True)
class Wanted:
    """What the config and the jobs ask for. Topic: its name to create, or the ARN of one managed elsewhere."""

    topic_name: str | None
    topic_arn: str | None
    # event -> the definition names of the jobs that send it
    senders: Mapping[str, tuple[str, ...]]
    # The queues the project's jobs run on: a notification is of this project's queues and definitions only.
    queues: tuple[str, ...]
    alarms: Mapping[str, tuple[Alarm, ...]] = field(default_factory=dict)
    # definition name -> the log group its jobs write to (Batch's default group when absent)
    log_groups: Mapping[str, str] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return self.topic_name is not None or self.topic_arn is not None


def wanted(config: Config, manifest: Manifest | None) -> Wanted:
    """From the config's notifications and queue alarms, and the declared jobs (their `notify`, definitions and
    queues). Alarms need the topic."""
    alarms = {q.name: q.alarms for q in config.infrastructure.queues.values() if q.alarms}
    notifications = config.notifications
    where = config.source or "compute-on-aws.yaml"
    if notifications is None:
        if alarms:
            queue = next(iter(alarms))
            raise UserError(f"{where}: queues.{queue}.alarms: an alarm sends to notifications.topic, which is not set")
        return Wanted(None, None, {}, ())
    jobs = list(manifest.jobs.values()) if manifest is not None else []
    senders = {
        event: tuple(sorted({j.definition_name for j in jobs if event in _events(j.notify, notifications.on)}))
        for event in EVENTS
    }
    queues = {q for q in config.infrastructure.queues} | {q for j in jobs if (q := j.queue or config.queue)}
    return Wanted(
        notifications.topic_name,
        notifications.topic_arn,
        {event: names for event, names in senders.items() if names},
        tuple(sorted(queues)),
        alarms,
        {j.definition_name: j.container.log_group or config.log_group or DEFAULT_LOG_GROUP for j in jobs},
    )


def _events(own: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return default if own is None else own


def prefix(scope: str) -> str:
    """Every rule and alarm of a config environment's apply starts so: --prune deletes only those."""
    return f"compute-on-aws-{scope}-"


def _name(scope: str, *parts: str) -> str:
    """A rule or alarm name within EventBridge's 64 characters: a long one ends in a hash of the whole."""
    name = prefix(scope) + "-".join(parts)
    if len(name) > 64:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[:53].rstrip('-')}-{digest}"
    if not RULE_NAME.fullmatch(name):
        raise UserError(f"--env {scope!r}: rule names take letters, digits, . - and _ only")
    return name


def topic_arn(w: Wanted, *, partition: str, region: str, account: str) -> str:
    if w.topic_arn is not None:
        return w.topic_arn
    return f"arn:{partition}:sns:{region}:{account}:{w.topic_name}"


def _queue_filter(queues: Sequence[str]) -> list[dict[str, str]]:
    return [{"suffix": f":job-queue/{q}"} for q in queues]


def _pattern(event: str, queues: Sequence[str], definitions: Sequence[str]) -> dict[str, Any]:
    detail: dict[str, Any] = {"jobQueue": _queue_filter(queues)} if queues else {}
    if definitions:
        # Any revision of the project's definitions: a job of another team on the same queue pages nobody here.
        detail["jobDefinition"] = [{"wildcard": f"*:job-definition/{d}:*"} for d in definitions]
    if event != "BLOCKED":
        detail["status"] = [event]
    return {"source": ["aws.batch"], "detail-type": [DETAIL_TYPES[event]], "detail": detail}


def _chunks(event: str, queues: Sequence[str], definitions: Sequence[str]) -> list[list[str]]:
    """The definitions in as few rules as keep each pattern within PATTERN_BUDGET."""
    chunks: list[list[str]] = [[]]
    for definition in definitions:
        trial = [*chunks[-1], definition]
        if chunks[-1] and len(json.dumps(_pattern(event, queues, trial))) > PATTERN_BUDGET:
            chunks.append([definition])
        else:
            chunks[-1] = trial
    if len(json.dumps(_pattern(event, queues, chunks[0][:1]))) > PATTERN_BUDGET:
        raise UserError(
            f"notifications: {len(queues)} queues make an EventBridge pattern over {PATTERN_BUDGET} characters"
        )
    return chunks


def rules(w: Wanted, scope: str, topic: str, tags: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Rule name -> {"rule": PutRule, "targets": PutTargets}: a rule per event (and per chunk of definitions) to the
    topic, and a rule per queue alarm that counts its events (no target: its alarm reads its MatchedEvents)."""
    found: dict[str, dict[str, Any]] = {}
    tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    for event, definitions in w.senders.items():
        by_group: dict[str, list[str]] = {}
        for definition in definitions:
            by_group.setdefault(w.log_groups.get(definition, DEFAULT_LOG_GROUP), []).append(definition)
        chunks = [(g, chunk) for g in sorted(by_group) for chunk in _chunks(event, w.queues, by_group[g])]
        for i, (group, chunk) in enumerate(chunks):
            name = _name(scope, event.lower(), *([str(i + 1)] if len(chunks) > 1 else []))
            found[name] = {
                "rule": {
                    "Name": name,
                    "EventPattern": json.dumps(_pattern(event, w.queues, chunk), sort_keys=True),
                    "State": "ENABLED",
                    "Description": f"compute-on-aws: {event} events of this project's jobs, to its topic",
                    "Tags": tag_list,
                },
                "targets": [
                    {
                        "Id": TARGET_ID,
                        "Arn": topic,
                        "InputTransformer": {
                            "InputPathsMap": dict(INPUT_PATHS),
                            "InputTemplate": input_template(group),
                        },
                    }
                ],
            }
    for queue, alarms in sorted(w.alarms.items()):
        for alarm in alarms:
            name = alarm_rule(scope, queue, alarm)
            event = "BLOCKED" if alarm.kind == "blocked" else "FAILED"
            found[name] = {
                "rule": {
                    "Name": name,
                    "EventPattern": json.dumps(_pattern(event, [queue], ()), sort_keys=True),
                    "State": "ENABLED",
                    "Description": f"compute-on-aws: counts {alarm.kind} events of queue {queue} for its alarm",
                    "Tags": tag_list,
                },
                "targets": [],
            }
    return found


def alarm_rule(scope: str, queue: str, alarm: Alarm) -> str:
    return _name(scope, "alarm", queue, alarm.kind)


def alarms(w: Wanted, scope: str, topic: str, tags: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Alarm name -> PutMetricAlarm: EventBridge's MatchedEvents of the queue's counting rule, summed over `within`."""
    found: dict[str, dict[str, Any]] = {}
    for queue, declared in sorted(w.alarms.items()):
        for alarm in declared:
            name = _name(scope, queue, alarm.kind)
            what = "jobs failed" if alarm.kind == "failed" else "blocked-queue events"
            found[name] = {
                "AlarmName": name,
                "AlarmDescription": (
                    f"compute-on-aws: {alarm.count} or more {what} in queue {queue} within "
                    f"{alarm.within_seconds // 60} min (compute-on-aws list --queue {queue} --status "
                    f"{'FAILED' if alarm.kind == 'failed' else 'RUNNABLE'})"
                ),
                "Namespace": "AWS/Events",
                "MetricName": "MatchedEvents",
                "Dimensions": [{"Name": "RuleName", "Value": alarm_rule(scope, queue, alarm)}],
                "Statistic": "Sum",
                "Period": alarm.within_seconds,
                "EvaluationPeriods": 1,
                "Threshold": float(alarm.count),
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [topic],
                "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            }
    return found


def topic_policy(topic: str, *, partition: str, region: str, account: str, scope: str) -> dict[str, Any]:
    """The topic's policy: its account keeps AWS's default rights; EventBridge may publish from this project's rules
    only, and CloudWatch from its alarms only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountOwnsTopic",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": [
                    "sns:GetTopicAttributes",
                    "sns:SetTopicAttributes",
                    "sns:AddPermission",
                    "sns:RemovePermission",
                    "sns:DeleteTopic",
                    "sns:Subscribe",
                    "sns:ListSubscriptionsByTopic",
                    "sns:Publish",
                ],
                "Resource": topic,
            },
            {
                "Sid": "ProjectRulesPublish",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:events:{region}:{account}:rule/{prefix(scope)}*"}
                },
            },
            {
                "Sid": "ProjectAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic,
                "Condition": {
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{prefix(scope)}*"
                    }
                },
            },
        ],
    }


@dataclass(frozen=True)
class Current:
    """What AWS describes: the topic (None: missing; its attributes), and this scope's rules and alarms by name."""

    topic: Mapping[str, Any] | None = None
    # name -> {"rule": DescribeRule, "targets": ListTargetsByRule, "tags": {...}}
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    alarms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# The fields of a rule, target and alarm compared: what PutRule, PutTargets and PutMetricAlarm set.
_ALARM_FIELDS = (
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "AlarmActions",
)


def _same_pattern(have: str | None, want: str) -> bool:
    try:
        return have is not None and json.loads(have) == json.loads(want)
    except ValueError:
        return False


def _rule_change(name: str, want: Mapping[str, Any], have: Mapping[str, Any] | None) -> Change:
    event = json.loads(want["rule"]["EventPattern"])["detail-type"][0]
    if have is None:
        shown = f"{event}, {len(want['targets'])} target(s)"
        return Change(action="create", kind="event rule", name=name, details=(shown,), request=want)
    details = []
    if not _same_pattern(have["rule"].get("EventPattern"), want["rule"]["EventPattern"]):
        details.append("pattern: the queues, definitions or events changed")
    if have["rule"].get("State") != want["rule"]["State"]:
        details.append(f"state: {have['rule'].get('State')} -> {want['rule']['State']}")
    # Only the target apply puts: one a team added beside it is theirs.
    ours = [
        {k: t[k] for k in ("Id", "Arn", "InputTransformer") if k in t}
        for t in have["targets"]
        if t.get("Id") == TARGET_ID
    ]
    if ours != list(want["targets"]):
        details.append("targets: the topic or the message changed")
    if not details:
        return Change(action="keep", kind="event rule", name=name)
    return Change(action="update", kind="event rule", name=name, details=tuple(details), request=want)


def _topic_change(
    name: str, policy: Mapping[str, Any], request: Mapping[str, Any], have: Mapping[str, Any] | None
) -> Change:
    if have is None:
        return Change(action="create", kind="sns topic", name=name, details=("with its policy",), request=request)
    try:
        current = json.loads(have.get("Policy") or "{}")
    except ValueError:
        current = {}
    if current == policy:
        return Change(action="keep", kind="sns topic", name=name, request=request)
    why = ("policy: lets this project's rules and alarms publish",)
    return Change(action="update", kind="sns topic", name=name, details=why, request=request)


def _alarm_change(name: str, want: Mapping[str, Any], have: Mapping[str, Any] | None) -> Change:
    if have is None:
        shown = f"{want['Threshold']:g} or more within {want['Period'] // 60} min"
        return Change(action="create", kind="alarm", name=name, details=(shown,), request=want)
    details = [f"{k}: {have.get(k)} -> {want[k]}" for k in _ALARM_FIELDS if have.get(k) != want[k]]
    if not details:
        return Change(action="keep", kind="alarm", name=name)
    return Change(action="update", kind="alarm", name=name, details=tuple(details), request=want)


def plan_monitoring(
    w: Wanted,
    current: Current,
    *,
    scope: str,
    tags: Mapping[str, str],
    partition: str,
    region: str,
    account: str,
    prune: bool = False,
) -> list[Change]:
    """The topic (when this project makes it), then the rules and alarms; with prune, this scope's rules and alarms
    no longer declared (tagged as this scope's). A topic of its own ARN is used as it is: its policy is its owner's."""
    if not w.any:
        changes: list[Change] = []
    else:
        topic = topic_arn(w, partition=partition, region=region, account=account)
        changes = []
        if w.topic_name is not None:
            policy = topic_policy(topic, partition=partition, region=region, account=account, scope=scope)
            request: dict[str, Any] = {
                "Name": w.topic_name,
                "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            }
            request |= {"Policy": json.dumps(policy, sort_keys=True), "TopicArn": topic}
            changes.append(_topic_change(w.topic_name, policy, request, current.topic))
        for name, want in rules(w, scope, topic, tags).items():
            changes.append(_rule_change(name, want, current.rules.get(name)))
        for name, want in alarms(w, scope, topic, tags).items():
            changes.append(_alarm_change(name, want, current.alarms.get(name)))
    if prune:
        declared = {c.name for c in changes}
        for kind, described in (("alarm", current.alarms), ("event rule", current.rules)):
            for name, have in sorted(described.items()):
                if name not in declared and have.get("tags", {}).get(MANAGED_TAG) == scope:
                    why = ("no longer declared",)
                    changes.append(Change(action="delete", kind=kind, name=name, details=why))  # type: ignore[arg-type]
    return changes
