"""Reasons that say what to do: each of Batch's reasons for a stuck RUNNABLE or a FAILED job, fed as Batch gives it,
and the hint `status` and `wait` print (and `--json` carries), naming the attribute or setting to change. Then the
same through moto over HTTP: a job killed for its memory, as DescribeJobs describes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Script, write_job

from compute_on_aws.cli.watching import status_lines
from compute_on_aws.watching.views import Attempt, JobView

OOM = "OutOfMemoryError: Container killed due to memory usage"
EXITED = "Essential container in task exited"
PULL = "CannotPullContainerError: "


def failed(reason: str | None = EXITED, *, container: str | None = None, exit_code: int | None = None,
           attempts: int = 1, **given: Any) -> JobView:  # fmt: skip
    """A FAILED job as Batch describes it: the job's reason, and its attempts' (the container's own reason)."""
    tried = tuple(Attempt(exit_code=exit_code, status_reason=container or reason) for _ in range(attempts))
    return JobView(job_id="j-1", job_name="etl_day1", status="FAILED", status_reason=reason, exit_code=exit_code,
                   attempts=tried, **given)  # fmt: skip


def runnable(reason: str) -> JobView:
    return JobView(job_id="j-1", job_name="etl", status="RUNNABLE", status_reason=reason)


CASES = {
    "out of memory": (
        failed(container=OOM, exit_code=137, memory=2048),
        "the container used more than its 2048 MiB: raise `memory` in the job's declaration",
    ),
    "killed, no reason": (
        failed(exit_code=137, memory=512),
        "the program was killed (SIGKILL, exit 137), most often for using more than its 512 MiB: raise `memory` "
        "in the job's declaration",
    ),
    "no such tag": (
        failed(PULL + "pull image manifest has been retried 5 time(s): registry.example/jobs:abc: not found"),
        "the image tag is not in the registry: queue the job again (queue pushes a Nix-built image first), or fix "
        "the job's `image`",
    ),
    "registry auth": (
        failed(PULL + "Error response from daemon: Get https://123.dkr.ecr/v2/: no basic auth credentials"),
        "the registry refused the pull: the execution role (roles.execution, executionRoleArn) needs to pull from "
        "it; `compute-on-aws iam-policy --role execution` prints what it needs",
    ),
    "disk full": (
        failed(PULL + "failed to register layer: write /usr/lib/x: no space left on device"),
        "the instance's disk is full, so the image could not be unpacked: on Fargate raise `ephemeralStorage`; on "
        "EC2 give the compute environment larger volumes (a launch template)",
    ),
    "secrets": (
        failed(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
            "failed: unable to retrieve secret from asm: AccessDeniedException"
        ),
        "ECS could not read the job's secrets or registry credentials: the execution role needs them "
        "(`compute-on-aws iam-policy --role execution`), each secret or parameter must exist, and the subnets must "
        "reach Secrets Manager, SSM and the registry",
    ),
    "spot reclaimed on every attempt": (
        failed("Host EC2 (instance i-0abc) terminated.", attempts=3, max_attempts=3),
        "its instance went away (a Spot reclaim or a host failure) on the last of 3 attempts: raise `attempts`, or "
        "queue it on on-demand compute",
    ),
    "spot reclaim not retried": (
        failed("Host EC2 (instance i-0abc) terminated.", attempts=1, max_attempts=3),
        "its instance went away (a Spot reclaim or a host failure) and its `retryRules` did not retry it: add "
        '{ action = "retry"; onStatusReason = "Host EC2*"; } (the default rules do)',
    ),
    "timeout": (
        failed("Job attempt duration exceeded timeout", timeout=3600),
        "an attempt ran past its timeout of 3600 s: raise `attemptDurationSeconds` in the job's declaration",
    ),
    "dependency": (
        failed("Dependent Job failed", attempts=0),
        "a job it runs after failed: `compute-on-aws status` of that one says why; queue again once it succeeds",
    ),
    "terminated": (
        failed(exit_code=143),
        "it was stopped (SIGTERM, exit 143): terminated by `cancel`, TerminateJob or Batch, not by itself",
    ),
    "its own failure": (
        failed(exit_code=3),
        "the program exited with 3: `compute-on-aws logs j-1` shows its output",
    ),
    "undetermined": (
        runnable("UNDETERMINED - Batch job is blocked, root cause is undetermined."),
        "Batch cannot tell why the queue is blocked: look at the compute environment's instances (do they join its "
        "ECS cluster? can the subnets reach ECS and the registry?) and its launch template",
    ),
    "action required": (
        runnable("ACTION_REQUIRED - CE(s) associated with the job queue are invalid."),
        "a compute environment of the queue is INVALID: `compute-on-aws infra plan` shows what differs from the "
        "declaration; fix it and `infra apply` (the job starts then)",
    ),
    "max vcpus": (
        runnable("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue cannot meet"),
        "the compute environment's maxvCpus is below what the job needs: raise max_vcpus of its compute in "
        "compute-on-aws.yaml (then infra apply), or lower the job's vcpus",
    ),
    "consumable resource (local)": (
        runnable("waiting for consumable resource db (1 needed, 0 free)"),
        "other jobs hold the resource: it starts when they end; raise its total under consumable_resources in "
        "compute-on-aws.yaml for more at once",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_reason_gets_the_hint_that_names_what_to_change(case: str) -> None:
    view, expected = CASES[case]
    assert view.hint == expected
    assert view.to_json()["hint"] == expected
    assert f"  hint: {expected}" in status_lines(view)


def test_no_hint_where_there_is_nothing_to_add() -> None:
    assert failed("Cancelled by user").hint is None  # cancelled before it started: no exit code
    assert JobView(job_id="j", job_name="etl", status="RUNNING").hint is None
    assert JobView(job_id="j", job_name="etl", status="SUCCEEDED", exit_code=0).hint is None
    assert runnable("some reason Batch may add one day").hint is None


def test_a_job_killed_for_its_memory_on_aws_says_which_memory_to_raise(cli, scripted, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "etl", '{ queue = "default"; command = [ "etl" ]; image = "busybox"; memory = 3072; }')
    scripted["etl"] = Script(exit_codes=[137], container_reason=OOM)
    queued = cli("--jobs", str(jobs), "--backend", "aws", "queue", "etl", "--json")
    assert queued.code == 0, queued.err
    job_id = queued.json()["jobs"][0]["jobId"]
    waited = cli("--jobs", str(jobs), "--backend", "aws", "wait", job_id)
    assert waited.code == 1
    hint = "the container used more than its 3072 MiB: raise `memory` in the job's declaration"
    assert waited.err.splitlines()[-2:] == [
        f"failed: etl {job_id}: {EXITED}, exit code 137",
        f"  hint: {hint}",
    ]
    (view,) = cli("--jobs", str(jobs), "--backend", "aws", "status", job_id, "--json").json()["jobs"]
    assert (view["memory"], view["max_attempts"], view["hint"]) == (3072, 3, hint)
    assert view["attempts"][0]["status_reason"] == OOM
