"""`status`, `wait` and `cancel --ids-from` over 10000 queued jobs (moto holding them queued): the Batch calls each
makes and its time. The budget: DescribeJobs takes 100 ids a call, so one look at 10000 jobs is 100 calls; Batch has
no call that stops many jobs, so cancel is one CancelJob per unfinished job, plus the one look that tells queued from
started jobs. The baseline: boto3 at 16 threads doing the same (DescribeJobs in 100s, then CancelJob each).

Run: `.venv/bin/python benchmarks/watch_10000.py [JOBS]`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import COMPUTE_ON_AWS, REGION, config_file, environment, fault_proxy, jobs_folder, moto, run

JOBS = 10000


# The baseline as a user would write it, run as a process of its own (its start-up counted, as the tool's is).
THREADED_CANCEL = """
import sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
url, region, id_file = sys.argv[1:]
ids = open(id_file).read().split()
batch = boto3.client("batch", endpoint_url=url, region_name=region, config=Config(max_pool_connections=16),
                     aws_access_key_id="testing", aws_secret_access_key="testing")
with ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda chunk: batch.describe_jobs(jobs=chunk), [ids[i:i + 100] for i in range(0, len(ids), 100)]))
    list(pool.map(lambda job_id: batch.cancel_job(jobId=job_id, reason="bench"), ids))
"""


def _threaded_cancel(url: str, id_file: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", THREADED_CANCEL, url, REGION, str(id_file)], check=True)
    return time.perf_counter() - start


def main(jobs: int = JOBS) -> dict[str, Any]:
    figures: dict[str, Any] = {"jobs": jobs, "command": f".venv/bin/python benchmarks/watch_10000.py {jobs}"}
    with tempfile.TemporaryDirectory() as tmp, moto(hold=True) as url:
        root = Path(tmp)
        folder = jobs_folder(root, 1)
        config = config_file(root, 10000)
        listing = root / "tenants.txt"
        listing.write_text("".join(f"tenant-{i:05d}\n" for i in range(jobs)))
        with fault_proxy(url) as proxy:
            env = environment(proxy.url)
            base = [COMPUTE_ON_AWS, "--jobs", str(folder), "--config", str(config)]
            queued = json.loads(run([*base, "queue", "tenant", "--args-from", str(listing), "--json"], env).stdout)
            ids = [job["jobId"] for job in queued["jobs"]]
            id_file = root / "ids.txt"
            id_file.write_text("\n".join(ids) + "\n")
            half = root / "half.txt"
            half.write_text("\n".join(ids[: jobs // 2]) + "\n")
            for name, command in (
                ("status", [*base, "status", "--ids-from", str(id_file), "--json"]),
                ("wait_5s", [*base, "wait", "--ids-from", str(id_file), "--timeout", "5"]),
                ("cancel", [*base, "cancel", "--ids-from", str(half)]),
            ):
                proxy.received.clear()
                start = time.perf_counter()
                result = run(command, env, allow_failure=True)
                figures[name] = {
                    "seconds": time.perf_counter() - start,
                    "exit": result.returncode,
                    "calls": dict(proxy.received),
                }
            cancelled = jobs // 2
            figures["cancel"]["budget"] = math.ceil(cancelled / 100) + cancelled
            figures["cancel"]["within_budget"] = sum(figures["cancel"]["calls"].values()) <= figures["cancel"]["budget"]
            figures["status"]["budget"] = math.ceil(jobs / 100)
            rest = root / "rest.txt"
            rest.write_text("\n".join(ids[jobs // 2 :]) + "\n")
            figures["boto3_16_cancel_seconds"] = _threaded_cancel(proxy.url, rest)
            figures["cancel_vs_boto3_16"] = figures["cancel"]["seconds"] / figures["boto3_16_cancel_seconds"]
    print(json.dumps(figures), file=sys.stderr)
    return figures


def report(f: dict[str, Any]) -> list[str]:
    def calls(row: dict[str, Any]) -> str:
        return ", ".join(f"{action} {n}" for action, n in sorted(row["calls"].items()))

    return [
        f"Over {f['jobs']} queued jobs: `status --ids-from` {f['status']['seconds']:.1f} s ({calls(f['status'])}; "
        f"budget {f['status']['budget']}); `wait` timing out after 5 s: {f['wait_5s']['seconds']:.1f} s "
        f"({calls(f['wait_5s'])}, {f['status']['budget']} a poll); "
        f"`cancel --ids-from` of {f['jobs'] // 2} {f['cancel']['seconds']:.1f} s "
        f"({calls(f['cancel'])}; budget {f['cancel']['budget']}, "
        f"{'within' if f['cancel']['within_budget'] else 'OVER'}), against 16 boto3 threads cancelling the other "
        f"{f['jobs'] - f['jobs'] // 2} in {f['boto3_16_cancel_seconds']:.1f} s ({f['cancel_vs_boto3_16']:.2f}x).",
    ]


if __name__ == "__main__":
    outcome = main(int(sys.argv[1]) if len(sys.argv) > 1 else JOBS)
    print(json.dumps(outcome, indent=2))
    print("\n".join(report(outcome)))
