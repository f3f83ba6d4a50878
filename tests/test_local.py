"""The local backend with real processes: real SQLite, real worker processes, real (short) timeouts.

Jobs are plain `sh -c` commands writing markers into a shared folder (their `OUT` variable). Short timeouts come from
patching the manifest: the declarations refuse attemptDurationSeconds < 60, the local backend enforces what the
manifest says.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import current_system, pure_manifest, write_job

EXITED = "Essential container in task exited"
HOST_GONE = "Host EC2 (local worker) terminated."
TIMED_OUT = "Job attempt duration exceeded timeout"
FINAL = ("SUCCEEDED", "FAILED")


def nix_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${").replace("\n", "\\n")
    return f'"{escaped}"'


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """No such process (a zombie counts as gone: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def same_process(pid: int, identity: str | None) -> bool:
    """Whether pid is still the process recorded as `<boot id>:<pid>:<start time>`, and not gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not gone(pid) and (identity or "").endswith(f":{pid}:{stat.rsplit(')', 1)[1].split()[19]}")


def _stop(pid: int, *, group: bool) -> None:
    send = os.killpg if group else os.kill
    with contextlib.suppress(ProcessLookupError, PermissionError):
        send(pid, signal.SIGKILL)


class Local:
    """One test's local backend: a jobs folder, a manifest, a config, a state folder, workers it started."""

    def __init__(self, root: Path, cli: Any) -> None:
        self.root = root
        self.cli = cli
        self.jobs = root / "jobs"
        self.out = root / "out"
        self.out.mkdir()
        self.state = root / "state"
        self.config_file = root / "compute-on-aws.yaml"
        self.manifest_file = root / "manifest.json"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.configure()

    # -- setup

    def configure(self, *, top: dict[str, Any] | None = None, **local: Any) -> None:
        settings = {
            "state_dir": str(self.state),
            "autostart_worker": False,
            "kill_grace_seconds": 1,
            "max_vcpus": 4,
            **local,
        }
        config = {"backend": "local", "local": settings, **(top or {})}
        self.config_file.write_text(json.dumps(config))  # JSON is YAML

    def job(self, name: str, script: str, *, queue: str = "q", attrs: str = "") -> None:
        write_job(
            self.jobs,
            name,
            f'{{ queue = "{queue}"; command = [ "sh" "-c" {nix_string(script)} ]; image = "x"; '
            f'env.OUT = "{self.out}"; {attrs} }}',
        )

    def write_manifest(self, patch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        manifest = pure_manifest(self.jobs)
        assert manifest["errors"] == {}
        if patch is not None:
            patch(manifest)
        self.manifest_file.write_text(json.dumps(manifest))
        return manifest

    # -- the CLI

    def run(self, *args: str) -> Any:
        return self.cli("--config", str(self.config_file), "--manifest", str(self.manifest_file), *args)

    def queue(self, name: str, *args: str) -> str:
        result = self.run("queue", name, *args, "--json")
        assert result.code == 0, result.err
        outcome = result.json()["jobs"][0]
        assert outcome["outcome"] == "submitted", outcome
        job_id: str = outcome["jobId"]
        return job_id

    # -- workers

    def start_worker(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.root / f"worker-{len(self.workers)}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "compute_on_aws", "--config", str(self.config_file), "worker", *args],
            cwd=self.root,
            env=os.environ.copy() if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers.append(process)
        return process

    def kill_worker_mid_job(self, job_id: str) -> int:
        """Starts a worker, lets it start the job (which writes its pid to $OUT/pid), then kills the worker (kill -9);
        returns the job's pid."""
        worker = self.start_worker()
        pid = self.pid("pid")
        wait_until(lambda: self.status(job_id)["status"] == "RUNNING", "the job to run")
        worker.kill()
        worker.wait()
        return pid

    def drain(self, timeout: float = 30) -> None:
        """A worker in the background (stopped at teardown) until every job ended."""
        self.start_worker()
        self.settle(timeout)

    def run_worker(self, timeout: float = 60) -> None:
        """A worker until nothing is left to run (it exits ~2 s after)."""
        process = self.start_worker("--exit-when-idle")
        assert process.wait(timeout) == 0, self.worker_logs()

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.root.glob("worker-*.log")))

    def cleanup(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    _stop(process.pid, group=True)
                    process.wait()
        if not self.state.joinpath("state.sqlite").exists():
            return
        # Workers `queue` started by itself, and any job process left behind by a failing test (a test that damaged
        # the state file left none).
        with contextlib.suppress(sqlite3.DatabaseError):
            for row in self.query("SELECT pid, identity FROM workers"):
                if same_process(row["pid"], row["identity"]):
                    _stop(row["pid"], group=False)
            for row in self.query("SELECT pid, identity FROM attempts WHERE pid IS NOT NULL"):
                if same_process(row["pid"], row["identity"]):
                    _stop(row["pid"], group=True)

    # -- state

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.state / "state.sqlite", timeout=30)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, params)]
        finally:
            db.close()

    def status(self, job_id: str) -> dict[str, Any]:
        (row,) = self.query("SELECT * FROM jobs WHERE job_id = ?", job_id)
        return row

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt", job_id)

    def finished(self, *job_ids: str, timeout: float = 30) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            rows = [self.status(j) for j in job_ids]
            return rows if all(r["status"] in FINAL for r in rows) else None

        result: list[dict[str, Any]] = wait_until(done, f"{job_ids} to end", timeout)
        return result

    def settle(self, timeout: float = 30) -> None:
        """Every job ended and no attempt is still running."""
        wait_until(
            lambda: (
                not self.query("SELECT 1 FROM jobs WHERE status NOT IN ('SUCCEEDED', 'FAILED')")
                and not self.query("SELECT 1 FROM attempts WHERE stopped_at IS NULL")
            ),
            "every job to end",
            timeout,
        )

    def marker(self, name: str) -> str:
        return (self.out / name).read_text()

    def pid(self, name: str) -> int:
        path = self.out / name
        wait_until(lambda: path.exists() and path.read_text().strip(), f"{path}")
        return int(path.read_text())


