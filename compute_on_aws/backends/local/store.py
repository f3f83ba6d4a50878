"""The local backend's durable state: one SQLite database (jobs, attempts, definitions, workers) plus a log per attempt.

Every change of a job's state is one transaction; taking work is `BEGIN IMMEDIATE`, so concurrent workers and `queue`
calls serialise and a job is never run twice. Secret values are never written here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Concatenate, ParamSpec, Protocol, TypeVar

from compute_on_aws.errors import ComputeOnAwsError, UserError

ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
FINAL = ("SUCCEEDED", "FAILED")
# The jobs waiting for the machine, in the order a worker takes them (higher queue priority first, then as queued).
IN_LINE = "SELECT * FROM jobs WHERE status = 'RUNNABLE' AND is_parent = 0 ORDER BY queue_priority DESC, seq"
SCHEMA_VERSION = 3
# Every table _SCHEMA makes: one missing (dropped by hand) is a damaged state file, said so at once.
TABLES = frozenset({"definitions", "jobs", "attempts", "consumables", "workers"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS definitions (
    name TEXT NOT NULL, revision INTEGER NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (name, revision)
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    job_name TEXT NOT NULL,
    job TEXT NOT NULL,
    queue TEXT NOT NULL,
    queue_priority INTEGER NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    stopped_at REAL,
    parent_id TEXT,
    -- An array parent only sums up its children: it is never run, nor counted for capacity.
    is_parent INTEGER NOT NULL DEFAULT 0,
    array_index INTEGER,
    array_size INTEGER,
    depends_on TEXT NOT NULL,
    vcpus REAL NOT NULL,
    attempts_max INTEGER NOT NULL,
    retry_rules TEXT NOT NULL,
    timeout INTEGER,
    command TEXT NOT NULL,
    environment TEXT NOT NULL,
    secrets TEXT NOT NULL,
    drv TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    terminate_reason TEXT,
    worker_id TEXT
);
-- In IN_LINE's order, so that the head of the line is read without sorting every waiting job (3).
CREATE INDEX IF NOT EXISTS jobs_in_line ON jobs (status, queue_priority DESC, seq);
DROP INDEX IF EXISTS jobs_by_status;
CREATE INDEX IF NOT EXISTS jobs_by_name ON jobs (queue, job_name);
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id);
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL NOT NULL,
    stopped_at REAL,
    exit_code INTEGER,
    status_reason TEXT,
    reason TEXT,
    log_path TEXT NOT NULL,
    pid INTEGER,
    identity TEXT,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS consumables (
    name TEXT PRIMARY KEY,
    total INTEGER NOT NULL,
    replenishable INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    identity TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""


def state_error(store: Store, error: sqlite3.DatabaseError) -> ComputeOnAwsError:
    """What a failing query says of the state folder, in one line: busy (another process kept it locked), or damaged
    (a truncated file, a table gone)."""
    where = f"state folder {store.root}: {store.database.name}"
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
        return ComputeOnAwsError(f"{where} stayed locked for 30 s by another process (a stuck worker?): try again")
    return UserError(
        f"{where} is damaged ({error}): restore it from a copy, or move the folder aside to start afresh (the local "
        "jobs' history in it is then gone)"
    )


class _HasStore(Protocol):
    store: Store


S = TypeVar("S", bound=_HasStore)
P = ParamSpec("P")
R = TypeVar("R")


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A method of an object with a `store` whose SQLite failures become state_error's one line."""

    @functools.wraps(method)
    def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise state_error(self.store, e) from None

    return call


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "compute-on-aws"


