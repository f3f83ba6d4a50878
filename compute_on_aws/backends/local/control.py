"""The local backend as the CLI sees it: queue, and status, list, logs and cancel answered with the JobViews the AWS
backend gives."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from compute_on_aws.backends.local.described import live_worker_ids, view_of
from compute_on_aws.backends.local.store import IN_LINE, guarded
from compute_on_aws.errors import ComputeOnAwsError
from compute_on_aws.watching.views import JobView, Place
from compute_on_aws.watching.waiting import Backoff

if TYPE_CHECKING:
    from compute_on_aws.backends import OnResult
    from compute_on_aws.declared.config import Config
    from compute_on_aws.planning.plan import Outcome, Plan
    from compute_on_aws.planning.rerun import Rerun, RerunOutcome


class LocalBackend:
    """Jobs queued in SQLite on this machine and run by its workers, answering as the AWS backend does."""

    name = "local"
    # Jobs run the entrypoint built for this machine: no image is pushed.
    pushes_images = False

    def __init__(self, config: Config, *, state_dir: Path | None = None) -> None:
        from compute_on_aws.backends.local.submit import store_for

        self.config = config
        self.state_dir = state_dir
        self.store = store_for(config.local, state_dir)

    def place(self, queue: str) -> str:
        return f"local queue {queue}"

    @guarded
    def plan_rerun(self, job_id: str) -> list[Rerun]:
        from compute_on_aws.backends.local.rerun import plan_rerun

        return plan_rerun(self.store, job_id)

    @guarded
    def submit_reruns(self, reruns: Sequence[Rerun]) -> list[RerunOutcome]:
        from compute_on_aws.backends.local.rerun import submit_reruns
        from compute_on_aws.backends.local.submit import ensure_worker

        outcomes = submit_reruns(self.store, reruns)
        if self.config.local.autostart_worker and any(o.outcome == "submitted" for o in outcomes):
            ensure_worker(self.store, self.config.local)
        return outcomes

    @guarded
    def queue(self, plans: Sequence[Plan], on_result: OnResult) -> list[Outcome | ComputeOnAwsError]:
        from compute_on_aws.backends.local.submit import queue

        return queue(self.config, plans, on_result, state_dir=self.state_dir)

    @guarded
    def describe(self, job_ids: Sequence[str]) -> dict[str, JobView]:
        db = self.store.connect()
        try:
            found: dict[str, JobView] = {}
            live = live_worker_ids(db)
            for start in range(0, len(job_ids), 500):  # SQLite's limit on bound parameters is far above this
                chunk = list(job_ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for row in db.execute(f"SELECT * FROM jobs WHERE job_id IN ({marks})", chunk):  # noqa: S608
                    found[row["job_id"]] = view_of(db, row, live)
            if any(v.status == "RUNNABLE" for v in found.values()):
                # In the order the worker takes them (worker._claim): one line for the whole machine.
                line = [r["job_id"] for r in db.execute(IN_LINE)]
                places = {job_id: i for i, job_id in enumerate(line, 1)}
                for job_id, view in found.items():
                    if view.status == "RUNNABLE" and job_id in places:
                        place = Place(position=places[job_id], since=None, listed=len(line))
                        found[job_id] = dataclasses.replace(view, place=place)
            return found
        finally:
            db.close()

    @guarded
    def list_jobs(self, queues: Sequence[str], status: str | None) -> list[JobView]:
        db = self.store.connect()
        try:
            marks = ",".join("?" * len(queues))
            rows = db.execute(
                f"SELECT * FROM jobs WHERE queue IN ({marks}) AND parent_id IS NULL "  # noqa: S608
                "AND (? IS NULL OR status = ?) ORDER BY seq DESC",
                (*queues, status, status),
            ).fetchall()
            live = live_worker_ids(db)
            return [view_of(db, row, live) for row in rows]
        finally:
            db.close()

    @guarded
    def named(self, queue: str, names: Collection[str]) -> dict[str, list[JobView]]:
        found: dict[str, list[JobView]] = {name: [] for name in names}
        db = self.store.connect()
        try:
            # SQLite takes at most 999 parameters in a statement before 3.32.
            ordered = sorted(found)
            live = live_worker_ids(db)
            for start in range(0, len(ordered), 900):
                chunk = ordered[start : start + 900]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT * FROM jobs WHERE queue = ? AND parent_id IS NULL AND job_name IN ({marks}) "  # noqa: S608
                    "ORDER BY seq",
                    (queue, *chunk),
                ).fetchall()
                for row in rows:
                    found[row["job_name"]].append(view_of(db, row, live))
            return found
        finally:
            db.close()

    @guarded
    def cancel(self, job_ids: Sequence[str], reason: str) -> list[tuple[str, str]]:
        from compute_on_aws.backends.local.submit import cancel

        return cancel(self.store, list(job_ids), reason)

    @guarded
    def log_lines(self, view: JobView, attempt: int | None, token: str | None) -> tuple[list[str], str | None]:
        """New whole lines of the attempt's log file since `token` (a byte offset)."""
        path = view.log_stream if attempt is None else view.attempts[attempt - 1].log_stream
        if path is None or not Path(path).exists():
            return [], token
        offset = int(token or 0)
        with Path(path).open("rb") as f:
            f.seek(offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        if view.final:
            cut = len(data)
        lines = data[:cut].decode(errors="replace").splitlines()
        return lines, str(offset + cut)

    def backoff(self, follow: bool) -> Backoff:
        # A poll is a SQLite read: poll often.
        return Backoff(first=0.2, factor=1.0, cap=0.2)

    @guarded
    def warm_up(self) -> None:
        pass  # SQLite opens in no time

    @guarded
    def keep_alive(self) -> None:
        """A worker that died (or never started) is replaced while someone waits."""
        if self.config.local.autostart_worker:
            from compute_on_aws.backends.local.submit import ensure_worker

            ensure_worker(self.store, self.config.local)
