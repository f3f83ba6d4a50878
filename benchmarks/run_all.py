"""Every benchmark in one run (so that their ratios share one machine's mood): prints a Markdown report, writes the
figures to benchmarks/results.json. From the repository root: `.venv/bin/python benchmarks/run_all.py`."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faults_1000
import queue_1000
import repo_size
import wait_1000


def main() -> None:
    results = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "queue_1000": queue_1000.main(),
        "faults_1000": faults_1000.main(),
        "wait_1000": wait_1000.main(),
        "repo_size": repo_size.main(),
    }
    (Path(__file__).resolve().parent / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    q, f, w, r = results["queue_1000"], results["faults_1000"], results["wait_1000"], results["repo_size"]
    lines = [
        f"Measured {results['when']} on {results['machine']}.",
        "",
        "1. 1000 distinct jobs queued (moto, no rate limit; the tool's limiter raised):",
        "",
        "| how | wall time | Batch calls | vs one compute-on-aws call |",
        "|---|---|---|---|",
    ]
    for key in ("aws-cli", "boto3", "processes", "bulk"):
        row = q[key]
        ratio = f"{row['ratio']:.1f}x slower" if "ratio" in row else "1x"
        lines.append(f"| {row['label']} ({row['measured']}) | {row['seconds']:.1f} s | {row['calls']} | {ratio} |")
    lines += [
        "",
        "2. 1000 jobs in one call at 50 calls/s (429 beyond), floor 20 s:",
        "",
        "| proxy | wall time | vs floor | exit | jobs on the server | names twice | Batch calls |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {label} | {row['seconds']:.1f} s | {row['seconds'] / row['floor']:.2f}x | {row['exit']} | "
            f"{row['jobs_on_server']} | {row['names_twice']} | {row['calls']} |"
            for label, row in (("limit + 5% 500s + 3% lost answers", f["faults"]), ("limit only", f["limit_only"]))
        ),
        "",
        f"3. wait over {w['jobs']} jobs: {w['calls_per_poll']:.1f} Batch calls per poll ({w['polls']} polls).",
        "",
        "4. One repository of 10, 500 and 2000 declared jobs (median of 5 runs; Batch calls of one run):",
        "",
        "| declared jobs | queue of one job | jobs | list |",
        "|---|---|---|---|",
    ]
    for size in ("10", "500", "2000"):
        row = r[size]
        cells = [f"{row[c]['seconds']:.2f} s, {row[c]['calls']:g} calls" for c in ("queue", "jobs", "list")]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines += ["", f"queue of one job, 2000 declared vs 10: {r['queue_ratio_2000_to_10']:.2f}x."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
