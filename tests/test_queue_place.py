"""A RUNNABLE job's place in line: `status` and `wait` read it from GetJobQueueSnapshot (moto lacks it: the shim in
front of it answers, tests/batchshim.py, and its answer is checked against botocore's model here), one snapshot per
queue per poll however many jobs; the local backend gives the place among the jobs waiting for the machine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from conftest import Moto, Script, write_job
from test_local import Local
from test_local import local as local  # the fixture

WAITING = Script(path=[("RUNNABLE", 0.0)], hold=True)


@pytest.fixture
def aws(cli, tmp_path: Path):
    jobs = tmp_path / "jobs"
    write_job(jobs, "etl", '{ queue = "default"; command = [ "etl" ]; image = "busybox"; }')

    def run(*args: str) -> Any:
        return cli("--jobs", str(jobs), "--backend", "aws", *args)

    return run


def queued(aws, *names: str) -> list[str]:
    ids = []
    for name in names:
        result = aws("queue", "etl", name, "--json")
        assert result.code == 0, result.err
        ids.append(result.json()["jobs"][0]["jobId"])
    return ids


def until_runnable(moto: Moto, ids: list[str]) -> None:
    for _ in range(200):
        jobs = moto.client("batch").describe_jobs(jobs=ids)["jobs"]
        if all(j["status"] == "RUNNABLE" for j in jobs):
            return
        time.sleep(0.02)
    raise AssertionError("the jobs did not reach RUNNABLE")


def test_status_shows_each_runnable_job_s_place_from_one_snapshot_per_queue(aws, moto: Moto) -> None:
    for name in ("a", "b", "c"):
        moto.shim.scripts[f"etl_{name}"] = WAITING
    ids = queued(aws, "a", "b", "c")
    until_runnable(moto, ids)
    moto.proxy.clear()
    views = aws("status", *ids, "--json").json()["jobs"]
    assert moto.proxy.received["GetJobQueueSnapshot"] == 1  # three jobs of one queue: one snapshot
    assert [v["place"]["position"] for v in views] == [1, 2, 3]
    assert all(v["place"]["listed"] == 3 and v["place"]["since"] > 0 for v in views)
    human = aws("status", ids[2]).out.splitlines()
    assert human[0] == f"etl_c {ids[2]}: RUNNABLE"
    assert human[1].startswith("  place: 3rd in line of queue default, there since 20")
    # The first one leaves the line: the others move up, and say since when.
    assert aws("cancel", ids[0]).code == 0
    before = views[2]["place"]["since"]
    time.sleep(0.01)
    after = aws("status", ids[2], "--json").json()["jobs"][0]["place"]
    assert after["position"] == 2 and after["since"] > before


def test_wait_reads_one_snapshot_per_poll_and_shows_the_place(aws, moto: Moto) -> None:
    moto.shim.scripts["etl_a"] = WAITING
    moto.shim.scripts["etl_b"] = WAITING
    ids = queued(aws, "a", "b")
    until_runnable(moto, ids)
    moto.proxy.clear()
    result = aws("wait", *ids, "--timeout", "2")
    assert result.code == 124
    assert f"etl_b {ids[1]}: RUNNABLE, 2nd in line" in result.err.splitlines()
    received = moto.proxy.received
    assert 0 < received["GetJobQueueSnapshot"] <= received["DescribeJobs"]


def test_the_shim_s_snapshot_is_what_botocore_s_model_describes(aws, moto: Moto) -> None:
    moto.shim.scripts["etl_a"] = WAITING
    ids = queued(aws, "a")
    until_runnable(moto, ids)
    answer = moto.client("batch").get_job_queue_snapshot(jobQueue="default")
    answer.pop("ResponseMetadata")
    model = botocore.session.get_session().get_service_model("batch")
    report = ParamValidator().validate(answer, model.operation_model("GetJobQueueSnapshot").output_shape)
    assert not report.has_errors(), report.generate_report()
    assert answer["frontOfQueue"]["jobs"][0]["jobArn"].endswith(f":job/{ids[0]}")


def test_a_job_at_the_head_of_its_share_shows_that_place_too(moto: Moto, cli, tmp_path: Path) -> None:
    model = botocore.session.get_session().get_service_model("batch")
    if "frontOfQuotaShares" not in model.operation_model("GetJobQueueSnapshot").output_shape.members:
        pytest.skip("this botocore's GetJobQueueSnapshot has no frontOfQuotaShares (it drops the field)")
    jobs = tmp_path / "jobs"
    write_job(jobs, "etl", '{ queue = "default"; command = [ "etl" ]; image = "busybox"; shareIdentifier = "blue"; }')
    write_job(jobs, "load", '{ queue = "default"; command = [ "load" ]; image = "busybox"; shareIdentifier = "red"; }')
    for name in ("etl", "etl_a", "load"):
        moto.shim.scripts[name] = WAITING
    ids = []
    for args in (["etl"], ["etl", "a"], ["load"]):
        result = cli("--jobs", str(jobs), "--backend", "aws", "queue", *args, "--json")
        assert result.code == 0, result.err
        ids.append(result.json()["jobs"][0]["jobId"])
    until_runnable(moto, ids)
    answer = moto.client("batch").get_job_queue_snapshot(jobQueue="default")
    answer.pop("ResponseMetadata")
    report = ParamValidator().validate(answer, model.operation_model("GetJobQueueSnapshot").output_shape)
    assert not report.has_errors(), report.generate_report()
    result = cli("--jobs", str(jobs), "--backend", "aws", "status", *ids, "--json")
    assert result.code == 0, result.err
    places = {v["job_id"]: v["place"] for v in result.json()["jobs"]}
    assert places[ids[0]] == {
        "position": 1,
        "since": places[ids[0]]["since"],
        "listed": 3,
        "share": "blue",
        "share_position": 1,
    }
    assert places[ids[1]]["share"] is None  # the second of share blue: the share's head lists only its first
    assert (places[ids[2]]["position"], places[ids[2]]["share"], places[ids[2]]["share_position"]) == (3, "red", 1)
    lines = cli("--jobs", str(jobs), "--backend", "aws", "status", ids[2]).out.splitlines()
    assert any(line.startswith("  place: 3rd in line, 1st of share red of queue default") for line in lines), lines


def test_without_the_snapshot_status_still_answers_without_a_place(aws, moto: Moto) -> None:
    moto.shim.scripts["etl_a"] = WAITING
    ids = queued(aws, "a")
    until_runnable(moto, ids)
    moto.proxy.script["GetJobQueueSnapshot"] = ["error-before"] * 20  # every retry of it fails
    result = aws("status", ids[0], "--json")
    assert result.code == 0, result.err
    assert result.json()["jobs"][0]["place"] is None


def test_locally_the_place_is_among_the_jobs_waiting_for_the_machine(local: Local) -> None:
    local.configure(max_vcpus=1, queue_priorities={"high": 10, "low": 1})
    local.job("busy", 'touch "$OUT/busy"; sleep 60', queue="low")
    local.job("low", "true", queue="low")
    local.job("high", "true", queue="high")
    local.write_manifest()
    local.start_worker()
    busy = local.queue("busy")
    for _ in range(200):  # the machine's one vCPU taken
        if (local.out / "busy").exists():
            break
        time.sleep(0.05)
    first, second = local.queue("low"), local.queue("high")
    for _ in range(200):
        if {local.status(j)["status"] for j in (first, second)} == {"RUNNABLE"}:
            break
        time.sleep(0.05)
    views = {v["job_id"]: v for v in local.run("status", first, second, "--json").json()["jobs"]}
    # The higher-priority queue goes first, as the worker takes them.
    assert views[second]["place"] == {"position": 1, "since": None, "listed": 2, "share": None, "share_position": None}
    assert views[first]["place"]["position"] == 2
    assert local.run("status", first).out.splitlines()[1] == "  place: 2nd in line of queue low"
    assert local.run("cancel", busy, first, second).code == 0
