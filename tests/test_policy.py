"""`compute-on-aws iam-policy`: what it allows, on which resources, and that it is enough, with moto enforcing IAM."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
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
    assert policy["ReadQueueHeads"] == (
        ["batch:GetJobQueueSnapshot"],
        [
            "arn:aws:batch:eu-west-1:123456789012:job-queue/default",
            "arn:aws:batch:eu-west-1:123456789012:job-queue/etl-small",
        ],
    )
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
        views = run("status", *held, "--json").json()["jobs"]
        if [v["status"] for v in views] == ["RUNNABLE", "RUNNING"]:
            break
        time.sleep(0.05)
    assert views[0]["place"]["position"] == 1  # GetJobQueueSnapshot was allowed
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


def test_logs_of_a_job_in_its_own_log_group_under_the_submitter_policy(
    cli, scripted, moto: Moto, jobs: Path, as_user
) -> None:
    write_job(
        jobs,
        "load",
        '{ queue = "default"; command = [ "load" ]; image = "busybox"; logGroup = "/teams/load"; '
        'logStreamPrefix = "load-runs"; }',
    )
    scripted["load"] = Script(lines=["loaded 3 rows"])
    policy = policy_of(cli, jobs, "region: us-east-1\n", "--account", "123456789012")
    assert by_sid(policy)["ReadJobLogs"][1] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/batch/job:log-stream:*",
        "arn:aws:logs:us-east-1:123456789012:log-group:/teams/load:log-stream:*",
    ]
    as_user(policy)

    def run(*args: str):
        result = cli("--jobs", str(jobs), "--backend", "aws", *args)
        assert result.code == 0, (args, result.err)
        return result

    (queued,) = run("queue", "load", "--json").json()["jobs"]
    run("wait", queued["jobId"])
    (view,) = run("status", queued["jobId"], "--json").json()["jobs"]
    # The group and the stream the definition names, as Batch's awslogs driver writes them.
    assert view["log_group"] == "/teams/load" and view["log_stream"].startswith("load-runs/default/")
    assert run("logs", queued["jobId"]).out == "loaded 3 rows\n"


def test_the_execution_policy_lets_the_awslogs_driver_and_the_secrets_work(
    cli, moto: Moto, jobs: Path, as_user
) -> None:
    secret = moto.client("secretsmanager").create_secret(Name="db", SecretString="s3cret")["ARN"]
    moto.client("ssm").put_parameter(Name="/etl/api-key", Value="k", Type="SecureString")
    moto.client("logs").create_log_group(logGroupName="/teams/load")
    write_job(
        jobs,
        "load",
        '{ queue = "default"; command = [ "load" ]; image = "busybox"; logGroup = "/teams/load"; '
        f'secrets.DB = "{secret}"; secrets.API = "/etl/api-key"; }}',
    )
    policy = policy_of(cli, jobs, "region: us-east-1\n", "--role", "execution", "--account", "123456789012")
    as_user(policy)
    session = boto3.Session()  # with the user's key (the default session keeps the one it first read)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=moto.url, region_name="us-east-1")

    # What ECS does with the execution role when it starts the job: read the secrets, then write its log stream.
    assert client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"] == "s3cret"
    assert client("ssm").get_parameters(Names=["/etl/api-key"], WithDecryption=True)["Parameters"]
    logs = client("logs")
    logs.create_log_stream(logGroupName="/teams/load", logStreamName="load/default/task")
    logs.put_log_events(
        logGroupName="/teams/load", logStreamName="load/default/task", logEvents=[{"timestamp": 1, "message": "x"}]
    )
    # And nothing more: the policy does not let it read the logs back or submit jobs.
    with pytest.raises(Exception, match="AccessDenied"):
        logs.get_log_events(logGroupName="/teams/load", logStreamName="load/default/task")
