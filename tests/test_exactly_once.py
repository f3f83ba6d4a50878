"""Exactly once through a flaky network: `queue` against moto behind a fault-injecting proxy (tests/faultproxy.py).
Each test counts the jobs on the server per name, and checks that each caller printed the job that runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import Moto, Script, write_job
from faultproxy import FAULTS, FaultProxy, fault_proxy

HELLO = '{ queue = "default"; command = [ "echo" "hello" ]; image = "busybox:1.36"; memory = 512; }'
MANY = (
    '{ queue = "default"; command = [ "echo" "many" ]; image = "busybox:1.36"; memory = 512; allowDuplicates = true; }'
)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    write_job(folder, "hello", HELLO)
    write_job(folder, "many", MANY)
    return folder


@pytest.fixture
def proxy(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The proxy in front of moto, as the endpoint; searches after a lost answer start at once; a 1 s read timeout."""
    from compute_on_aws.aws import batch
    from compute_on_aws.aws import session as aws

    monkeypatch.setattr(batch, "LISTING_LAG", 0.05)
    monkeypatch.setattr(aws, "READ_TIMEOUT", 1)
    with fault_proxy(moto.url, slow_seconds=2.5) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
        yield p


def queue(cli, jobs: Path, *args: str):
    return cli("--jobs", str(jobs), "--backend", "aws", "queue", *args, "--json")


