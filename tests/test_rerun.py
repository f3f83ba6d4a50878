"""`rerun`: the failed children of an ended array, as a new array of just those, once; each child told which original
child it stands for. Against moto over HTTP (the shim runs the children) and on the local backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Moto, Script, write_job

from compute_on_aws.planning.limits import MAX_OVERRIDES_CHARS
from compute_on_aws.planning.rerun import INDICES_VARIABLE, expand, groups, plan_reruns, ranges

FAILING = [3, 7, 8, 9, 15]
ARRAY = '{ queue = "default"; command = [ "scan" ]; image = "busybox"; parallel = 20; env.MODE = "full"; }'


def test_indices_travel_as_ranges_and_come_back() -> None:
    assert ranges([15, 3, 7, 8, 9]) == "3,7-9,15"
    assert expand("3,7-9,15") == [3, 7, 8, 9, 15]
    spread = list(range(0, 10_000, 2))  # the worst case: no two together
    split = groups(spread, 1000)
    assert [i for g in split for i in g] == spread and all(len(ranges(g)) <= 1000 for g in split)


def test_more_failures_than_one_submission_holds_are_split_over_several_arrays() -> None:
    job = {"jobId": "a1", "jobName": "scan", "jobDefinition": "arn:d:1", "jobQueue": "arn:q", "container": {}}
    reruns = plan_reruns(job, list(range(0, 10_000, 2)))
    assert len(reruns) > 1
    assert [r.request["jobName"] for r in reruns[:2]] == ["scan-rerun-1", "scan-rerun-2"]
    assert [i for r in reruns for i in r.indices] == list(range(0, 10_000, 2))
    for r in reruns:
        assert len(json.dumps(r.request["containerOverrides"])) <= MAX_OVERRIDES_CHARS
        (variable,) = [e for e in r.request["containerOverrides"]["environment"] if e["name"] == INDICES_VARIABLE]
        assert expand(variable["value"]) == list(r.indices) and r.request["arrayProperties"]["size"] == len(r.indices)


@pytest.fixture
def aws(cli, tmp_path: Path):
    jobs = tmp_path / "jobs"
    write_job(jobs, "scan", ARRAY)

    def run(*args: str) -> Any:
        return cli("--jobs", str(jobs), "--backend", "aws", *args)

    return run


def test_an_array_s_failed_children_are_rerun_once_each_with_its_own_index(aws, moto: Moto) -> None:
    moto.shim.scripts["scan"] = Script(
        path=[("RUNNING", 0.01)], exit_codes={i: [1 if i in FAILING else 0] for i in range(20)}
    )
    queued = aws("queue", "scan", "--wait", "--json")
    assert queued.code == 1, queued.err
    array = queued.json()["jobs"][0]["jobId"]
    moto.shim.scripts["scan-rerun"] = Script(path=[("RUNNING", 0.01)], hold=True)
    moto.proxy.clear()
    dry = aws("rerun", array, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert moto.proxy.received["SubmitJob"] == 0
    (planned,) = dry.json()["reruns"]
    assert planned["outcome"] == "planned" and planned["indices"] == "3,7-9,15"
    rerun = aws("rerun", array)
    assert rerun.code == 0, rerun.err
    (sent,) = moto.submitted()[-1:]
    assert sent["jobName"] == "scan-rerun" and sent["arrayProperties"] == {"size": 5}
    environment = {e["name"]: e["value"] for e in sent["containerOverrides"]["environment"]}
    assert environment == {"MODE": "full", INDICES_VARIABLE: "3,7-9,15"}
    assert sent["tags"]["compute-on-aws:rerun-of"] == array
    assert sent["jobDefinition"].rsplit(":", 1)[1].isdigit()  # the very revision the children ran
    new_id = rerun.out.split()[1].rstrip(":")
    assert rerun.out == f"scan-rerun {new_id}: re-running children 3,7-9,15 of {array}\n"
    # While it is active, a second re-run submits nothing and names it.
    again = aws("rerun", array)
    assert again.code == 0, again.err
    assert again.out == f"scan-rerun {new_id}: already re-running children 3,7-9,15 of {array} (nothing submitted)\n"
    assert moto.proxy.received["SubmitJob"] == 1


def test_what_cannot_be_rerun_is_one_line_and_nothing_is_submitted(aws, moto: Moto) -> None:
    moto.shim.scripts["scan"] = Script(path=[("RUNNING", 0.01)])
    done = aws("queue", "scan", "--wait", "--json").json()["jobs"][0]["jobId"]
    moto.shim.scripts["scan_held"] = Script(path=[("RUNNABLE", 0.01)], hold=True)
    held = aws("queue", "scan", "held", "--json").json()["jobs"][0]["jobId"]
    moto.proxy.clear()
    for job_id, line in (
        (done, f"error: {done}: no child of this array failed: nothing to re-run"),
        (held, f"error: {held}: still PENDING: re-run its failed children once it has ended"),
        ("00000000-0000-0000-0000-000000000000", "error: 00000000-0000-0000-0000-000000000000: no such job in this "
         "account and region (a job of the local backend?)"),
    ):  # fmt: skip
        result = aws("rerun", job_id)
        assert (result.code, result.err) == (2, line + "\n"), result.err
    assert moto.proxy.received["SubmitJob"] == 0


def test_the_submitter_policy_is_enough_to_rerun(aws, cli, moto: Moto, tmp_path: Path, as_user) -> None:
    moto.shim.scripts["scan"] = Script(path=[("RUNNING", 0.01)], exit_codes={i: [i % 2] for i in range(20)})
    config = tmp_path / "compute-on-aws.yaml"
    config.write_text("region: us-east-1\n")
    printed = cli("--jobs", str(tmp_path / "jobs"), "--config", str(config), "iam-policy", "--account", "123456789012")
    assert printed.code == 0, printed.err
    as_user(printed.json())
    array = aws("queue", "scan", "--wait", "--json").json()["jobs"][0]["jobId"]
    rerun = aws("rerun", array, "--json")
    assert rerun.code == 0, rerun.err
    (made,) = rerun.json()["reruns"]
    assert (made["outcome"], made["indices"]) == ("submitted", ",".join(str(i) for i in range(1, 20, 2)))


def test_failed_jobs_of_a_bulk_call_are_rerun_as_they_were(aws, cli, moto: Moto, tmp_path: Path) -> None:
    write_job(tmp_path / "jobs", "one", '{ queue = "default"; command = [ "one" ]; image = "busybox"; env.K = "v"; }')
    moto.shim.default = Script(path=[("RUNNING", 0.01)])
    moto.shim.scripts["one_b"] = Script(path=[("RUNNING", 0.01)], exit_codes=[2])
    bulk = cli("--jobs", str(tmp_path / "jobs"), "--backend", "aws", "queue", "one", "--args-from", "-", "--wait",
               "--json", stdin="a\nb\n")  # fmt: skip
    assert bulk.code == 1, bulk.err
    ids = tmp_path / "queued.json"
    ids.write_text(bulk.out)
    failed = next(j["jobId"] for j in bulk.json()["jobs"] if j["jobName"] == "one_b")
    result = aws("rerun", failed, "--json")
    assert result.code == 0, result.err
    (made,) = result.json()["reruns"]
    assert (made["jobName"], made["indices"]) == ("one_b-rerun", None)
    sent = moto.submitted()[-1]
    assert sent["containerOverrides"]["command"] == ["one", "b"] and "arrayProperties" not in sent
    assert {e["name"]: e["value"] for e in sent["containerOverrides"]["environment"]} == {"K": "v"}
    # The one that succeeded has nothing to re-run: the whole call is refused before anything is submitted.
    refused = aws("rerun", "--ids-from", str(ids))
    assert refused.code == 2 and "SUCCEEDED, not FAILED, and no array: nothing to re-run" in refused.err


def test_a_job_of_another_project_s_queue_is_not_rerun(aws, cli, moto: Moto, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    write_job(theirs, "job", '{ queue = "other"; command = [ "x" ]; image = "busybox"; }')
    moto.shim.scripts["job"] = Script(path=[("RUNNING", 0.01)], exit_codes=[1])
    queued = cli("--jobs", str(theirs), "--backend", "aws", "queue", "job", "--wait", "--json")
    assert queued.code == 1, queued.err
    job_id = queued.json()["jobs"][0]["jobId"]
    moto.proxy.clear()
    result = aws("rerun", job_id)
    assert (result.code, result.err) == (
        2,
        f"error: {job_id}: in queue other, not one of this project's (default): nothing re-run\n",
    )
    assert moto.proxy.received["SubmitJob"] == 0


def test_a_rerun_of_a_fair_share_job_is_a_request_botocore_s_model_accepts() -> None:
    """Every field taken from DescribeJobs is one SubmitJob takes (a priority is sent as schedulingPriorityOverride)."""
    import botocore.session
    from botocore.validate import ParamValidator

    job = {
        "jobId": "a1", "jobName": "scan", "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/scan:3",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/fair", "status": "FAILED",
        "shareIdentifier": "teamA", "schedulingPriority": 40, "propagateTags": True,
        "parameters": {"computeOnAwsHash": "abc"}, "timeout": {"attemptDurationSeconds": 600},
        "retryStrategy": {"attempts": 3, "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"}]},
        "tags": {"team": "a", "aws:batch:x": "y"}, "arrayProperties": {"size": 10},
        "container": {"command": ["scan"], "environment": [{"name": "AWS_BATCH_JOB_ID", "value": "a1"},
                                                          {"name": "MODE", "value": "full"}],
                      "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]},
    }  # fmt: skip
    (rerun,) = plan_reruns(job, [2, 5])
    model = botocore.session.get_session().get_service_model("batch").operation_model("SubmitJob").input_shape
    report = ParamValidator().validate(dict(rerun.request), model)
    assert not report.has_errors(), report.generate_report()
    assert rerun.request["schedulingPriorityOverride"] == 40 and rerun.request["shareIdentifier"] == "teamA"
    assert "aws:batch:x" not in rerun.request["tags"]
    assert [e["name"] for e in rerun.request["containerOverrides"]["environment"]] == ["MODE", INDICES_VARIABLE]
