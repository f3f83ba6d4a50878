"""`compute-on-aws queue` against a real moto server over HTTP: definitions, duplicates, variables, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import Moto, write_job
from faultproxy import REFUSE, fault_proxy

HELLO = '{ queue = "default"; command = [ "echo" "hello" ]; image = "busybox:1.36"; memory = 512; }'
ACTIVE = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"]


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    write_job(folder, "hello", HELLO)
    return folder


def queue(cli, jobs: Path, *args: str):
    return cli("--jobs", str(jobs), "--backend", "aws", "queue", *args)


def revisions(moto: Moto, name: str) -> list[int]:
    found = moto.client("batch").describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    return sorted(d["revision"] for d in found)


def test_queue_registers_once_and_submits_exactly_the_rendered_request(cli, moto: Moto, jobs: Path) -> None:
    first = queue(cli, jobs, "hello", "a", "--json")
    assert first.code == 0, first.err
    second = queue(cli, jobs, "hello", "b", "--json")
    assert second.code == 0, second.err
    assert revisions(moto, "hello") == [1]
    assert len(moto.registered()) == 1
    result = second.json()["jobs"][0]
    assert result["outcome"] == "submitted" and result["jobDefinition"] == "hello:1"
    assert moto.submitted()[-1] == result["request"]
    markers = [
        r["parameters"].pop("computeOnAwsSubmission") for r in (first.json()["jobs"][0]["request"], result["request"])
    ]
    assert all(re.fullmatch("[0-9a-f]{32}", m) for m in markers) and markers[0] != markers[1]
    assert result["request"] == {
        "jobName": "hello_b",
        "jobQueue": "default",
        "jobDefinition": "hello:1",
        "containerOverrides": {"command": ["echo", "hello", "b"]},
        "parameters": {},
        "tags": {"compute-on-aws:job": "hello", "compute-on-aws:args": "b"},
    }
    described = moto.client("batch").describe_jobs(jobs=[result["jobId"]])["jobs"][0]
    assert described["jobName"] == "hello_b"


def test_changed_declaration_registers_a_new_revision_and_pins_it(cli, moto: Moto, jobs: Path) -> None:
    assert queue(cli, jobs, "hello", "x").code == 0
    write_job(jobs, "hello", HELLO.replace("memory = 512", "memory = 1024"))
    result = queue(cli, jobs, "hello", "y", "--json")
    assert result.code == 0, result.err
    assert revisions(moto, "hello") == [1, 2]
    assert moto.submitted()[-1]["jobDefinition"] == "hello:2"
    # Going back to the first content reuses revision 1 instead of registering a third.
    write_job(jobs, "hello", HELLO)
    assert queue(cli, jobs, "hello", "z").code == 0
    assert revisions(moto, "hello") == [1, 2]
    assert moto.submitted()[-1]["jobDefinition"] == "hello:1"


def test_human_output_says_what_happened(cli, moto: Moto, jobs: Path) -> None:
    result = queue(cli, jobs, "hello", "2026-11-25")
    assert result.code == 0
    job_id = moto.submitted() and moto.client("batch").list_jobs(jobQueue="default")["jobSummaryList"][0]["jobId"]
    assert result.out == f"submitted hello_2026-11-25 to default as job {job_id} (registered hello:1)\n"


@pytest.mark.parametrize("status", ACTIVE)
def test_active_job_with_the_same_name_is_a_duplicate(cli, hold_jobs: Moto, jobs: Path, status: str) -> None:
    first = queue(cli, jobs, "hello", "day1", "--json")
    job_id = first.json()["jobs"][0]["jobId"]
    hold_jobs.set_status(job_id, status)
    again = queue(cli, jobs, "hello", "day1", "--json")
    assert again.code == 0
    result = again.json()["jobs"][0]
    assert result["outcome"] == "duplicate" and result["jobId"] == job_id
    assert len(hold_jobs.submitted()) == 1
    human = queue(cli, jobs, "hello", "day1")
    assert human.out == f"duplicate: hello_day1 is already {status} as job {job_id} in default; not submitted again\n"


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED"])
def test_finished_job_with_the_same_name_is_no_duplicate(cli, hold_jobs: Moto, jobs: Path, status: str) -> None:
    first = queue(cli, jobs, "hello", "day1", "--json").json()["jobs"][0]["jobId"]
    hold_jobs.set_status(first, status)
    again = queue(cli, jobs, "hello", "day1", "--json").json()["jobs"][0]
    assert again["outcome"] == "submitted" and again["jobId"] != first


def test_duplicates_match_the_exact_name_definition_and_queue(cli, hold_jobs: Moto, jobs: Path) -> None:
    batch = hold_jobs.client("batch")
    queue(cli, jobs, "hello", "seed")  # registers hello:1
    # Same name in another case, same name from another definition, same name in another queue: none is this job.
    hold_jobs.register_definition("other")
    batch.submit_job(jobName="HELLO_day2", jobQueue="default", jobDefinition="hello:1")
    batch.submit_job(jobName="hello_day2", jobQueue="default", jobDefinition="other:1")
    batch.submit_job(jobName="hello_day2", jobQueue="other", jobDefinition="hello:1")
    result = queue(cli, jobs, "hello", "day2", "--json").json()["jobs"][0]
    assert result["outcome"] == "submitted"


def test_allow_duplicates_submits_again(cli, hold_jobs: Moto, jobs: Path) -> None:
    write_job(jobs, "hello", HELLO.replace("memory = 512;", "memory = 512; allowDuplicates = true;"))
    ids = [queue(cli, jobs, "hello", "--json").json()["jobs"][0]["jobId"] for _ in range(2)]
    assert len(set(ids)) == 2


def test_args_out_of_the_name_make_one_job_per_queue(cli, hold_jobs: Moto, jobs: Path) -> None:
    write_job(jobs, "hello", HELLO.replace("memory = 512;", "memory = 512; includePositionalArgsInName = false;"))
    first = queue(cli, jobs, "hello", "a", "--json").json()["jobs"][0]
    second = queue(cli, jobs, "hello", "b", "--json").json()["jobs"][0]
    assert first["jobName"] == second["jobName"] == "hello"
    assert second["outcome"] == "duplicate"


def test_missing_variables_stop_everything(cli, moto: Moto, jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_job(jobs, "hello", HELLO.replace("memory = 512;", 'memory = 512; environment = [ "RUN_DATE" "CI_JOB_ID" ];'))
    monkeypatch.setenv("RUN_DATE", "2026-11-25")
    result = queue(cli, jobs, "hello")
    assert result.code == 2
    assert result.err == (
        "error: hello: environment: CI_JOB_ID is not set in this shell, and the job copies its environment from here "
        "(set them, or remove them from the declaration)\n"
    )
    assert moto.registered() == [] and moto.submitted() == []


def test_propagated_values_reach_aws_but_are_never_printed(
    cli, moto: Moto, jobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_job(jobs, "hello", HELLO.replace("memory = 512;", 'memory = 512; environment = [ "CI_JOB_ID" ];'))
    monkeypatch.setenv("CI_JOB_ID", "value-4242-distinct")
    for flags in (["--json"], []):
        result = queue(cli, jobs, "hello", "run", *flags)
        assert result.code == 0, result.err
        assert "value-4242-distinct" not in result.out + result.err
    assert moto.submitted()[0]["containerOverrides"]["environment"] == [
        {"name": "CI_JOB_ID", "value": "value-4242-distinct"}
    ]


def test_secrets_travel_by_reference_in_the_definition_only(cli, moto: Moto, jobs: Path) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password"
    write_job(
        jobs,
        "hello",
        HELLO.replace(
            "memory = 512;",
            f'memory = 512; secrets.DB_PASSWORD = "{arn}"; executionRoleArn = "arn:aws:iam::123456789012:role/exec";',
        ),
    )
    assert queue(cli, jobs, "hello", "x").code == 0
    container = moto.registered()[0]["containerProperties"]
    assert container["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": arn}]
    assert container["executionRoleArn"] == "arn:aws:iam::123456789012:role/exec"
    assert "DB_PASSWORD" not in str(moto.submitted()[0])


def test_fields_moto_ignores_reach_it(cli, moto: Moto, jobs: Path) -> None:
    write_job(
        jobs,
        "hello",
        HELLO.replace(
            "memory = 512;",
            'memory = 512; attempts = 4; parallel = 3; shareIdentifier = "blue"; schedulingPriority = 7; '
            'retryRules = [ { onExitCode = "137"; action = "retry"; } ];',
        ),
    )
    assert queue(cli, jobs, "hello").code == 0
    definition = moto.registered()[0]
    assert definition["retryStrategy"] == {"attempts": 4, "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}]}
    assert definition["schedulingPriority"] == 7 and definition["propagateTags"] is True
    submitted = moto.submitted()[0]
    assert submitted["arrayProperties"] == {"size": 3} and submitted["shareIdentifier"] == "blue"
    # Retry and timeout live in the definition: a submission never overrides them.
    assert "retryStrategy" not in submitted and "timeout" not in submitted


def test_unknown_queue_is_an_aws_error_with_its_code(cli, moto: Moto, jobs: Path) -> None:
    write_job(jobs, "hello", HELLO.replace('"default"', '"missing-queue"'))
    result = queue(cli, jobs, "hello")
    assert result.code == 1
    assert result.err.startswith(
        "error: hello: looking for a duplicate of hello in missing-queue: AWS ClientException:"
    )
    assert "\n" not in result.err.rstrip("\n") and "Traceback" not in result.err


@pytest.fixture
def quick_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    from compute_on_aws.aws import batch

    monkeypatch.setattr(batch, "LISTING_LAG", 0.05)


def jobs_in(moto: Moto) -> list[str]:
    return [
        j["jobId"] for j in moto.client("batch").list_jobs(jobQueue="default", jobStatus="SUCCEEDED")["jobSummaryList"]
    ]


@pytest.mark.parametrize(
    ("fault", "requests"),
    [
        # The job was created and its answer lost (500 after moto acted): found by its marker, not submitted again.
        ("error-after", 1),
        # Nothing was created (500 before moto): after looking, the same request (same marker) is sent again.
        ("error-before", 2),
        # Throttled: nothing was created, and botocore retries as usual.
        ("throttle", 2),
    ],
)
def test_a_failed_submission_leaves_exactly_one_job(
    cli, moto: Moto, jobs: Path, monkeypatch: pytest.MonkeyPatch, quick_lookup, fault, requests
) -> None:
    with fault_proxy(moto.url, script={"SubmitJob": [fault]}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = queue(cli, jobs, "hello", "--json")
    assert result.code == 0, result.err
    sent = proxy.bodies["SubmitJob"]
    assert len(sent) == requests and all(r == sent[0] for r in sent)
    assert jobs_in(moto) == [result.json()["jobs"][0]["jobId"]]


def test_failure_after_registering_says_what_was_done(cli, moto: Moto, jobs: Path, monkeypatch, quick_lookup) -> None:
    with fault_proxy(moto.url, script={"SubmitJob": [REFUSE]}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = queue(cli, jobs, "hello")
    assert result.code == 1
    assert "submitting hello to default: AWS ClientException: injected by the test proxy" in result.err
    assert "(already done: registered job definition hello:1)" in result.err


def test_no_credentials_is_a_users_mistake(cli, moto: Moto, jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = queue(cli, jobs, "hello")
    assert result.code == 2
    assert "no AWS credentials found" in result.err


def test_unreachable_endpoint_is_a_network_error(cli, jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = queue(cli, jobs, "hello")
    assert result.code == 1
    assert "network: cannot reach AWS" in result.err and "AWS_ENDPOINT_URL" in result.err


def test_dry_run_calls_nothing(cli, jobs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No credentials, no region, an endpoint nobody listens on: a dry run still answers.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    result = queue(cli, jobs, "hello", "a", "--dry-run", "--json")
    assert result.code == 0, result.err
    job = result.json()["jobs"][0]
    assert job["outcome"] == "dry-run" and job["jobId"] is None and job["jobDefinition"] == "hello"
    assert set(job) == {"job", "jobName", "jobId", "outcome", "jobQueue", "jobDefinition", "request"}
    assert result.json()["definitions"]["hello"]["jobDefinitionName"] == "hello"


def _submit_competitor(moto: Moto, request: dict) -> str:
    """Another pipeline's SubmitJob of the same job."""
    batch = moto.client("batch")
    return batch.submit_job(jobName=request["jobName"], jobDefinition=request["jobDefinition"], jobQueue="default")[
        "jobId"
    ]


