"""The notifications and alarms of an account, read and changed (the I/O beside infra/monitoring.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compute_on_aws.aws.session import calling
from compute_on_aws.infra.monitoring import TARGET_ID, Current, Wanted, prefix
from compute_on_aws.infra.plan import Change


def account(sts: Any) -> str:
    """The account the credentials act in: the topic's and the rules' ARNs name it."""
    with calling("reading the account (sts:GetCallerIdentity)"):
        return str(sts.get_caller_identity()["Account"])


def _tags(listing: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in listing.get("Tags", [])}


def read(sns: Any, events: Any, cloudwatch: Any, w: Wanted, scope: str, topic: str | None) -> Current:
    """The topic this project makes (None when missing), and this scope's rules and alarms (the names starting with
    prefix(scope)), with their targets and tags."""
    described_topic = None
    if w.topic_name is not None and topic is not None:
        with calling(f"reading SNS topic {w.topic_name}"):
            try:
                described_topic = dict(sns.get_topic_attributes(TopicArn=topic)["Attributes"])
            except sns.exceptions.NotFoundException:
                described_topic = None
    start = prefix(scope)
    with calling("reading the EventBridge rules"):
        rules = {}
        for page in events.get_paginator("list_rules").paginate(NamePrefix=start):
            for rule in page["Rules"]:
                rules[rule["Name"]] = {
                    "rule": rule,
                    "targets": events.list_targets_by_rule(Rule=rule["Name"])["Targets"],
                    "tags": _tags(events.list_tags_for_resource(ResourceARN=rule["Arn"])),
                }
    with calling("reading the CloudWatch alarms"):
        alarms = {}
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=start):
            for alarm in page["MetricAlarms"]:
                tags = _tags(cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]))
                alarms[alarm["AlarmName"]] = {**alarm, "tags": tags}
    return Current(topic=described_topic, rules=rules, alarms=alarms)


def apply(change: Change, sns: Any, events: Any, cloudwatch: Any) -> None:
    """One change of kind sns topic, event rule or alarm. Each call is idempotent (a retried one meets its own work)."""
    request = change.request
    if change.kind == "sns topic":
        arn = request["TopicArn"]
        if change.action == "create":
            arn = sns.create_topic(Name=request["Name"], Tags=request["Tags"])["TopicArn"]
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=request["Policy"])
    elif change.kind == "event rule":
        if change.action == "delete":
            targets = events.list_targets_by_rule(Rule=change.name)["Targets"]
            if targets:
                events.remove_targets(Rule=change.name, Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=change.name)
            return
        rule = dict(request["rule"])
        if change.action == "update":
            rule.pop("Tags", None)  # PutRule tags only a rule it creates
        events.put_rule(**rule)
        if request["targets"]:
            events.put_targets(Rule=change.name, Targets=request["targets"])
        elif change.action == "update":
            ours = [t["Id"] for t in events.list_targets_by_rule(Rule=change.name)["Targets"] if t["Id"] == TARGET_ID]
            if ours:
                events.remove_targets(Rule=change.name, Ids=ours)
    elif change.action == "delete":
        cloudwatch.delete_alarms(AlarmNames=[change.name])
    else:
        alarm = dict(request)
        if change.action == "update":
            alarm.pop("Tags", None)
        cloudwatch.put_metric_alarm(**alarm)
