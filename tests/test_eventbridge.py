"""`schedules plan` and `schedules apply` against moto's EventBridge Scheduler over HTTP. What moto does not check
(the universal target's input) is checked on the requests it received, against botocore's model of SubmitJob."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Moto, write_job

CONFIG = """
region: us-east-1
roles:
  scheduler: arn:aws:iam::123456789012:role/scheduler
tags:
  project: p
environments:
  staging: {}
"""
NIGHTLY = '{ queue = "default"; command = [ "etl" ]; image = "busybox:1.36"; schedule = "0 5 * * *"; }'
BERLIN = (
    '{ queue = "other"; command = [ "report" ]; image = "busybox:1.36"; environment = [ "API_BASE" ]; '
    'schedule = [ { cron = "30 2 * * 1-5"; timezone = "Europe/Berlin"; args = [ "full" ]; } '
    '{ cron = "0 12 1 * *"; enable = false; } ]; }'
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_job(tmp_path / "jobs", "nightly", NIGHTLY)
    write_job(tmp_path / "jobs", "berlin", BERLIN)
    (tmp_path / "compute-on-aws.yaml").write_text(CONFIG)
    monkeypatch.setenv("API_BASE", "https://api.example.com/secret-looking-value")
    return tmp_path


def schedules(cli, project: Path, *args: str):
    return cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"), "schedules", *args)


def group(moto: Moto, name: str = "compute-on-aws") -> dict[str, dict[str, Any]]:
    client = moto.client("scheduler")
    names = [s["Name"] for s in client.list_schedules(GroupName=name)["Schedules"]]
    return {n: client.get_schedule(GroupName=name, Name=n) for n in names}


def submit_job_input(text: str) -> dict[str, Any]:
    """The universal target's input spelled as boto3 takes SubmitJob (jobName, not JobName), after checking every key
    against botocore's model: the scheduler passes it to Batch as it is."""
    import botocore.session
    from botocore.validate import validate_parameters

    shape = botocore.session.get_session().get_service_model("batch").operation_model("SubmitJob").input_shape

    def spelled(value: Any, shape: Any) -> Any:
        if shape.type_name == "structure":
            members = {name[:1].upper() + name[1:]: name for name in shape.members}
            unknown = set(value) - set(members)
            assert not unknown, f"not in SubmitJob's {shape.name}: {unknown}"
            return {members[k]: spelled(v, shape.members[members[k]]) for k, v in value.items()}
        if shape.type_name == "list":
            return [spelled(v, shape.member) for v in value]
        if shape.type_name == "map":
            return {k: spelled(v, shape.value) for k, v in value.items()}
        return value

    request = spelled(json.loads(text), shape)
    validate_parameters(request, shape)
    return request


