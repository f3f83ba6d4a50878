"""Benchmark 5: the local backend against `xargs -P2`, on 2 slots (max_vcpus 2, a job takes 1 vCPU).

(a) `seq 200 | xargs -P2 -n1 true`: the floor for 200 trivial commands two at a time; (b) with a worker already
running, `queue tick --args-from` of 200 argument lines then `wait --ids-from`: the whole call's wall time, and the
span from the first job's start to the last one's end (read from the local store); (c) with the worker idle, one
job's time from being queued (jobs.created_at) to its start (attempts.started_at), and from the `queue` command's
launch, median of 10; (d) the idle
worker's CPU over 5 s (from /proc).

    python local_200.py
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import COMPUTE_ON_AWS, timed

JOBS = 200


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:5])}...: exit {result.returncode}: {result.stderr.strip()[-800:]}")
    return result


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = root / "state"
        for name in ("tick", "hold"):
            (root / "jobs" / name).mkdir(parents=True)
        (root / "jobs" / "tick" / "default.nix").write_text(
            '{ queue = "q"; command = [ "true" ]; image = "x"; vcpus = 1; memory = 128; }\n'
        )
        (root / "jobs" / "hold" / "default.nix").write_text(
            '{ queue = "q"; command = [ "sleep" "0.2" ]; image = "x"; vcpus = 1; memory = 128; }\n'
        )
        config = root / "compute-on-aws.yaml"
        config.write_text(
            json.dumps(
                {"backend": "local", "local": {"state_dir": str(state), "max_vcpus": 2, "autostart_worker": False}}
            )
        )
        base = [COMPUTE_ON_AWS, "--jobs", str(root / "jobs"), "--config", str(config)]
        listing = root / "args.txt"
        listing.write_text("".join(f"{i}\n" for i in range(JOBS)))

        xargs, _ = timed(lambda: _run(["sh", "-c", f"seq {JOBS} | xargs -P2 -n1 true"]))

        worker = subprocess.Popen(
            [*base, "worker"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(1.0)  # the worker up and idle
            queued_file = root / "queued.json"

            def queue_and_wait() -> None:
                queued = _run([*base, "queue", "tick", "--args-from", str(listing), "--json"])
                queued_file.write_text(queued.stdout)
                _run([*base, "wait", "--ids-from", str(queued_file)])

            whole, _ = timed(queue_and_wait)
            db = sqlite3.connect(state / "state.sqlite")
            first, last = db.execute("SELECT MIN(started_at), MAX(stopped_at) FROM attempts").fetchone()

            starts, from_command = [], []
            for _ in range(10):
                launched = time.time()
                job_id = json.loads(_run([*base, "queue", "hold", "--json"]).stdout)["jobs"][0]["jobId"]
                _run([*base, "wait", job_id])
                created, started = db.execute(
                    "SELECT j.created_at, a.started_at FROM jobs j JOIN attempts a USING (job_id) WHERE job_id = ?",
                    (job_id,),
                ).fetchone()
                starts.append(started - created)
                from_command.append(started - launched)
            db.close()

            time.sleep(1.0)
            before = _cpu_seconds(worker.pid)
            time.sleep(5.0)
            idle_cpu = _cpu_seconds(worker.pid) - before
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    results = {
        "jobs": JOBS,
        "xargs_seconds": xargs,
        "span_seconds": last - first,
        "span_vs_xargs": (last - first) / xargs,
        "queue_and_wait_seconds": whole,
        "queue_to_running_median": statistics.median(starts),
        "command_to_running_median": statistics.median(from_command),
        "idle_cpu_seconds_in_5s": idle_cpu,
    }
    print(
        f"xargs -P2: {xargs:.2f} s; local: first start to last end {results['span_seconds']:.2f} s "
        f"({results['span_vs_xargs']:.1f}x), queue + wait {whole:.2f} s; queue to running "
        f"{results['queue_to_running_median'] * 1000:.0f} ms (median of 10; "
        f"{results['command_to_running_median']:.2f} s from the queue command's start); "
        f"idle worker {idle_cpu:.3f} CPU-s in 5 s",
        file=sys.stderr,
    )
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
