"""Re-running the failed children of an ended array: which indices, in as few new arrays as Batch's limits allow,
each telling its children which original child they stand for. Pure: the backends read the children and submit.

Batch cannot retry one child of an ended array. A re-run is a new array of just the failed children; its child i
stands for the i-th index of `COMPUTE_ON_AWS_ARRAY_INDICES` (ranges, `3,7-9,15`). A Nix-built entrypoint (script or
package) sets `AWS_BATCH_JOB_ARRAY_INDEX` back to the original index from it (nix/pkgs/mkEntrypoint.nix); a `command`
reads it.
One failed child is re-run as a single job with the variable naming its index."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compute_on_aws.errors import UserError
from compute_on_aws.planning.limits import MAX_OVERRIDES_CHARS

INDICES_VARIABLE = "COMPUTE_ON_AWS_ARRAY_INDICES"
RERUN_OF_TAG = "compute-on-aws:rerun-of"
MAX_ARRAY = 10_000
MAX_NAME = 128


def ranges(indices: Sequence[int]) -> str:
    """`0-2,5,7-9` for 0 1 2 5 7 8 9 (sorted, each once)."""
    runs: list[list[int]] = []
    for index in sorted(set(indices)):
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def expand(text: str) -> list[int]:
    """The indices a `ranges` string names, in order: the inverse of `ranges`."""
    found: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        found += range(int(low), int(high or low) + 1)
    return found


def groups(indices: Sequence[int], budget: int) -> list[list[int]]:
    """The indices split into runs whose ranges fit in `budget` characters and whose count is an array's at most."""
    split: list[list[int]] = [[]]
    for index in sorted(set(indices)):
        trial = [*split[-1], index]
        if split[-1] and (len(ranges(trial)) > budget or len(trial) > MAX_ARRAY):
            split.append([index])
        else:
            split[-1] = trial
    return [g for g in split if g]


_SUBMITTED = {
    "parameters": "parameters",
    "retryStrategy": "retryStrategy",
    "timeout": "timeout",
    "schedulingPriority": "schedulingPriorityOverride",
    "shareIdentifier": "shareIdentifier",
    "propagateTags": "propagateTags",
}


def rerun_name(name: str, part: int, parts: int) -> str:
    """`<name>-rerun` (`-rerun-2` for the second of several), within Batch's 128 characters."""
    suffix = "-rerun" + (f"-{part}" if parts > 1 else "")
    if len(name) + len(suffix) <= MAX_NAME:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(suffix) - 9]}-{digest}{suffix}"


@dataclass(frozen=True)
class Rerun:
    """One new job standing for some failed children of `of`: its SubmitJob request, and the indices it re-runs."""

    of: str
    indices: tuple[int, ...]
    request: Mapping[str, Any]


@dataclass(frozen=True)
class RerunOutcome:
    """What became of one re-run: `submitted` (job_id the new job), `active` (an earlier re-run of it is still
    active: job_id that one, nothing submitted) or `planned` (a dry run)."""

    job_name: str
    job_id: str | None
    indices: tuple[int, ...]
    outcome: str
    request: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "jobName": self.job_name,
            "jobId": self.job_id,
            "outcome": self.outcome,
            "indices": ranges(self.indices) or None,
            "request": dict(self.request),
        }


def check_rerunnable(job_id: str, status: str, *, array: bool, failed: Sequence[int]) -> list[int]:
    """`failed` when the job (an ended array, or a FAILED job) has something to re-run; else one line why not."""
    if status not in ("SUCCEEDED", "FAILED"):
        raise UserError(f"{job_id}: still {status}: re-run its failed children once it has ended")
    if array:
        if not failed:
            raise UserError(f"{job_id}: no child of this array failed: nothing to re-run")
        return list(failed)
    if status != "FAILED":
        raise UserError(f"{job_id}: {status}, not FAILED, and no array: nothing to re-run")
    return []


def _overrides(job: Mapping[str, Any]) -> dict[str, Any]:
    """What the children ran with: the command and environment Batch describes (Batch's own AWS_BATCH_* variables
    left out: it sets them again, and refuses them), and the resources."""
    container = job.get("container", {})
    overrides: dict[str, Any] = {}
    if container.get("command"):
        overrides["command"] = list(container["command"])
    environment = [
        {"name": e["name"], "value": e.get("value", "")}
        for e in container.get("environment", [])
        if not e["name"].startswith("AWS_BATCH") and e["name"] != INDICES_VARIABLE
    ]
    if environment:
        overrides["environment"] = environment
    if container.get("resourceRequirements"):
        overrides["resourceRequirements"] = list(container["resourceRequirements"])
    return overrides


def _is_rerun(job: Mapping[str, Any]) -> bool:
    return any(e["name"] == INDICES_VARIABLE for e in job.get("container", {}).get("environment", []))


def _original(job: Mapping[str, Any], index: int) -> int:
    """The index child `index` of `job` stands for (itself, unless `job` is a re-run)."""
    for e in job.get("container", {}).get("environment", []):
        if e["name"] == INDICES_VARIABLE:
            return expand(e.get("value", ""))[index]
    return index


def plan_reruns(job: Mapping[str, Any], failed: Sequence[int]) -> list[Rerun]:
    """The new jobs re-running the `failed` children of the ended array `job` (a DescribeJobs entry), or the FAILED
    job itself when it is no array (`failed` empty): the same definition revision, queue, parameters, command,
    environment, resources, retries, timeout and tags; a re-run of a re-run names the first array's indices."""
    base: dict[str, Any] = {
        "jobDefinition": job["jobDefinition"],
        "jobQueue": job["jobQueue"],
    }
    # DescribeJobs' field -> SubmitJob's (a job's priority is given as an override of its definition's).
    for key, sent in _SUBMITTED.items():
        if job.get(key) not in (None, {}, []):
            base[sent] = job[key]
    tags = {k: v for k, v in job.get("tags", {}).items() if not k.startswith("aws:")}
    overrides = _overrides(job)
    entry = {"name": INDICES_VARIABLE, "value": ""}
    budget = MAX_OVERRIDES_CHARS - len(
        json.dumps({**overrides, "environment": [*overrides.get("environment", []), entry]})
    )
    if not failed and not _is_rerun(job):  # a plain job: as it was
        request = {**base, "jobName": rerun_name(_first_name(job), 1, 1), "tags": {**tags, RERUN_OF_TAG: job["jobId"]}}
        return [Rerun(of=job["jobId"], indices=(), request={**request, "containerOverrides": overrides})]
    originals = [_original(job, i) for i in (failed or [0])]
    split = groups(originals, budget)
    reruns = []
    for part, indices in enumerate(split, 1):
        environment = [*overrides.get("environment", []), {"name": INDICES_VARIABLE, "value": ranges(indices)}]
        request = {
            **base,
            "jobName": rerun_name(_first_name(job), part, len(split)),
            "containerOverrides": {**overrides, "environment": environment},
            "tags": {**tags, RERUN_OF_TAG: job["jobId"]},
        }
        if len(indices) > 1:
            request["arrayProperties"] = {"size": len(indices)}
        reruns.append(Rerun(of=job["jobId"], indices=tuple(indices), request=request))
    return reruns


def _first_name(job: Mapping[str, Any]) -> str:
    """A re-run of a re-run keeps the first array's name: `etl-rerun`, not `etl-rerun-rerun`."""
    name = str(job["jobName"])
    base, sep, rest = name.rpartition("-rerun")
    return base if sep and (not rest or rest.lstrip("-").isdigit()) else name
