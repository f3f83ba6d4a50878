"""AWS Batch's limits, checked on the rendered requests before any call: an error now beats a job failing later."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from compute_on_aws.errors import UserError
from compute_on_aws.planning.naming import VALID

# Batch accepts a job whose container overrides exceed this, then fails it when ECS refuses the task.
MAX_OVERRIDES_CHARS = 8192
MAX_SUBMIT_BYTES = 30 * 1024
MAX_DEFINITION_BYTES = 24 * 1024
MAX_TAGS = 50
MAX_DEPENDENCIES = 20


def _json(obj: Any) -> str:
    """JSON as botocore sends it (default separators, non-ASCII escaped): the larger, safer measure."""
    return json.dumps(obj)


def _size(obj: Any) -> int:
    return len(_json(obj).encode())


def definition_problems(definition: Mapping[str, Any]) -> tuple[str, ...]:
    """The limits a job definition breaks by itself: measured once per rendered definition, not once per job."""
    problems = []
    if (size := _size(definition)) > MAX_DEFINITION_BYTES:
        problems.append(f"the job definition is {size} bytes, over AWS's {MAX_DEFINITION_BYTES}")
    tags = definition.get("tags", {})
    problems += _tag_problems(tags)
    if len(tags) > MAX_TAGS:
        problems.append(f"the definition has {len(tags)} tags, over AWS's {MAX_TAGS}")
    return tuple(problems)


def _tag_problems(tags: Mapping[str, str]) -> list[str]:
    return [
        f"tag {key!r}: keys take 128 characters, values 256, and aws: is reserved"
        for key, value in tags.items()
        if len(key) > 128 or len(value) > 256 or key.lower().startswith("aws:")
    ]


def check(
    job_name: str,
    definition: Mapping[str, Any],
    request: Mapping[str, Any],
    of_definition: tuple[str, ...] | None = None,
) -> None:
    """Raises a UserError naming every limit the requests break. `of_definition`: definition_problems(definition),
    when already known."""
    problems = []
    if not VALID.fullmatch(request["jobName"]):
        problems.append(f"job name {request['jobName']!r} is not valid for AWS (1-128 letters, digits, - or _)")
    overrides = request.get("containerOverrides")
    if overrides is not None:
        chars = len(_json(overrides))
        if chars > MAX_OVERRIDES_CHARS:
            problems.append(
                f"container overrides are {chars} characters, over the {MAX_OVERRIDES_CHARS} Batch can start "
                "(pass fewer or shorter arguments, or move large values into a file the job reads)"
            )
    if (size := _size(request)) > MAX_SUBMIT_BYTES:
        problems.append(f"the SubmitJob request is {size} bytes, over AWS's {MAX_SUBMIT_BYTES}")
    problems += definition_problems(definition) if of_definition is None else of_definition
    definition_tags = definition.get("tags", {})
    job_tags = request.get("tags", {})
    problems += _tag_problems(job_tags)
    if definition.get("propagateTags") and len(definition_tags) + len(job_tags) > MAX_TAGS:
        problems.append(
            f"with propagateTags, the job and definition carry {len(definition_tags) + len(job_tags)} tags; "
            f"AWS fails jobs over {MAX_TAGS}"
        )
    for variable in overrides.get("environment", []) if overrides else []:
        if variable["name"].startswith("AWS_BATCH"):
            problems.append(f"variable {variable['name']}: names starting with AWS_BATCH are reserved")
    if len(request.get("dependsOn", [])) > MAX_DEPENDENCIES:
        problems.append(f"{len(request['dependsOn'])} dependencies, over AWS's {MAX_DEPENDENCIES} per job")
    if problems:
        raise UserError(f"{job_name}: " + "; ".join(problems))
