"""Following a local job: its state changes, and the lines its attempts write, until it ends."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from compute_on_aws.local.store import FINAL, Store, row_to_dict


def describe(db: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else row_to_dict(row)


class LogFollower:
    """Prints what the attempts of a job (and of its array children) add to their logs, in the order they ran."""

    def __init__(self, db: sqlite3.Connection, job_id: str, out: TextIO) -> None:
        self.db, self.job_id, self.out = db, job_id, out
        self.offsets: dict[str, int] = {}

    def pump(self, final: bool = False) -> None:
        rows = self.db.execute(
            "SELECT a.job_id, a.attempt, a.log_path, j.array_index FROM attempts a JOIN jobs j ON j.job_id = a.job_id "
            "WHERE a.job_id = ? OR j.parent_id = ? ORDER BY a.started_at, a.job_id",
            (self.job_id, self.job_id),
        ).fetchall()
        for row in rows:
            path = Path(row["log_path"])
            if not path.exists():
                continue
            offset = self.offsets.get(row["log_path"], 0)
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
            # Only whole lines: a line still being written is printed once it ends (or when the job ends).
            cut = len(data) if final else data.rfind(b"\n") + 1
            if final and data and not data.endswith(b"\n"):
                data += b"\n"
            if cut:
                self._print(data[: len(data) if final else cut], row["array_index"])
                self.offsets[row["log_path"]] = offset + cut

    def _print(self, data: bytes, index: int | None) -> None:
        text = data.decode(errors="replace")
        if index is not None:
            text = "".join(f"[{index}] {line}" for line in text.splitlines(keepends=True))
        self.out.write(text)
        self.out.flush()


def wait(
    store: Store,
    job_id: str,
    *,
    follow: bool,
    keep_worker: Callable[[], None] | None = None,
    interval: float = 0.2,
    err: TextIO | None = None,
) -> dict[str, Any]:
    """Waits until the job is SUCCEEDED or FAILED, telling each state change on stderr; returns the job.

    `keep_worker` is called every few seconds: a worker that died (or exited early) is replaced while we wait.
    """
    err = err or sys.stderr
    db = store.connect()
    follower = LogFollower(db, job_id, sys.stdout) if follow else None
    last = None
    next_worker_check = time.monotonic() + 2
    try:
        while True:
            if keep_worker is not None and time.monotonic() >= next_worker_check:
                keep_worker()
                next_worker_check = time.monotonic() + 2
            job = describe(db, job_id)
            if job is None:
                raise LookupError(job_id)
            if job["status"] != last:
                last = job["status"]
                reason = f" ({job['status_reason']})" if job["status_reason"] and last not in ("SUCCEEDED",) else ""
                print(f"{job['job_name']} {job_id}: {last}{reason}", file=err, flush=True)
            if follower is not None:
                follower.pump()
            if job["status"] in FINAL:
                if follower is not None:
                    follower.pump(final=True)
                return job
            time.sleep(interval)
    finally:
        db.close()
