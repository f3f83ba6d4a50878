"""Benchmark 1: 1000 distinct jobs queued, four ways, against one moto server (own process) behind a counting proxy.

(a) the replaced tool's way: an `aws batch list-jobs` and an `aws batch submit-job` process per job (50 timed,
    extrapolated to 1000); (b) a plain boto3 loop in one process (list by name, submit); (c) one `compute-on-aws queue`
    process per job (50 timed, extrapolated); (d) one `compute-on-aws queue tenant --args-from` call. moto has no rate
    limit, so (d) runs with aws.calls_per_second raised to 10000: this measures the tool's own cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

from harness import (
    COMPUTE_ON_AWS,
    CREDENTIALS,
    DEFINITION,
    QUEUE,
    REGION,
    batch_calls,
    config_file,
    environment,
    fault_proxy,
    jobs_folder,
    moto,
    run,
    timed,
)

JOBS = 1000
SAMPLE = 50


def aws_cli() -> str:
    """The AWS CLI (v1, from PyPI as awscli), in a virtualenv of its own: its pinned botocore is not ours."""
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "compute-on-aws-bench" / "awscli"
    program = home / "bin" / "aws"
    if not program.exists():
        venv.create(home, with_pip=True)
        subprocess.run([str(home / "bin" / "pip"), "install", "-q", "awscli"], check=True)
    return str(program)


def names(count: int, prefix: str) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(count)]


def cli_per_job(endpoint: str, aws: str) -> dict[str, Any]:
    env = environment(endpoint)

    def queue_all() -> None:
        for name in names(SAMPLE, "cli"):
            listed = run(
                [aws, "batch", "list-jobs", "--job-queue", QUEUE, "--filters", f"name=JOB_NAME,values={name}"], env
            )
            if not json.loads(listed.stdout)["jobSummaryList"]:
                run(
                    [
                        aws,
                        "batch",
                        "submit-job",
                        "--job-name",
                        name,
                        "--job-queue",
                        QUEUE,
                        "--job-definition",
                        DEFINITION,
                    ],
                    env,
                )

    seconds, _ = timed(queue_all)
    return {"seconds": seconds * JOBS / SAMPLE, "measured": f"{SAMPLE} jobs in {seconds:.1f} s, extrapolated"}


def boto3_loop(endpoint: str) -> dict[str, Any]:
    import boto3

    def queue_all() -> None:
        batch = boto3.client("batch", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)
        for name in names(JOBS, "boto3"):
            found = batch.list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": [name]}])
            if not found["jobSummaryList"]:
                batch.submit_job(jobName=name, jobQueue=QUEUE, jobDefinition=DEFINITION)

    seconds, _ = timed(queue_all)
    return {"seconds": seconds, "measured": f"{JOBS} jobs"}


def processes_per_job(endpoint: str, root: Path) -> dict[str, Any]:
    env = environment(endpoint)
    folder = jobs_folder(root / "per-job", 1)
    config = config_file(root / "per-job", 10000)

    def queue_all() -> None:
        for name in names(SAMPLE, "p"):
            run([COMPUTE_ON_AWS, "--jobs", str(folder), "--config", str(config), "queue", "tenant", name], env)

    seconds, _ = timed(queue_all)
    return {"seconds": seconds * JOBS / SAMPLE, "measured": f"{SAMPLE} jobs in {seconds:.1f} s, extrapolated"}


def one_call(endpoint: str, root: Path) -> dict[str, Any]:
    env = environment(endpoint)
    folder = jobs_folder(root / "bulk", 1)
    config = config_file(root / "bulk", 10000)
    listing = root / "tenants.txt"
    listing.write_text("".join(f"{name}\n" for name in names(JOBS, "bulk")))
    command = [
        COMPUTE_ON_AWS,
        "--jobs",
        str(folder),
        "--config",
        str(config),
        "queue",
        "tenant",
        "--args-from",
        str(listing),
        "--json",
    ]
    seconds, result = timed(lambda: run(command, env))
    queued = [j for j in json.loads(result.stdout)["jobs"] if j["outcome"] == "submitted"]
    assert len(queued) == JOBS, f"queued {len(queued)} of {JOBS}"
    return {"seconds": seconds, "measured": f"{JOBS} jobs"}


def main() -> dict[str, Any]:
    aws = aws_cli()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, label, measure in (
            ("aws-cli", "aws CLI, 2 processes per job (the replaced tool)", lambda e: cli_per_job(e, aws)),
            ("boto3", "boto3 loop, one process", boto3_loop),
            ("processes", "compute-on-aws, a process per job", lambda e: processes_per_job(e, Path(tmp))),
            ("bulk", "compute-on-aws, one call", lambda e: one_call(e, Path(tmp))),
        ):
            # A fresh server each: moto lists by scanning every job of the queue, so earlier runs' jobs would slow
            # the later ones.
            with moto() as url, fault_proxy(url) as proxy:
                figures = measure(proxy.url)
                calls = batch_calls(proxy)
                scale = JOBS / SAMPLE if "extrapolated" in figures["measured"] else 1
                results[key] = {"label": label, **figures, "calls": round(calls * scale)}
            print(
                f"{label}: {figures['seconds']:.1f} s ({figures['measured']}), {results[key]['calls']} calls",
                file=sys.stderr,
            )
    bulk = results["bulk"]["seconds"]
    for key in ("aws-cli", "boto3", "processes"):
        results[key]["ratio"] = results[key]["seconds"] / bulk
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