@pytest.fixture
def local(tmp_path: Path, cli: Any) -> Iterator[Local]:
    (tmp_path / "local").mkdir()
    backend = Local(tmp_path / "local", cli)
    try:
        yield backend
    finally:
        backend.cleanup()


def spans(text: str) -> list[tuple[float, float]]:
    return [(float(line.split()[1]), float(line.split()[2])) for line in text.splitlines()]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


# -- scheduling


def test_higher_priority_queues_run_first_then_submission_order(local: Local) -> None:
    local.configure(max_vcpus=1, queue_priorities={"urgent": 10, "bulk": 1})
    script = 'echo "$AWS_BATCH_JQ_NAME $0" >> "$OUT/order"'
    local.job("bulk", script, queue="bulk")
    local.job("urgent", script, queue="urgent")
    local.job("other", script, queue="other")  # not in queue_priorities: priority 1, like bulk
    local.write_manifest()
    for name, arg in [("bulk", "1"), ("urgent", "1"), ("other", "1"), ("bulk", "2"), ("urgent", "2"), ("other", "2")]:
        local.queue(name, arg)
    local.run_worker()
    assert local.marker("order").splitlines() == [
        "urgent 1",
        "urgent 2",
        "bulk 1",
        "other 1",
        "bulk 2",
        "other 2",
    ]


def test_running_jobs_never_use_more_vcpus_than_max_vcpus(local: Local) -> None:
    local.configure(max_vcpus=2)
    local.job("span", 's=$(date +%s.%N); sleep 0.5; echo "$0 $s $(date +%s.%N)" >> "$OUT/spans"')
    local.write_manifest()
    for arg in ("a", "b", "c"):
        local.queue("span", arg)
    local.drain()
    intervals = spans(local.marker("spans"))
    assert len(intervals) == 3
    # Two at once (the capacity is used), never three.
    assert most_at_once(intervals) == 2


def test_jobs_holding_a_consumable_resource_of_total_1_run_one_after_the_other(local: Local) -> None:
    local.configure(max_vcpus=4, top={"consumable_resources": {"db-connections": {"total": 1}}})
    span = 's=$(date +%s.%N); sleep 0.6; echo "$1 $s $(date +%s.%N)" >> "$OUT/$0"'
    local.job("load", span, attrs="consumes = { db-connections = 1; };")
    local.job("free", span)
    local.write_manifest()
    held = [local.queue("load", "held", arg) for arg in ("a", "b")]
    others = [local.queue("free", "free", arg) for arg in ("a", "b")]
    worker = local.start_worker()
    # While one holds the connection, the other waits RUNNABLE and says for what.
    waiting = wait_until(
        lambda: [r for r in map(local.status, held) if r["status"] == "RUNNABLE" and r["status_reason"]],
        "the second job to wait for the resource",
    )
    assert waiting[0]["status_reason"] == "waiting for consumable resource db-connections (1 needed, 0 free)"
    assert all(r["status"] == "SUCCEEDED" for r in local.finished(*held, *others))
    assert worker.poll() is None
    holders, free = spans(local.marker("held")), spans(local.marker("free"))
    assert len(holders) == 2 and most_at_once(holders) == 1
    # The capacity left is used by jobs holding nothing: they ran beside the holders.
    assert most_at_once(holders + free) >= 2


def test_a_resource_spent_by_a_job_is_not_given_back(local: Local) -> None:
    local.configure(top={"consumable_resources": {"licence": {"total": 1, "replenishable": False}}})
    local.job("once", 'echo ran >> "$OUT/ran"', attrs="consumes = { licence = 1; };")
    local.write_manifest()
    first, second = local.queue("once", "a"), local.queue("once", "b")
    local.start_worker()
    assert local.finished(first)[0]["status"] == "SUCCEEDED"
    wait_until(lambda: local.status(second)["status_reason"], "the second job to say why it waits")
    assert local.status(second)["status"] == "RUNNABLE"
    assert local.marker("ran") == "ran\n"


def test_consuming_an_undeclared_resource_is_refused_before_anything_is_queued(local: Local) -> None:
    local.configure(top={"consumable_resources": {"db-connections": {"total": 2}}})
    local.job("load", "true", attrs="consumes = { db-conections = 1; };")
    local.job("greedy", "true", attrs="consumes = { db-connections = 3; };")
    local.write_manifest()
    result = local.run("queue", "load")
    assert result.code == 2
    assert result.err == (
        "error: load: consumes: 'db-conections' is not among the consumable_resources compute-on-aws.yaml declares "
        "(did you mean db-connections?)\n"
    )
    result = local.run("queue", "greedy")
    assert result.code == 2
    assert "greedy: consumes: db-connections: the job holds 3 and only 2 exist" in result.err
    assert not local.state.joinpath("state.sqlite").exists() or local.query("SELECT * FROM jobs") == []


def test_ulimits_apply_to_the_local_job(local: Local) -> None:
    local.job(
        "limited",
        'ulimit -S -n > "$OUT/soft"; ulimit -H -n > "$OUT/hard"',
        attrs="ulimits.nofile = { soft = 256; hard = 512; };",
    )
    local.write_manifest()
    job_id = local.queue("limited")
    local.run_worker()
    assert local.finished(job_id)[0]["status"] == "SUCCEEDED"
    assert (local.marker("soft"), local.marker("hard")) == ("256\n", "512\n")


