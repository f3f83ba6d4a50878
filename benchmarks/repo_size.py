"""Benchmark 4: how `queue` (of one job), `jobs` and `list` grow with the repository: 10, 500 and 2000 declared jobs.
Each figure is the median of 5 runs of the command as a user runs it (a process each, Nix evaluating the jobs
folder); calls are the Batch calls of one run."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import COMPUTE_ON_AWS, batch_calls, config_file, environment, fault_proxy, jobs_folder, moto, run, timed

SIZES = (10, 500, 2000)
RUNS = 5


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, moto() as url, fault_proxy(url) as proxy:
        env = environment(proxy.url)
        for size in SIZES:
            root = Path(tmp) / str(size)
            folder = jobs_folder(root, size)
            base = [COMPUTE_ON_AWS, "--jobs", str(folder), "--config", str(config_file(root, 40))]
            figures: dict[str, Any] = {}
            for command, args in (
                ("queue", lambda i: ["queue", "tenant-1", f"run-{i}"]),
                ("jobs", lambda i: ["jobs"]),
                ("list", lambda i: ["list"]),
            ):
                seconds, calls = [], []
                for i in range(RUNS):
                    proxy.received.clear()
                    command_line = [*base, *args(i)]
                    took, _ = timed(lambda line=command_line: run(line, env))
                    seconds.append(took)
                    calls.append(batch_calls(proxy))
                figures[command] = {"seconds": statistics.median(seconds), "calls": statistics.median(calls)}
            results[str(size)] = figures
            print(
                f"{size} jobs: "
                + ", ".join(f"{c} {f['seconds']:.2f} s / {f['calls']:g} calls" for c, f in figures.items()),
                file=sys.stderr,
            )
    results["queue_ratio_2000_to_10"] = results["2000"]["queue"]["seconds"] / results["10"]["queue"]["seconds"]
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
