"""status, wait, logs, cancel and list against moto over HTTP, with jobs that really pass through RUNNING (Script)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import Moto, Script, write_job
from faultproxy import fault_proxy

JOB = '{ queue = "default"; command = [ "etl" ]; image = "busybox"; memory = 512; }'
OTHER = '{ queue = "default"; command = [ "other" ]; image = "busybox"; memory = 512; }'
ARRAY = '{ queue = "default"; command = [ "etl" ]; image = "busybox"; memory = 512; parallel = 3; }'


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    write_job(folder, "etl", JOB)
    write_job(folder, "etl-other", OTHER)
    write_job(folder, "fan", ARRAY)
    return folder


@pytest.fixture
def aws(cli, jobs: Path):
    def run(*args: str):
        return cli("--jobs", str(jobs), "--backend", "aws", *args)

    return run


def submit(aws, *args: str) -> str:
    result = aws("queue", *args, "--json")
    assert result.code == 0, result.err
    return result.json()["jobs"][0]["jobId"]


def until(predicate, seconds: float = 10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def status_of(moto: Moto, job_id: str) -> str:
    return moto.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]["status"]


def test_wait_follows_a_job_through_its_states(aws, scripted) -> None:
    scripted["etl_day1"] = Script(path=[("RUNNABLE", 0.05), ("RUNNING", 2.0)], lines=["extracting", "loading"])
    job_id = submit(aws, "etl", "day1")
    result = aws("wait", job_id)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert lines[-1] == f"etl_day1 {job_id}: SUCCEEDED"
    assert f"etl_day1 {job_id}: RUNNING" in lines


def test_wait_reports_a_failure_with_its_reason_and_exit_code(aws, scripted) -> None:
    scripted["etl_bad"] = Script(exit_codes=[3])
    job_id = submit(aws, "etl", "bad")
    result = aws("wait", job_id)
    assert result.code == 1
    assert f"failed: etl_bad {job_id}: Essential container in task exited, exit code 3" in result.err


def test_wait_times_out_with_124(aws, scripted) -> None:
    scripted["etl_long"] = Script(path=[("RUNNABLE", 0.01), ("RUNNING", 0.01)], hold=True)
    job_id = submit(aws, "etl", "long")
    started = time.monotonic()
    result = aws("wait", job_id, "--timeout", "1.5")
    assert result.code == 124
    assert time.monotonic() - started < 10
    assert f"still RUNNING: etl_long {job_id}" in result.err


def test_status_explains_a_job_stuck_runnable(aws, scripted) -> None:
    reason = "CAPACITY:INSUFFICIENT_INSTANCES_AVAILABLE - There is no Spot capacity available"
    scripted["etl_stuck"] = Script(path=[("RUNNABLE", 0.01)], status_reason=reason, hold=True)
    job_id = submit(aws, "etl", "stuck")
    view = until(lambda: (j := aws("status", job_id, "--json").json()["jobs"][0])["status_reason"] and j)
    assert view["status"] == "RUNNABLE" and view["status_reason"] == reason
    assert view["hint"].startswith("EC2 has no capacity")
    human = aws("status", job_id).out
    assert f"  reason: {reason}" in human and "  hint: EC2 has no capacity" in human


def test_status_shows_every_attempt(aws, scripted) -> None:
    scripted["etl_retried"] = Script(exit_codes=[1, 0])
    job_id = submit(aws, "etl", "retried")
    assert aws("wait", job_id).code == 0
    view = aws("status", job_id, "--json").json()["jobs"][0]
    assert [a["exit_code"] for a in view["attempts"]] == [1, 0]
    assert view["log_group"] == "/aws/batch/job" and view["log_stream"].endswith("-2")


def test_unknown_job_ids(aws, moto: Moto) -> None:
    result = aws("status", "00000000-0000-0000-0000-000000000000")
    assert result.code == 1 and "00000000-0000-0000-0000-000000000000: not found" in result.err
    assert aws("status").code == 2


def test_array_progress_and_children_logs(aws, scripted) -> None:
    scripted["fan"] = Script(lines=["child says hi"], exit_codes={0: [0], 1: [0], 2: [4]})
    job_id = submit(aws, "fan")
    result = aws("wait", job_id)
    assert result.code == 1
    view = aws("status", job_id, "--json").json()["jobs"][0]
    assert view["array_size"] == 3 and view["array_counts"] == {"SUCCEEDED": 2, "FAILED": 1}
    assert "array: [#############xxxxxxx] 3/3 done, 1 failed" in aws("status", job_id).out
    assert aws("logs", job_id).code == 2  # an array: which child?
    child = aws("logs", job_id, "--index", "2")
    assert child.code == 0 and child.out == "child says hi\n"


def test_logs_before_during_and_after(aws, scripted, moto: Moto) -> None:
    scripted["etl_slow"] = Script(
        # RUNNABLE long enough for the first `logs` to come before the job starts, on a busy machine too.
        path=[("RUNNABLE", 2.0), ("STARTING", 0.05), ("RUNNING", 0.5)],
        lines=[f"line {i}" for i in range(5)],
    )
    job_id = submit(aws, "etl", "slow")
    early = aws("logs", job_id)
    assert early.code == 0 and early.out == "" and "no log yet" in early.err
    followed = aws("logs", job_id, "--follow")
    assert followed.code == 0, followed.err
    assert followed.out.splitlines() == [f"line {i}" for i in range(5)]
    after = aws("logs", job_id)
    assert after.out.splitlines() == [f"line {i}" for i in range(5)]


def test_logs_of_an_earlier_attempt(aws, scripted) -> None:
    scripted["etl_twice"] = Script(lines=["hello"], exit_codes=[1, 0])
    job_id = submit(aws, "etl", "twice")
    assert aws("wait", job_id).code == 0
    assert aws("logs", job_id, "--attempt", "1").out == "hello\n"
    assert aws("logs", job_id, "--attempt", "3").code == 2


def test_queue_wait_follow_streams_the_output(aws, scripted) -> None:
    scripted["etl_f"] = Script(lines=["a", "b", "c"])
    result = aws("queue", "etl", "f", "--follow")
    assert result.code == 0, result.err
    assert result.out.splitlines()[1:] == ["a", "b", "c"]


@pytest.fixture
def calls(moto: Moto) -> defaultdict[str, list[dict]]:
    """The calls moto received, by action."""
    return moto.received


def test_cancel_queued_and_terminate_running(aws, scripted, moto: Moto, calls) -> None:
    scripted["etl_queued"] = Script(path=[("RUNNABLE", 0.01)], hold=True)
    scripted["etl_running"] = Script(path=[("RUNNING", 0.01)], hold=True)
    queued, running = submit(aws, "etl", "queued"), submit(aws, "etl", "running")
    until(lambda: status_of(moto, queued) == "RUNNABLE" and status_of(moto, running) == "RUNNING")
    result = aws("cancel", queued, running, "nope", "--reason", "wrong day")
    assert result.code == 1
    assert result.out.splitlines() == [
        f"{queued}: cancelled (was RUNNABLE)",
        f"{running}: terminating (was RUNNING)",
        "nope: not found",
    ]
    assert calls["CancelJob"] == [{"jobId": queued, "reason": "wrong day"}]
    assert calls["TerminateJob"] == [{"jobId": running, "reason": "wrong day"}]
    until(lambda: status_of(moto, running) == "FAILED")
    assert aws("cancel", running).out == f"{running}: already FAILED\n"


def test_list_shows_this_jobs_runs_newest_first(aws, scripted, moto: Moto) -> None:
    first = submit(aws, "etl", "a")
    time.sleep(0.01)
    second = submit(aws, "etl", "b")
    other = submit(aws, "etl-other")
    aws("wait", first, second, other)
    listed = aws("list", "--job", "etl", "--json").json()["jobs"]
    assert [j["job_id"] for j in listed] == [second, first]
    everything = [j["job_id"] for j in aws("list", "--json").json()["jobs"]]
    assert set(everything) == {first, second, other}
    assert aws("list", "--status", "RUNNING", "--json").json()["jobs"] == []
    assert aws("list", "--status", "sleeping").code == 2
    table = aws("list", "--job", "etl").out.splitlines()
    assert table[0].split() == ["CREATED", "STATUS", "JOB", "ID", "QUEUE", "NAME"]
    assert second in table[1] and table[1].endswith("etl_b")


def test_a_wait_over_500_jobs_asks_at_most_5_times_per_poll(aws, moto: Moto, calls) -> None:
    batch = moto.client("batch")
    moto.register_definition("bulk")
    ids = [batch.submit_job(jobName=f"bulk{i}", jobQueue="default", jobDefinition="bulk")["jobId"] for i in range(500)]
    result = aws("wait", *ids)
    assert result.code == 0, result.err[-500:]
    assert len(calls["DescribeJobs"]) <= 5
    assert all(len(c["jobs"]) <= 100 for c in calls["DescribeJobs"])
    assert sorted(j for c in calls["DescribeJobs"] for j in c["jobs"]) == sorted(ids)


def test_throttled_polls_are_retried(aws, scripted, moto: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted["etl_t"] = Script()
    job_id = submit(aws, "etl", "t")
    with fault_proxy(moto.url, script={"DescribeJobs": ["throttle", "throttle"]}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = aws("wait", job_id)
    assert result.code == 0, result.err
    assert proxy.injected[("DescribeJobs", "throttle")] == 2 and proxy.forwarded["DescribeJobs"] >= 1


def _waiting_process(jobs: Path, moto: Moto, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": moto.url}
    return subprocess.Popen(
        [sys.executable, "-m", "compute_on_aws", "--jobs", str(jobs), "--backend", "aws", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=jobs.parent,
    )


@pytest.mark.parametrize("cancel", [False, True])
def test_sigterm_while_waiting(jobs: Path, scripted, moto: Moto, calls, cancel: bool) -> None:
    scripted["etl_ci"] = Script(path=[("RUNNING", 0.01)], hold=True)
    flags = ["--cancel-on-interrupt"] if cancel else []
    process = _waiting_process(jobs, moto, "queue", "etl", "ci", "--wait", *flags)
    assert process.stdout is not None
    first = process.stdout.readline()  # the queue line is flushed before waiting starts
    assert " as job " in first, (first, process.communicate(timeout=20))
    job_id = first.split(" as job ")[1].split()[0]
    until(lambda: status_of(moto, job_id) == "RUNNING", 20)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert err.strip(), (process.returncode, first, out, err)
    if cancel:
        assert calls["TerminateJob"] == [{"jobId": job_id, "reason": "compute-on-aws: interrupted while waiting"}]
        assert err.strip().splitlines()[-1] == "error: interrupted: cancelled the jobs it was waiting for"
    else:
        assert calls["TerminateJob"] == []
        assert err.strip().splitlines()[-1] == (
            f"error: stopped waiting; the jobs go on (stop them with: compute-on-aws cancel {job_id})"
        )


@pytest.mark.parametrize("state", ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"])
def test_status_in_each_active_state(aws, scripted, moto: Moto, state: str) -> None:
    scripted[f"etl_{state.lower()}"] = Script(path=[(state, 0.01)], hold=True)
    job_id = submit(aws, "etl", state.lower())
    until(lambda: status_of(moto, job_id) == state)
    view = aws("status", job_id, "--json").json()["jobs"][0]
    assert view["status"] == state and view["stopped_at"] is None
    assert (view["started_at"] is not None) == (state == "RUNNING")
    assert aws("status", job_id).out.splitlines()[0] == f"etl_{state.lower()} {job_id}: {state}"