@pytest.mark.parametrize(
    ("attrs", "line"),
    [
        (
            'volumes.data = { mountPoint = "/data"; efs.fileSystemId = "fs-0123abcd"; };',
            "error: boxed: volumes: the local backend runs jobs without a container, so it cannot mount /data; try "
            "the job without volumes locally, or queue it on AWS\n",
        ),
        (
            'user = "1000";',
            "error: boxed: user: the local backend runs jobs as the worker's own user, not '1000'; queue it on AWS, "
            "or try it locally without user\n",
        ),
    ],
)
def test_what_needs_a_container_is_refused_locally_in_one_line(local: Local, attrs: str, line: str) -> None:
    local.job("boxed", "true", attrs=attrs)
    local.write_manifest()
    result = local.run("queue", "boxed")
    assert (result.code, result.err) == (2, line)
    assert local.query("SELECT * FROM jobs") == []


def test_a_job_larger_than_the_capacity_stays_runnable_with_a_misconfiguration_reason(local: Local) -> None:
    local.configure(max_vcpus=2)
    local.job("big", 'echo ran > "$OUT/big"', attrs="vcpus = 4;")
    local.job("small", 'echo ran > "$OUT/small"')
    local.write_manifest()
    big = local.queue("big")
    small = local.queue("small")
    local.start_worker()
    job = wait_until(
        lambda: (row := local.status(big))["status_reason"] and row, "a status reason on the job that cannot fit"
    )
    assert job["status"] == "RUNNABLE"
    assert job["status_reason"].startswith("MISCONFIGURATION")
    # It blocks nobody, and it never starts.
    (done,) = local.finished(small)
    assert done["status"] == "SUCCEEDED"
    time.sleep(0.5)
    assert local.status(big)["status"] == "RUNNABLE"
    assert local.attempts(big) == []
    assert not (local.out / "big").exists()


# -- arrays


def test_array_children_get_their_index_and_the_parent_succeeds(local: Local) -> None:
    local.job("fan", 'echo "$AWS_BATCH_JOB_ARRAY_INDEX $AWS_BATCH_JOB_ID" >> "$OUT/children"', attrs="parallel = 3;")
    local.write_manifest()
    local.start_worker()
    result = local.run("queue", "fan", "--wait", "--json")
    assert result.code == 0, result.err
    parent = result.json()["jobs"][0]["jobId"]
    lines = sorted(local.marker("children").splitlines())
    assert lines == [f"{i} {parent}:{i}" for i in range(3)]
    assert local.status(parent)["status"] == "SUCCEEDED"
    assert [local.status(f"{parent}:{i}")["status"] for i in range(3)] == ["SUCCEEDED"] * 3
    assert local.attempts(parent) == []  # the parent sums its children up; it runs nothing


def test_one_failing_child_fails_the_parent_once_all_children_ended(local: Local) -> None:
    local.job(
        "fan",
        '[ "$AWS_BATCH_JOB_ARRAY_INDEX" = 1 ] && exit 1; sleep 1; echo "$AWS_BATCH_JOB_ARRAY_INDEX" >> "$OUT/ok"',
        attrs="parallel = 3;",
    )
    local.write_manifest()
    local.start_worker()
    result = local.run("queue", "fan", "--wait", "--json")
    parent_id = result.json()["jobs"][0]["jobId"]
    local.settle()
    children = [local.status(f"{parent_id}:{i}") for i in range(3)]
    assert result.code == 1, result.err
    assert [c["status"] for c in children] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    parent = local.status(parent_id)
    assert parent["status"] == "FAILED"
    assert parent["stopped_at"] >= max(c["stopped_at"] for c in children)
    assert sorted(local.marker("ok").split()) == ["0", "2"]


def test_array_children_share_the_capacity_with_nothing_else(local: Local) -> None:
    local.configure(max_vcpus=3)
    local.job(
        "fan",
        's=$(date +%s.%N); sleep 0.5; echo "$AWS_BATCH_JOB_ARRAY_INDEX $s $(date +%s.%N)" >> "$OUT/spans"',
        attrs="parallel = 3;",
    )
    local.write_manifest()
    local.queue("fan")
    local.drain()
    children = [line for line in local.marker("spans").splitlines() if not line.startswith(" ")]
    assert most_at_once(spans("\n".join(children))) == 3


# -- dependencies


def test_a_dependent_job_starts_only_after_its_dependency_succeeded(local: Local) -> None:
    local.job("first", 'sleep 1; date +%s.%N > "$OUT/first-end"')
    local.job("second", 'date +%s.%N > "$OUT/second-start"')
    local.write_manifest()
    first = local.queue("first")
    second = local.queue("second", "--after", first)
    local.start_worker()
    wait_until(lambda: local.status(first)["status"] == "RUNNING", "first to run")
    assert local.status(second)["status"] == "PENDING"
    rows = local.finished(first, second)
    assert [r["status"] for r in rows] == ["SUCCEEDED", "SUCCEEDED"]
    assert float(local.marker("second-start")) >= float(local.marker("first-end"))


def test_a_job_whose_dependency_failed_fails_without_running(local: Local) -> None:
    local.job("first", "exit 1")
    local.job("second", 'echo ran > "$OUT/second"')
    local.write_manifest()
    local.start_worker()
    first = local.queue("first")
    result = local.run("queue", "second", "--after", first, "--wait", "--json")
    assert result.code == 1, result.err
    second = result.json()["jobs"][0]["jobId"]
    job = local.status(second)
    assert (job["status"], job["status_reason"]) == ("FAILED", "Dependent Job failed")
    assert local.attempts(second) == []
    assert not (local.out / "second").exists()


