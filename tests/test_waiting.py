"""The polling policy and the progress display, with an injected clock: no AWS, no sleeping."""

from __future__ import annotations

import io
import os
import pty
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import pure_manifest, write_job

from compute_on_aws import interrupts
from compute_on_aws.cli import display
from compute_on_aws.errors import AwsError, Signalled, UserError
from compute_on_aws.watching.views import JobView
from compute_on_aws.watching.waiting import Backoff, wait_for


def test_backoff_starts_quick_grows_and_is_capped_with_jitter() -> None:
    delays = Backoff(first=1.0, factor=2.0, cap=10.0, jitter=0.2).delays(random.Random(7))
    got = [next(delays) for _ in range(8)]
    nominal = [1, 2, 4, 8, 10, 10, 10, 10]
    assert all(0.8 * n <= d <= 1.2 * n for d, n in zip(got, nominal, strict=True))
    assert len({round(d, 6) for d in got[4:]}) > 1  # jittered, so many waiters do not poll in step


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def view(job_id: str, status: str) -> JobView:
    return JobView(job_id=job_id, job_name=f"job-{job_id}", status=status)


def test_each_poll_asks_only_about_jobs_still_running() -> None:
    timeline = {"a": ["RUNNING", "SUCCEEDED"], "b": ["RUNNABLE", "RUNNING", "RUNNING", "FAILED"]}
    asked: list[list[str]] = []

    def describe(ids):
        asked.append(list(ids))
        return {i: view(i, timeline[i].pop(0) if len(timeline[i]) > 1 else timeline[i][0]) for i in ids}

    t = FakeTime()
    updates = []
    result = wait_for(describe, ["a", "b"], on_update=updates.append, clock=t.clock, sleep=t.sleep)
    assert asked == [["a", "b"], ["a", "b"], ["b"], ["b"]]
    assert not result.timed_out and [j.job_id for j in result.failed] == ["b"]
    assert len(updates) == 4 and len(t.sleeps) == 3


def test_timeout_stops_waiting_and_says_what_is_left() -> None:
    t = FakeTime()
    result = wait_for(
        lambda ids: {i: view(i, "RUNNING") for i in ids},
        ["a"],
        on_update=lambda views: None,
        timeout=60,
        backoff=Backoff(first=1, factor=2, cap=30, jitter=0),
        clock=t.clock,
        sleep=t.sleep,
    )
    assert result.timed_out and [j.job_id for j in result.unfinished] == ["a"]
    assert t.now == 60  # the last sleep is cut to the deadline
    assert t.sleeps[:5] == [1, 2, 4, 8, 16]


def test_throttling_slows_the_wait_but_never_ends_it() -> None:
    calls = []

    def describe(ids):
        calls.append(1)
        if len(calls) <= 3:
            raise AwsError("describing jobs: AWS TooManyRequestsException: Rate exceeded", "TooManyRequestsException")
        return {i: view(i, "SUCCEEDED") for i in ids}

    t = FakeTime()
    result = wait_for(describe, ["a"], on_update=lambda v: None, clock=t.clock, sleep=t.sleep)
    assert not result.timed_out and len(calls) == 4 and len(t.sleeps) == 3


def test_other_aws_errors_end_the_wait() -> None:
    def describe(ids):
        raise AwsError("describing jobs: AWS AccessDeniedException: no", "AccessDeniedException")

    with pytest.raises(AwsError):
        wait_for(describe, ["a"], on_update=lambda v: None, sleep=lambda s: None)


def test_a_job_that_never_appears_is_a_users_mistake() -> None:
    t = FakeTime()
    with pytest.raises(UserError, match="no such job: nope"):
        wait_for(lambda ids: {}, ["nope"], on_update=lambda v: None, clock=t.clock, sleep=t.sleep)


def test_array_progress_bar() -> None:
    parent = JobView(
        job_id="p",
        job_name="fan",
        status="RUNNING",
        array_size=10,
        array_counts={"SUCCEEDED": 5, "FAILED": 1, "RUNNING": 2, "RUNNABLE": 2},
    )
    assert display.array_progress(parent) == "[##########xx>>>>....] 6/10 done, 1 failed"
    assert display.describe_line(parent).endswith("RUNNING [##########xx>>>>....] 6/10 done, 1 failed")


def test_one_line_per_change_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    printer = display.progress(out)
    for status in ("RUNNABLE", "RUNNABLE", "RUNNING", "SUCCEEDED"):
        printer([view("a", status)])
    assert out.getvalue().splitlines() == ["job-a a: RUNNABLE", "job-a a: RUNNING", "job-a a: SUCCEEDED"]


