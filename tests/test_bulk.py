"""Many jobs in one call, on AWS (moto behind a proxy that counts calls, pages ListJobs and injects faults) and locally:
several names, --all, --tag, --args-from, shared prerequisites, partial failures, --ids-from, and what each costs in
Batch calls. Small versions of the benchmarks in benchmarks/: they check results and call counts, never time."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Moto, write_job
from faultproxy import FaultProxy, fault_proxy

from compute_on_aws.aws.ratelimit import TokenBucket
from compute_on_aws.cli.inputs import parse_arg_lists, parse_ids

JOB = '{{ queue = "{queue}"; command = [ "echo" ]; image = "busybox:1.36"; memory = 512; {extra} }}'


def job(queue: str = "default", extra: str = "") -> str:
    return JOB.format(queue=queue, extra=extra)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    write_job(folder, "tenant", job(extra='tags.team = "observes";'))
    write_job(folder, "report", job(extra='tags.team = "observes"; after = [ "extract" ];'))
    write_job(folder, "extract", job(extra="includePositionalArgsInName = false;"))
    write_job(folder, "other", job(queue="other", extra='tags.team = "forces";'))
    return folder


@pytest.fixture
def proxy(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The proxy in front of moto as the endpoint, paging ListJobs at 3 (AWS pages at 100; moto does not page)."""
    from compute_on_aws.aws import batch
    from compute_on_aws.aws import session as aws

    monkeypatch.setattr(batch, "LISTING_LAG", 0.05)
    monkeypatch.setattr(aws, "READ_TIMEOUT", 1)
    with fault_proxy(moto.url, page_size=3, slow_seconds=2.5) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
        yield p


def on_server(moto: Moto, queue: str = "default") -> list[dict[str, Any]]:
    """Every job in the queue, whatever its status (moto lists them all without a status)."""
    return moto.client("batch").list_jobs(jobQueue=queue)["jobSummaryList"]


def aws(cli, jobs: Path, *args: str, stdin: str = ""):
    return cli("--jobs", str(jobs), "--backend", "aws", *args, stdin=stdin)


def tenants(tmp_path: Path, count: int) -> Path:
    """An --args-from file: JSON arrays and shell words, with a comment and a blank line."""
    lines = ["# one tenant per line", ""]
    lines += [json.dumps([f"t{i}", "2026-11-01"]) if i % 2 else f"t{i} '2026-11-01'" for i in range(count)]
    path = tmp_path / "tenants.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_args_from_queues_one_job_per_line_and_running_it_again_queues_nothing(
    cli, proxy: FaultProxy, moto: Moto, jobs: Path, tmp_path: Path
) -> None:
    listing = tenants(tmp_path, 50)
    first = aws(cli, jobs, "queue", "tenant", "--args-from", str(listing), "--json")
    assert first.code == 0, first.err
    names = Counter(j["jobName"] for j in on_server(moto))
    assert names == Counter(f"tenant_t{i}_2026-11-01" for i in range(50))
    assert {j["outcome"] for j in first.json()["jobs"]} == {"submitted"}
    commands = {tuple(s["containerOverrides"]["command"][-2:]) for s in moto.submitted()}
    assert commands == {(f"t{i}", "2026-11-01") for i in range(50)}
    # The shared work once: one definition lookup and registration for 50 jobs; duplicates looked up by listing the
    # queue's active statuses (5 statuses, an empty queue: a page each), not one ListJobs per job.
    assert proxy.forwarded["DescribeJobDefinitions"] == 1
    assert proxy.forwarded["RegisterJobDefinition"] == 1
    assert proxy.forwarded["SubmitJob"] == 50
    # Before: 5 statuses of an empty queue; after (the race check): moto ended the 50 jobs at once, so 5 pages again.
    assert proxy.received["ListJobs"] <= 12
    assert "50 jobs: 50 submitted" in first.err

    proxy.received.clear()
    proxy.forwarded.clear()
    again = aws(cli, jobs, "queue", "tenant", "--args-from", str(listing), "--json")
    assert again.code == 0, again.err
    # moto ends jobs SUCCEEDED at once: they are no longer active, so a plain job is queued again; held jobs (below)
    # are duplicates. Here: every job went through once more, and no name twice in this call.
    assert proxy.forwarded["SubmitJob"] == 50