def test_two_pipelines_queueing_at_once_leave_one_job(cli, hold_jobs: Moto, jobs: Path) -> None:
    competitor: list[str] = []

    def racing_submit(request: dict, forward):
        # Another pipeline's SubmitJob lands between our duplicate check and our own SubmitJob.
        if not competitor:
            competitor.append("")
            competitor[0] = _submit_competitor(hold_jobs, request)
        return forward()

    hold_jobs.proxy.intercept("SubmitJob", racing_submit)
    result = queue(cli, jobs, "hello", "day1", "--json")
    assert result.code == 0, result.err
    outcome = result.json()["jobs"][0]
    assert outcome["outcome"] == "duplicate" and outcome["jobId"] == competitor[0]
    terminated = hold_jobs.received["TerminateJob"]
    assert len(terminated) == 1 and terminated[0]["jobId"] != competitor[0]
    assert terminated[0]["reason"] == f"compute-on-aws: duplicate of {competitor[0]}, queued at the same time"


def test_the_first_of_two_racing_pipelines_keeps_its_job(cli, hold_jobs: Moto, jobs: Path) -> None:
    later: list[str] = []

    def submit_then_race(request: dict, forward):
        answer = forward()
        if not later:  # the other pipeline submits right after us
            later.append("")
            later[0] = _submit_competitor(hold_jobs, request)
        return answer

    hold_jobs.proxy.intercept("SubmitJob", submit_then_race)
    result = queue(cli, jobs, "hello", "day1", "--json")
    outcome = result.json()["jobs"][0]
    assert outcome["outcome"] == "submitted" and outcome["jobId"] != later[0]