def test_a_declared_chain_runs_in_order_and_queue_wait_waits_for_all_of_it(local: Local) -> None:
    local.job("extract", 'sleep 1; echo "$0" > "$OUT/extract"; date +%s.%N > "$OUT/extract-end"')  # sh -c: args from $0
    local.job("load", 'date +%s.%N > "$OUT/load-start"; exit 3', attrs='after = [ "extract" ];')
    local.job("report", 'echo ran > "$OUT/report"', attrs='after = [ "load" ];')
    local.write_manifest()
    local.start_worker()
    result = local.run("queue", "report", "day1", "--wait", "--json")
    assert result.code == 1, result.err  # load failed: the chain did not succeed
    ids = {j["job"]: j["jobId"] for j in result.json()["jobs"]}
    assert list(ids) == ["extract", "load", "report"]
    rows = {name: local.status(job_id) for name, job_id in ids.items()}
    assert [rows[n]["status"] for n in ids] == ["SUCCEEDED", "FAILED", "FAILED"]
    assert rows["report"]["status_reason"] == "Dependent Job failed" and not (local.out / "report").exists()
    assert float(local.marker("load-start")) >= float(local.marker("extract-end"))
    assert local.marker("extract") == "day1\n"  # the arguments go to every job of the chain
    assert "failed: load_day1" in result.err and "failed: report_day1" in result.err


def test_a_scheduled_slot_runs_once_locally_and_knows_its_time(local: Local) -> None:
    local.job(
        "nightly",
        'echo "$COMPUTE_ON_AWS_SCHEDULED_TIME $0" >> "$OUT/runs"',
        attrs='schedule = { cron = "0 5 * * *"; args = [ "full" ]; };',
    )
    local.write_manifest()
    first = local.run("queue", "--due", "--at", "2026-11-28T05:30Z", "--json")
    assert first.code == 0, first.err
    (queued,) = first.json()["jobs"]
    assert queued["jobName"] == "nightly_2026-11-28T0500Z_full" and queued["outcome"] == "submitted"
    local.run_worker()
    assert local.marker("runs") == "2026-11-28T05:00:00Z full\n"
    # Finished, the slot is still taken: a second pipeline (or a retry of this one) does not run it again.
    again = local.run("queue", "--due", "--at", "2026-11-28T05:45Z", "--json")
    assert again.code == 0, again.err
    assert [(j["outcome"], j["jobId"]) for j in again.json()["jobs"]] == [("duplicate", queued["jobId"])]


def test_missed_schedules_read_the_local_history_as_they_read_batch_s(local: Local) -> None:
    """Slots 01:00-04:00 of an hourly job: 03:00 never queued, 02:00 failed (exit 1 on its argument's day)."""
    local.job(
        "hourly", 'case "$COMPUTE_ON_AWS_SCHEDULED_TIME" in *T02:*) exit 1;; esac', attrs='schedule = "0 * * * *";'
    )
    local.write_manifest()
    for at, window in (("2026-11-28T02:10Z", "2h"), ("2026-11-28T04:10Z", "1h")):
        assert local.run("queue", "--due", "--at", at, "--window", window).code == 0
    local.run_worker()
    result = local.run(
        "schedules", "missed", "--at", "2026-11-28T05:00Z", "--window", "4h30m", "--grace", "30m", "--json"
    )
    assert result.code == 1, result.err
    outcomes = {s["slot"][11:16]: s["outcome"] for s in result.json()["slots"]}
    assert outcomes == {"01:00": "succeeded", "02:00": "failed", "03:00": "missing", "04:00": "succeeded"}


def times_of_a_run(local: Local, job: str) -> dict[str, float]:
    """Queues the job, waits for it (room for 8 children at once), and reads the times its children wrote."""
    local.write_manifest()
    local.configure(max_vcpus=8)
    local.start_worker()
    result = local.run("queue", job, "--wait")
    assert result.code == 0, result.err
    return {f.name: float(f.read_text()) for f in local.out.iterdir()}


def test_n_to_n_children_wait_for_their_own_index_only(local: Local) -> None:
    local.job(
        "split",
        'i=$AWS_BATCH_JOB_ARRAY_INDEX; if [ "$i" = 0 ]; then sleep 4; fi; date +%s.%N > "$OUT/split-end-$i"',
        attrs="parallel = 4;",
    )
    local.job(
        "scan",
        'date +%s.%N > "$OUT/scan-start-$AWS_BATCH_JOB_ARRAY_INDEX"',
        attrs='parallel = 4; after = [ { job = "split"; type = "N_TO_N"; } ];',
    )
    at = times_of_a_run(local, "scan")
    for i in range(4):
        assert at[f"scan-start-{i}"] >= at[f"split-end-{i}"]
    assert at["scan-start-3"] < at["split-end-0"]  # not held back by the slow child 0 of split


def test_sequential_array_children_run_one_after_another(local: Local) -> None:
    local.job(
        "scan",
        'i=$AWS_BATCH_JOB_ARRAY_INDEX; date +%s.%N > "$OUT/start-$i"; sleep 0.3; date +%s.%N > "$OUT/end-$i"',
        attrs="parallel = 3; sequential = true;",
    )
    at = times_of_a_run(local, "scan")
    assert at["start-1"] >= at["end-0"] and at["start-2"] >= at["end-1"]


def test_after_an_unknown_job_is_a_users_mistake(local: Local) -> None:
    local.job("second", "true")
    local.write_manifest()
    result = local.run("queue", "second", "--after", "no-such-job")
    assert result.code == 2
    assert "no-such-job" in result.err
    assert local.query("SELECT * FROM jobs") == []


# -- retries and evaluateOnExit


def test_a_retry_rule_on_the_exit_code_retries_until_success(local: Local) -> None:
    local.job(
        "flaky",
        'echo "attempt $AWS_BATCH_JOB_ATTEMPT" >> "$OUT/attempts"; [ "$AWS_BATCH_JOB_ATTEMPT" -ge 3 ] || exit 3',
        attrs='attempts = 3; retryRules = [ { onExitCode = "3"; action = "retry"; } ];',
    )
    local.write_manifest()
    job_id = local.queue("flaky")
    local.drain()
    job = local.status(job_id)
    assert (job["status"], job["exit_code"]) == ("SUCCEEDED", 0)
    assert [(a["attempt"], a["exit_code"]) for a in local.attempts(job_id)] == [(1, 3), (2, 3), (3, 0)]
    assert local.marker("attempts").splitlines() == ["attempt 1", "attempt 2", "attempt 3"]


