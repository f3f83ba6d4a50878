"""Benchmark 6: `schedules plan` and `schedules apply` with 200 scheduled jobs, on moto behind the counting proxy.

`apply` creates 200 schedules (registering 200 definitions); `plan` then reads them all and finds nothing to change:
its wall time (median of 3) and its calls, per action. Each GetSchedule and DescribeJobDefinitions is one call per
schedule and per definition (Scheduler has no call that reads many, and Batch's by-name lookup takes one name), so
the tool makes them concurrently, within aws.calls_per_second (50 here, Batch's documented limit).

    python schedules_200.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import COMPUTE_ON_AWS, REGION, environment, fault_proxy, moto, run, timed

JOBS = 200


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, moto() as url, fault_proxy(url) as proxy:
        root = Path(tmp)
        for i in range(JOBS):
            folder = root / "jobs" / f"report-{i}"
            folder.mkdir(parents=True)
            (folder / "default.nix").write_text(
                f'{{ queue = "default"; command = [ "report" "{i}" ]; image = "busybox:1.36"; '
                f'schedule = "{i % 60} 5 * * *"; }}\n'
            )
        config = root / "compute-on-aws.yaml"
        config.write_text(
            f"region: {REGION}\naws:\n  calls_per_second: 50\n"
            "roles:\n  scheduler: arn:aws:iam::123456789012:role/scheduler\n"
        )
        env = environment(proxy.url)
        base = [COMPUTE_ON_AWS, "--jobs", str(root / "jobs"), "--config", str(config), "schedules"]
        apply_seconds, _ = timed(lambda: run([*base, "apply"], env))
        applied_calls = sum(proxy.received.values())
        proxy.received.clear()
        runs = [timed(lambda: run([*base, "plan", "--json"], env)) for _ in range(3)]
        plan = json.loads(runs[-1][1].stdout)
        calls = {action: count // 3 for action, count in sorted(proxy.received.items())}
    changed = [c for c in plan.get("changes", []) if c.get("action") != "unchanged"]
    results = {
        "jobs": JOBS,
        "apply_seconds": apply_seconds,
        "apply_calls": applied_calls,
        "plan_seconds": statistics.median(seconds for seconds, _ in runs),
        "plan_calls": calls,
        "plan_changes": len(changed),
    }
    print(
        f"schedules: apply {apply_seconds:.1f} s ({applied_calls} calls); plan {results['plan_seconds']:.2f} s "
        f"(median of 3), {sum(calls.values())} calls {calls}, {len(changed)} changes",
        file=sys.stderr,
    )
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
