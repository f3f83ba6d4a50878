"""Told when it matters, against moto over HTTP: `infra apply` makes the SNS topic, the EventBridge rules that send this
project's job events to it (with a message saying what to do), the queues' CloudWatch alarms and Container Insights;
a second apply changes nothing; a job that fails produces an event the rule matches, and the message it becomes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from batchshim import Script
from conftest import Moto, write_job

JOB = '{{ queue = "etl"; command = [ "etl" "--day" ]; image = "busybox:1.36"; memory = 512; {extra} }}'


def config(account: dict[str, str], **notifications: Any) -> dict[str, Any]:
    network = {"subnets": [account["subnet"]], "security_groups": [account["group"]]}
    return {
        "backend": "aws",
        "region": "us-east-1",
        "roles": {"service": account["service"], "instance": account["profile"]},
        "tags": {"team": "observes"},
        "compute": {"spot": {"type": "SPOT", "max_vcpus": 16, **network}},
        "queues": {
            "etl": {
                "compute": ["spot"],
                "alarms": {"failed": {"count": 3, "within": "1h"}, "blocked": {"within": "30m"}},
            }
        },
        "notifications": {"topic": "observes-alerts", **notifications},
    }


@pytest.fixture
def project(tmp_path: Path, account: dict[str, str]) -> Path:
    jobs = tmp_path / "jobs"
    write_job(jobs, "extract", JOB.format(extra=""))
    write_job(jobs, "report", JOB.format(extra='notify = [ "FAILED" "SUCCEEDED" ];'))
    write_job(jobs, "scratch", JOB.format(extra="notify = [ ];"))
    (tmp_path / "compute-on-aws.yaml").write_text(yaml.safe_dump(config(account)))
    return tmp_path


def infra(cli, project: Path, *args: str):
    return cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"), "infra", *args)


def rules(moto: Moto) -> dict[str, dict[str, Any]]:
    events = moto.client("events")
    found = {}
    for rule in events.list_rules(NamePrefix="compute-on-aws-")["Rules"]:
        found[rule["Name"]] = {**rule, "Targets": events.list_targets_by_rule(Rule=rule["Name"])["Targets"]}
    return found


def test_apply_makes_topic_rules_and_alarms_and_a_second_apply_changes_nothing(cli, moto: Moto, project: Path) -> None:
    planned = infra(cli, project, "plan")
    assert planned.code == 0, planned.err
    assert "+ sns topic observes-alerts: with its policy" in planned.out
    applied = infra(cli, project, "apply")
    assert applied.code == 0, applied.err
    assert "created sns topic observes-alerts" in applied.out

    sns = moto.client("sns")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert topic == "arn:aws:sns:us-east-1:123456789012:observes-alerts"
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    publish = {s["Sid"]: s for s in policy["Statement"]}["ProjectRulesPublish"]
    assert publish["Principal"] == {"Service": "events.amazonaws.com"}
    assert publish["Condition"] == {
        "ArnLike": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/compute-on-aws-default-*"}
    }

    found = rules(moto)
    assert sorted(found) == [
        "compute-on-aws-default-alarm-etl-blocked",
        "compute-on-aws-default-alarm-etl-failed",
        "compute-on-aws-default-failed",
        "compute-on-aws-default-succeeded",
    ]
    failed = json.loads(found["compute-on-aws-default-failed"]["EventPattern"])
    # Only this project's queue and definitions; `scratch` asked for no notification, `report` also for SUCCEEDED.
    assert failed["detail"] == {
        "jobQueue": [{"suffix": ":job-queue/etl"}],
        "jobDefinition": [{"wildcard": "*:job-definition/extract:*"}, {"wildcard": "*:job-definition/report:*"}],
        "status": ["FAILED"],
    }
    succeeded = json.loads(found["compute-on-aws-default-succeeded"]["EventPattern"])
    assert succeeded["detail"]["jobDefinition"] == [{"wildcard": "*:job-definition/report:*"}]
    (target,) = found["compute-on-aws-default-failed"]["Targets"]
    assert target["Arn"] == topic and "compute-on-aws logs <id>" in target["InputTransformer"]["InputTemplate"]
    assert found["compute-on-aws-default-alarm-etl-failed"]["Targets"] == []

    alarms = {a["AlarmName"]: a for a in moto.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    failing = alarms["compute-on-aws-default-etl-failed"]
    assert (failing["Namespace"], failing["MetricName"], failing["Statistic"]) == ("AWS/Events", "MatchedEvents", "Sum")
    assert failing["Dimensions"] == [{"Name": "RuleName", "Value": "compute-on-aws-default-alarm-etl-failed"}]
    assert (failing["Threshold"], failing["Period"], failing["AlarmActions"]) == (3.0, 3600, [topic])
    assert alarms["compute-on-aws-default-etl-blocked"]["Period"] == 1800

    again = infra(cli, project, "plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert again.out.splitlines()[-1] == "0 to create, 0 to update, 0 to replace, 0 to delete, 9 unchanged."
    assert infra(cli, project, "apply").code == 0
    assert len(moto.received["CreateTopic"]) == 1 and len(moto.received["PutMetricAlarm"]) == 2


def botocore_knows_ecs_settings() -> bool:
    import botocore.session

    shape = botocore.session.get_session().get_service_model("batch").operation_model("CreateComputeEnvironment")
    return shape.input_shape is not None and "ecsSettings" in shape.input_shape.members


def test_container_insights_is_applied_and_kept_or_refused_in_one_line_by_an_older_botocore(
    cli, moto: Moto, project: Path, account: dict[str, str]
) -> None:
    with_insights = config(account)
    with_insights["compute"]["spot"]["container_insights"] = "ENABLED"
    (project / "compute-on-aws.yaml").write_text(yaml.safe_dump(with_insights))
    result = infra(cli, project, "apply")
    if not botocore_knows_ecs_settings():  # the lowest versions the project supports
        assert result.code == 2 and result.err.startswith("error: compute.spot.container_insights: botocore ")
        assert moto.received["CreateComputeEnvironment"] == [] and moto.received["CreateTopic"] == []
        return
    assert result.code == 0, result.err
    assert "created compute environment spot" in result.out
    # moto keeps no ecsSettings (tests/batchshim.py keeps them): what the server received shows they were sent.
    (created,) = moto.received["CreateComputeEnvironment"]
    assert created["ecsSettings"] == {"containerInsights": "ENABLED"}
    assert infra(cli, project, "plan", "--detailed-exitcode").code == 0
    with_insights["compute"]["spot"]["container_insights"] = "ENHANCED"
    (project / "compute-on-aws.yaml").write_text(yaml.safe_dump(with_insights))
    changed = infra(cli, project, "apply")
    assert changed.code == 0 and "~ compute environment spot: container_insights: ENABLED -> ENHANCED" in changed.out
    (updated,) = moto.received["UpdateComputeEnvironment"]
    assert updated["ecsSettings"] == {"containerInsights": "ENHANCED"}


def failed_job(cli, moto: Moto, project: Path) -> dict[str, Any]:
    """A job of `extract` that fails on moto (the shim runs it: exit 1), as DescribeJobs gives it."""
    moto.shim.scripts["extract_2026-12-01"] = Script(path=[("RUNNING", 0.1)], exit_codes=[1], lines=["boom"])
    batch = moto.client("batch")
    queued = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"),
                 "queue", "extract", "2026-12-01", "--json")  # fmt: skip
    assert queued.code == 0, queued.err
    job_id = queued.json()["jobs"][0]["jobId"]
    for _ in range(100):
        (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
        if job["status"] == "FAILED":
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not fail")


def through(moto: Moto, rule: dict[str, Any]) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    """moto has no TestEventPattern: the rule's own pattern and input transformer are put on a bus of the test's own
    with an SQS queue as target; the function sends an event (Batch's event detail is its DescribeJobs entry) there
    and gives the messages it became."""
    events, sqs = moto.client("events"), moto.client("sqs")
    bus = f"test-bus-{len(events.list_event_buses()['EventBuses'])}"
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName=f"inbox-{bus}")["QueueUrl"]
    inbox = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="copy", EventBusName=bus, EventPattern=rule["EventPattern"])
    (target,) = rule["Targets"]
    events.put_targets(
        Rule="copy",
        EventBusName=bus,
        Targets=[{"Id": "inbox", "Arn": inbox, "InputTransformer": target["InputTransformer"]}],
    )

    def send(detail: dict[str, Any]) -> list[dict[str, Any]]:
        entry = {"Source": "aws.batch", "DetailType": "Batch Job State Change", "Detail": json.dumps(detail)}
        assert events.put_events(Entries=[{**entry, "EventBusName": bus}])["FailedEntryCount"] == 0
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    return send


def test_a_failed_job_s_event_matches_the_rule_and_becomes_the_message(cli, moto: Moto, project: Path) -> None:
    assert infra(cli, project, "apply").code == 0
    job = failed_job(cli, moto, project)
    send = through(moto, rules(moto)["compute-on-aws-default-failed"])

    assert job["jobQueue"].endswith(":job-queue/etl") and ":job-definition/extract:" in job["jobDefinition"]
    (message,) = send(job)
    assert message["job"] == "extract_2026-12-01" and message["jobId"] == job["jobId"]
    assert message["status"] == "FAILED" and message["reason"] == job["statusReason"]
    assert message["command"] == ["etl", "--day", "2026-12-01"]
    assert message["logStream"] == job["container"]["logStreamName"]
    assert message["logGroup"] == "/aws/batch/job"  # the definition names none: Batch's default
    assert message["logs"] == f"compute-on-aws logs {job['jobId']} --backend aws"
    # Another team's job on the same queue, this project's job on another queue, and a success: no message.
    assert send({**job, "jobDefinition": job["jobDefinition"].replace("/extract:", "/their-etl:")}) == []
    assert send({**job, "jobQueue": job["jobQueue"].replace("/etl", "/their-queue")}) == []
    assert send({**job, "status": "SUCCEEDED"}) == []


def test_the_message_names_the_log_group_of_the_job_s_definition(cli, moto: Moto, project: Path) -> None:
    write_job(project / "jobs", "load", JOB.format(extra='logGroup = "/teams/load";'))
    assert infra(cli, project, "apply").code == 0
    found = rules(moto)
    # One rule per log group (its message names it), the definitions of each in its own pattern.
    default, teams = found["compute-on-aws-default-failed-1"], found["compute-on-aws-default-failed-2"]
    assert "compute-on-aws-default-failed" not in found
    assert [d["wildcard"] for d in json.loads(teams["EventPattern"])["detail"]["jobDefinition"]] == [
        "*:job-definition/load:*"
    ]
    assert "*:job-definition/load:*" not in default["EventPattern"]
    job = failed_job(cli, moto, project)
    load = {**job, "jobName": "load", "jobDefinition": job["jobDefinition"].replace("/extract:", "/load:")}
    (message,) = through(moto, teams)(load)
    assert message["logGroup"] == "/teams/load" and message["job"] == "load"
    (message,) = through(moto, default)(job)
    assert message["logGroup"] == "/aws/batch/job"
    assert infra(cli, project, "plan").out.splitlines()[-1].startswith("0 to create, 0 to update")


def test_prune_deletes_the_alarms_and_rules_no_longer_declared(
    cli, moto: Moto, project: Path, account: dict[str, str]
) -> None:
    assert infra(cli, project, "apply").code == 0
    changed = config(account)
    del changed["queues"]["etl"]["alarms"]["blocked"]
    (project / "compute-on-aws.yaml").write_text(yaml.safe_dump(changed))
    kept = infra(cli, project, "apply")
    assert kept.code == 0 and "compute-on-aws-default-etl-blocked" not in kept.out
    pruned = infra(cli, project, "apply", "--prune")
    assert pruned.code == 0, pruned.err
    assert "deleted alarm compute-on-aws-default-etl-blocked" in pruned.out
    assert "deleted event rule compute-on-aws-default-alarm-etl-blocked" in pruned.out
    assert "compute-on-aws-default-alarm-etl-blocked" not in rules(moto)


def test_iam_policy_role_infra_is_enough_for_the_notifications(cli, moto: Moto, project: Path, as_user) -> None:
    printed = cli("--config", str(project / "compute-on-aws.yaml"), "iam-policy", "--role", "infra",
                  "--account", "123456789012")  # fmt: skip
    assert printed.code == 0, printed.err
    policy = printed.json()
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["KeepTopic"]["Resource"] == ["arn:aws:sns:us-east-1:123456789012:observes-alerts"]
    assert sids["PruneOwnRulesAndAlarms"]["Resource"] == [
        "arn:aws:events:us-east-1:123456789012:rule/compute-on-aws-default-*",
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:compute-on-aws-default-*",
    ]
    as_user(policy)
    applied = infra(cli, project, "apply")
    assert applied.code == 0, applied.err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"notifications": {"topic": "arn:aws:sns:eu-west-1:123456789012:alerts"}},
            "notifications.topic: the topic is in eu-west-1, the config in us-east-1",
        ),
        (
            {"notifications": {"topic": "arn:aws:sns:us-east-1:1234:alerts"}},
            "notifications.topic: expected an SNS topic ARN (arn:aws:sns:<region>:<12-digit account>:<name>)",
        ),
        (
            {"notifications": {"topic": "t", "on": ["FAIL"]}},
            "notifications.on: unknown event 'FAIL' (did you mean FAILED?)",
        ),
        ({"notifications": None}, "queues.etl.alarms: an alarm sends to notifications.topic, which is not set"),
        (
            {"queues": {"etl": {"compute": ["spot"], "alarms": {"failed": {"within": "soon"}}}}},
            "queues.etl.alarms.failed.within: expected a duration such as 30m, 1h or 1h30m, got 'soon'",
        ),
        (
            {"queues": {"etl": {"compute": ["spot"], "alarms": {"failed": {"within": "90s"}}}}},
            "queues.etl.alarms.failed.within: CloudWatch takes whole minutes from 1m to 24h, got 90s",
        ),
        (
            {"queues": {"etl": {"compute": ["spot"], "alarms": {"failed": {"count": 0}}}}},
            "queues.etl.alarms.failed.count: expected a whole number 1..10000, got 0",
        ),
        (
            {"queues": {"etl": {"compute": ["spot"], "alarms": {"stuck": {}}}}},
            "queues.etl.alarms.stuck: unknown key",
        ),
    ],
    ids=["arn-region", "arn-account", "event", "no-topic", "within", "within-seconds", "count", "kind"],
)
def test_bad_notifications_are_one_line_and_nothing_is_applied(
    cli, moto: Moto, project: Path, account: dict[str, str], change: dict[str, Any], message: str
) -> None:
    bad = {**config(account), **change}
    if bad["notifications"] is None:
        del bad["notifications"]
    (project / "compute-on-aws.yaml").write_text(yaml.safe_dump(bad))
    result = infra(cli, project, "apply")
    assert result.code == 2 and len(result.err.splitlines()) == 1 and message in result.err, result.err
    assert moto.received["CreateTopic"] == [] and moto.received["CreateComputeEnvironment"] == []


def test_many_jobs_are_split_over_rules_each_within_eventbridge_s_pattern_size() -> None:
    from compute_on_aws.infra.monitoring import PATTERN_BUDGET, Wanted, rules

    definitions = tuple(f"tenant-etl-{i:03d}" for i in range(200))
    w = Wanted("t", None, {"FAILED": definitions}, ("etl",))
    made = rules(w, "default", "arn:aws:sns:us-east-1:123456789012:t", {})
    assert len(made) > 1 and all(len(name) <= 64 for name in made)
    patterns = [json.loads(r["rule"]["EventPattern"]) for r in made.values()]
    assert all(len(r["rule"]["EventPattern"]) <= PATTERN_BUDGET for r in made.values())
    covered = [d["wildcard"] for p in patterns for d in p["detail"]["jobDefinition"]]
    assert covered == [f"*:job-definition/{d}:*" for d in definitions]


def test_a_long_queue_name_gives_rule_and_alarm_names_within_aws_s_limits() -> None:
    from compute_on_aws.declared.infrastructure import Alarm
    from compute_on_aws.infra.monitoring import Wanted, alarms, rules

    queue = "q" * 120
    w = Wanted("t", None, {}, (queue,), {queue: (Alarm(kind="failed"), Alarm(kind="blocked"))})
    made = rules(w, "staging", "arn:aws:sns:us-east-1:123456789012:t", {})
    assert len(made) == 2 and all(len(n) <= 64 and n.startswith("compute-on-aws-staging-") for n in made)
    (alarm, _) = alarms(w, "staging", "arn:aws:sns:us-east-1:123456789012:t", {}).values()
    assert alarm["Dimensions"][0]["Value"] in made


@pytest.mark.parametrize("action", ["CreateTopic", "SetTopicAttributes", "PutRule", "PutTargets", "PutMetricAlarm"])
def test_a_lost_answer_of_a_notification_call_converges(cli, moto: Moto, project: Path, action: str) -> None:
    """AWS acted, its answer was lost (a 500 after the fact), botocore sent the call again: each of these calls is
    idempotent, so apply exits 0 with one topic, each rule and alarm once, and a second plan has nothing to do."""
    moto.proxy.script[action] = ["error-after"]
    result = infra(cli, project, "apply")
    assert result.code == 0, result.err
    assert moto.proxy.injected[(action, "error-after")] == 1
    assert len(moto.client("sns").list_topics()["Topics"]) == 1
    assert len(rules(moto)) == 4 and len(moto.client("cloudwatch").describe_alarms()["MetricAlarms"]) == 2
    again = infra(cli, project, "plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def test_an_unreadable_answer_is_one_line_naming_the_step_not_an_internal_error(cli, moto: Moto, project: Path) -> None:
    from faultproxy import Answer

    moto.proxy.intercept("CreateTopic", lambda request, forward: Answer(200, [("Content-Type", "text/xml")], b"<html"))
    result = infra(cli, project, "apply")
    assert result.code == 1 and len(result.err.splitlines()) == 1, result.err
    assert result.err.startswith("error: creating sns topic observes-alerts: an answer from AWS that cannot be read (")
    assert "try again (already done: created compute environment spot; created job queue etl)" in result.err
