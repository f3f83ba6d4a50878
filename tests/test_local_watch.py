"""status, logs, list and wait answer for the local backend as they do for AWS (same views, same exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import pure_manifest, write_job

RETRIED = (
    '{ queue = "q"; image = "x"; attempts = 2; retryRules = [ { onExitCode = "7"; action = "retry"; } ]; '
    'command = [ "sh" "-c" "echo attempt $AWS_BATCH_JOB_ATTEMPT; test $AWS_BATCH_JOB_ATTEMPT = 2 || exit 7" ]; }'
)
FAILING = '{ queue = "q"; image = "x"; command = [ "sh" "-c" "echo giving up; exit 3" ]; }'
FAN = '{ queue = "q"; image = "x"; parallel = 2; command = [ "sh" "-c" "echo child $AWS_BATCH_JOB_ARRAY_INDEX" ]; }'


@pytest.fixture
def local(cli, tmp_path: Path):
    jobs = tmp_path / "jobs"
    write_job(jobs, "retried", RETRIED)
    write_job(jobs, "failing", FAILING)
    write_job(jobs, "fan", FAN)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(pure_manifest(jobs)))

    def run(*args: str):
        return cli("--manifest", str(manifest), "--state-dir", str(tmp_path / "state"), "--backend", "local", *args)

    return run


def queued(local, *args: str) -> str:
    result = local("queue", *args, "--json")
    assert result.code == 0, result.err
    return result.json()["jobs"][0]["jobId"]


def test_status_and_logs_of_a_retried_job(local) -> None:
    job_id = queued(local, "retried")
    assert local("wait", job_id).code == 0
    view = local("status", job_id, "--json").json()["jobs"][0]
    assert view["status"] == "SUCCEEDED"
    assert [(a["exit_code"], a["status_reason"]) for a in view["attempts"]] == [
        (7, "Essential container in task exited"),
        (0, "Essential container in task exited"),
    ]
    assert local("logs", job_id).out == "attempt 2\n"
    assert local("logs", job_id, "--attempt", "1").out == "attempt 1\n"
    human = local("status", job_id).out
    assert "  attempt 1: exit 7, Essential container in task exited" in human


def test_wait_exit_codes_and_failure_reason(local) -> None:
    job_id = queued(local, "failing")
    result = local("wait", job_id)
    assert result.code == 1
    assert f"failed: failing {job_id}: Essential container in task exited, exit code 3" in result.err
    assert local("wait", job_id, "--timeout", "5").code == 1


def test_arrays_logs_by_index_and_list(local) -> None:
    parent = queued(local, "fan")
    assert local("wait", parent).code == 0
    view = local("status", parent, "--json").json()["jobs"][0]
    assert view["array_size"] == 2 and view["array_counts"] == {"SUCCEEDED": 2}
    assert local("logs", parent, "--index", "1").out == "child 1\n"
    assert local("logs", parent).code == 2
    failing = queued(local, "failing")
    local("wait", failing)
    listed = local("list", "--json").json()["jobs"]
    assert [j["job_id"] for j in listed] == [failing, parent]
    assert [j["job_id"] for j in local("list", "--status", "FAILED", "--json").json()["jobs"]] == [failing]


def test_status_by_declared_job(local) -> None:
    first, second = queued(local, "failing", "a"), queued(local, "failing", "b")
    local("wait", first, second)
    shown = local("status", "--job", "failing", "--json").json()["jobs"]
    assert [j["job_id"] for j in shown] == [second, first]


def test_an_unusable_state_folder_is_one_line(cli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.sqlite").write_text("not a database")
    result = cli("--state-dir", str(state), "--backend", "local", "status", "x")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith(f"error: state folder {state}: state.sqlite is damaged (file is not a database): ")


@pytest.mark.parametrize(("option", "value"), [("--max-vcpus", "0"), ("--kill-grace", "-1")])
def test_worker_refuses_impossible_settings(cli, tmp_path: Path, option: str, value: str) -> None:
    result = cli("--state-dir", str(tmp_path / "s"), "worker", option, value, "--exit-when-idle")
    assert result.code == 2 and result.err.startswith(f"error: {option}: expected a number")