def test_an_exit_rule_and_the_default_rules_do_not_retry_a_failing_exit(local: Local) -> None:
    local.job(
        "exit-rule",
        "exit 3",
        attrs='attempts = 3; retryRules = [ { onExitCode = "3"; action = "exit"; } ];',
    )
    local.job("default-rules", "exit 1", attrs="attempts = 3;")
    local.write_manifest()
    ruled = local.queue("exit-rule")
    default = local.queue("default-rules")
    local.drain()
    for job_id, code in ((ruled, 3), (default, 1)):
        job = local.status(job_id)
        assert (job["status"], job["exit_code"]) == ("FAILED", code)
        assert [(a["exit_code"], a["status_reason"]) for a in local.attempts(job_id)] == [(code, EXITED)]


# -- timeouts and stopping


def _short_timeout(manifest: dict[str, Any]) -> None:
    for job in manifest["jobs"].values():
        job["attemptDurationSeconds"] = 1


def test_a_timeout_kills_the_whole_process_group_and_is_not_retried(local: Local) -> None:
    local.job("slow", 'sleep 300 & echo $! > "$OUT/pid"; wait', attrs="attempts = 3;")
    # Ignores SIGTERM (and so does its sleep): killed with SIGKILL after kill_grace_seconds.
    local.job("stubborn", "trap '' TERM; sleep 300 & echo $! > \"$OUT/stubborn-pid\"; wait", attrs="attempts = 3;")
    local.write_manifest(_short_timeout)
    slow = local.queue("slow")
    stubborn = local.queue("stubborn")
    started = time.monotonic()
    local.start_worker()
    rows = local.finished(slow, stubborn, timeout=20)
    assert time.monotonic() - started < 10
    for job in rows:
        assert (job["status"], job["status_reason"]) == ("FAILED", TIMED_OUT)
        (attempt,) = local.attempts(job["job_id"])
        assert attempt["status_reason"] == TIMED_OUT
        assert attempt["stopped_at"] - attempt["started_at"] < 6
    assert gone(local.pid("pid"))
    assert gone(local.pid("stubborn-pid"))


def test_cancelling_a_queued_job_fails_it_with_the_reason_and_it_never_runs(local: Local) -> None:
    local.job("later", 'echo ran > "$OUT/later"')
    local.write_manifest()
    job_id = local.queue("later")
    result = local.run("cancel", job_id, "--reason", "wrong day")
    assert (result.code, result.out) == (0, f"{job_id}: cancelled\n")
    local.run_worker()
    job = local.status(job_id)
    assert (job["status"], job["status_reason"]) == ("FAILED", "wrong day")
    assert local.attempts(job_id) == []
    assert not (local.out / "later").exists()


def test_terminating_a_running_job_stops_its_processes_and_is_not_retried(local: Local) -> None:
    local.job("long", 'sleep 300 & echo $! > "$OUT/pid"; wait', attrs="attempts = 3;")
    local.write_manifest()
    job_id = local.queue("long")
    local.start_worker()
    pid = local.pid("pid")
    wait_until(lambda: local.status(job_id)["status"] == "RUNNING", "the job to run")
    result = local.run("cancel", job_id, "--reason", "stop it")
    assert (result.code, result.out) == (0, f"{job_id}: terminating\n")
    (job,) = local.finished(job_id, timeout=15)
    assert (job["status"], job["status_reason"]) == ("FAILED", "stop it")
    assert len(local.attempts(job_id)) == 1
    assert gone(pid)


def test_cancelling_an_unknown_job_says_so_and_exits_1(local: Local) -> None:
    local.job("later", "true")
    local.write_manifest()
    job_id = local.queue("later")
    result = local.run("cancel", "no-such-job", job_id)
    assert result.code == 1
    assert result.out.splitlines() == ["no-such-job: not found", f"{job_id}: cancelled"]
    again = local.run("cancel", job_id)
    assert (again.code, again.out) == (0, f"{job_id}: already FAILED\n")


# -- workers


def test_a_new_worker_recovers_the_job_of_a_killed_worker(local: Local) -> None:
    local.job(
        "resilient",
        'if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then echo $$ > "$OUT/pid"; exec sleep 300; fi; echo done > "$OUT/done"',
    )
    local.write_manifest()
    job_id = local.queue("resilient")
    pid = local.kill_worker_mid_job(job_id)
    assert not gone(pid)  # the attempt outlived its worker
    local.drain()
    job = local.status(job_id)
    assert job["status"] == "SUCCEEDED"
    assert [(a["attempt"], a["status_reason"]) for a in local.attempts(job_id)] == [(1, HOST_GONE), (2, EXITED)]
    assert local.marker("done") == "done\n"
    assert gone(pid)


def test_a_running_job_whose_worker_died_says_so_and_a_cancel_of_it_is_kept(local: Local) -> None:
    """`status` of a RUNNING job whose worker was killed names the lost worker; cancelling it says the stop waits
    for a worker; the next worker ends it with the cancel's reason, not as a lost host, and does not retry it."""
    local.job("stuck", 'echo $$ > "$OUT/pid"; exec sleep 300', attrs="attempts = 3;")
    local.write_manifest()
    job_id = local.queue("stuck")
    pid = local.kill_worker_mid_job(job_id)
    shown = local.run("status", job_id, "--json")
    assert shown.code == 0, shown.err
    (view,) = shown.json()["jobs"]
    assert view["status"] == "RUNNING" and "its local worker is gone" in view["status_reason"]
    cancelled = local.run("cancel", job_id, "--reason", "not needed")
    assert cancelled.code == 0, cancelled.err
    assert (
        cancelled.out
        == f"{job_id}: terminating once a worker starts (its worker is gone; the cancel is kept, not retried)\n"
    )
    local.drain()
    job = local.status(job_id)
    assert (job["status"], job["status_reason"]) == ("FAILED", "not needed")
    assert [(a["attempt"], a["status_reason"]) for a in local.attempts(job_id)] == [(1, "not needed")]
    assert gone(pid)


