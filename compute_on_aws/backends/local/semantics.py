"""AWS Batch's rules, as pure functions the local backend follows: retries, dependencies, array parents, exit codes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def matches(pattern: str, value: str | None) -> bool:
    """Batch's evaluateOnExit patterns: exact, or a prefix when the pattern ends in `*` (`*` matches anything)."""
    text = value or ""
    return text.startswith(pattern[:-1]) if pattern.endswith("*") else text == pattern


def retry_action(
    rules: Sequence[Mapping[str, Any]], *, exit_code: int | None, status_reason: str | None, reason: str | None
) -> str:
    """RETRY or EXIT for a failed attempt: the first rule whose given patterns all match; RETRY when none does."""
    for rule in rules:
        checks = [
            ("onExitCode", None if exit_code is None else str(exit_code)),
            ("onStatusReason", status_reason),
            ("onReason", reason),
        ]
        if all(matches(rule[key], value) for key, value in checks if key in rule):
            return str(rule["action"]).upper()
    return "RETRY"


def exit_code_of(returncode: int) -> int:
    """A process's return code as a container reports it: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def dependency_state(statuses: Iterable[str | None]) -> str:
    """What a job waiting on these jobs does: RUNNABLE (all succeeded), FAILED (one failed or vanished), or PENDING."""
    seen = list(statuses)
    if any(s is None or s == "FAILED" for s in seen):
        return "FAILED"
    if all(s == "SUCCEEDED" for s in seen):
        return "RUNNABLE"
    return "PENDING"


def parent_status(children: Iterable[str]) -> str:
    """An array job's status from its children's."""
    statuses = list(children)
    if all(s == "SUCCEEDED" for s in statuses):
        return "SUCCEEDED"
    if all(s in ("SUCCEEDED", "FAILED") for s in statuses):
        return "FAILED"
    for state in ("RUNNING", "STARTING", "RUNNABLE"):
        if state in statuses:
            return "RUNNING" if state == "STARTING" else state
    return "PENDING"
