"""`compute-on-aws iam-policy`: what it allows, on which resources, and that it is enough, with moto enforcing IAM."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Moto, Script, write_job

ROLE = "arn:aws:iam::123456789012:role/etl-job"
EXEC = "arn:aws:iam::123456789012:role/batch-execution"
JOBS = {
    "etl": f'{{ queue = "etl-small"; command = [ "etl" ]; image = "busybox"; jobRoleArn = "{ROLE}"; tags.t = "d"; }}',
    "report": '{ queue = "default"; definitionName = "reports"; entrypoint.text = "echo"; after = [ "etl" ]; }',
}
# Calls that name no resource AWS lets a policy scope: the only ones allowed on "*".
UNSCOPED = {"batch:DescribeJobs", "batch:DescribeJobDefinitions", "batch:ListJobs", "ecr:GetAuthorizationToken"}


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    for name, declaration in JOBS.items():
        write_job(folder, name, declaration)
    return folder


def policy_of(cli, jobs: Path, config: str, *args: str) -> dict[str, Any]:
    path = jobs.parent / "compute-on-aws.yaml"
    path.write_text(config)
    result = cli("--jobs", str(jobs), "--config", str(path), "iam-policy", *args)
    assert result.code == 0, result.err
    policy: dict[str, Any] = result.json()
    return policy


def by_sid(policy: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    return {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]}


def test_each_call_is_allowed_on_the_declared_resources_only(cli, jobs: Path) -> None:
    config = (
        f"region: eu-west-1\nroles:\n  execution: {EXEC}\n"
        "image:\n  registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n  repository: batch-jobs\n"
    )
    policy = by_sid(policy_of(cli, jobs, config, "--account", "123456789012"))
    batch = "arn:aws:batch:eu-west-1:123456789012"
    assert policy["SubmitJobs"] == (
        ["batch:SubmitJob"],
        [
            f"{batch}:job-definition/etl:*",
            f"{batch}:job-definition/reports:*",
            f"{batch}:job-queue/default",
            f"{batch}:job-queue/etl-small",
        ],
    )
    assert policy["RegisterDefinitions"][1] == [
        f"{batch}:job-definition/etl",
        f"{batch}:job-definition/etl:*",
        f"{batch}:job-definition/reports",
        f"{batch}:job-definition/reports:*",
    ]
    assert policy["PassJobRoles"] == (["iam:PassRole"], [EXEC, ROLE])
    assert policy["ReadJobLogs"][1] == ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/batch/job:log-stream:*"]
    assert policy["PushImages"][1] == ["arn:aws:ecr:eu-west-1:123456789012:repository/batch-jobs"]
    for actions, resources in policy.values():
        if resources == ["*"]:
            assert set(actions) <= UNSCOPED


def test_no_image_statements_without_an_ecr_registry(cli, jobs: Path) -> None:
    policy = by_sid(policy_of(cli, jobs, "image:\n  registry: registry.example\n  repository: jobs\n"))
    assert "PushImages" not in policy and "LogInToEcr" not in policy
    assert "PassJobRoles" in policy  # the job's own role


def test_a_bad_account_is_one_line(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "iam-policy", "--account", "me")
    assert result.code == 2
    assert result.err == "error: --account: expected a 12-digit AWS account id, got 'me'\n"


def test_the_policy_is_enough_for_every_command(cli, scripted, moto: Moto, jobs: Path, as_user) -> None:
    write_job(jobs, "report", '{ queue = "default"; command = [ "report" ]; image = "busybox"; after = [ "etl" ]; }')
    scripted["report"] = Script(lines=["done"])
    policy = policy_of(cli, jobs, f"roles:\n  execution: {EXEC}\n", "--account", "123456789012")
    as_user(policy)

    def run(*args: str):
        result = cli("--jobs", str(jobs), "--backend", "aws", *args)
        assert result.code == 0, (args, result.err)
        return result

    queued = run("queue", "report", "--json").json()["jobs"]
    report = queued[-1]["jobId"]
    run("wait", report)
    run("status", report)
    assert run("logs", report).out == "done\n"
    run("list", "--job", "report")
    scripted["etl_queued"] = Script(path=[("RUNNABLE", 0.01)], hold=True)
    scripted["etl_running"] = Script(path=[("RUNNING", 0.01)], hold=True)
    held = [run("queue", "etl", state, "--json").json()["jobs"][0]["jobId"] for state in ("queued", "running")]
    for _ in range(100):  # until both reach their held state
        if [v["status"] for v in run("status", *held, "--json").json()["jobs"]] == ["RUNNABLE", "RUNNING"]:
            break
        time.sleep(0.05)
    out = run("cancel", *held).out
    assert "cancelled (was RUNNABLE)" in out and "terminating (was RUNNING)" in out


def test_a_call_the_policy_lacks_is_refused(cli, moto: Moto, jobs: Path, as_user) -> None:
    policy = policy_of(cli, jobs, "", "--account", "123456789012")
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "SubmitJobs"]
    as_user(policy)
    result = cli("--jobs", str(jobs), "--backend", "aws", "queue", "etl")
    assert result.code == 1
    # One line with AWS's code and message, whichever way the endpoint spelt it (moto answers Batch with an XML
    # error body, and names the action in the case the installed botocore gives it).
    (line,) = result.err.splitlines()
    assert line.startswith("error: etl: submitting etl to etl-small: AWS AccessDenied: User: "), line
    assert "is not authorized to perform: batch:submitjob" in line.lower()


SCHEDULER = "arn:aws:iam::123456789012:role/scheduler"


def test_schedules_add_the_group_and_the_scheduler_role_only(cli, jobs: Path) -> None:
    write_job(jobs, "etl", JOBS["etl"].replace("tags.t", 'schedule = "0 5 * * *"; tags.t'))
    config = f"region: eu-west-1\nroles:\n  scheduler: {SCHEDULER}\nschedules:\n  group: etl-schedules\n"
    policy = policy_of(cli, jobs, config, "--account", "123456789012")
    statements = {s["Sid"]: s for s in policy["Statement"]}
    scheduler = "arn:aws:scheduler:eu-west-1:123456789012"
    assert statements["ManageSchedules"]["Resource"] == [f"{scheduler}:schedule/etl-schedules/*"]
    assert statements["ManageScheduleGroup"]["Resource"] == [f"{scheduler}:schedule-group/etl-schedules"]
    assert statements["ListSchedules"] == {
        "Sid": "ListSchedules",
        "Effect": "Allow",
        "Action": ["scheduler:ListSchedules"],
        "Resource": ["*"],
    }
    assert statements["PassSchedulerRole"]["Resource"] == [SCHEDULER]
    assert statements["PassSchedulerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    # The role the scheduler assumes may submit the scheduled job, and nothing else.
    own = policy_of(cli, jobs, config, "--account", "123456789012", "--role", "scheduler")
    batch = "arn:aws:batch:eu-west-1:123456789012"
    assert own["Statement"] == [
        {
            "Sid": "SubmitScheduledJobs",
            "Effect": "Allow",
            "Action": ["batch:SubmitJob"],
            "Resource": [f"{batch}:job-definition/etl:*", f"{batch}:job-queue/etl-small"],
        },
        # Each run is tagged as it is submitted (compute-on-aws:job, :slot).
        {"Sid": "TagScheduledRuns", "Effect": "Allow", "Action": ["batch:TagResource"], "Resource": [f"{batch}:job/*"]},
    ]
    # Without schedules, none of it.
    write_job(jobs, "etl", JOBS["etl"])
    assert "ManageSchedules" not in by_sid(policy_of(cli, jobs, config, "--account", "123456789012"))
