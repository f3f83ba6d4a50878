"""AWS Batch's limits, refused before anything is sent: what `render` and `queue --dry-run` say about them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import write_job

MAX_OVERRIDES = 8192  # characters of the container overrides as JSON (ECS RunTask)
MAX_DEFINITION = 24 * 1024  # bytes of the RegisterJobDefinition request
MAX_TAGS = 50


def compact(value: Any) -> str:
    """JSON as botocore sends it (default separators, ASCII-escaped): what the limits are measured on."""
    return json.dumps(value)


@pytest.fixture
def run(cli, tmp_path: Path):
    """The CLI from the test's own folder, so no compute-on-aws.yaml but the test's is read."""

    def go(*args: str):
        return cli("--jobs", str(tmp_path / "jobs"), *args, cwd=tmp_path)

    return go


def arguments_with_overrides_of(length: int) -> list[str]:
    """Arguments for a job whose command is ["echo"], making {"command": [...]} exactly `length` characters."""
    args = ["a" * 100] * 70 + [""]
    base = len(compact({"command": ["echo", *args]}))
    assert base < length
    args[-1] = "b" * (length - base)
    assert len(compact({"command": ["echo", *args]})) == length
    return args


@pytest.mark.parametrize("command", [["render", "--json"], ["queue", "--dry-run", "--json"]])
def test_container_overrides_at_the_limit_pass(run, tmp_path: Path, command: list[str]) -> None:
    write_job(tmp_path / "jobs", "echo", '{ queue = "q"; command = [ "echo" ]; image = "i"; }')
    args = arguments_with_overrides_of(MAX_OVERRIDES)
    result = run(*command, "echo", *args)
    assert result.code == 0, result.err
    [job] = result.queued()
    overrides = job["request"]["containerOverrides"]
    assert overrides == {"command": ["echo", *args]}
    assert len(compact(overrides)) == MAX_OVERRIDES


@pytest.mark.parametrize("command", [["render", "--json"], ["queue", "--dry-run", "--json"]])
def test_container_overrides_over_the_limit_are_refused(run, tmp_path: Path, command: list[str]) -> None:
    write_job(tmp_path / "jobs", "echo", '{ queue = "q"; command = [ "echo" ]; image = "i"; }')
    result = run(*command, "echo", *arguments_with_overrides_of(MAX_OVERRIDES + 1))
    assert result.code == 2
    assert result.out == ""
    assert "8192" in result.err and "8193" in result.err
    assert len(result.err.splitlines()) == 1


def test_propagated_values_count_toward_the_overrides_and_stay_hidden(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "v4lue-" + "x" * MAX_OVERRIDES
    monkeypatch.setenv("BIG_INPUT", value)
    write_job(
        tmp_path / "jobs", "echo", '{ queue = "q"; command = [ "echo" ]; image = "i"; environment = [ "BIG_INPUT" ]; }'
    )
    result = run("queue", "--dry-run", "--json", "echo")
    assert result.code == 2
    assert "8192" in result.err
    assert "v4lue-" not in result.err and "v4lue-" not in result.out


def tags_nix(prefix: str, count: int) -> str:
    return "{ " + " ".join(f'{prefix}{i:02} = "v";' for i in range(count)) + " }"


def tags_yaml(prefix: str, count: int) -> str:
    return "tags:\n" + "".join(f"  {prefix}{i:02}: v\n" for i in range(count))


def tagged_project(tmp_path: Path, *, propagate: bool, job_tags: str | None = None) -> None:
    """30 tags in the config (c00..c29), and the job's own (30 by default: j00..j29)."""
    (tmp_path / "compute-on-aws.yaml").write_text(tags_yaml("c", 30))
    write_job(
        tmp_path / "jobs",
        "tagged",
        f'{{ queue = "q"; command = [ "true" ]; image = "i"; propagateTags = {str(propagate).lower()}; '
        f"tags = {job_tags or tags_nix('j', 30)}; }}",
    )


def test_propagated_tags_over_50_are_refused(run, tmp_path: Path) -> None:
    tagged_project(tmp_path, propagate=True)
    result = run("render", "--json", "tagged")
    assert result.code == 2
    assert result.out == ""
    assert "50" in result.err and "60" in result.err


def test_a_definition_over_50_tags_is_refused_even_without_propagation(run, tmp_path: Path) -> None:
    # Config tags and job tags both land on the job definition, one AWS resource: 60 tags there, over the 50 AWS allows
    # per resource, whether or not they propagate to the job.
    tagged_project(tmp_path, propagate=False)
    result = run("render", "--json", "tagged")
    assert result.code == 2
    assert "60 tags" in result.err and "50" in result.err


@pytest.mark.parametrize("propagate", [True, False])
def test_shared_tag_keys_count_once(run, tmp_path: Path, propagate: bool) -> None:
    # Job tags c20..c29 override config tags with the same keys: 30 + 29 - 10 = 49 tags on the definition, and the
    # run's own compute-on-aws:job tag makes 50 with propagateTags.
    shared = " ".join(f'c{i:02} = "job";' for i in range(20, 30))
    tagged_project(tmp_path, propagate=propagate, job_tags=f"{tags_nix('j', 19)} // {{ {shared} }}")
    result = run("queue", "--dry-run", "--json", "tagged")
    assert result.code == 0, result.err
    [job] = result.queued()
    tags = job["definition"]["tags"]
    assert len(tags) + len(job["request"]["tags"]) == MAX_TAGS
    assert tags["c25"] == "job" and tags["c05"] == "v"


def definition_with_env_value(run, tmp_path: Path, length: int):
    write_job(
        tmp_path / "jobs",
        "big",
        '{ queue = "q"; command = [ "true" ]; image = "i"; env.BIG = "' + "z" * length + '"; }',
    )
    return run("render", "--json", "big")


def definition_bytes(definition: dict[str, Any]) -> int:
    return len(json.dumps(definition).encode())


def test_definition_size_limit(run, tmp_path: Path) -> None:
    # Measure a definition, then grow its one literal to land exactly on the limit, and one byte past it.
    probe = definition_with_env_value(run, tmp_path, 1000)
    assert probe.code == 0, probe.err
    size = definition_bytes(probe.queued()[0]["definition"])
    at_limit = 1000 + MAX_DEFINITION - size

    result = definition_with_env_value(run, tmp_path, at_limit)
    assert result.code == 0, result.err
    assert definition_bytes(result.queued()[0]["definition"]) == MAX_DEFINITION

    result = definition_with_env_value(run, tmp_path, at_limit + 1)
    assert result.code == 2
    assert result.out == ""
    assert str(MAX_DEFINITION) in result.err and str(MAX_DEFINITION + 1) in result.err


def test_many_large_env_literals_are_refused(run, tmp_path: Path) -> None:
    env = " ".join(f'V{i} = "{"x" * 1000}";' for i in range(30))
    write_job(tmp_path / "jobs", "big", f'{{ queue = "q"; command = [ "true" ]; image = "i"; env = {{ {env} }}; }}')
    result = run("queue", "--dry-run", "--json", "big")
    assert result.code == 2
    assert "job definition" in result.err and str(MAX_DEFINITION) in result.err
