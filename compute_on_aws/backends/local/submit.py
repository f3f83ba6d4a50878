"""The local backend's side effects: the requests AWS Batch would get, kept in SQLite for a worker to run; workers
started; jobs cancelled."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compute_on_aws.backends.local.described import live_worker_ids, live_workers
from compute_on_aws.backends.local.store import (
    FINAL,
    Store,
    default_state_dir,
    insert_job,
    now,
    private_log,
    transaction,
)
from compute_on_aws.declared.config import Config, LocalSettings
from compute_on_aws.errors import ComputeOnAwsError, UserError
from compute_on_aws.planning.plan import Outcome, Plan
from compute_on_aws.planning.render import HASH_PARAMETER

if TYPE_CHECKING:
    from compute_on_aws.backends import OnResult


def store_for(settings: LocalSettings, state_dir: Path | None = None) -> Store:
    return Store(state_dir or settings.state_dir or default_state_dir())


def max_vcpus(settings: LocalSettings) -> float:
    return settings.max_vcpus or float(os.cpu_count() or 1)


def _ensure_definition(db: sqlite3.Connection, definition: dict[str, Any]) -> tuple[str, bool]:
    """Revisions as Batch keeps them: reuse one with the same content hash, else add the next."""
    name, wanted = definition["jobDefinitionName"], definition["parameters"][HASH_PARAMETER]
    same = db.execute("SELECT MAX(revision) FROM definitions WHERE name = ? AND hash = ?", (name, wanted)).fetchone()[0]
    if same is not None:
        return f"{name}:{same}", False
    last = db.execute("SELECT MAX(revision) FROM definitions WHERE name = ?", (name,)).fetchone()[0] or 0
    db.execute(
        "INSERT INTO definitions (name, revision, hash, body) VALUES (?, ?, ?, ?)",
        (name, last + 1, wanted, json.dumps(definition)),
    )
    return f"{name}:{last + 1}", True


def _check_secrets(plan: Plan, settings: LocalSettings, environ: Mapping[str, str]) -> None:
    names = sorted(plan.job.secrets)
    if not names:
        return
    if not settings.secrets_from_environment:
        raise UserError(
            f"{plan.job.name}: secrets: {', '.join(names)} come from Secrets Manager/SSM on AWS; the local backend "
            "reads them from its environment only when compute-on-aws.yaml sets local.secrets_from_environment: true"
        )
    missing = [n for n in names if n not in environ]
    if missing:
        raise UserError(
            f"{plan.job.name}: secrets: {', '.join(missing)} not set in this shell, where the local run reads them"
        )


def _check_container(plan: Plan) -> None:
    """What the local backend cannot give a job outside a container: it would see other files, or run as another
    user, than on AWS. Limits it applies (ulimits); settings that only size or harden the container it leaves out."""
    c = plan.job.container
    if c.volumes:
        raise UserError(
            f"{plan.job.name}: volumes: the local backend runs jobs without a container, so it cannot mount "
            f"{', '.join(v.mount_point for v in c.volumes)}; try the job without volumes locally, or queue it on AWS"
        )
    if c.user is not None:
        raise UserError(
            f"{plan.job.name}: user: the local backend runs jobs as the worker's own user, not {c.user!r}; "
            "queue it on AWS, or try it locally without user"
        )
    unknown = [u.name for u in c.ulimits if not hasattr(resource, f"RLIMIT_{u.name.upper()}")]
    if unknown:
        raise UserError(f"{plan.job.name}: ulimits: {', '.join(unknown)}: this system has no such limit")


def _keep_consumables(db: sqlite3.Connection, config: Config) -> None:
    """The consumable resources the config declares, as the worker counts them (infra apply's local counterpart)."""
    for r in config.infrastructure.consumables.values():
        db.execute(
            "INSERT INTO consumables (name, total, replenishable) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET total = excluded.total, replenishable = excluded.replenishable",
            (r.name, r.total, int(r.replenishable)),
        )


def _job_row(plan: Plan, request: dict[str, Any], settings: LocalSettings) -> dict[str, Any]:
    container = plan.definition["containerProperties"]
    overrides = request.get("containerOverrides", {})
    environment = {e["name"]: e["value"] for e in container.get("environment", [])}
    environment.update({e["name"]: e["value"] for e in overrides.get("environment", [])})
    vcpus = next(float(r["value"]) for r in container["resourceRequirements"] if r["type"] == "VCPU")
    retry = plan.definition.get("retryStrategy", {})
    return {
        "job_name": request["jobName"],
        "job": plan.job.name,
        "queue": plan.queue,
        "queue_priority": settings.queue_priorities.get(plan.queue, 1),
        "definition": request["jobDefinition"],
        # Whole jobs waited for; per-index and sequential waits are added to each array child (see queue).
        "depends_on": json.dumps([d["jobId"] for d in request.get("dependsOn", []) if "type" not in d]),
        "vcpus": vcpus,
        "attempts_max": retry.get("attempts", 1),
        "retry_rules": json.dumps(retry.get("evaluateOnExit", [])),
        "timeout": plan.definition.get("timeout", {}).get("attemptDurationSeconds"),
        "command": json.dumps(overrides.get("command", container["command"])),
        "environment": json.dumps(environment),
        "secrets": json.dumps({s["name"]: s["valueFrom"] for s in container.get("secrets", [])}),
        "drv": plan.program_drv,
    }


ACTIVE = "('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING')"


def _queue_one(db: sqlite3.Connection, store: Store, plan: Plan, settings: LocalSettings) -> Outcome:
    """Checked and inserted inside the caller's transaction: two `queue` calls at once cannot both submit."""
    _check_secrets(plan, settings, os.environ)
    _check_container(plan)
    definition_name = plan.definition["jobDefinitionName"]
    if not plan.job.allow_duplicates or plan.slot is not None:
        # A scheduled slot counts as done in any status; other names only while queued or running.
        statuses = "" if plan.slot is not None else f"AND status IN {ACTIVE} "
        existing = db.execute(
            "SELECT job_id, status FROM jobs WHERE queue = ? AND job_name = ? AND parent_id IS NULL "  # noqa: S608
            f"{statuses}AND substr(definition, 1, length(?)) = ? ORDER BY seq LIMIT 1",
            (plan.queue, plan.job_name, f"{definition_name}:", f"{definition_name}:"),
        ).fetchone()
        if existing is not None:
            return Outcome(
                outcome="duplicate",
                job_id=existing["job_id"],
                request=plan.request,
                definition_ref=definition_name,
                existing_status=existing["status"],
            )
    ref, registered = _ensure_definition(db, plan.definition)
    request = {**plan.request, "jobDefinition": ref}
    size = request.get("arrayProperties", {}).get("size")
    per_index = []
    for dependency in request.get("dependsOn", []):
        if "jobId" not in dependency:  # SEQUENTIAL: this array's own children
            continue
        found = db.execute("SELECT array_size FROM jobs WHERE job_id = ?", (dependency["jobId"],)).fetchone()
        if found is None:
            raise UserError(f"{plan.job.name}: --after {dependency['jobId']}: no such job in {store.root}")
        if dependency.get("type") == "N_TO_N":
            if found["array_size"] != size:
                raise UserError(
                    f"{plan.job.name}: after: N_TO_N on {dependency['jobId']}, an array of "
                    f"{found['array_size'] or 'no'} children, and this job has {size or 'none'}"
                )
            per_index.append(dependency["jobId"])
    sequential = any(d.get("type") == "SEQUENTIAL" for d in request.get("dependsOn", []))
    job_id = str(uuid.uuid4())
    row = _job_row(plan, request, settings)
    base = {**row, "status": "SUBMITTED", "created_at": now()}
    insert_job(db, {**base, "job_id": job_id, "array_size": size, "is_parent": 1 if size else 0})
    whole = json.loads(row["depends_on"])
    for index in range(size or 0):
        waits = whole + [f"{other}:{index}" for other in per_index]
        if sequential and index > 0:
            waits.append(f"{job_id}:{index - 1}")
        child = {**base, "job_id": f"{job_id}:{index}", "parent_id": job_id, "array_index": index}
        insert_job(db, {**child, "depends_on": json.dumps(waits)})
    return Outcome(
        outcome="submitted", job_id=job_id, request=request, definition_ref=ref, definition_registered=registered
    )


def queue(
    config: Config, plans: Sequence[Plan], on_result: OnResult, *, state_dir: Path | None = None
) -> list[Outcome | ComputeOnAwsError]:
    """Every plan of the batch in one transaction (one fsync, and no worker sees half of it); a plan that cannot be
    queued is rolled back alone (a savepoint each) and is its own result."""
    settings = config.local
    store = store_for(settings, state_dir)
    results: list[Outcome | ComputeOnAwsError] = []
    db = store.connect()
    try:
        with transaction(db):
            _keep_consumables(db, config)
            for plan in plans:
                db.execute("SAVEPOINT plan")
                try:
                    results.append(_queue_one(db, store, plan, settings))
                    db.execute("RELEASE plan")
                except ComputeOnAwsError as e:
                    db.execute("ROLLBACK TO plan")
                    db.execute("RELEASE plan")
                    results.append(e)
    finally:
        db.close()
    submitted = any(isinstance(r, Outcome) and r.outcome == "submitted" for r in results)
    if submitted:
        store.wake_workers()
    # Told once committed: a job reported queued is queued.
    for plan, result in zip(plans, results, strict=True):
        on_result(plan, result)
    if settings.autostart_worker and submitted:
        ensure_worker(store, settings)
    return results


def _worker_command() -> tuple[list[str], dict[str, str]]:
    """This interpreter running this package, with the import path this process has.

    Not sys.argv[0], which need not be a program (`python -m compute_on_aws`); and nixpkgs' wrappers put the package
    and its dependencies on sys.path from inside the wrapped script, where a bare child interpreter would not find them.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return [sys.executable, "-m", "compute_on_aws"], env


def ensure_worker(store: Store, settings: LocalSettings) -> None:
    """Starts a detached worker unless one is alive; it stops by itself when nothing is left to run."""
    db = store.connect()
    try:
        if live_workers(db):
            return
    finally:
        db.close()
    log = private_log(store.root / "worker.log")
    program, env = _worker_command()
    command = [
        *program,
        "--state-dir",
        str(store.root),
        "worker",
        "--max-vcpus",
        str(max_vcpus(settings)),
        "--kill-grace",
        str(settings.kill_grace_seconds),
        "--exit-when-idle",
    ]
    if settings.secrets_from_environment:
        command.append("--secrets-from-environment")
    subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
    )
    log.close()


def cancel(store: Store, job_ids: list[str], reason: str) -> list[tuple[str, str]]:
    """Cancels queued jobs and asks workers to terminate running ones; (job id, what was done) for each."""
    done: list[tuple[str, str]] = []
    db = store.connect()
    try:
        live = live_worker_ids(db)
        for job_id in job_ids:
            with transaction(db):
                row = db.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
                if row is None:
                    done.append((job_id, "not found"))
                    continue
                if row["status"] in FINAL:
                    done.append((job_id, f"already {row['status']}"))
                    continue
                targets = [
                    job_id,
                    *(r[0] for r in db.execute("SELECT job_id FROM jobs WHERE parent_id = ?", (job_id,))),
                ]
                marks = ",".join("?" * len(targets))
                queued = db.execute(
                    f"UPDATE jobs SET status = 'FAILED', status_reason = ?, stopped_at = ? "  # noqa: S608
                    f"WHERE job_id IN ({marks}) AND status IN ('SUBMITTED', 'PENDING', 'RUNNABLE')",
                    (reason, now(), *targets),
                ).rowcount
                # (Not UPDATE ... RETURNING: SQLite 3.35 and later only.)
                running = db.execute(
                    f"SELECT worker_id FROM jobs WHERE job_id IN ({marks}) "  # noqa: S608
                    "AND status IN ('STARTING', 'RUNNING')",
                    targets,
                ).fetchall()
                db.execute(
                    f"UPDATE jobs SET terminate_reason = ? WHERE job_id IN ({marks}) "  # noqa: S608
                    "AND status IN ('STARTING', 'RUNNING')",
                    (reason, *targets),
                )
                orphaned = any(r["worker_id"] not in live for r in running)
                done.append(
                    (
                        job_id,
                        "terminating once a worker starts (its worker is gone; the cancel is kept, not retried)"
                        if orphaned
                        else "terminating"
                        if running
                        else "cancelled"
                        if queued
                        else f"already {row['status']}",
                    )
                )
    finally:
        db.close()
    return done
