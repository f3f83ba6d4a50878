"""A local job's rows (its job and attempts) read as the JobView users see of a job on either backend."""

from __future__ import annotations

import sqlite3

from compute_on_aws.backends.local import processes
from compute_on_aws.watching.views import Attempt, JobView

# What a STARTING or RUNNING job whose worker is gone says (the next worker recovers it).
WORKER_GONE = (
    "its local worker is gone (stopped or killed): the next worker to start (compute-on-aws worker, or the next "
    "queue) ends this attempt as a lost host, retried by the job's retry rules"
)


def live_workers(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """The workers whose process still runs (a killed one leaves its row)."""
    return [w for w in db.execute("SELECT * FROM workers") if processes.alive(w["pid"], w["identity"])]


def live_worker_ids(db: sqlite3.Connection) -> set[str]:
    return {w["worker_id"] for w in live_workers(db)}


def view_of(db: sqlite3.Connection, row: sqlite3.Row, live_workers: set[str] | None = None) -> JobView:
    """A local job as the same JobView the AWS backend gives. With `live_workers`, a job started by a worker not
    among them says that its worker is gone."""
    attempts = tuple(
        Attempt(
            exit_code=a["exit_code"],
            status_reason=a["status_reason"],
            log_stream=a["log_path"],
            started_at=a["started_at"],
            stopped_at=a["stopped_at"],
        )
        for a in db.execute("SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt", (row["job_id"],))
    )
    counts: dict[str, int] = {}
    if row["array_size"] is not None and row["parent_id"] is None:
        for child in db.execute(
            "SELECT status, COUNT(*) FROM jobs WHERE parent_id = ? GROUP BY status", (row["job_id"],)
        ):
            counts[child[0]] = child[1]
    return JobView(
        job_id=row["job_id"],
        job_name=row["job_name"],
        status=row["status"],
        status_reason=(
            WORKER_GONE
            if live_workers is not None
            and row["status"] in ("STARTING", "RUNNING")
            and row["is_parent"] == 0
            and row["worker_id"] not in live_workers
            else row["status_reason"]
        ),
        queue=row["queue"],
        definition=row["definition"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        exit_code=row["exit_code"],
        attempts=attempts,
        array_size=row["array_size"] if row["parent_id"] is None else None,
        array_counts=counts,
        log_stream=attempts[-1].log_stream if attempts else None,
        timeout=row["timeout"],
        max_attempts=row["attempts_max"],
    )
