"""The shim that runs jobs as Batch would (tests/batchshim.py): the moto behaviour it stands in for, and that what it
adds to moto's answers is what Batch answers. If the first test fails, a moto release changed how it runs jobs
without Docker: see whether the shim is still needed."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from batchshim import Script
from conftest import Moto


@pytest.fixture
def definition(moto: Moto) -> str:
    moto.register_definition("work")
    return "work:1"


def submit(moto: Moto, name: str, **extra: Any) -> str:
    job_id: str = moto.client("batch").submit_job(jobName=name, jobQueue="default", jobDefinition="work:1", **extra)[
        "jobId"
    ]
    return job_id


def described(moto: Moto, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = moto.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    return job


def listed(moto: Moto, status: str) -> list[str]:
    summaries = moto.client("batch").list_jobs(jobQueue="default", jobStatus=status)["jobSummaryList"]
    return [j["jobId"] for j in summaries]


def until(moto: Moto, job_id: str, status: str, seconds: float = 10.0) -> dict[str, Any]:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        job = described(moto, job_id)
        if job["status"] == status:
            return job
        time.sleep(0.02)
    raise AssertionError(f"{job_id} never {status}: {described(moto, job_id)['status']}")


def test_moto_alone_ends_every_job_succeeded_as_it_is_submitted(moto: Moto, definition: str) -> None:
    """What the shim stands in for: without Docker, moto never shows a job queued or running, nor an exit code."""
    job_id = submit(moto, "alone")
    job = described(moto, job_id)
    assert job["status"] == "SUCCEEDED"
    assert "exitCode" not in job["container"] and "statusReason" not in job
    assert listed(moto, "RUNNING") == [] and listed(moto, "SUCCEEDED") == [job_id]
    moto.client("batch").terminate_job(jobId=job_id, reason="too late")
    assert described(moto, job_id)["status"] == "SUCCEEDED"


def test_a_followed_job_passes_through_batchs_states_and_writes_its_lines_while_running(
    moto: Moto, definition: str
) -> None:
    # RUNNABLE lasts long enough to be seen on a loaded machine (the first DescribeJobs comes after SubmitJob).
    moto.shim.scripts["busy"] = Script(
        path=[("RUNNABLE", 1.0), ("STARTING", 0.1), ("RUNNING", 1.0)], lines=["one", "two"], exit_codes=[3, 0]
    )
    job_id = submit(moto, "busy")
    queued = described(moto, job_id)
    assert queued["status"] in ("SUBMITTED", "RUNNABLE") and "startedAt" not in queued
    running = until(moto, job_id, "RUNNING")
    assert job_id in listed(moto, "RUNNING") and job_id not in listed(moto, "SUCCEEDED")
    stream = running["container"]["logStreamName"]
    assert stream == f"work/default/{job_id}-1" and running["attempts"][0]["container"]["logStreamName"] == stream
    logs = moto.client("logs")
    events: list[dict[str, Any]] = []
    for _ in range(50):  # the stream exists from the first line on, as with Batch's awslogs driver
        with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
            events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
        if len(events) == 2:
            break
        time.sleep(0.02)
    assert [e["message"] for e in events] == ["one", "two"]
    assert described(moto, job_id)["status"] == "RUNNING"  # written while it runs, not when it ended
    done = until(moto, job_id, "SUCCEEDED")
    assert [a["container"]["exitCode"] for a in done["attempts"]] == [3, 0]
    assert done["container"]["exitCode"] == 0 and done["statusReason"] == "Essential container in task exited"
    assert done["container"]["logStreamName"] == f"work/default/{job_id}-2"
    (summary,) = moto.client("batch").list_jobs(jobQueue="default", jobStatus="SUCCEEDED")["jobSummaryList"]
    assert summary["container"] == {"exitCode": 0} and summary["stoppedAt"] >= summary["startedAt"]


def test_cancel_fails_a_job_not_yet_started_and_terminate_stops_a_running_one(moto: Moto, definition: str) -> None:
    moto.shim.scripts["waiting"] = Script(path=[("RUNNABLE", 0.0)], hold=True)
    moto.shim.scripts["running"] = Script(path=[("RUNNING", 0.0)], hold=True)
    waiting, running = submit(moto, "waiting"), submit(moto, "running")
    until(moto, waiting, "RUNNABLE")
    until(moto, running, "RUNNING")
    batch = moto.client("batch")
    for job_id in (waiting, running):
        batch.cancel_job(jobId=job_id, reason="not today")
    cancelled = until(moto, waiting, "FAILED")
    assert cancelled["statusReason"] == "not today" and "exitCode" not in cancelled.get("container", {})
    time.sleep(0.1)
    assert described(moto, running)["status"] == "RUNNING"  # Batch cancels nothing that started
    batch.terminate_job(jobId=running, reason="stop it")
    terminated = until(moto, running, "FAILED")
    assert terminated["statusReason"] == "stop it" and terminated["container"]["exitCode"] == 143


def test_a_dependent_job_waits_pending_and_fails_with_its_dependency(moto: Moto, definition: str) -> None:
    moto.shim.default = Script(path=[("RUNNING", 0.3)])
    moto.shim.scripts["bad"] = Script(path=[("RUNNING", 0.3)], exit_codes=[1])
    first = submit(moto, "first")
    after = submit(moto, "after", dependsOn=[{"jobId": first}])
    assert described(moto, after)["status"] == "PENDING"
    until(moto, after, "SUCCEEDED")
    bad = submit(moto, "bad")
    doomed = submit(moto, "doomed", dependsOn=[{"jobId": bad}])
    assert until(moto, doomed, "FAILED")["statusReason"] == "Dependent Job failed"
    assert "startedAt" not in described(moto, doomed)


def test_an_array_counts_its_children_and_fails_when_one_failed(moto: Moto, definition: str) -> None:
    moto.shim.scripts["fan"] = Script(path=[("RUNNING", 0.2)], exit_codes={0: [0], 1: [2]})
    parent = submit(moto, "fan", arrayProperties={"size": 2})
    job = until(moto, parent, "FAILED")
    assert job["arrayProperties"] == {
        "size": 2,
        "statusSummary": {
            "SUBMITTED": 0,
            "PENDING": 0,
            "RUNNABLE": 0,
            "STARTING": 0,
            "RUNNING": 0,
            "SUCCEEDED": 1,
            "FAILED": 1,
        },
    }
    assert described(moto, f"{parent}:1")["container"]["exitCode"] == 2
    assert described(moto, f"{parent}:0")["arrayProperties"] == {"index": 0}


def test_moto_alone_drops_ecs_settings_and_the_shim_keeps_them(moto: Moto) -> None:
    """Container Insights (ecsSettings): moto accepts it and describes none, so a second infra apply would see a
    change every time; the shim answers as Batch does, with what was sent."""
    import boto3
    import botocore.session

    operation = botocore.session.get_session().get_service_model("batch").operation_model("CreateComputeEnvironment")
    if operation.input_shape is None or "ecsSettings" not in operation.input_shape.members:
        pytest.skip("this botocore cannot send ecsSettings (infra refuses container_insights with it)")

    role = moto.client("iam").get_role(RoleName="batch-service")["Role"]["Arn"]

    def create(client: Any, name: str) -> None:
        client.create_compute_environment(
            computeEnvironmentName=name,
            type="UNMANAGED",
            serviceRole=role,
            ecsSettings={"containerInsights": "ENABLED"},
        )

    straight = boto3.client("batch", endpoint_url=moto.server, region_name="us-east-1")
    create(straight, "alone")
    (alone,) = straight.describe_compute_environments(computeEnvironments=["alone"])["computeEnvironments"]
    assert "ecsSettings" not in alone
    batch = moto.client("batch")
    create(batch, "kept")
    (kept,) = batch.describe_compute_environments(computeEnvironments=["kept"])["computeEnvironments"]
    assert kept["ecsSettings"] == {"containerInsights": "ENABLED"}


def test_a_job_moto_created_before_the_shim_follows_it_is_listed_submitted(
    moto: Moto, definition: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between moto's creating a job (SUCCEEDED, in moto) and the shim's following it, a concurrent caller's listing
    sees it SUBMITTED, as Batch lists a job it has just created: a race's settlement must see every job of the name.
    The window is held open here by keeping the shim reading the job's definition."""
    import threading

    moto.shim.default = Script()
    reading, release = threading.Event(), threading.Event()
    read = moto.shim._definition

    def slow(ref: str) -> dict[str, Any]:
        reading.set()
        release.wait(10)
        return read(ref)

    monkeypatch.setattr(moto.shim, "_definition", slow)
    submitted: list[str] = []
    caller = threading.Thread(target=lambda: submitted.append(submit(moto, "racing")))
    caller.start()
    try:
        assert reading.wait(10)
        seen = listed(moto, "SUBMITTED")
    finally:
        release.set()
        caller.join(10)
    assert seen == submitted and len(seen) == 1
