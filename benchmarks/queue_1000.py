"""Benchmark 1: 1000 distinct jobs queued, four ways, against one moto server (own process) behind a counting proxy.

(a) the replaced tool's way: an `aws batch list-jobs` and an `aws batch submit-job` process per job (50 timed,
    extrapolated to 1000); (b) a plain boto3 loop in one process (list by name, submit); (c) boto3 as a user who knows
    ThreadPoolExecutor writes it (boto3_threads.py: list the queue once, submit from 8 or 16 threads); (d) one
    `compute-on-aws queue` process per job (50 timed, extrapolated); (e) one `compute-on-aws queue tenant --args-from`
    call. moto has no rate limit, so (e) runs with aws.calls_per_second raised to 10000: this measures the tool's own
    cost. The threaded script and the one call are timed as processes, with their CPU time and peak memory.

    python queue_1000.py [WAY...]    (ways: aws-cli boto3 boto3-8 boto3-16 processes bulk bulk-10000; all by
    default; bulk-10000 is the one call with 10000 jobs, for its peak memory)
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
    measured,
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


def boto3_threads(endpoint: str, root: Path, threads: int) -> dict[str, Any]:
    listing = root / f"threads-{threads}.txt"
    listing.write_text("".join(f"{name}\n" for name in names(JOBS, f"t{threads}")))
    script = str(Path(__file__).resolve().parent / "boto3_threads.py")
    command = [sys.executable, script, endpoint, QUEUE, DEFINITION, str(threads), str(listing)]
    figures = measured(command, environment(endpoint))
    assert int(figures.pop("stdout")) == JOBS
    return {**figures, "measured": f"{JOBS} jobs"}


def processes_per_job(endpoint: str, root: Path) -> dict[str, Any]:
    env = environment(endpoint)
    folder = jobs_folder(root / "per-job", 1)
    config = config_file(root / "per-job", 10000)

    def queue_all() -> None:
        for name in names(SAMPLE, "p"):
            run([COMPUTE_ON_AWS, "--jobs", str(folder), "--config", str(config), "queue", "tenant", name], env)

    seconds, _ = timed(queue_all)
    return {"seconds": seconds * JOBS / SAMPLE, "measured": f"{SAMPLE} jobs in {seconds:.1f} s, extrapolated"}


def one_call(endpoint: str, root: Path, jobs: int = JOBS) -> dict[str, Any]:
    env = environment(endpoint)
    folder = jobs_folder(root / f"bulk-{jobs}", 1)
    config = config_file(root / f"bulk-{jobs}", 10000)
    listing = root / f"tenants-{jobs}.txt"
    listing.write_text("".join(f"{name}\n" for name in names(jobs, "bulk")))
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
    figures = measured(command, env)
    output = figures.pop("stdout")
    queued = [j for j in json.loads(output)["jobs"] if j["outcome"] == "submitted"]
    assert len(queued) == jobs, f"queued {len(queued)} of {jobs}"
    return {**figures, "measured": f"{jobs} jobs", "json_bytes": len(output.encode())}


WAYS = ("aws-cli", "boto3", "boto3-8", "boto3-16", "processes", "bulk", "bulk-10000")


def main(ways: tuple[str, ...] = WAYS) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for key, label, measure in (
            ("aws-cli", "aws CLI, 2 processes per job (the replaced tool)", lambda e: cli_per_job(e, aws_cli())),
            ("boto3", "boto3 loop, one process", boto3_loop),
            ("boto3-8", "boto3, list once, submit from 8 threads", lambda e: boto3_threads(e, root, 8)),
            ("boto3-16", "boto3, list once, submit from 16 threads", lambda e: boto3_threads(e, root, 16)),
            ("processes", "compute-on-aws, a process per job", lambda e: processes_per_job(e, root)),
            ("bulk", "compute-on-aws, one call", lambda e: one_call(e, root)),
            ("bulk-10000", "compute-on-aws, one call of 10000 jobs", lambda e: one_call(e, root, 10000)),
        ):
            if key not in ways:
                continue
            # A fresh server each: moto lists by scanning every job in the queue, so earlier runs' jobs would slow
            # the later ones.
            with moto() as url, fault_proxy(url) as proxy:
                figures = measure(proxy.url)
                calls = batch_calls(proxy)
                scale = JOBS / SAMPLE if "extrapolated" in figures["measured"] else 1
                results[key] = {"label": label, **figures, "calls": round(calls * scale)}
            print(
                f"{label}: {figures['seconds']:.1f} s ({figures['measured']}), {results[key]['calls']} calls"
                + (
                    f", {figures['cpu_seconds']:.2f} CPU-s, {figures['max_rss_mib']:.0f} MiB"
                    if "cpu_seconds" in figures
                    else ""
                ),
                file=sys.stderr,
            )
    if "bulk" in results:
        bulk = results["bulk"]["seconds"]
        for key in results:
            if key not in ("bulk", "bulk-10000"):
                results[key]["ratio"] = results[key]["seconds"] / bulk
    return results


if __name__ == "__main__":
    print(json.dumps(main(tuple(sys.argv[1:]) or WAYS), indent=2))