def test_two_workers_at_once_run_every_job_exactly_once(local: Local) -> None:
    local.job("quick", 'echo "$0" >> "$OUT/markers"')
    local.write_manifest()
    ids = [local.queue("quick", str(i)) for i in range(20)]
    workers = [local.start_worker("--exit-when-idle") for _ in range(2)]
    for worker in workers:
        assert worker.wait(60) == 0, local.worker_logs()
    assert sorted(local.marker("markers").split(), key=int) == [str(i) for i in range(20)]
    rows = local.query("SELECT job_id, attempt FROM attempts")
    assert sorted((r["job_id"], r["attempt"]) for r in rows) == sorted((i, 1) for i in ids)
    assert {local.status(i)["status"] for i in ids} == {"SUCCEEDED"}


# -- queueing


def test_queueing_the_same_job_while_it_is_queued_is_a_duplicate(local: Local) -> None:
    local.job("daily", "true")
    local.write_manifest()
    first = local.queue("daily", "2026-11-25")
    again = local.run("queue", "daily", "2026-11-25", "--json")
    assert again.code == 0, again.err
    outcome = again.json()["jobs"][0]
    assert (outcome["outcome"], outcome["jobId"]) == ("duplicate", first)
    assert len(local.query("SELECT * FROM jobs")) == 1
    other_day = local.queue("daily", "2026-11-26")  # other arguments, another job
    local.drain()
    assert local.status(first)["status"] == local.status(other_day)["status"] == "SUCCEEDED"
    later = local.queue("daily", "2026-11-25")
    assert later not in (first, other_day)


