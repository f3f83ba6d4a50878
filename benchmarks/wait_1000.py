"""Benchmark 3: `compute-on-aws wait` over 1000 queued jobs that stay queued (moto holding them) for 15 s: the Batch
calls it makes per poll. A poll is a burst of DescribeJobs calls; polls are told apart by the pause between them."""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import COMPUTE_ON_AWS, config_file, environment, fault_proxy, jobs_folder, moto, run

JOBS = 1000
WAIT_SECONDS = 15


def main(jobs: int = JOBS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, moto(hold=True) as url:
        root = Path(tmp)
        folder = jobs_folder(root, 1)
        config = config_file(root, 10000)
        listing = root / "tenants.txt"
        listing.write_text("".join(f"tenant-{i:04d}\n" for i in range(jobs)))
        with fault_proxy(url) as proxy:
            env = environment(proxy.url)
            base = [COMPUTE_ON_AWS, "--jobs", str(folder), "--config", str(config)]
            queued = run([*base, "queue", "tenant", "--args-from", str(listing), "--json"], env)
            ids = root / "queued.json"
            ids.write_text(queued.stdout)
            times: list[float] = []
            original = proxy.fault_for

            def noting(action: str) -> str | None:
                if action == "DescribeJobs":
                    times.append(time.monotonic())
                return original(action)

            proxy.fault_for = noting  # type: ignore[method-assign]
            proxy.received.clear()
            waited = run(
                [*base, "wait", "--ids-from", str(ids), "--timeout", str(WAIT_SECONDS)], env, allow_failure=True
            )
    polls = 1 + sum(1 for a, b in itertools.pairwise(times) if b - a > 0.5)
    figures = {
        "jobs": jobs,
        "exit": waited.returncode,
        "describe_calls": len(times),
        "other_calls": sum(n for a, n in proxy.received.items() if a != "DescribeJobs"),
        "polls": polls,
        "calls_per_poll": len(times) / polls,
    }
    print(
        f"wait over {jobs} jobs: {polls} polls, {figures['calls_per_poll']:.1f} calls per poll, "
        f"exit {waited.returncode}",
        file=sys.stderr,
    )
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
