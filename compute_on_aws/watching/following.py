"""Printing a job's log as it grows, across attempts, whichever backend holds it."""

from __future__ import annotations

import dataclasses
from typing import Protocol, TextIO

from compute_on_aws.watching.views import JobView


class LogSource(Protocol):
    def log_lines(self, view: JobView, attempt: int | None, token: str | None) -> tuple[list[str], str | None]: ...


class Follower:
    """Prints the new lines of each job's latest log; when a retry starts a new log, the old one is drained first."""

    def __init__(self, source: LogSource, out: TextIO) -> None:
        self.source = source
        self.out = out
        self.tokens: dict[str, str | None] = {}
        self.streams: dict[str, str] = {}

    def __call__(self, views: list[JobView]) -> None:
        for view in views:
            previous = self.streams.get(view.job_id)
            if previous is not None and previous != view.log_stream:
                # The previous attempt's log is complete: marked final, its last line is printed even unterminated.
                self._print(dataclasses.replace(view, log_stream=previous, status="FAILED"))
            if view.log_stream is not None:
                self.streams[view.job_id] = view.log_stream
                self._print(view)

    def _print(self, view: JobView) -> None:
        assert view.log_stream is not None
        lines, token = self.source.log_lines(view, None, self.tokens.get(view.log_stream))
        self.tokens[view.log_stream] = token
        for line in lines:
            print(line, file=self.out, flush=True)