def test_a_job_sees_its_variables_and_nothing_else_of_the_workers_environment(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.job(
        "envy",
        'env > "$OUT/env"',
        queue="env-queue",
        attrs='environment = [ "PROPAGATED" ]; env.LITERAL = "from the declaration";',
    )
    local.write_manifest()
    monkeypatch.setenv("PROPAGATED", "from the shell")
    job_id = local.queue("envy")
    worker_env = {**os.environ, "UNRELATED_TO_THE_JOB": "leak"}
    del worker_env["PROPAGATED"]
    process = local.start_worker("--exit-when-idle", env=worker_env)
    assert process.wait(60) == 0
    assert local.status(job_id)["status"] == "SUCCEEDED"
    seen = dict(line.split("=", 1) for line in local.marker("env").splitlines() if "=" in line)
    assert seen["PROPAGATED"] == "from the shell"
    assert seen["LITERAL"] == "from the declaration"
    assert seen["AWS_BATCH_JOB_ID"] == job_id
    assert seen["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert seen["AWS_BATCH_JQ_NAME"] == "env-queue"
    assert "UNRELATED_TO_THE_JOB" not in seen
    assert "AWS_ACCESS_KEY_ID" not in seen  # the worker's credentials stay the worker's
    assert "NIX_CONFIG" not in seen


SECRET_JOB_ATTRS = (
    'secrets.API_TOKEN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"; '
    'executionRoleArn = "arn:aws:iam::123456789012:role/e";'
)


def test_secrets_need_secrets_from_environment(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    local.job("secretive", "true", attrs=SECRET_JOB_ATTRS)
    local.write_manifest()
    monkeypatch.setenv("API_TOKEN", "set-but-not-allowed")
    result = local.run("queue", "secretive")
    assert result.code == 2
    assert "API_TOKEN" in result.err and "secrets_from_environment" in result.err
    assert not local.state.joinpath("state.sqlite").exists() or local.query("SELECT * FROM jobs") == []


def test_a_secret_reaches_the_job_and_is_never_stored(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    local.configure(secrets_from_environment=True)
    local.job(
        "secretive",
        'printf %s "$API_TOKEN" > "$OUT/token"; echo "token has ${#API_TOKEN} characters"',
        attrs=SECRET_JOB_ATTRS,
    )
    local.write_manifest()
    missing = local.run("queue", "secretive")
    assert missing.code == 2 and "API_TOKEN" in missing.err
    value = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("API_TOKEN", value)
    result = local.run("queue", "secretive", "--json")
    assert result.code == 0, result.err
    assert value not in result.out
    job_id = result.json()["jobs"][0]["jobId"]
    local.drain()
    assert local.status(job_id)["status"] == "SUCCEEDED"
    assert local.marker("token") == value
    (attempt,) = local.attempts(job_id)
    assert "token has" in Path(attempt["log_path"]).read_text()
    files = [p for p in local.state.rglob("*") if p.is_file()]
    assert any(p.name == "state.sqlite" for p in files)
    assert [p for p in files if value.encode() in p.read_bytes()] == []


def test_a_worker_started_without_secrets_says_how_to_give_them(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued where secrets are allowed, run by a worker whose config does not allow them: the job fails at start,
    and its reason says how to start the worker, not that a variable set in its environment is missing."""
    local.configure(secrets_from_environment=True)
    local.job("secretive", "true", attrs=SECRET_JOB_ATTRS)
    local.write_manifest()
    monkeypatch.setenv("API_TOKEN", "set")
    job_id = local.queue("secretive")
    local.configure(secrets_from_environment=False)
    local.run_worker()
    job = local.status(job_id)
    assert job["status"] == "FAILED"
    assert job["status_reason"] == (
        "ResourceInitializationError: secret API_TOKEN: this worker gives jobs no secrets (start it with "
        "--secrets-from-environment, or set local.secrets_from_environment: true)"
    )


def test_an_entrypoint_that_cannot_be_built_fails_the_job_with_the_build_error(local: Local) -> None:
    drv = subprocess.run(
        [
            "nix-instantiate",
            "-E",
            'derivation { name = "broken"; system = builtins.currentSystem; builder = "/bin/sh"; '
            'args = [ "-c" "echo boom-here >&2; exit 1" ]; }',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert drv.endswith(".drv")
    local.job("built", "true")

    def entrypoint(manifest: dict[str, Any]) -> None:
        manifest["hostSystem"] = current_system()
        manifest["jobs"]["built"]["program"] = {
            "kind": "entrypoint",
            "builds": {current_system(): {"command": ["/nix/store/x-none/bin/none"], "drv": drv}},
        }

    local.write_manifest(entrypoint)
    job_id = local.queue("built")
    local.drain()
    job = local.status(job_id)
    assert job["status"] == "FAILED"
    assert job["status_reason"].startswith("CannotPullContainerError: building the entrypoint failed")
    (attempt,) = local.attempts(job_id)
    assert "boom-here" in Path(attempt["log_path"]).read_text()


def fresh_entrypoint(folder: Path) -> tuple[str, Path]:
    """A derivation never built before (a token in its name): bin/greet echoes its arguments; its build says
    "building-<token>" on stderr. Returns the .drv and the output path."""
    token = uuid.uuid4().hex[:12]
    expression = folder / f"greet-{token}.nix"
    expression.write_text(
        "let\n"
        "  script = builtins.toFile \"build-greet.sh\" ''\n"
        f"    echo building-{token} >&2\n"
        "    /bin/mkdir -p $out/bin\n"
        "    /bin/cat > $out/bin/greet <<'EOF'\n"
        "    #!/bin/sh\n"
        '    echo greeted "$@"\n'
        "    EOF\n"
        "    /bin/chmod +x $out/bin/greet\n"
        "  '';\n"
        "in\n"
        f'derivation {{ name = "greet-{token}"; system = builtins.currentSystem; builder = "/bin/sh"; '
        "args = [ script ]; }\n"
    )
    drv = subprocess.run(
        ["nix-instantiate", str(expression)], capture_output=True, text=True, check=True
    ).stdout.strip()
    out = subprocess.run(
        ["nix-store", "--query", "--outputs", drv], capture_output=True, text=True, check=True
    ).stdout.strip()
    return drv, Path(out)


def _greet_job(local: Local) -> tuple[str, Path]:
    drv, out = fresh_entrypoint(local.root)
    local.job("greet", "true")

    def entrypoint(manifest: dict[str, Any]) -> None:
        manifest["hostSystem"] = current_system()
        manifest["jobs"]["greet"]["program"] = {
            "kind": "entrypoint",
            "builds": {current_system(): {"command": [f"{out}/bin/greet"], "drv": drv}},
        }

    local.write_manifest(entrypoint)
    return drv, out


def test_the_worker_builds_a_jobs_entrypoint_then_runs_it_with_the_arguments(local: Local) -> None:
    _, out = _greet_job(local)
    assert not out.exists()
    job_id = local.queue("greet", "a b", "c")
    local.drain()
    assert local.status(job_id)["status"] == "SUCCEEDED"
    assert out.joinpath("bin", "greet").exists()
    (attempt,) = local.attempts(job_id)
    assert "greeted a b c" in Path(attempt["log_path"]).read_text().splitlines()


def test_the_attempt_log_tells_the_build_before_the_jobs_output(local: Local) -> None:
    drv, _ = _greet_job(local)
    job_id = local.queue("greet", "x")
    local.drain()
    (attempt,) = local.attempts(job_id)
    log = Path(attempt["log_path"]).read_text()
    assert drv in log and "greeted x" in log
    assert log.index(drv) < log.index("greeted x")


# -- waiting and following


def test_queue_follow_prints_the_jobs_output_and_wait_exits_1_on_failure(local: Local) -> None:
    local.configure(autostart_worker=True)  # as users run it: queue starts a worker
    local.job("talk", 'echo "line one $0"; echo "line two" >&2')
    local.job("fails", "echo about to fail; exit 4")
    local.write_manifest()
    followed = local.run("queue", "talk", "hello", "--follow")
    assert followed.code == 0, followed.err
    lines = followed.out.splitlines()
    assert lines.index("line one hello") < lines.index("line two")
    failed = local.run("queue", "fails", "--wait")
    assert failed.code == 1
    assert "FAILED" in failed.err


def test_the_state_folder_and_its_files_are_private(local: Local) -> None:
    """They hold the values of propagated variables (SQLite) and whatever jobs print (logs)."""
    local.job("quiet", 'echo "$OUT" > /dev/null')
    local.write_manifest()
    job_id = local.queue("quiet")
    local.run_worker()
    assert local.status(job_id)["status"] == "SUCCEEDED"
    assert stat.S_IMODE(local.state.stat().st_mode) == 0o700
    files = [p for p in local.state.rglob("*") if p.is_file()]
    assert any(p.name == "state.sqlite" for p in files) and any(p.suffix == ".log" for p in files)
    assert {str(p.relative_to(local.state)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        str(p.relative_to(local.state)): "0o600" for p in files
    }
    folders = [p for p in local.state.rglob("*") if p.is_dir()]
    assert {"logs", "work"} <= {p.name for p in folders}
    assert {str(p.relative_to(local.state)): oct(stat.S_IMODE(p.stat().st_mode)) for p in folders} == {
        str(p.relative_to(local.state)): "0o700" for p in folders
    }


def _damage_by_dropping_a_table(database: Path) -> None:
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("DROP TABLE attempts")
        db.commit()


def _damage_by_truncating(database: Path) -> None:
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 2])


def _damage_by_emptying(database: Path) -> None:
    database.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_damage_by_dropping_a_table, "is damaged (no such table: attempts)"),
        (_damage_by_truncating, "is damaged (database disk image is malformed)"),
        (_damage_by_emptying, "is empty, though this folder was set up before"),
    ],
)
@pytest.mark.parametrize("command", [("list",), ("queue", "quiet")])
def test_a_damaged_state_file_is_named_never_read_as_an_empty_history(
    local: Local, damage: Callable[[Path], None], said: str, command: tuple[str, ...]
) -> None:
    """A dropped table, a truncated file or an emptied one (23 jobs once vanished without a word): one line naming
    the state folder and what to do, exit 2, nothing queued."""
    local.job("quiet", "true")
    local.write_manifest()
    local.queue("quiet")
    database = local.state / "state.sqlite"
    damage(database)
    before = database.read_bytes()
    result = local.run(*command)
    assert result.code == 2, result.err
    (line,) = result.err.splitlines()
    assert line.startswith(f"error: state folder {local.state}: state.sqlite ") and said in line, line
    assert "move the folder aside" in line
    assert database.read_bytes() == before


def test_a_job_that_ends_while_its_worker_is_dead_keeps_its_real_outcome(local: Local) -> None:
    local.job("steady", 'echo run >> "$OUT/runs"; echo $$ > "$OUT/pid"; sleep 1; exit 3', attrs="attempts = 2;")
    local.write_manifest()
    job_id = local.queue("steady")
    pid = local.kill_worker_mid_job(job_id)
    wait_until(lambda: gone(pid), "the job to end on its own", timeout=10)
    local.drain()
    local.finished(job_id)
    # Exit 3 is not a host failure: the default rules do not retry it, and the attempt is not run again.
    assert [(a["attempt"], a["exit_code"], a["status_reason"]) for a in local.attempts(job_id)] == [(1, 3, EXITED)]
    assert local.status(job_id)["status"] == "FAILED"
    assert local.marker("runs") == "run\n"


def test_a_bulk_call_runs_every_job_and_queue_wait_waits_for_all_of_them(local: Local) -> None:
    local.job("tenant", 'echo "$0" > "$OUT/tenant-$0"; [ "$0" != t3 ]')
    local.write_manifest()
    local.start_worker()
    days = local.root / "tenants.txt"
    days.write_text("".join(f"t{i}\n" for i in range(6)))
    result = local.run("queue", "tenant", "--args-from", str(days), "--wait", "--json")
    assert result.code == 1, result.err  # t3 failed
    ids = {j["jobName"]: j["jobId"] for j in result.json()["jobs"]}
    assert sorted(ids) == [f"tenant_t{i}" for i in range(6)]
    assert {name: local.status(job_id)["status"] for name, job_id in ids.items()} == {
        f"tenant_t{i}": "FAILED" if i == 3 else "SUCCEEDED" for i in range(6)
    }
    assert sorted(p.name for p in local.out.iterdir()) == [f"tenant-t{i}" for i in range(6)]
    assert f"failed: tenant_t3 {ids['tenant_t3']}" in result.err


def test_a_job_killed_by_sigkill_gets_the_memory_hint_locally_as_on_batch(local: Local) -> None:
    local.job("greedy", "kill -9 $$")
    local.write_manifest()
    local.start_worker()
    result = local.run("queue", "greedy", "--wait")
    assert result.code == 1
    assert result.err.splitlines()[-1] == (
        "  hint: the program was killed (SIGKILL, exit 137), most often for using more than its memory: raise "
        "`memory` in the job's declaration"
    )


def test_rerun_of_a_local_array_runs_the_failed_children_once_with_the_indices_variable(local: Local) -> None:
    # Children 3, 7, 11, 15 and 19 fail the first time; re-run children wait for `go`, then succeed.
    script = (
        'if [ -n "${COMPUTE_ON_AWS_ARRAY_INDICES:-}" ]; then while [ ! -e "$OUT/go" ]; do sleep 0.05; done; '
        'echo "$AWS_BATCH_JOB_ARRAY_INDEX $COMPUTE_ON_AWS_ARRAY_INDICES" >> "$OUT/seen"; exit 0; fi; '
        "[ $((AWS_BATCH_JOB_ARRAY_INDEX % 4)) != 3 ]"
    )
    local.job("fan", script, attrs="parallel = 20;")
    local.write_manifest()
    local.start_worker()
    first = local.run("queue", "fan", "--wait", "--json")
    assert first.code == 1, first.err
    array = first.json()["jobs"][0]["jobId"]
    rerun = local.run("rerun", array)
    assert rerun.code == 0, rerun.err
    new_id = rerun.out.split()[1].rstrip(":")
    assert rerun.out == f"fan-rerun {new_id}: re-running children 3,7,11,15,19 of {array}\n"
    again = local.run("rerun", array)
    assert again.out == f"fan-rerun {new_id}: already re-running children 3,7,11,15,19 of {array} (nothing submitted)\n"
    (local.out / "go").touch()
    assert local.run("wait", new_id).code == 0
    # A command job reads the variable itself: child i of the re-run stands for its i-th index.
    assert sorted(local.marker("seen").splitlines()) == [f"{i} 3,7,11,15,19" for i in range(5)]


def test_rerun_refuses_what_it_cannot_rerun_locally(local: Local) -> None:
    local.job("ok", "true")
    local.write_manifest()
    local.start_worker()
    done = local.run("queue", "ok", "--wait", "--json").json()["jobs"][0]["jobId"]
    result = local.run("rerun", done)
    assert (result.code, result.err) == (2, f"error: {done}: SUCCEEDED, not FAILED, and no array: nothing to re-run\n")
    missing = local.run("rerun", "nope")
    assert missing.code == 2 and missing.err.startswith("error: nope: no such job in ")
