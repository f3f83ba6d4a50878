"""Benchmark 2: 1000 jobs in one `compute-on-aws queue` call through a proxy that behaves like a bad day on AWS: 50
calls/s per account (429 beyond), 5% answered 500 (half before reaching moto, half after), 3% of answers lost (the
request reaches moto, the connection closes). The floor is 1000 SubmitJob / 50 per s = 20 s. The tool runs at
aws.calls_per_second = 50: the whole account's budget, as if no other tool used it."""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from harness import (
    COMPUTE_ON_AWS,
    CREDENTIALS,
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
ACTIONS = ("SubmitJob", "ListJobs", "DescribeJobs", "DescribeJobDefinitions", "RegisterJobDefinition", "TerminateJob")


def main(jobs: int = JOBS) -> dict[str, Any]:
    """The run with faults, and the same run with the rate limit alone (what the faults cost)."""
    return {"faults": measure(jobs, faults=True), "limit_only": measure(jobs, faults=False)}


def measure(jobs: int, *, faults: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, moto(hold=True) as url:
        root = Path(tmp)
        folder = jobs_folder(root, 1)
        config = config_file(root, 50)
        listing = root / "tenants.txt"
        listing.write_text("".join(f"tenant-{i:04d}\n" for i in range(jobs)))
        rates = {"error-before": 0.025, "error-after": 0.025, "close-after": 0.03} if faults else {}
        with fault_proxy(url, calls_per_second=50, rates={a: rates for a in ACTIONS}, seed=7) as proxy:
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
            seconds, result = timed(lambda: run(command, environment(proxy.url), allow_failure=True))
            injected = Counter({f"{a} {f}": n for (a, f), n in proxy.injected.items()})
            calls = batch_calls(proxy)
        import boto3

        batch = boto3.client("batch", endpoint_url=url, region_name=REGION, **CREDENTIALS)
        listed = batch.list_jobs(jobQueue=QUEUE)["jobSummaryList"]  # moto: every status, no paging
        names = Counter(j["jobName"] for j in listed)
    figures = {
        "seconds": seconds,
        "floor": jobs / 50,
        "exit": result.returncode,
        "jobs_on_server": len(listed),
        "names_twice": sum(1 for n in names.values() if n > 1),
        "calls": calls,
        "injected": dict(injected.most_common()),
        "stderr_tail": result.stderr.strip().splitlines()[-3:],
    }
    print(
        f"{jobs} jobs through {'faults' if faults else 'the rate limit alone'}: {seconds:.1f} s "
        f"(floor {jobs / 50:.0f} s), exit {result.returncode}, "
        f"{len(listed)} jobs on the server, {figures['names_twice']} names twice, {calls} calls",
        file=sys.stderr,
    )
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
