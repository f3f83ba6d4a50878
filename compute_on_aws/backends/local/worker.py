"""The local worker: moves jobs through Batch's states and runs each attempt as a process group on this machine.

One loop (this thread) promotes jobs (dependencies, array parents), recovers jobs of dead workers and takes RUNNABLE
jobs within the vCPU capacity; each taken job runs on a thread of its own (build, process, timeout, terminate). The
loop is the worker's only writer: an attempt's thread reports its start and its end as events, and the loop records
them (and decides retries) in the same transaction that takes the next jobs, so attempts never wait on each other for
the database's lock.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compute_on_aws.backends.local import processes, semantics
from compute_on_aws.backends.local.store import (
    IN_LINE,
    Store,
    Wakeup,
    now,
    private_log,
    row_to_dict,
    state_error,
    transaction,
)

# What Batch says of a container that exited on its own, and of an attempt whose host went away (the default retry
# rules retry "Host EC2*", like a reclaimed spot instance).
EXITED = "Essential container in task exited"
# How often a running attempt's terminate request is read (its exit is seen at once).
CHECK_SECONDS = 0.2
HOST_GONE = "Host EC2 (local worker) terminated."
# Runs the job's command (its arguments, never a string built from them) and keeps its exit status in the file named by
# $0 (made beforehand, mode 0600: the job's own umask is left alone), so that a job that ends while its worker is dead
# is recorded with its real outcome by the next worker.
EXIT_RECORDER = '"$@"; code=$?; printf "%s\\n" "$code" > "$0"; exit "$code"'
TIMED_OUT = "Job attempt duration exceeded timeout"
# How far down the line a round woken by an event looks for a job that fits (a full round looks at all).
HEAD_OF_LINE = 64
DEPENDENCY_FAILED = "Dependent Job failed"
# Variables a job sees from the worker's environment: enough to find programs, nothing else leaks in.
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ")


# Sets the job's ulimits, then becomes the job: in the child, not in this threaded worker (preexec_fn is unsafe with
# threads). argv: the limits as JSON, then the command.
_SET_LIMITS = (
    "import json, os, resource, sys\n"
    "for u in json.loads(sys.argv[1]):\n"
    "    resource.setrlimit(getattr(resource, 'RLIMIT_' + u['name'].upper()), (u['softLimit'], u['hardLimit']))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _limited(ulimits: list[dict[str, Any]]) -> list[str]:
    """The command prefix that applies a definition's ulimits (none: nothing to prefix)."""
    return [sys.executable, "-c", _SET_LIMITS, json.dumps(ulimits)] if ulimits else []


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt ended: its exit code (None when no process ran), Batch's status reason, and whether the retry
    rules may retry it (timeouts and terminations never are)."""

    exit_code: int | None
    status_reason: str
    retryable: bool = True


@dataclass(frozen=True)
class WorkerSettings:
    max_vcpus: float
    kill_grace: float = 30.0
    secrets_from_environment: bool = False
    exit_when_idle: bool = False
    idle_seconds: float = 2.0
    # Between rounds when nothing wakes the worker: a job queued or an attempt ended wakes it at once (Wakeup).
    poll_seconds: float = 1.0


class Worker:
    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self.store = store
        self.settings = settings
        self.worker_id = f"worker-{uuid.uuid4()}"
        self.stopping = threading.Event()
        # Attempts under way, by job id. Their threads are kept for the next attempts: starting a thread per job
        # cost more than a trivial job itself. As many as run at once (never a job waiting for a thread).
        self.threads: dict[str, Future[None]] = {}
        self._attempts = ThreadPoolExecutor(max_workers=1 << 20, thread_name_prefix="attempt")
        self._definitions: dict[str, dict[str, Any]] = {}
        self.wakeup = Wakeup(None)  # made in run(), once the state folder exists
        # Connections of finished attempts, for the next ones: an attempt takes one, so none is shared at once.
        self._idle_connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # What attempts report, in order: ("started", job, (pid, identity)) and ("ended", job, AttemptEnd).
        self._events: queue.SimpleQueue[tuple[str, dict[str, Any], Any]] = queue.SimpleQueue()
        # Rounds woken by an event look at the head of the line only; a full round (dead workers recovered, every
        # waiting job looked at) comes every poll_seconds.
        self._full_round_at = 0.0

    # -- lifecycle

    def run(self) -> None:
        db = self.store.connect(durable=False)
        self.wakeup = Wakeup(self.store.wake_path)
        pid = os.getpid()
        with transaction(db):
            db.execute(
                "INSERT INTO workers (worker_id, pid, identity, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
                (self.worker_id, pid, processes.identity(pid) or "", now(), now()),
            )
        idle_since: float | None = None
        try:
            while not self.stopping.is_set():
                self.tick(db)
                if self.settings.exit_when_idle:
                    idle_since = None if self.busy(db) else idle_since or time.monotonic()
                    if idle_since is not None and time.monotonic() - idle_since >= self.settings.idle_seconds:
                        break
                self.wakeup.wait(self.settings.poll_seconds)
        finally:
            # Stopping with jobs running: they end like jobs on a host that went away (retried by the default rules).
            self.stopping.set()
            self._attempts.shutdown(wait=True)
            for connection in self._idle_connections:
                connection.close()
            with transaction(db):
                self._record(db)
                db.execute("DELETE FROM workers WHERE worker_id = ?", (self.worker_id,))
            db.close()
            self.wakeup.close()

    def stop(self, *_: object) -> None:
        self.stopping.set()
        self.wakeup.poke()

    def tick(self, db: sqlite3.Connection) -> None:
        """One round: what attempts reported recorded, jobs promoted, the ones that fit started."""
        self.threads = {k: t for k, t in self.threads.items() if not t.done()}
        full = time.monotonic() >= self._full_round_at
        if full:
            self._full_round_at = time.monotonic() + self.settings.poll_seconds
        with transaction(db):
            self._record(db)
            if full:
                db.execute("UPDATE workers SET heartbeat_at = ? WHERE worker_id = ?", (now(), self.worker_id))
                self._recover(db)
            self._promote(db)
            claimed = self._claim(db, full=full)
        for job in claimed:
            self.threads[job["job_id"]] = self._attempts.submit(self._run_job, job)

    def busy(self, db: sqlite3.Connection) -> bool:
        """Whether anything is left to do (asked only by a worker that ends when idle). A job needing more vCPUs than
        this worker has waits for another worker: it does not keep this one busy."""
        active = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING') "
            "AND is_parent = 0 AND NOT (status = 'RUNNABLE' AND vcpus > ?)",
            (self.settings.max_vcpus,),
        ).fetchone()[0]
        return bool(active or self.threads)

    # -- scheduling (inside the tick's transaction)

    def _record(self, db: sqlite3.Connection) -> None:
        """What attempts reported since the last round: a process started (its pid, for a later worker to stop it if
        this one dies), an attempt ended."""
        while True:
            try:
                kind, job, detail = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "started":
                pid, identity = detail
                db.execute(
                    "UPDATE attempts SET pid = ?, identity = ? WHERE job_id = ? AND attempt = ?",
                    (pid, identity, job["job_id"], job["attempt"]),
                )
                db.execute("UPDATE jobs SET status = 'RUNNING' WHERE job_id = ?", (job["job_id"],))
            else:
                self._finish_attempt(db, job, detail)

    def _recover(self, db: sqlite3.Connection) -> None:
        """Jobs a dead worker was running become failed attempts (their orphaned processes are stopped first)."""
        dead = [
            w["worker_id"] for w in db.execute("SELECT * FROM workers") if not processes.alive(w["pid"], w["identity"])
        ]
        for worker_id in dead:
            db.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))
        orphans = db.execute(
            "SELECT j.*, a.pid AS attempt_pid, a.identity AS identity FROM jobs j LEFT JOIN attempts a "
            "ON a.job_id = j.job_id AND a.attempt = j.attempt "
            "WHERE j.status IN ('STARTING', 'RUNNING') AND j.is_parent = 0 "
            "AND (j.worker_id IS NULL OR j.worker_id NOT IN (SELECT worker_id FROM workers))"
        ).fetchall()
        for row in orphans:
            job = row_to_dict(row)
            pid = job["attempt_pid"]
            if pid is not None and processes.alive(pid, job["identity"]):
                # At once, not after a grace period: this runs inside the scheduling transaction, and the retry
                # taken below must not overlap the orphan.
                processes.kill_group(pid)
            self._finish_attempt(db, job, self._orphan_end(job))

    def _orphan_end(self, job: dict[str, Any]) -> AttemptEnd:
        """How an attempt whose worker died ended: its recorded exit status if it finished, else the terminate asked
        for meanwhile (a cancel is not retried), else a lost host."""
        try:
            code = int(self.store.exit_path(job["job_id"], job["attempt"]).read_text())
        except (OSError, ValueError):
            if job["terminate_reason"]:
                return AttemptEnd(None, job["terminate_reason"], retryable=False)
            return AttemptEnd(None, HOST_GONE)
        return AttemptEnd(code, EXITED)

    def _promote(self, db: sqlite3.Connection) -> None:
        waiting = db.execute(
            "SELECT job_id, status, depends_on FROM jobs WHERE status IN ('SUBMITTED', 'PENDING') AND is_parent = 0"
        ).fetchall()
        # The statuses of just the jobs waited on, in one query (the table keeps every job ever queued).
        wanted = sorted({d for row in waiting for d in json.loads(row["depends_on"])})
        statuses = {
            r["job_id"]: r["status"]
            for r in db.execute(
                f"SELECT job_id, status FROM jobs WHERE job_id IN ({','.join('?' * len(wanted))})",  # noqa: S608
                wanted,
            )
        }
        for row in waiting:
            depends = json.loads(row["depends_on"])
            state = semantics.dependency_state(statuses.get(d) for d in depends) if depends else "RUNNABLE"
            if state == "FAILED":
                db.execute(
                    "UPDATE jobs SET status = 'FAILED', status_reason = ?, stopped_at = ? WHERE job_id = ?",
                    (DEPENDENCY_FAILED, now(), row["job_id"]),
                )
            elif state != row["status"]:
                db.execute("UPDATE jobs SET status = ? WHERE job_id = ?", (state, row["job_id"]))
        for parent in db.execute(
            "SELECT job_id, status, started_at FROM jobs WHERE is_parent = 1 "
            "AND status IN ('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING')"
        ).fetchall():
            children = db.execute(
                "SELECT status, started_at FROM jobs WHERE parent_id = ?", (parent["job_id"],)
            ).fetchall()
            status = semantics.parent_status(c["status"] for c in children)
            started = min((c["started_at"] for c in children if c["started_at"]), default=None)
            stopped = now() if status in ("SUCCEEDED", "FAILED") else None
            db.execute(
                "UPDATE jobs SET status = ?, started_at = ?, stopped_at = ? WHERE job_id = ?",
                (status, started, stopped, parent["job_id"]),
            )

    def _claim(self, db: sqlite3.Connection, *, full: bool = True) -> list[dict[str, Any]]:
        """RUNNABLE jobs by queue priority then submission order, as long as their vCPUs fit in what is free. A round
        that is not `full` reads the line only until what is free is taken (at most HEAD_OF_LINE jobs); a full one
        reads all of it, to give each job too large for the machine its reason."""
        if self.stopping.is_set():
            return []
        used = db.execute(
            "SELECT COALESCE(SUM(vcpus), 0) FROM jobs WHERE status IN ('STARTING', 'RUNNING') AND is_parent = 0"
        ).fetchone()[0]
        free = self.settings.max_vcpus - used
        if not full and free <= 1e-9:
            return []
        available = self._consumables_free(db)
        claimed: list[dict[str, Any]] = []
        reasons: list[tuple[str, str]] = []
        # Read first, written after: the line's cursor stays open while it is read, and rows it has not reached yet
        # are never changed under it.
        for row in db.execute(IN_LINE if full else f"{IN_LINE} LIMIT {HEAD_OF_LINE}"):
            if free <= 1e-9 and row["vcpus"] <= self.settings.max_vcpus:
                if not full:
                    break
                continue  # no room left: only jobs too large for the machine still get their reason
            job = row_to_dict(row)
            if job["vcpus"] > self.settings.max_vcpus:
                reason = (
                    f"MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - the job needs {job['vcpus']:g} vCPUs; "
                    f"the local capacity (max_vcpus) is {self.settings.max_vcpus:g}"
                )
                if job["status_reason"] != reason:
                    reasons.append((reason, job["job_id"]))
                continue
            if job["vcpus"] > free + 1e-9:
                continue
            needs = self._consumes(db, job["definition"])
            short = [n for n, q in needs.items() if q > available.get(n, 0)]
            if short:
                name = short[0]
                reason = f"waiting for consumable resource {name} ({needs[name]} needed, {available.get(name, 0)} free)"
                if job["status_reason"] != reason:
                    reasons.append((reason, job["job_id"]))
                continue
            for n, q in needs.items():
                available[n] -= q
            free -= job["vcpus"]
            job["attempt"] += 1
            claimed.append(job)
        db.executemany("UPDATE jobs SET status_reason = ? WHERE job_id = ?", reasons)
        started = now()
        db.executemany(
            "UPDATE jobs SET status = 'STARTING', worker_id = ?, attempt = ?, status_reason = NULL, "
            "started_at = COALESCE(started_at, ?) WHERE job_id = ? AND status = 'RUNNABLE'",
            [(self.worker_id, job["attempt"], started, job["job_id"]) for job in claimed],
        )
        db.executemany(
            "INSERT INTO attempts (job_id, attempt, started_at, log_path) VALUES (?, ?, ?, ?)",
            [
                (job["job_id"], job["attempt"], started, str(self.store.log_path(job["job_id"], job["attempt"])))
                for job in claimed
            ],
        )
        return claimed

    def _definition(self, db: sqlite3.Connection, ref: str) -> dict[str, Any]:
        """A registered definition's body (name:revision), read once per worker: revisions never change."""
        if ref not in self._definitions:
            name, _, revision = ref.rpartition(":")
            row = db.execute(
                "SELECT body FROM definitions WHERE name = ? AND revision = ?", (name, int(revision))
            ).fetchone()
            self._definitions[ref] = json.loads(row["body"]) if row is not None else {}
        return self._definitions[ref]

    def _consumes(self, db: sqlite3.Connection, ref: str) -> dict[str, int]:
        listed = self._definition(db, ref).get("consumableResourceProperties", {}).get("consumableResourceList", [])
        return {str(c["consumableResource"]): int(c["quantity"]) for c in listed}

    def _consumables_free(self, db: sqlite3.Connection) -> dict[str, int]:
        """What is left of each consumable resource: a replenishable one is held by the jobs starting or running, a
        spent one by every job that ever started holding it (as Batch counts them)."""
        free = {r["name"]: (r["total"], bool(r["replenishable"])) for r in db.execute("SELECT * FROM consumables")}
        if not free:
            return {}
        left = {name: total for name, (total, _) in free.items()}
        # Only a spent resource needs the jobs that ever started: each tick reads no more history than that.
        spent = any(not replenishable for _, replenishable in free.values())
        ever = " OR started_at IS NOT NULL" if spent else ""
        holders = db.execute(
            "SELECT definition, status FROM jobs WHERE is_parent = 0 "  # noqa: S608 - a constant clause
            f"AND (status IN ('STARTING', 'RUNNING'){ever})"
        ).fetchall()
        for row in holders:
            for name, quantity in self._consumes(db, row["definition"]).items():
                if name in free and (row["status"] in ("STARTING", "RUNNING") or not free[name][1]):
                    left[name] -= quantity
        return left

    # -- one attempt (in its own thread, with its own connection)

    def _connection(self) -> sqlite3.Connection:
        with self._connections_lock:
            if self._idle_connections:
                return self._idle_connections.pop()
        return self.store.connect(durable=False, shared=True)

    def _run_job(self, job: dict[str, Any]) -> None:
        db = self._connection()
        work = self.store.work_dir(job["job_id"], job["attempt"])
        try:
            try:
                outcome = self._attempt(db, job, work)
            except Exception as e:  # a bug here must not leave the job STARTING forever
                outcome = AttemptEnd(None, f"InternalError: the local worker failed: {e!r}", retryable=False)
            self._events.put(("ended", job, outcome))
            self.wakeup.poke()  # its slot is free, and jobs after it may start: told before the cleaning up
        finally:
            try:
                work.rmdir()  # what most jobs leave: nothing
            except OSError:
                shutil.rmtree(work, ignore_errors=True)
            self._gc_root(job).unlink(missing_ok=True)
            with self._connections_lock:
                self._idle_connections.append(db)

    def _attempt(self, db: sqlite3.Connection, job: dict[str, Any], work: Path) -> AttemptEnd:
        log_path = self.store.log_path(job["job_id"], job["attempt"])
        self.store.private_dir(log_path.parent)
        self.store.private_dir(work)
        with private_log(log_path) as log:
            return self._execute(db, job, log, work)

    def _gc_root(self, job: dict[str, Any]) -> Path:
        return self.store.root / "gcroots" / str(job["job_id"]).replace(":", "_")

    def _environment(self, job: dict[str, Any], work: Any) -> dict[str, str] | str:
        """The job's variables, as Batch sets them; a string says which secret is missing."""
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env.update({"HOME": str(work), "TMPDIR": str(work)})
        env.update(job["environment"])
        for name in sorted(job["secrets"]):
            if not self.settings.secrets_from_environment:
                return (
                    f"ResourceInitializationError: secret {name}: this worker gives jobs no secrets (start it with "
                    "--secrets-from-environment, or set local.secrets_from_environment: true)"
                )
            if name not in os.environ:
                return f"ResourceInitializationError: secret {name} is not set in the local worker's environment"
            env[name] = os.environ[name]
        env.update(
            {
                "AWS_BATCH_JOB_ID": job["job_id"],
                "AWS_BATCH_JOB_ATTEMPT": str(job["attempt"]),
                "AWS_BATCH_JQ_NAME": job["queue"],
                "AWS_BATCH_CE_NAME": "local",
            }
        )
        if job["array_index"] is not None:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job["array_index"])
        return env

    def _execute(self, db: sqlite3.Connection, job: dict[str, Any], log: Any, work: Any) -> AttemptEnd:
        if job["drv"]:
            # The entrypoint's closure is what the image would hold: build it (a no-op when already built).
            # A GC root keeps the entrypoint while the job runs (and stops Nix warning about it in the job's log).
            root = self._gc_root(job)
            self.store.private_dir(root.parent)
            built = subprocess.run(
                ["nix-store", "--realise", job["drv"], "--add-root", str(root)], capture_output=True, check=False
            )
            log.write(built.stderr)
            log.flush()  # the build's output comes before the job's, which writes to the same file directly
            if built.returncode != 0:
                lines = [ln for ln in built.stderr.decode(errors="replace").splitlines() if ln.strip()]
                last = lines[-1].strip() if lines else f"nix-store exited with {built.returncode}"
                return AttemptEnd(None, f"CannotPullContainerError: building the entrypoint failed: {last}")
        env = self._environment(job, work)
        if isinstance(env, str):
            return AttemptEnd(None, env)
        program = job["command"][0]
        found = shutil.which(program, path=env.get("PATH")) if "/" not in program else program
        if found is None or not os.access(found, os.X_OK):
            return AttemptEnd(None, f"CannotStartContainerError: {program}: executable file not found")
        exit_path = self.store.exit_path(job["job_id"], job["attempt"])
        try:
            os.close(os.open(exit_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            limits = self._definition(db, job["definition"]).get("containerProperties", {}).get("ulimits", [])
            process = subprocess.Popen(
                [*_limited(limits), "/bin/sh", "-c", EXIT_RECORDER, str(exit_path), *job["command"]],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            return AttemptEnd(None, f"CannotStartContainerError: {job['command'][0]}: {e.strerror}")
        self._events.put(("started", job, (process.pid, processes.identity(process.pid))))
        self.wakeup.poke()
        return self._watch(db, job, process)

    def _watch(self, db: sqlite3.Connection, job: dict[str, Any], process: subprocess.Popen[bytes]) -> AttemptEnd:
        """Until the process exits, or a timeout, a terminate request or this worker stopping ends it."""
        deadline = time.monotonic() + job["timeout"] if job["timeout"] else None
        exited = processes.ExitWaiter(process)
        try:
            stop = self._watched(db, job, process, exited, deadline)
        finally:
            exited.close()
        if stop is None:
            return AttemptEnd(semantics.exit_code_of(process.returncode), EXITED)
        processes.stop_group(process.pid, self.settings.kill_grace, process.poll)
        # A stopped host reports no exit code; a timed-out or terminated container reports how it was killed.
        code = None if stop.status_reason == HOST_GONE else semantics.exit_code_of(process.wait())
        return AttemptEnd(code, stop.status_reason, stop.retryable)

    def _watched(
        self,
        db: sqlite3.Connection,
        job: dict[str, Any],
        process: subprocess.Popen[bytes],
        exited: processes.ExitWaiter,
        deadline: float | None,
    ) -> AttemptEnd | None:
        """None when the process exited by itself, else why it must be stopped. Woken by its exit at once; a
        terminate request is read every CHECK_SECONDS, and the worker's stopping seen as soon."""
        next_check = 0.0
        stop: AttemptEnd | None = None
        while stop is None and process.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                stop = AttemptEnd(None, TIMED_OUT, retryable=False)
            elif self.stopping.is_set():
                stop = AttemptEnd(None, HOST_GONE)
            elif time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_SECONDS
                asked = db.execute("SELECT terminate_reason FROM jobs WHERE job_id = ?", (job["job_id"],)).fetchone()[0]
                if asked:
                    stop = AttemptEnd(None, asked, retryable=False)
            if stop is None:
                left = next_check - time.monotonic()
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                exited.wait(max(0.0, min(left, CHECK_SECONDS)))
        return stop

    def _finish_attempt(self, db: sqlite3.Connection, job: dict[str, Any], end: AttemptEnd) -> None:
        """Records the attempt's end and decides: SUCCEEDED, RUNNABLE again (a retry), or FAILED."""
        exit_code, status_reason = end.exit_code, end.status_reason
        stopped = now()
        db.execute(
            "UPDATE attempts SET stopped_at = ?, exit_code = ?, status_reason = ? WHERE job_id = ? AND attempt = ?",
            (stopped, exit_code, status_reason, job["job_id"], job["attempt"]),
        )
        terminate = db.execute("SELECT terminate_reason FROM jobs WHERE job_id = ?", (job["job_id"],)).fetchone()[0]
        if exit_code == 0 and status_reason == EXITED:
            status = "SUCCEEDED"
        elif (
            end.retryable
            and not terminate
            and job["attempt"] < job["attempts_max"]
            and semantics.retry_action(
                job["retry_rules"], exit_code=exit_code, status_reason=status_reason, reason=None
            )
            == "RETRY"
        ):
            status = "RUNNABLE"
        else:
            status = "FAILED"
        final = status in ("SUCCEEDED", "FAILED")
        db.execute(
            "UPDATE jobs SET status = ?, status_reason = ?, exit_code = ?, worker_id = NULL, stopped_at = ? "
            "WHERE job_id = ?",
            (
                status,
                status_reason if status != "RUNNABLE" else None,
                exit_code,
                stopped if final else None,
                job["job_id"],
            ),
        )


def run_worker(store: Store, settings: WorkerSettings) -> None:
    """Runs until idle (with exit_when_idle) or until SIGINT/SIGTERM, which stop it gracefully: running attempts are
    stopped and count as a lost host (retried by the default rules)."""
    worker = Worker(store, settings)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    try:
        worker.run()
    except sqlite3.DatabaseError as e:
        raise state_error(store, e) from None