def test_many_jobs_show_counts_and_each_failure_not_a_line_per_job() -> None:
    out = io.StringIO()
    printer = display.ChangePrinter(out)
    jobs = [f"j{i}" for i in range(100)]
    printer([view(j, "RUNNABLE") for j in jobs])
    printer([view(j, "RUNNABLE") for j in jobs])  # nothing changed: nothing printed
    later = ["FAILED" if i == 7 else "SUCCEEDED" if i < 12 else "RUNNING" for i in range(100)]
    printer([view(j, status) for j, status in zip(jobs, later, strict=True)])
    assert out.getvalue().splitlines() == [
        "100 jobs: 100 RUNNABLE",
        "job-j7 j7: FAILED",
        "100 jobs: 88 RUNNING, 11 SUCCEEDED, 1 FAILED",
    ]
    table = io.StringIO()
    display.LiveTable(table)([view(j, "FAILED" if j == "j7" else "RUNNING") for j in jobs])
    drawn = [line.replace("\x1b[2K", "") for line in table.getvalue().splitlines()]
    assert drawn[1:] == ["100 jobs: 99 RUNNING, 1 FAILED", "job-j7 j7: FAILED"]


def test_wait_on_a_terminal_redraws_a_live_table(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "nap", '{ queue = "q"; command = [ "sleep" "1.5" ]; image = "x"; }')
    manifest = tmp_path / "manifest.json"
    import json

    manifest.write_text(json.dumps(pure_manifest(jobs)))
    base = [sys.executable, "-m", "compute_on_aws", "--manifest", str(manifest), "--state-dir", str(tmp_path / "s")]
    queued = subprocess.run([*base, "queue", "nap", "--json"], capture_output=True, text=True, check=True, cwd=tmp_path)
    job_id = json.loads(queued.stdout)["jobs"][0]["jobId"]
    leader, follower = pty.openpty()
    process = subprocess.Popen([*base, "wait", job_id], stdin=follower, stdout=follower, stderr=follower, cwd=tmp_path)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        try:
            seen += os.read(leader, 4096)
        except OSError:
            break
    process.wait(timeout=30)
    os.close(leader)
    text = seen.decode(errors="replace")
    assert process.returncode == 0
    assert "waiting for 1 job" in text and "\x1b[2K" in text and "\x1b[" in text.split("waiting for 1 job", 1)[1]
    assert f"nap {job_id}: SUCCEEDED" in text


def test_a_describe_jobs_entry_as_a_view() -> None:
    from compute_on_aws.backends.aws.described import from_batch

    entry = {
        "jobId": "j1",
        "jobName": "etl_day1",
        "status": "RUNNABLE",
        "statusReason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - no instance fits",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/etl-small",
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/etl:3",
        "createdAt": 1_700_000_000_000,
        "container": {
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/team/etl"}},
        },
        "attempts": [{"container": {"exitCode": 137, "logStreamName": "etl/default/a1"}, "statusReason": "Host EC2"}],
    }
    view = from_batch(entry)
    assert (view.queue, view.definition, view.log_group, view.log_stream) == (
        "etl-small",
        "etl:3",
        "/team/etl",
        "etl/default/a1",
    )
    assert view.exit_code == 137 and view.created_at == 1_700_000_000
    assert view.hint is not None and view.hint.startswith("no instance type of the compute environment fits")


def test_an_array_whose_children_all_ended_is_final() -> None:
    from compute_on_aws.backends.aws.described import from_batch

    entry = {
        "jobId": "p",
        "jobName": "fan",
        "status": "PENDING",
        "arrayProperties": {"size": 3, "statusSummary": {"SUCCEEDED": 2, "FAILED": 1, "RUNNING": 0}},
    }
    view = from_batch(entry)
    assert view.status == "FAILED" and view.final and view.array_counts == {"SUCCEEDED": 2, "FAILED": 1}


@pytest.fixture
def installed_interrupts(monkeypatch: pytest.MonkeyPatch):
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(interrupts, "_received", None)
    interrupts.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_sigterm_whose_exception_a_library_lost_still_ends_the_wait(installed_interrupts) -> None:
    asked: list[list[str]] = []

    def describe(ids):
        asked.append(list(ids))
        if len(asked) > 1:
            raise AssertionError("polled again after SIGTERM")
        try:  # a library swallowing the handler's exception, as CPython 3.11.2 did inside botocore
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except BaseException:
            pass
        return {i: view(i, "RUNNING") for i in ids}

    with pytest.raises(Signalled):
        wait_for(describe, ["a"], on_update=lambda v: None, sleep=interrupts.sleep)
