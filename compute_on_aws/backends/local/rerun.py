"""Re-running the failed children of a local array (or a failed local job), as `rerun` does on Batch: the same
plan (planning/rerun.py), inserted as a new job in one transaction, unless a re-run of it is still queued or running."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

from compute_on_aws.backends.local.described import view_of
from compute_on_aws.backends.local.store import ACTIVE, Store, insert_job, now, transaction
from compute_on_aws.errors import UserError
from compute_on_aws.planning.rerun import Rerun, RerunOutcome, check_rerunnable, plan_reruns

# What a re-run keeps of the job it re-runs: its definition, queue, resources, retries, timeout, secrets and program.
_KEPT = (
    "job",
    "queue",
    "queue_priority",
    "definition",
    "vcpus",
    "attempts_max",
    "retry_rules",
    "timeout",
    "secrets",
    "drv",
)


def _described(row: sqlite3.Row) -> dict[str, Any]:
    """The job as DescribeJobs would give it, for the planner."""
    environment = json.loads(row["environment"] or "{}")
    return {
        "jobId": row["job_id"],
        "jobName": row["job_name"],
        "jobDefinition": row["definition"],
        "jobQueue": row["queue"],
        "container": {
            "command": json.loads(row["command"] or "[]"),
            "environment": [{"name": k, "value": v} for k, v in environment.items()],
        },
    }


def plan_rerun(store: Store, job_id: str) -> list[Rerun]:
    db = store.connect()
    try:
        row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise UserError(f"{job_id}: no such job in {store.root} (a job of AWS Batch?)")
        if row["parent_id"] is not None:
            raise UserError(f"{job_id}: a child of array {row['parent_id']}: re-run the array")
        failed = [
            r[0]
            for r in db.execute(
                "SELECT array_index FROM jobs WHERE parent_id = ? AND status = 'FAILED' ORDER BY array_index", (job_id,)
            )
        ]
        view = view_of(db, row)
        checked = check_rerunnable(job_id, view.status, array=bool(view.array_size), failed=failed)
        return plan_reruns(_described(row), checked)
    finally:
        db.close()


def submit_reruns(store: Store, reruns: Sequence[Rerun]) -> list[RerunOutcome]:
    """In one transaction: each re-run inserted (with its children), unless one of its name is active in its queue."""
    db = store.connect()
    try:
        with transaction(db):
            outcomes = [_submit(db, rerun) for rerun in reruns]
    finally:
        db.close()
    if any(o.outcome == "submitted" for o in outcomes):
        store.wake_workers()
    return outcomes


def _submit(db: sqlite3.Connection, rerun: Rerun) -> RerunOutcome:
    request, name = rerun.request, rerun.request["jobName"]
    active = db.execute(
        "SELECT job_id FROM jobs WHERE queue = ? AND job_name = ? AND parent_id IS NULL "  # noqa: S608
        f"AND status IN ({','.join('?' * len(ACTIVE))}) ORDER BY seq LIMIT 1",
        (request["jobQueue"], name, *ACTIVE),
    ).fetchone()
    if active is not None:
        return RerunOutcome(name, active["job_id"], rerun.indices, "active", request)
    row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (rerun.of,)).fetchone()
    new_id = str(uuid.uuid4())
    overrides = request["containerOverrides"]
    size = request.get("arrayProperties", {}).get("size")
    base = {
        **{k: row[k] for k in _KEPT},
        "job_name": name,
        "depends_on": "[]",
        "command": json.dumps(overrides.get("command", [])),
        "environment": json.dumps({e["name"]: e["value"] for e in overrides.get("environment", [])}),
        "status": "SUBMITTED",
        "created_at": now(),
    }
    insert_job(db, {**base, "job_id": new_id, "array_size": size, "is_parent": 1 if size else 0})
    for index in range(size or 0):
        insert_job(db, {**base, "job_id": f"{new_id}:{index}", "parent_id": new_id, "array_index": index})
    return RerunOutcome(name, new_id, rerun.indices, "submitted", request)
