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
import image_push
import local_200
import proxy_overhead
import queue_1000
import repo_size
import schedules_200
import watch_10000


def main() -> None:
    results = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "proxy_overhead": proxy_overhead.main(),
        "queue_1000": queue_1000.main(),
        "faults_1000": faults_1000.main(),
        "repo_size": repo_size.main(),
        "local_200": local_200.main(),
        "schedules_200": schedules_200.main(),
        "image_push": image_push.main(),
        "watch_10000": watch_10000.main(),
    }
    (Path(__file__).resolve().parent / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    q, f, r = results["queue_1000"], results["faults_1000"], results["repo_size"]
    p, loc, sch = results["proxy_overhead"], results["local_200"], results["schedules_200"]
    lines = [
        f"Measured {results['when']} on {results['machine']}.",
        "",
        f"0. One call through the counting proxy: {p['proxy_ms']:.1f} ms, straight to moto {p['direct_ms']:.1f} ms "
        f"({p['ratio']:.2f}x, median of {p['calls']}).",
        "",
        "1. 1000 distinct jobs queued (moto, no rate limit; the tool's limiter raised):",
        "",
        "| how | wall time | Batch calls | CPU | peak memory | time vs one compute-on-aws call |",
        "|---|---|---|---|---|---|",
    ]
    for key in queue_1000.WAYS:
        row = q[key]
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "1x" if key == "bulk" else "-"
        cpu = f"{row['cpu_seconds']:.2f} s" if "cpu_seconds" in row else "-"
        memory = f"{row['max_rss_mib']:.0f} MiB" if "max_rss_mib" in row else "-"
        lines.append(
            f"| {row['label']} ({row['measured']}) | {row['seconds']:.1f} s | {row['calls']} | {cpu} | {memory} "
            f"| {ratio} |"
        )
    lines += [
        "",
        f"`--json` of the one call: {q['bulk']['json_bytes'] / 1e6:.2f} MB for 1000 jobs, "
        f"{q['bulk-10000']['json_bytes'] / 1e6:.2f} MB for 10000.",
    ]
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
        "3. " + watch_10000.report(results["watch_10000"])[0],
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
    lines += [
        "",
        f"5. The local backend, {loc['jobs']} trivial jobs on 2 slots: first start to last end "
        f"{loc['span_seconds']:.2f} s against `xargs -P2` {loc['xargs_seconds']:.2f} s ({loc['span_vs_xargs']:.1f}x); "
        f"queue + wait {loc['queue_and_wait_seconds']:.2f} s; queued to started "
        f"{loc['queue_to_running_median'] * 1000:.0f} ms ({loc['command_to_running_median']:.2f} s from the queue "
        f"command's launch); idle worker {loc['idle_cpu_seconds_in_5s']:.3f} CPU-s in 5 s.",
        "",
        f"6. {sch['jobs']} scheduled jobs: `schedules plan` {sch['plan_seconds']:.2f} s, "
        f"{sum(sch['plan_calls'].values())} calls ({', '.join(f'{a} {n}' for a, n in sch['plan_calls'].items())}); "
        f"`schedules apply` creating them {sch['apply_seconds']:.1f} s, {sch['apply_calls']} calls.",
        "",
        "7. " + image_push.report(results["image_push"])[0],
        *image_push.report(results["image_push"])[1:],
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