def test_running_a_bulk_call_again_while_its_jobs_wait_submits_nothing(
    cli, hold_jobs: Moto, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fault_proxy(hold_jobs.url, page_size=3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        listing = tenants(tmp_path, 20)
        assert aws(cli, jobs, "queue", "tenant", "--args-from", str(listing)).code == 0
        proxy.received.clear()
        proxy.forwarded.clear()
        again = aws(cli, jobs, "queue", "tenant", "--args-from", str(listing), "--json")
    assert again.code == 0, again.err
    assert {j["outcome"] for j in again.json()["jobs"]} == {"duplicate"}
    assert proxy.forwarded["SubmitJob"] == 0
    # 20 SUBMITTED jobs in pages of 3: 7 pages of SUBMITTED, 1 page each for the 4 other active statuses. Cheaper than
    # 20 lookups by name; paging was followed to the end, or some would have been submitted again.
    assert proxy.received["ListJobs"] == 7 + 4
    assert len(on_server(hold_jobs)) == 20


def test_several_names_take_their_arguments_after_dashes(cli, moto: Moto, jobs: Path) -> None:
    result = aws(cli, jobs, "queue", "tenant", "other", "--", "acme", "--full")
    assert result.code == 0, result.err
    (tenant,) = on_server(moto)
    (other,) = on_server(moto, "other")
    assert tenant["jobName"].startswith("tenant_acme_full--")
    assert other["jobName"].startswith("other_acme_full--")
    assert [s["containerOverrides"]["command"][-2:] for s in moto.submitted()] == [["acme", "--full"]] * 2
    # Without `--`, the first word is the job and the rest its arguments, as always.
    single = aws(cli, jobs, "queue", "tenant", "other", "--json")
    assert [j["jobName"] for j in single.json()["jobs"]] == ["tenant_other"]


def test_all_and_tag_select_declared_jobs(cli, moto: Moto, jobs: Path) -> None:
    tagged = aws(cli, jobs, "queue", "--tag", "team=observes", "--dry-run", "--json")
    assert tagged.code == 0, tagged.err
    # report runs after extract: extract comes along (once), as a prerequisite.
    assert sorted(j["job"] for j in tagged.json()["jobs"]) == ["extract", "report", "tenant"]
    # extract is selected and a prerequisite of report: queued once, as report's.
    everything = aws(cli, jobs, "queue", "--all", "--dry-run", "--json")
    assert sorted(j["job"] for j in everything.json()["jobs"]) == ["extract", "other", "report", "tenant"]
    none = aws(cli, jobs, "queue", "--tag", "team=nobody")
    assert none.code == 2
    assert none.err.startswith("error: no valid job with tag team=nobody in ")
    bad = aws(cli, jobs, "queue", "--tag", "team")
    assert (bad.code, bad.err.strip()) == (2, "error: --tag: expected KEY=VALUE, got 'team'")


def test_a_prerequisite_shared_by_fanned_out_jobs_is_queued_once(cli, hold_jobs: Moto, jobs: Path) -> None:
    result = aws(cli, jobs, "queue", "report", "--args-from", "-", "--json", stdin="a\nb\nc\n")
    assert result.code == 0, result.err
    names = Counter(j["jobName"] for j in on_server(hold_jobs))
    # extract's name leaves its arguments out: the three chains share one extract job.
    assert names == Counter({"extract": 1, "report_a": 1, "report_b": 1, "report_c": 1})
    extract = next(j["jobId"] for j in on_server(hold_jobs) if j["jobName"] == "extract")
    reports = [s for s in hold_jobs.submitted() if s["jobName"].startswith("report_")]
    assert [s["dependsOn"] for s in reports] == [[{"jobId": extract}]] * 3


def test_a_partial_failure_says_what_was_and_was_not_queued_and_exits_1(cli, moto: Moto, jobs: Path) -> None:
    write_job(jobs, "lost", job(queue="missing-queue"))
    result = aws(cli, jobs, "queue", "tenant", "lost", "other", "--", "x")
    assert result.code == 1
    assert sorted(j["jobName"] for j in on_server(moto) + on_server(moto, "other")) == ["other_x", "tenant_x"]
    assert "submitted tenant_x to default as job " in result.out
    assert "submitted other_x to other as job " in result.out
    err = result.err.splitlines()
    assert err[0].startswith(
        "not queued: lost: looking for a duplicate of lost_x in missing-queue: AWS ClientException"
    )
    assert err[1] == "3 jobs: 2 submitted, 1 not queued"
    assert err[-1].startswith("to queue the rest, run the same command again")


def test_exactly_once_for_every_job_of_a_bulk_call_through_faults(
    cli, proxy: FaultProxy, moto: Moto, jobs: Path, tmp_path: Path
) -> None:
    """Lost answers, 500s and throttling on a 50-job call: each job exists once, and the call says it succeeded."""
    proxy.rates["SubmitJob"] = {"close-after": 0.05, "error-after": 0.05, "error-before": 0.05, "throttle": 0.1}
    proxy.rates["ListJobs"] = {"throttle": 0.1, "error-before": 0.05}
    proxy.rates["DescribeJobs"] = {"throttle": 0.1}
    result = aws(cli, jobs, "queue", "tenant", "--args-from", str(tenants(tmp_path, 50)), "--json")
    assert result.code == 0, result.err
    assert sum(n for (action, _), n in proxy.injected.items() if action == "SubmitJob") > 0
    names = Counter(j["jobName"] for j in on_server(moto))
    assert names == Counter(f"tenant_t{i}_2026-11-01" for i in range(50))
    printed = {j["jobName"]: j["jobId"] for j in result.json()["jobs"]}
    assert printed == {j["jobName"]: j["jobId"] for j in on_server(moto)}


def test_lost_answers_are_looked_for_together_and_only_the_jobs_not_created_are_sent_again(
    cli, proxy: FaultProxy, hold_jobs: Moto, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first 8 SubmitJob lose their answer after moto created the job, the next 4 fail before it: a search for
    the 12 (their same-named jobs described in one call) finds the 8, and only the 4 are sent again."""
    from compute_on_aws.aws import batch

    monkeypatch.setattr(batch, "LISTING_LAG", 0.5)
    proxy.script["SubmitJob"] = ["close-after"] * 8 + ["error-before"] * 4
    result = aws(cli, jobs, "queue", "tenant", "--args-from", str(tenants(tmp_path, 30)), "--json")
    assert result.code == 0, result.err
    names = Counter(j["jobName"] for j in on_server(hold_jobs))
    assert names == Counter(f"tenant_t{i}_2026-11-01" for i in range(30))
    printed = {j["jobName"]: j["jobId"] for j in result.json()["jobs"]}
    assert printed == {j["jobName"]: j["jobId"] for j in on_server(hold_jobs)}
    assert proxy.received["SubmitJob"] == 30 + 4  # the 4 refused before moto are sent again, the 8 lost ones not
    assert proxy.forwarded["SubmitJob"] == 30
    # One search: the 8 created jobs read in one DescribeJobs (the 4 others have no same-named job to describe).
    assert proxy.received["DescribeJobs"] == 1


def test_wait_status_and_cancel_take_ids_from_a_file_and_describe_100_at_a_time(
    cli, hold_jobs: Moto, jobs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fault_proxy(hold_jobs.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        listing = tmp_path / "many.txt"
        listing.write_text("".join(f"n{i}\n" for i in range(150)))
        queued = aws(cli, jobs, "queue", "tenant", "--args-from", str(listing), "--json")
        assert queued.code == 0, queued.err
        saved = tmp_path / "queued.json"
        saved.write_text(queued.out)
        ids = [j["jobId"] for j in queued.json()["jobs"]]
        for job_id in ids[:149]:
            hold_jobs.set_status(job_id, "SUCCEEDED")
        proxy.received.clear()
        proxy.forwarded.clear()
        status = aws(cli, jobs, "status", "--ids-from", str(saved), "--json")
        assert status.code == 0, status.err
        assert len(status.json()["jobs"]) == 150
        # 150 ids: two DescribeJobs calls (100 + 50), never one per job.
        assert proxy.received["DescribeJobs"] == 2
        proxy.received.clear()
        proxy.forwarded.clear()
        cancel = aws(cli, jobs, "cancel", "--ids-from", "-", stdin="\n".join(ids[148:]) + "\n")
        assert cancel.code == 0, cancel.err
        assert cancel.out.splitlines() == [f"{ids[148]}: already SUCCEEDED", f"{ids[149]}: cancelled (was SUBMITTED)"]
        proxy.received.clear()
        proxy.forwarded.clear()
        waited = aws(cli, jobs, "wait", "--ids-from", str(saved), "--timeout", "30")
    assert waited.code == 1  # the cancelled one failed
    assert f"failed: tenant_n149 {ids[149]}: Cancelled by user" in waited.err.splitlines()
    # Every job was final at the first poll: one poll, two calls.
    assert proxy.received["DescribeJobs"] == math.ceil(150 / 100)


def test_ids_from_refuses_what_is_no_list_of_ids(cli, jobs: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    result = cli("--jobs", str(jobs), "wait", "--ids-from", str(empty))
    assert (result.code, result.err.strip()) == (
        2,
        "error: no job ids: give them as arguments or with --ids-from FILE|-",
    )
    missing = cli("--jobs", str(jobs), "cancel", "--ids-from", str(tmp_path / "nope.txt"))
    assert missing.code == 2
    assert (
        missing.err.strip() == f"error: --ids-from {tmp_path / 'nope.txt'}: cannot read it (No such file or directory)"
    )


def test_list_lists_each_queue_once_whatever_the_number_of_jobs_declared(
    cli, proxy: FaultProxy, moto: Moto, tmp_path: Path
) -> None:
    folder = tmp_path / "many-jobs"
    for i in range(30):
        write_job(folder, f"job{i}", job())
    assert aws(cli, folder, "queue", "job3", "x").code == 0
    moto.register_definition("stranger")
    moto.client("batch").submit_job(jobName="job3_y", jobQueue="default", jobDefinition="stranger")
    proxy.received.clear()
    proxy.forwarded.clear()
    listed = aws(cli, folder, "list", "--json")
    assert listed.code == 0, listed.err
    # Another project's job3_y (definition stranger) is not ours.
    assert [j["job_name"] for j in listed.json()["jobs"]] == ["job3_x"]
    # One queue, 7 statuses, a page each: 7 calls for 30 declared jobs (it was 30).
    assert proxy.received["ListJobs"] == 7


def test_the_local_backend_queues_a_bulk_call_in_one_go(cli, jobs: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    local = ("--jobs", str(jobs), "--backend", "local", "--state-dir", str(state))
    config = tmp_path / "config.yaml"
    config.write_text("local:\n  autostart_worker: false\n")
    listing = tenants(tmp_path, 30)
    first = cli(*local, "--config", str(config), "queue", "report", "--args-from", str(listing), "--json")
    assert first.code == 0, first.err
    outcomes = Counter((j["job"], j["outcome"]) for j in first.json()["jobs"])
    # 30 reports, each after the one extract (its name leaves the arguments out): queued once, shared.
    assert outcomes == Counter({("report", "submitted"): 30, ("extract", "submitted"): 1, ("extract", "duplicate"): 29})
    again = cli(*local, "--config", str(config), "queue", "report", "--args-from", str(listing), "--json")
    assert {j["outcome"] for j in again.json()["jobs"]} == {"duplicate"}
    listed = cli(*local, "list", "--json")
    assert len(listed.json()["jobs"]) == 31


def test_progress_is_a_line_per_tenth_when_not_on_a_terminal(cli, moto: Moto, jobs: Path, tmp_path: Path) -> None:
    result = aws(cli, jobs, "queue", "tenant", "--args-from", str(tenants(tmp_path, 20)))
    assert result.code == 0, result.err
    progress = [line for line in result.err.splitlines() if line.startswith("queued ")]
    assert progress == [f"queued {2 * i}/20 ({10 * i}%)" for i in range(1, 11)]
    assert len(result.out.splitlines()) == 20


def test_queue_evaluates_only_the_job_and_what_it_runs_after(cli, moto: Moto, jobs: Path) -> None:
    write_job(jobs, "broken", "{ queue = ; }")
    result = aws(cli, jobs, "queue", "report", "x", "--json")
    assert result.code == 0, result.err
    assert sorted(j["job"] for j in result.json()["jobs"]) == ["extract", "report"]
    # Listing every job needs every file: there the broken one is an error.
    assert aws(cli, jobs, "jobs").code == 2


def test_arg_lists_and_ids_parse_what_users_write() -> None:
    text = '# comment\n\n["a b", "c"]\nd "e f" \'g\'\n'
    assert parse_arg_lists(text, "f") == [("a b", "c"), ("d", "e f", "g")]
    with pytest.raises(Exception, match=r"^f:1: expected a JSON array of strings \(quote numbers\), got \[1\]$"):
        parse_arg_lists("[1]", "f")
    with pytest.raises(Exception, match=r"^f:2: No closing quotation"):
        parse_arg_lists("ok\n'open\n", "f")
    assert parse_ids("a\nb c\n# x\na\n", "f") == ["a", "b", "c"]
    assert parse_ids(json.dumps({"jobs": [{"jobId": "1"}, {"jobId": None}, {"jobId": "2"}]}), "f") == ["1", "2"]


def test_the_token_bucket_spaces_calls_at_its_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(40, clock=lambda: now[0], sleep=sleep)
    for _ in range(101):
        bucket.take()
    # The first at once, then one call every 1/40 s: 100 more take 2.5 s, and no second holds more than 41.
    assert now[0] == pytest.approx(100 / 40)
    assert max(slept) == pytest.approx(1 / 40)
    assert bucket.taken == 101


def test_ctrl_c_part_way_sends_nothing_more_and_the_same_command_queues_the_rest(
    hold_jobs: Moto, jobs: Path, tmp_path: Path
) -> None:
    """30 jobs at 4 calls/s; Ctrl-C once 6 are queued: calls waiting for their turn are never sent, the note names
    the jobs queued, and running the command again queues exactly the others."""
    config = tmp_path / "slow.yaml"
    config.write_text("aws:\n  calls_per_second: 4\n")
    listing = tenants(tmp_path, 30)
    command = [
        sys.executable, "-m", "compute_on_aws", "--jobs", str(jobs), "--config", str(config), "--backend", "aws",
        "queue", "tenant", "--args-from", str(listing),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("queued 6/30"):
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    note, error = err.strip().splitlines()[-2:]
    assert error == "error: interrupted"
    queued = [j["jobId"] for j in on_server(hold_jobs)]
    assert 6 <= len(queued) < 30
    assert note.startswith("note: queued before this stopped: ") and note.endswith(f"cancel {' '.join(queued)})")
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert Counter(j["jobName"] for j in on_server(hold_jobs)) == Counter(f"tenant_t{i}_2026-11-01" for i in range(30))
    assert f"30 jobs: {30 - len(queued)} submitted, {len(queued)} duplicates" in again.stderr


def test_a_reader_that_stops_reading_cuts_nothing_short(hold_jobs: Moto, jobs: Path, tmp_path: Path) -> None:
    """`queue ... | head -n 1` (or `| grep -q`) under `set -o pipefail`: the reader leaves after the first line; the
    call still queues every job, says nothing of the closed pipe, and exits 0 (click alone would stop at the next
    line, exit 1, with the other jobs never sent)."""
    config = tmp_path / "slow.yaml"
    config.write_text("aws:\n  calls_per_second: 20\n")
    command = [
        sys.executable, "-m", "compute_on_aws", "--jobs", str(jobs), "--config", str(config), "--backend", "aws",
        "queue", "tenant", "--args-from", str(tenants(tmp_path, 30)),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("submitted tenant_t")
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0, err
    assert "30 jobs: 30 submitted" in err and "error" not in err.lower()
    assert len(on_server(hold_jobs)) == 30


def test_on_a_terminal_progress_is_a_bar_and_stdout_stays_the_jobs_lines(
    moto: Moto, jobs: Path, tmp_path: Path
) -> None:
    """stderr a terminal (a pty), stdout a pipe, as in `compute-on-aws queue ... > queued.txt` typed by a user."""
    import os
    import pty

    leader, follower = pty.openpty()
    command = [
        sys.executable, "-m", "compute_on_aws", "--jobs", str(jobs), "--backend", "aws",
        "queue", "tenant", "--args-from", str(tenants(tmp_path, 20)),
    ]  # fmt: skip
    env = {**os.environ, "TERM": "xterm-256color"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, text=True, env=env)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the pty closes when the process ends
            break
        if not chunk:
            break
        screen += chunk
    out, _ = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0
    text = screen.decode()
    assert "queueing" in text and "/20" in text  # rich's bar: its label, and M/N done
    assert "queued 2/20 (10%)" not in text  # the line-per-10% form is for logs, not terminals
    assert "20 jobs: 20 submitted" in text
    assert len(out.splitlines()) == 20 and all(line.startswith("submitted tenant_t") for line in out.splitlines())


def test_a_missing_queue_looked_up_by_name_fails_its_jobs_only(cli, moto: Moto, jobs: Path, tmp_path: Path) -> None:
    """Two jobs for a queue that does not exist, searched first: few names are looked up one by one, concurrently,
    and the ClientException fails those two only; the real queue's jobs are still looked for and sent."""
    write_job(jobs, "lost", job(queue="missing-queue"))
    result = aws(cli, jobs, "queue", "lost", "tenant", "--args-from", str(tenants(tmp_path, 2)))
    assert result.code == 1
    assert sorted(line.split(" to ")[0] for line in result.out.splitlines()) == [
        "submitted tenant_t0_2026-11-01",
        "submitted tenant_t1_2026-11-01",
    ]
    not_queued = [line for line in result.err.splitlines() if line.startswith("not queued: ")]
    assert len(not_queued) == 2 and all("missing-queue does not exist" in line for line in not_queued)
    assert "stopped" not in result.err


def test_with_progress_shown_the_jobs_not_queued_are_named_on_stderr(
    cli, moto: Moto, jobs: Path, tmp_path: Path
) -> None:
    write_job(jobs, "lost", job(queue="missing-queue"))
    result = aws(cli, jobs, "queue", "tenant", "lost", "--args-from", str(tenants(tmp_path, 6)))
    assert result.code == 1
    assert [line.split(" to ")[0] for line in result.out.splitlines()] == [
        f"submitted tenant_t{i}_2026-11-01" for i in range(6)
    ]
    missing = [line for line in result.err.splitlines() if line.startswith("not queued: ")]
    assert len(missing) == 6 and all("missing-queue" in line for line in missing)
    assert "12 jobs: 6 submitted, 6 not queued" in result.err