def test_plan_shows_what_apply_creates_and_apply_creates_it_once(cli, moto: Moto, project: Path) -> None:
    plan = schedules(cli, project, "plan")
    assert plan.code == 0, plan.err
    assert "EventBridge Scheduler group compute-on-aws (to create):" in plan.out
    assert "  + berlin.0 (berlin)\n      cron(30 2 ? * MON,TUE,WED,THU,FRI *) Europe/Berlin, enabled\n" in plan.out
    assert "      submits berlin_scheduled_full to other with berlin:<new revision>\n" in plan.out
    assert "      environment: API_BASE, COMPUTE_ON_AWS_SCHEDULED_TIME (values not shown)\n" in plan.out
    assert "  + berlin.1 (berlin)\n      cron(0 12 1 * ? *) UTC, disabled\n" in plan.out
    assert "  + nightly.0 (nightly)\n      cron(0 5 * * ? *) UTC, enabled\n" in plan.out
    assert plan.out.endswith("3 to create, 0 to update, 0 to delete, 0 unchanged.\n")
    assert "secret-looking-value" not in plan.out + plan.err
    assert moto.received["CreateSchedule"] == [] and moto.registered() == []

    applied = schedules(cli, project, "apply")
    assert applied.code == 0, applied.err
    assert applied.out.endswith(
        "3 to create, 0 to update, 0 to delete, 0 unchanged.\n"
        "created schedule group compute-on-aws\n"
        # What the schedules name first, then the schedules (written concurrently, reported in order).
        "registered job definition berlin:1\nregistered job definition nightly:1\n"
        "created berlin.0\ncreated berlin.1\ncreated nightly.0\n"
    )
    assert "secret-looking-value" not in applied.out + applied.err
    made = group(moto)
    assert sorted(made) == ["berlin.0", "berlin.1", "nightly.0"]
    berlin = made["berlin.0"]
    assert berlin["ScheduleExpression"] == "cron(30 2 ? * MON,TUE,WED,THU,FRI *)"
    assert berlin["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert berlin["FlexibleTimeWindow"] == {"Mode": "OFF"} and berlin["State"] == "ENABLED"
    assert made["berlin.1"]["State"] == "DISABLED"
    target = berlin["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:batch:submitJob"
    assert target["RoleArn"] == "arn:aws:iam::123456789012:role/scheduler"
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    # The definitions registered first (concurrently: in either order), pinned by revision; the request `queue`
    # sends, plus the slot's time.
    assert sorted(d["jobDefinitionName"] for d in moto.registered()) == ["berlin", "nightly"]
    assert submit_job_input(target["Input"]) == {
        "jobName": "berlin_scheduled_full",
        "jobQueue": "other",
        "jobDefinition": "berlin:1",
        "containerOverrides": {
            "command": ["report", "full"],
            "environment": [
                {"name": "API_BASE", "value": "https://api.example.com/secret-looking-value"},
                {"name": "COMPUTE_ON_AWS_SCHEDULED_TIME", "value": "<aws.scheduler.scheduled-time>"},
            ],
        },
        "parameters": {"computeOnAwsSubmission": "<aws.scheduler.execution-id>"},
        # Each run tagged with its job, arguments and the slot the scheduler fills in; no commit, so that the
        # schedule changes only with its job.
        "tags": {
            "compute-on-aws:args": "full",
            "compute-on-aws:job": "berlin",
            "compute-on-aws:slot": "<aws.scheduler.scheduled-time>",
        },
    }
    # Tag keys are data: the universal target's capitals are for Batch's member names only.
    assert json.loads(target["Input"])["Tags"]["compute-on-aws:job"] == "berlin"
    groups = moto.client("scheduler").list_schedule_groups()["ScheduleGroups"]
    assert "compute-on-aws" in [g["Name"] for g in groups]

    again = schedules(cli, project, "apply")
    assert again.code == 0, again.err
    assert again.out.endswith("0 to create, 0 to update, 0 to delete, 3 unchanged.\n")
    assert len(moto.received["CreateSchedule"]) == 3 and moto.received["UpdateSchedule"] == []
    assert len(moto.registered()) == 2


def test_apply_updates_what_changed_and_deletes_only_its_own_leftovers(
    cli, moto: Moto, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert schedules(cli, project, "apply").code == 0
    client = moto.client("scheduler")
    client.create_schedule_group(Name="someone-else")
    for group_name in ("someone-else", "default"):
        client.create_schedule(
            Name="keep",
            GroupName=group_name,
            ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": "arn:aws:sqs:us-east-1:123456789012:q", "RoleArn": "arn:aws:iam::123456789012:role/x"},
        )
    write_job(project / "jobs", "nightly", NIGHTLY.replace("0 5 * * *", "0 6 * * *").replace('"etl"', '"etl2"'))
    write_job(project / "jobs", "berlin", BERLIN.replace('{ cron = "0 12 1 * *"; enable = false; } ', ""))

    plan = schedules(cli, project, "plan")
    assert plan.code == 0, plan.err
    assert (
        "  ~ nightly.0 (nightly)\n"
        '      ScheduleExpression: "cron(0 5 * * ? *)" -> "cron(0 6 * * ? *)"\n'
        '      Description: "compute-on-aws: nightly: At 05:00 every day (UTC)" -> '
        '"compute-on-aws: nightly: At 06:00 every day (UTC)"\n'
        '      JobDefinition: "nightly:1" -> "nightly:<new revision>"\n'
    ) in plan.out
    assert "  - berlin.1\n" in plan.out
    assert plan.out.endswith("0 to create, 1 to update, 1 to delete, 1 unchanged.\n")

    # A variable the job copies takes its value from the shell that applies: a new value is a change, never shown.
    monkeypatch.setenv("API_BASE", "https://api.example.com/another")
    plan = schedules(cli, project, "plan", "--json")
    changes = {c["name"]: c for c in plan.json()["changes"]}
    assert changes["berlin.0"]["details"] == ["environment API_BASE: changed"]
    assert "another" not in plan.out

    applied = schedules(cli, project, "apply")
    assert applied.code == 0, applied.err
    assert applied.out.endswith(
        "registered job definition nightly:2\nupdated berlin.0\nupdated nightly.0\ndeleted berlin.1\n"
    )
    made = group(moto)
    assert sorted(made) == ["berlin.0", "nightly.0"]
    assert made["nightly.0"]["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert submit_job_input(made["nightly.0"]["Target"]["Input"])["jobDefinition"] == "nightly:2"
    assert sorted(group(moto, "someone-else")) == ["keep"] and sorted(group(moto, "default")) == ["keep"]
    assert schedules(cli, project, "apply").out.endswith("0 to create, 0 to update, 0 to delete, 2 unchanged.\n")


def test_each_environment_has_its_own_group(cli, moto: Moto, project: Path) -> None:
    assert schedules(cli, project, "apply").code == 0
    staging = schedules(cli, project, "apply", "--env", "staging")
    assert staging.code == 0, staging.err
    assert sorted(group(moto, "compute-on-aws-staging")) == ["berlin.0", "berlin.1", "nightly.0"]
    assert sorted(group(moto)) == ["berlin.0", "berlin.1", "nightly.0"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: write_job(
                p / "jobs",
                "load",
                '{ command = [ "l" ]; image = "i"; queue = "q"; after = [ "nightly" ]; schedule = "0 6 * * *"; }',
            ),
            "error: load: schedule: EventBridge Scheduler submits one job, and load runs after nightly",
        ),
        (
            lambda p: write_job(
                p / "jobs", "both", '{ command = [ "b" ]; image = "i"; queue = "q"; schedule = "0 5 1 * MON"; }'
            ),
            "error: both: schedule '0 5 1 * MON' restricts both the day of the month and the day of the week",
        ),
        (
            lambda p: (p / "compute-on-aws.yaml").write_text("region: us-east-1\n"),
            "error: schedules plan: roles.scheduler is not set in compute-on-aws.yaml",
        ),
        (
            lambda p: __import__("os").environ.pop("API_BASE"),
            "error: berlin: environment: API_BASE is not set in this shell",
        ),
    ],
)
def test_what_cannot_be_scheduled_is_one_line_and_exit_2(cli, moto: Moto, project: Path, change, message) -> None:
    change(project)
    result = schedules(cli, project, "plan")
    assert result.code == 2, result.out
    assert result.err.startswith(message) and len(result.err.splitlines()) == 1, result.err


def test_an_unreachable_aws_is_one_line_and_exit_1(cli, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    result = schedules(cli, project, "apply")
    assert result.code == 1
    assert result.err.startswith("error: reading schedule group compute-on-aws: network: cannot reach AWS")
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize("action", ["CreateScheduleGroup", "CreateSchedule"])
def test_a_create_whose_answer_was_lost_converges(cli, moto: Moto, project: Path, action: str) -> None:
    """The scheduler made it, its answer was lost (a 500 after the fact), botocore sent it again and met the first
    one's work: apply exits 0 with every schedule made once, and a second apply finds nothing to change."""
    moto.proxy.script[action] = ["error-after"]
    applied = schedules(cli, project, "apply")
    assert applied.code == 0, applied.err
    assert moto.proxy.injected[(action, "error-after")] == 1
    assert sorted(group(moto)) == ["berlin.0", "berlin.1", "nightly.0"]
    again = schedules(cli, project, "apply")
    assert again.out.endswith("0 to create, 0 to update, 0 to delete, 3 unchanged.\n"), again.out


def test_a_create_meeting_another_schedule_of_that_name_fails_naming_what_differs(
    cli, moto: Moto, project: Path
) -> None:
    import boto3

    # Straight to moto, past the proxy (whose interceptor this is).
    scheduler = boto3.client("scheduler", endpoint_url=moto.server, region_name="us-east-1")

    def someone_made_it(request: dict, forward):
        if request.get("Name") == "nightly.0":
            scheduler.create_schedule(**{**request, "ScheduleExpression": "cron(0 6 * * ? *)"})
        return forward()

    moto.proxy.intercept("CreateSchedule", someone_made_it)
    applied = schedules(cli, project, "apply")
    assert applied.code == 1
    assert applied.err.startswith(
        "error: schedule nightly.0 already exists in group compute-on-aws and is not what was asked "
        '(ScheduleExpression: "cron(0 6 * * ? *)" -> "cron(0 5 * * ? *)"): apply again to update it'
    ), applied.err


def meeting_calls() -> tuple[Any, list[int]]:
    """A proxy interceptor holding each call 50 ms (long enough for calls made at once to meet there), and the most
    it saw under way at once."""
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def held(request: dict[str, Any], forward: Any) -> Any:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.05)
            return forward()
        finally:
            with lock:
                in_flight[0] -= 1

    return held, most


def test_apply_writes_schedules_at_once_and_a_refused_one_names_what_was_done(cli, moto: Moto, project: Path) -> None:
    """24 more schedules are created concurrently; one CreateSchedule refused fails the call (exit 1) in one line
    that says what was done, and every other schedule is made."""
    for i in range(24):
        write_job(project / "jobs", f"tenant-{i}", NIGHTLY.replace('"etl"', f'"etl-{i}"'))
    held, most = meeting_calls()
    moto.proxy.intercept("CreateSchedule", held)
    moto.proxy.script["CreateSchedule"] = [None] * 5 + ["refuse"]
    applied = schedules(cli, project, "apply")
    assert applied.code == 1
    (line,) = applied.err.splitlines()
    assert line.startswith("error: ") and ": creating schedule " in line and "AWS ClientException" in line
    assert "(already done: created schedule group compute-on-aws; registered job definition " in line
    made = group(moto)
    assert len(made) == 27 - 1
    assert line.count("; created ") == len(made)
    assert most[0] > 1


def test_plan_reads_each_definition_and_schedule_once_and_concurrently(cli, moto: Moto, project: Path) -> None:
    for i in range(24):
        write_job(project / "jobs", f"tenant-{i}", NIGHTLY.replace('"etl"', f'"etl-{i}"'))
    assert schedules(cli, project, "apply").code == 0
    held, most = meeting_calls()
    for action in ("DescribeJobDefinitions", "GetSchedule"):
        moto.proxy.intercept(action, held)
        moto.received[action].clear()
    plan = schedules(cli, project, "plan")
    assert plan.code == 0, plan.err
    assert "unchanged" in plan.out or "nothing to change" in plan.out.lower(), plan.out
    # 26 jobs with 27 schedules (berlin has two): the 26 revisions the schedules name confirmed in one call, and one
    # read per schedule (Scheduler has no call that reads many), made at once.
    [described] = moto.received["DescribeJobDefinitions"]
    assert len(described["jobDefinitions"]) == 26
    assert len(moto.received["GetSchedule"]) == 27
    assert most[0] > 4, f"at most {most[0]} calls at once: the reads are made one after another"
    # A changed job is looked up by name, as before: its schedule names an older revision.
    write_job(project / "jobs", "tenant-3", NIGHTLY.replace('"etl"', '"etl-3-changed"'))
    moto.received["DescribeJobDefinitions"].clear()
    plan = schedules(cli, project, "plan")
    assert plan.code == 0, plan.err
    assert "~ tenant-3.0 (tenant-3)" in plan.out, plan.out
    by_name = [r for r in moto.received["DescribeJobDefinitions"] if "jobDefinitionName" in r]
    assert [r["jobDefinitionName"] for r in by_name] == ["tenant-3"]
