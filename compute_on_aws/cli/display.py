"""Showing jobs while they run: a live table on a terminal, one line per change elsewhere (CI logs)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from compute_on_aws.watching.views import STATES, JobView

_BAR = 20


def array_progress(view: JobView) -> str:
    """`[##x>......] 3/10 done` for an array job: # succeeded, x failed, > running."""
    if not view.array_size:
        return ""
    counts, size = view.array_counts, view.array_size
    done, failed = counts.get("SUCCEEDED", 0), counts.get("FAILED", 0)
    running = counts.get("RUNNING", 0) + counts.get("STARTING", 0)
    cells = [round(n * _BAR / size) for n in (done, failed, running)]
    bar = "#" * cells[0] + "x" * cells[1] + ">" * cells[2]
    return f"[{bar[:_BAR].ljust(_BAR, '.')}] {done + failed}/{size} done" + (f", {failed} failed" if failed else "")


def describe_line(view: JobView) -> str:
    reason = f" ({view.status_reason})" if view.status_reason and view.status != "SUCCEEDED" else ""
    exit_code = f" exit {view.exit_code}" if view.status == "FAILED" and view.exit_code is not None else ""
    array = f" {array_progress(view)}" if view.array_size else ""
    line = f", {view.in_line}" if view.in_line else ""
    return f"{view.job_name} {view.job_id}: {view.status}{line}{exit_code}{reason}{array}"


# Beyond this many jobs (a bulk call), progress is counts per state, and a line only for each job that failed.
MANY = 20


def counts_line(views: list[JobView]) -> str:
    """`1000 jobs: 12 RUNNING, 988 SUCCEEDED`, states in their order."""
    counts = Counter(view.status for view in views)
    listed = ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state])
    return f"{len(views)} jobs: {listed}"


class ChangePrinter:
    """One line each time a job's state (or an array's progress) changes; for many jobs, one each time the counts
    change, and one per job that failed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last: dict[str, str] = {}
        self.last_counts = ""

    def __call__(self, views: list[JobView]) -> None:
        many = len(views) > MANY
        for view in views:
            line = describe_line(view)
            if self.last.get(view.job_id) != line:
                self.last[view.job_id] = line
                if not many or view.status == "FAILED":
                    print(line, file=self.out, flush=True)
        if many and counts_line(views) != self.last_counts:
            self.last_counts = counts_line(views)
            print(self.last_counts, file=self.out, flush=True)


class LiveTable:
    """A table of the jobs redrawn in place, with the time waited."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.drawn = 0
        self.started = time.monotonic()

    def __call__(self, views: list[JobView]) -> None:
        waited = int(time.monotonic() - self.started)
        lines = [f"waiting for {len(views)} job{'s' if len(views) != 1 else ''} ({waited // 60}m{waited % 60:02d}s)"]
        if len(views) > MANY:
            # A screen, not a thousand lines: the counts, and the latest failures.
            failed = [v for v in views if v.status == "FAILED"]
            lines += [counts_line(views)] + [describe_line(v) for v in failed[-10:]]
        else:
            lines += [describe_line(v) for v in views]
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}F")
        self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self.out.flush()
        self.drawn = len(lines)


def progress(out: TextIO) -> ChangePrinter | LiveTable:
    return LiveTable(out) if out.isatty() else ChangePrinter(out)


class QueueProgress:
    """How many of a bulk call's jobs are queued: a bar on a terminal (rich), a line per 10% elsewhere (CI logs)."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = total
        self.out = out
        self.done = 0
        self._shown_tenth = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> QueueProgress:
        if self.out.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=self.out)
            if console.is_dumb_terminal:  # TERM=dumb (an editor's shell, some CI runners): no redrawing, lines then
                return self
            self._bar = Progress(
                TextColumn("queueing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
                # stdout stays stdout (scripts read it); lines meant for it are printed with `line`.
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("queueing", total=self.total)
        return self

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            return
        tenth = self.done * 10 // max(self.total, 1)
        if tenth > self._shown_tenth:
            self._shown_tenth = tenth
            print(f"queued {self.done}/{self.total} ({tenth * 10}%)", file=self.out, flush=True)

    def line(self, text: str, *, stderr: bool = False) -> None:
        """A line for stdout (or stderr); above the bar when it goes to the bar's terminal, so that the bar is not
        torn."""
        stream = sys.stderr if stderr else sys.stdout
        if self._bar is not None and (stderr or stream.isatty()):
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=stream, flush=True)

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()