@dataclass(frozen=True)
class Store:
    """Where the state lives; each caller opens its own connection (threads and processes never share one)."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "state.sqlite"

    def private_dir(self, path: Path) -> Path:
        """Makes the folder `path` (inside the state folder) and its missing parents, each 0700: logs hold what jobs
        printed, work folders what they wrote."""
        missing = []
        for folder in (path, *path.parents):
            if folder == self.root or folder.exists():
                break
            missing.append(folder)
        for folder in reversed(missing):
            folder.mkdir(mode=0o700, exist_ok=True)
        return path

    @property
    def initialized_path(self) -> Path:
        """Written once the database was first set up: a database found empty after that was emptied or replaced."""
        return self.root / "initialized"

    def log_path(self, job_id: str, attempt: int) -> Path:
        return self.root / "logs" / job_id.replace(":", "_") / f"attempt-{attempt}.log"

    def exit_path(self, job_id: str, attempt: int) -> Path:
        """Where an attempt's exit status is kept, written by the attempt itself (see worker.EXIT_RECORDER)."""
        return self.log_path(job_id, attempt).with_suffix(".exit")

    def work_dir(self, job_id: str, attempt: int) -> Path:
        return self.root / "work" / job_id.replace(":", "_") / f"attempt-{attempt}"

    @property
    def wake_path(self) -> Path:
        """A FIFO the workers wait on: a byte written to it wakes one at once (see Wakeup)."""
        return self.root / "wake"

    def wake_workers(self) -> None:
        """Tells a waiting worker to look now (a job was queued): one byte into the FIFO, never blocking. With no
        worker listening there is nothing to tell (the FIFO is missing, or nobody reads it)."""
        try:
            fd = os.open(self.wake_path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENOENT: no worker made it yet; ENXIO: none reads it
            return
        try:
            os.write(fd, b"\0")
        except OSError:  # EAGAIN: full, so a wake-up is pending already
            pass
        finally:
            os.close(fd)

    def connect(self, *, durable: bool = True, shared: bool = False) -> sqlite3.Connection:
        """`durable=False` (the worker's own bookkeeping: claims, starts, ends) commits without waiting for the disk:
        still atomic and safe if a process dies, only a power cut may lose the last few; what `queue` writes (a job
        reported queued) always waits for the disk. `shared`: used by one thread, then another (never two at once)."""
        try:
            # Private: the database and logs hold the values of propagated variables.
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.root.stat().st_mode & 0o077:
                self.root.chmod(0o700)
            connection = sqlite3.connect(self.database, timeout=30, isolation_level=None, check_same_thread=not shared)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=30000")
            if not durable:
                connection.execute("PRAGMA synchronous=NORMAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and self.initialized_path.exists():
                connection.close()
                raise UserError(
                    f"state folder {self.root}: {self.database.name} is empty, though this folder was set up before: "
                    "the file was emptied or replaced, and the local jobs' history is gone. Restore the file, or move "
                    "the folder aside to start afresh"
                )
            if version >= SCHEMA_VERSION:
                tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if missing := sorted(TABLES - tables):
                    connection.close()
                    raise state_error(self, sqlite3.DatabaseError(f"no such table: {', '.join(missing)}"))
            if version < SCHEMA_VERSION:
                # Once per state folder, not on every connection (pollers connect several times a second).
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                # After the schema is in: a caller that still finds version 0 then is racing this one, not damage.
                self.initialized_path.touch(mode=0o600)
                for path in (
                    self.database,
                    self.root / f"{self.database.name}-wal",
                    self.root / f"{self.database.name}-shm",
                ):
                    if path.exists():
                        path.chmod(0o600)
        except OSError as e:
            raise UserError(f"state folder {self.root}: {e.strerror} (set --state-dir or local.state_dir)") from None
        except sqlite3.DatabaseError as e:
            raise state_error(self, e) from None
        return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """An IMMEDIATE transaction: the write lock is taken at once, so read-then-write decisions cannot interleave."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


class Wakeup:
    """What a worker waits on between rounds: a byte in the state folder's FIFO (a job queued by another process, or
    one of this worker's attempts ending) wakes it at once, a timeout otherwise. The worker holds a write end of its
    own, so the FIFO never reads as closed when the writers go. Where no FIFO can be made (a file system without
    them), it waits out the timeout alone."""

    def __init__(self, path: Path | None) -> None:
        self._read: int | None = None
        self._write: int | None = None
        self._fallback = threading.Event()
        if path is None:
            return
        try:
            if path.exists() and not stat.S_ISFIFO(path.lstat().st_mode):
                path.unlink()
            with contextlib.suppress(FileExistsError):
                os.mkfifo(path, 0o600)
            self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            self._write = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            self.close()

    def wait(self, seconds: float) -> None:
        if self._read is None:
            self._fallback.wait(seconds)
            self._fallback.clear()
            return
        ready, _, _ = select.select([self._read], [], [], seconds)
        if ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._read, 4096):
                    pass

    def poke(self) -> None:
        """Ends the current (or next) wait; safe from a signal handler and from any thread."""
        if self._write is None:
            self._fallback.set()
            return
        with contextlib.suppress(OSError):  # EAGAIN: a wake-up is pending already
            os.write(self._write, b"\0")

    def close(self) -> None:
        for fd in (self._read, self._write):
            if fd is not None:
                os.close(fd)
        self._read = self._write = None


def private_log(path: Path) -> BinaryIO:
    """A log file opened for appending, readable by its owner only (jobs' output may print their variables)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def now() -> float:
    return time.time()


def row_to_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    for key in ("depends_on", "retry_rules", "command", "environment", "secrets"):
        if key in data and data[key] is not None:
            data[key] = json.loads(data[key])
    return data


def insert_job(db: sqlite3.Connection, row: dict[str, Any]) -> None:
    """One row of the jobs table, its columns the row's keys (ours, never a user's)."""
    columns = ", ".join(row)
    db.execute(f"INSERT INTO jobs ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))  # noqa: S608