def callers(
    moto: Moto, jobs: Path, *args: str, count: int, proxy: FaultProxy | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """`count` pipelines running `compute-on-aws queue ARGS --json` at the same moment, through `proxy` (by default
    a fault-free one)."""
    with contextlib.nullcontext(proxy) if proxy is not None else fault_proxy(moto.url) as p:
        env = {**os.environ, "AWS_ENDPOINT_URL": p.url}
        program = Path(sys.executable).parent / "compute-on-aws"
        command = [str(program), "--jobs", str(jobs), "--backend", "aws", "queue", *args, "--json"]
        with ThreadPoolExecutor(count) as pool:
            return list(
                pool.map(lambda _: subprocess.run(command, capture_output=True, text=True, env=env), range(count))
            )


def alive(moto: Moto, name: str) -> list[dict[str, Any]]:
    """The jobs named `name` that nobody cancelled or terminated, as DescribeJobs describes them."""
    ids = moto.shim.alive([j["jobId"] for j in on_server(moto, name)])
    return moto.client("batch").describe_jobs(jobs=ids)["jobs"] if ids else []


def on_server(moto: Moto, name: str) -> list[dict]:
    """Every job named `name` in moto, oldest first (moto lists all statuses when given a name filter)."""
    listed = moto.client("batch").list_jobs(jobQueue="default", filters=[{"name": "JOB_NAME", "values": [name]}])
    return sorted(listed["jobSummaryList"], key=lambda j: j["createdAt"])


@pytest.mark.parametrize("fault", ["error-after", "close-after", "slow-after"])
def test_a_submission_whose_answer_is_lost_leaves_exactly_one_job(cli, proxy, moto: Moto, jobs: Path, fault) -> None:
    proxy.script["SubmitJob"] = [fault]
    result = queue(cli, jobs, "hello", "x")
    assert result.code == 0, result.err
    (job,) = on_server(moto, "hello_x")
    assert result.json()["jobs"][0]["jobId"] == job["jobId"]
    assert proxy.forwarded["SubmitJob"] == 1 and proxy.injected[("SubmitJob", fault)] == 1


@pytest.mark.parametrize("fault", ["error-after", "close-after", "slow-after", "error-before"])
def test_a_registration_whose_answer_is_lost_leaves_one_revision(cli, proxy, moto: Moto, jobs: Path, fault) -> None:
    """RegisterJobDefinition takes no idempotency token: after a lost answer the revision is looked for, and
    registered again only when AWS did not make it (error-before); never two revisions alike."""
    proxy.script["RegisterJobDefinition"] = [fault]
    result = queue(cli, jobs, "hello", "x")
    assert result.code == 0, result.err
    found = moto.client("batch").describe_job_definitions(jobDefinitionName="hello")["jobDefinitions"]
    assert [d["revision"] for d in found] == [1]
    assert result.json()["jobs"][0]["request"]["jobDefinition"] == "hello:1"
    assert proxy.received["RegisterJobDefinition"] == (2 if fault == "error-before" else 1)


def test_a_job_created_by_the_last_attempt_is_found(cli, proxy, moto: Moto, jobs: Path) -> None:
    proxy.script["SubmitJob"] = ["error-before", "error-before", "error-after"]
    result = queue(cli, jobs, "hello", "x")
    assert result.code == 0, result.err
    (job,) = on_server(moto, "hello_x")
    assert result.json()["jobs"][0]["jobId"] == job["jobId"]


def test_an_outcome_that_stays_unknown_is_one_line_naming_the_job_and_its_marker(
    cli, proxy, moto: Moto, jobs: Path
) -> None:
    proxy.script["SubmitJob"] = ["error-before"] * 3
    result = queue(cli, jobs, "hello", "x")
    assert result.code == 1
    (line,) = result.err.strip().splitlines()
    assert line.startswith("error: submitting hello_x to default: no usable answer from AWS 3 times (last: ")
    assert "no job with computeOnAwsSubmission=" in line and "the job may exist" in line
    assert line.endswith("Check with `compute-on-aws list --queue default` before queueing it again")
    assert on_server(moto, "hello_x") == []


def test_the_search_reads_every_page_of_a_long_history(cli, proxy, moto: Moto, jobs: Path) -> None:
    """An allowDuplicates job with 150 jobs of its name already listed: AWS pages ListJobs at 100."""
    assert queue(cli, jobs, "many").code == 0
    (first,) = on_server(moto, "many")
    batch = moto.client("batch")
    for _ in range(149):
        batch.submit_job(jobName="many", jobQueue="default", jobDefinition=first["jobDefinition"])
    proxy.page_size = 100
    proxy.script["SubmitJob"] = ["close-after"]
    proxy.forwarded.clear()
    result = queue(cli, jobs, "many")
    assert result.code == 0, result.err
    listed = on_server(moto, "many")
    assert len(listed) == 151
    assert result.json()["jobs"][0]["jobId"] == listed[-1]["jobId"]
    assert proxy.forwarded["SubmitJob"] == 1


def test_concurrent_callers_all_report_the_job_that_runs(
    scripted: dict[str, Script], moto: Moto, jobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten pipelines queue the same job at the same moment: one job runs, and every caller names it, exit 0."""
    scripted["hello_day"] = Script(path=[("RUNNABLE", 0.01)], hold=True)
    results = callers(moto, jobs, "hello", "day", count=10)
    assert [r.returncode for r in results] == [0] * 10, [r.stderr for r in results]
    reported = {json.loads(r.stdout)["jobs"][0]["jobId"] for r in results}
    (running,) = alive(moto, "hello_day")
    assert reported == {running["jobId"]}


def test_concurrent_callers_of_a_chain_run_it_once_and_all_report_it(
    scripted: dict[str, Script], moto: Moto, tmp_path: Path
) -> None:
    """Eight pipelines queue `load` (after `extract`) at once: one of each runs, the load that runs depends on the
    extract that runs, and every caller names both, exit 0."""
    jobs = tmp_path / "chain"
    write_job(jobs, "extract", '{ queue = "default"; command = [ "extract" ]; image = "busybox:1.36"; memory = 512; }')
    write_job(
        jobs,
        "load",
        '{ queue = "default"; command = [ "load" ]; image = "busybox:1.36"; memory = 512; after = [ "extract" ]; }',
    )
    for name in ("extract_day", "load_day"):
        scripted[name] = Script(path=[("RUNNABLE", 0.01)], hold=True)
    results = callers(moto, jobs, "load", "day", count=8)
    assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results]
    (extract,), (load,) = alive(moto, "extract_day"), alive(moto, "load_day")
    assert [d["jobId"] for d in load["dependsOn"]] == [extract["jobId"]]
    for r in results:
        reported = {j["job"]: j["jobId"] for j in json.loads(r.stdout)["jobs"]}
        assert reported == {"extract": extract["jobId"], "load": load["jobId"]}


def test_the_duplicate_check_names_the_job_the_race_settlement_keeps(cli, hold_jobs: Moto, jobs: Path) -> None:
    """Three active jobs of one name, as right after a race (the later two terminated, not yet FAILED): a caller now
    is told the earliest, the one that runs, not the newest."""
    assert queue(cli, jobs, "hello", "day").code == 0
    (first,) = on_server(hold_jobs, "hello_day")
    batch = hold_jobs.client("batch")
    for _ in range(2):
        batch.submit_job(jobName="hello_day", jobQueue="default", jobDefinition=first["jobDefinition"])
    result = queue(cli, jobs, "hello", "day")
    assert result.code == 0, result.err
    outcome = result.json()["jobs"][0]
    assert outcome["outcome"] == "duplicate" and outcome["jobId"] == first["jobId"]


def test_two_hundred_calls_through_five_percent_of_each_fault_leave_exactly_the_expected_jobs(
    cli, hold_jobs: Moto, jobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """210 queue calls (new jobs, allowDuplicates jobs, chains, repeats, concurrent pipelines) while every AWS call
    meets each fault 5% of the time: every call exits 0, and each name has exactly the jobs that were asked for."""
    from compute_on_aws.aws import batch
    from compute_on_aws.aws import session as aws

    write_job(jobs, "extract", '{ queue = "default"; command = [ "e" ]; image = "busybox:1.36"; memory = 512; }')
    write_job(
        jobs,
        "load",
        '{ queue = "default"; command = [ "l" ]; image = "busybox:1.36"; memory = 512; after = [ "extract" ]; }',
    )
    monkeypatch.setattr(batch, "LISTING_LAG", 0.05)
    monkeypatch.setattr(aws, "READ_TIMEOUT", 1)
    each = dict.fromkeys(FAULTS, 0.05)
    actions = (
        "SubmitJob",
        "ListJobs",
        "DescribeJobs",
        "TerminateJob",
        "RegisterJobDefinition",
        "DescribeJobDefinitions",
    )
    with fault_proxy(hold_jobs.url, slow_seconds=1.1, rates=dict.fromkeys(actions, each), seed=7) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
        calls = (
            [("hello", f"d{i}") for i in range(120)]
            + [("many",)] * 40
            + [("load", f"c{i}") for i in range(20)]
            + [("hello", f"d{i}") for i in range(20)]  # repeats of active jobs: duplicates
        )
        printed: dict[tuple[str, ...], list[dict]] = {}
        for call in calls:
            result = queue(cli, jobs, *call)
            assert result.code == 0, (call, result.err)
            printed.setdefault(call, []).append(result.json()["jobs"])
        concurrent = [callers(hold_jobs, jobs, "hello", f"conc{k}", count=5, proxy=p) for k in range(2)]
    injected = sum(p.injected.values())
    assert injected > 100, p.injected  # the faults did happen

    def alive_ids(name: str) -> list[str]:
        return sorted(j["jobId"] for j in alive(hold_jobs, name))

    for i in range(120):
        (job,) = alive_ids(f"hello_d{i}")
        assert all(r[0]["jobId"] == job for r in printed[("hello", f"d{i}")]), i
        assert len(on_server(hold_jobs, f"hello_d{i}")) == 1, i
    assert sorted(r[0]["jobId"] for r in printed[("many",)]) == alive_ids("many")
    assert len(on_server(hold_jobs, "many")) == 40
    for i in range(20):
        (extract,), (load,) = alive_ids(f"extract_c{i}"), alive_ids(f"load_c{i}")
        assert [(j["job"], j["jobId"]) for j in printed[("load", f"c{i}")][0]] == [("extract", extract), ("load", load)]
    for k, results in enumerate(concurrent):
        assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
        (survivor,) = alive_ids(f"hello_conc{k}")
        assert {json.loads(r.stdout)["jobs"][0]["jobId"] for r in results} == {survivor}


def test_a_chain_stopped_after_a_lost_answer_names_every_job_it_created(cli, proxy, moto: Moto, tmp_path: Path) -> None:
    """extract's answer is lost (it was created), then load's outcome stays unknown: the note names extract with its
    real id, so the printed cancel command reaches it, and the error names load and its marker."""
    jobs = tmp_path / "chain"
    write_job(jobs, "extract", '{ queue = "default"; command = [ "e" ]; image = "busybox:1.36"; memory = 512; }')
    write_job(
        jobs,
        "load",
        '{ queue = "default"; command = [ "l" ]; image = "busybox:1.36"; memory = 512; after = [ "extract" ]; }',
    )
    proxy.script["SubmitJob"] = ["close-after", "error-before", "error-before", "error-before"]
    result = cli("--jobs", str(jobs), "--backend", "aws", "queue", "load", "x")
    assert result.code == 1
    (extract,) = on_server(moto, "extract_x")
    assert on_server(moto, "load_x") == []
    note, error = result.err.strip().splitlines()
    assert note == (
        f"note: queued before this stopped: extract_x {extract['jobId']} (they stay queued; cancel them with: "
        f"compute-on-aws cancel {extract['jobId']})"
    )
    assert error.startswith("error: submitting load_x to default: no usable answer from AWS 3 times")
    assert "the job may exist" in error