EXTRACT = '{ queue = "default"; command = [ "extract" ]; image = "busybox:1.36"; memory = 512; }'
LOAD = (
    '{ queue = "default"; command = [ "load" ]; image = "busybox:1.36"; memory = 512; after = [ "extract" ]; '
    'environment = [ "RUN_DATE" ]; }'
)
REPORT = (
    '{ queue = "default"; command = [ "report" ]; image = "busybox:1.36"; memory = 512; after = [ "load" "extract" ]; }'
)


@pytest.fixture
def pipeline(jobs: Path) -> Path:
    write_job(jobs, "extract", EXTRACT)
    write_job(jobs, "load", LOAD)
    write_job(jobs, "report", REPORT)
    return jobs


def test_queueing_a_job_queues_what_it_runs_after_first(
    cli, moto: Moto, pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUN_DATE", "2026-11-25")
    result = queue(cli, pipeline, "report", "day1", "--json")
    assert result.code == 0, result.err
    jobs = result.json()["jobs"]
    ids = {j["job"]: j["jobId"] for j in jobs}
    assert [j["job"] for j in jobs] == ["extract", "load", "report"]  # each once, prerequisites first
    assert [r["jobName"] for r in moto.submitted()] == ["extract_day1", "load_day1", "report_day1"]
    depends = {r["jobName"]: r.get("dependsOn") for r in moto.submitted()}
    assert depends == {
        "extract_day1": None,
        "load_day1": [{"jobId": ids["extract"]}],
        "report_day1": [{"jobId": ids["load"]}, {"jobId": ids["extract"]}],
    }
    described = moto.client("batch").describe_jobs(jobs=[ids["report"]])["jobs"][0]
    assert sorted(d["jobId"] for d in described["dependsOn"]) == sorted([ids["load"], ids["extract"]])


def test_a_prerequisite_already_active_is_waited_for_not_queued_again(
    cli, hold_jobs: Moto, pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUN_DATE", "2026-11-25")
    first = queue(cli, pipeline, "extract", "day1", "--json")
    extract_id = first.json()["jobs"][0]["jobId"]
    hold_jobs.set_status(extract_id, "RUNNING")
    result = queue(cli, pipeline, "load", "day1", "--json", "--after", "0f0f0f0f-1111-2222-3333-444444444444")
    assert result.code == 0, result.err
    outcomes = [(j["job"], j["outcome"], j["jobId"]) for j in result.json()["jobs"]]
    assert outcomes[0] == ("extract", "duplicate", extract_id)
    assert outcomes[1][:2] == ("load", "submitted")
    # --after adds to the dependencies of the job named on the command line only.
    assert moto_last_depends(hold_jobs) == [{"jobId": extract_id}, {"jobId": "0f0f0f0f-1111-2222-3333-444444444444"}]
    assert [r["jobName"] for r in hold_jobs.submitted()] == ["extract_day1", "load_day1"]


def moto_last_depends(moto: Moto):
    return moto.submitted()[-1]["dependsOn"]


def test_a_missing_variable_anywhere_in_the_chain_queues_nothing(cli, moto: Moto, pipeline: Path) -> None:
    result = queue(cli, pipeline, "report")
    assert result.code == 2
    assert result.err.startswith("error: load: environment: RUN_DATE is not set in this shell")
    assert moto.registered() == [] and moto.submitted() == []


def test_a_chain_that_fails_half_way_says_what_stays_queued(
    cli, moto: Moto, pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUN_DATE", "2026-11-25")
    write_job(pipeline, "load", LOAD.replace('"default"', '"missing-queue"'))
    result = queue(cli, pipeline, "load")
    assert result.code == 1
    extract_id = moto.client("batch").list_jobs(jobQueue="default")["jobSummaryList"][0]["jobId"]
    note, error = result.err.splitlines()
    assert note == (
        f"note: queued before this stopped: extract {extract_id} (they stay queued; cancel them with: "
        f"compute-on-aws cancel {extract_id})"
    )
    assert error.startswith("error: load: looking for a duplicate of load in missing-queue: AWS ClientException:")


def test_json_of_a_chain_that_fails_half_way_names_what_was_queued(
    cli, moto: Moto, pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script reading --json learns that extract was queued and why the call stopped, not an empty output."""
    monkeypatch.setenv("RUN_DATE", "2026-11-25")
    write_job(pipeline, "load", LOAD.replace('"default"', '"missing-queue"'))
    result = queue(cli, pipeline, "load", "--json")
    assert result.code == 1
    (extract,) = moto.client("batch").list_jobs(jobQueue="default")["jobSummaryList"]
    document = json.loads(result.out)
    assert [(j["job"], j["jobId"], j["outcome"]) for j in document["jobs"]] == [
        ("extract", extract["jobId"], "submitted")
    ]
    assert [f["job"] for f in document["failed"]] == ["load"]
    assert document["stopped"].startswith(
        "load: looking for a duplicate of load in missing-queue: AWS ClientException:"
    )
    assert result.err.splitlines()[-1] == f"error: {document['stopped']}"


def test_arrays_wait_per_index_and_run_their_children_in_order(cli, moto: Moto, jobs: Path) -> None:
    write_job(jobs, "split", '{ queue = "default"; command = [ "split" ]; image = "busybox"; parallel = 4; }')
    write_job(
        jobs,
        "scan",
        '{ queue = "default"; command = [ "scan" ]; image = "busybox"; parallel = 4; sequential = true; '
        'after = [ { job = "split"; type = "N_TO_N"; } ]; }',
    )
    result = queue(cli, jobs, "scan", "--json")
    assert result.code == 0, result.err
    split_id = result.json()["jobs"][0]["jobId"]
    assert moto.submitted()[-1]["dependsOn"] == [{"jobId": split_id, "type": "N_TO_N"}, {"type": "SEQUENTIAL"}]
    assert moto.submitted()[-1]["arrayProperties"] == {"size": 4}


def test_dry_run_of_a_chain_shows_where_ids_go(cli, pipeline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_DATE", "2026-11-25")
    result = queue(cli, pipeline, "load", "--dry-run", "--json")
    assert result.code == 0, result.err
    requests = [j["request"] for j in result.json()["jobs"]]
    assert [r["jobName"] for r in requests] == ["extract", "load"]
    assert requests[1]["dependsOn"] == [{"jobId": "<job id of extract>"}]


def test_interrupted_half_way_through_a_chain_says_what_stays_queued(
    moto: Moto, pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def slow_for_load(request: dict, forward):
        if request["jobName"].startswith("load"):
            release.wait(30)  # AWS taking its time: Ctrl-C comes meanwhile
        return forward()

    moto.proxy.intercept("SubmitJob", slow_for_load)
    process = subprocess.Popen(
        [sys.executable, "-m", "compute_on_aws", "--jobs", str(pipeline), "--backend", "aws", "queue", "load"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUN_DATE": "2026-11-25"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("submitted extract to default as job "), first
        extract_id = first.split(" as job ")[1].split()[0]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        release.set()
    assert process.returncode == 130
    assert err.splitlines() == [
        f"note: queued before this stopped: extract {extract_id} (they stay queued; cancel them with: "
        f"compute-on-aws cancel {extract_id})",
        "error: interrupted",
    ]


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            {"AWS_PROFILE": "nope"},
            "error: AWS profile 'nope' (AWS_PROFILE) is not in the AWS config files ({config}): "
            "`aws configure list-profiles` lists them",
        ),
        (
            {"AWS_REGION": None, "AWS_DEFAULT_REGION": ""},
            "error: AWS region is empty (AWS_DEFAULT_REGION set to ''): set it to a region such as us-east-1, "
            "or unset it",
        ),
        (
            {"AWS_ENDPOINT_URL": "not-a-url"},
            "error: AWS_ENDPOINT_URL='not-a-url' is not an http:// or https:// URL (unset it to use AWS's endpoints)",
        ),
        (
            {"AWS_CA_BUNDLE": "/nonexistent/ca.pem"},
            "error: AWS_CA_BUNDLE='/nonexistent/ca.pem' is not a file of CA certificates (unset it to use the "
            "system's)",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://[::1"},
            "error: AWS_ENDPOINT_URL='http://[::1' is not a URL (Invalid IPv6 URL; unset it to use AWS's endpoints)",
        ),
        (
            {"AWS_ENDPOINT_URL_BATCH": "ftp://example.com"},
            "error: AWS_ENDPOINT_URL_BATCH='ftp://example.com' is not an http:// or https:// URL (unset it to use "
            "AWS's endpoints)",
        ),
        (
            {"AWS_CONFIG_FILE": "{broken}"},
            "error: AWS config file {broken} cannot be read (AWS_CONFIG_FILE): Unable to parse config file: {broken}",
        ),
        (
            {"AWS_STS_REGIONAL_ENDPOINTS": "bogus"},
            'error: AWS configuration: STS regional endpoints option bogus is invalid. Valid options are: "legacy", '
            '"regional"',
        ),
    ],
)
def test_a_mistake_in_the_aws_environment_is_one_line_exit_2_and_nothing_sent(
    cli, jobs: Path, moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variables: dict, line: str
) -> None:
    broken = tmp_path / "aws-config"
    broken.write_text("[default\nregion = ")
    config = tmp_path / "empty-aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(broken=broken))
    before = sum(moto.proxy.received.values())  # the fixture's own setup calls
    result = queue(cli, jobs, "hello")
    assert (result.code, result.err) == (2, line.format(config=config, broken=broken) + "\n")
    assert sum(moto.proxy.received.values()) == before
