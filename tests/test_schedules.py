"""Schedules declared on jobs: checked by Nix, listed with their next runs, and queued by `queue --due` (a scheduled CI
pipeline) once per slot, against a real moto server."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Moto, write_job

ETL = '{ queue = "default"; command = [ "etl" ]; image = "busybox:1.36"; schedule = %s; %s }'


def job(jobs: Path, name: str, schedule: str, extra: str = "") -> None:
    write_job(jobs, name, ETL % (schedule, extra))


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    job(folder, "nightly", '"0 5 * * *"')
    job(
        folder,
        "berlin",
        '[ { cron = "30 2 * * *"; timezone = "Europe/Berlin"; args = [ "full" ]; } '
        '{ cron = "0 12 * * MON-FRI"; enable = false; } ]',
    )
    return folder


def due(cli, jobs: Path, *args: str):
    return cli("--jobs", str(jobs), "--backend", "aws", "queue", "--due", *args)


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ('"0 25 * * *"', 'schedule: "0 25 * * *": hour: "25" is not a value of 0-23'),
        ('"0 5 * *"', 'schedule: "0 5 * *" has 4 fields; cron takes 5'),
        ('"0 0 L * *"', 'schedule: "0 0 L * *": day of month: "L" is not a value of 1-31'),
        ('"0 0 * * FUN"', 'schedule: "0 0 * * FUN": day of week: "FUN" is not a value of 0-7 or SUN-SAT'),
        ('"*/0 * * * *"', "the step must be a number from 1 up"),
        ('{ cron = "0 5 * * *"; timezone = "Europe/Berln"; }', 'schedule: timezone: unknown timezone "Europe/Berln"'),
        ('{ cron = "0 5 * * *"; timezone = "europe/berlin"; }', "(did you mean Europe/Berlin?)"),
        ('{ cron = "0 5 * * *"; when = "daily"; }', "schedule: unknown attribute when (expected cron, timezone"),
        ('{ timezone = "UTC"; }', "schedule: cron is required"),
        ('[ "0 5 * * *" { cron = "0 5 * * *"; args = [ 1 ]; } ]', "schedule: entry 2: args: must be a string, got 1"),
        ('[ "0 5 * * *" "0  5 * * *" ]', 'schedule: declares "0 5 * * *" in UTC with the same args twice'),
        ("5", "schedule: must be a cron string"),
        # Valid cron syntax, yet no such day: the library that computes the runs refuses it.
        ('"0 0 31 2 *"', "schedule: entry 1: cron: '0 0 31 2 *': Bad day-of-month"),
    ],
)
def test_a_bad_schedule_is_an_error_naming_the_job_and_the_attribute(cli, tmp_path: Path, schedule, problem) -> None:
    job(tmp_path / "jobs", "etl", schedule)
    result = cli("--jobs", str(tmp_path / "jobs"), "jobs")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith("error: etl: schedule") and problem in line, line


def test_jobs_shows_each_jobs_schedules(cli, jobs: Path) -> None:
    table = cli("--jobs", str(jobs), "jobs")
    assert table.code == 0, table.err
    row = next(line for line in table.out.splitlines() if line.startswith("berlin"))
    assert "30 2 * * * Europe/Berlin full; 0 12 * * MON-FRI (disabled)" in row
    listed = cli("--jobs", str(jobs), "jobs", "--json").json()["jobs"]
    assert {j["name"]: j["schedules"] for j in listed}["nightly"] == [
        {"cron": "0 5 * * *", "timezone": "UTC", "args": [], "enabled": True}
    ]


def test_schedules_list_gives_next_runs_in_utc_and_in_the_schedules_timezone(cli, jobs: Path) -> None:
    # Berlin leaves summer time on 2026-10-25 at 03:00, back to 02:00: 02:30 happens twice that night and runs once,
    # at its first (summer) occurrence, as Debian's cron does; 00:30 UTC in summer, 01:30 UTC after.
    result = cli("--jobs", str(jobs), "schedules", "list", "--at", "2026-10-23T12:00Z", "--count", "3", "--json")
    assert result.code == 0, result.err
    rows = {(r["job"], r["cron"]): r for r in result.json()["schedules"]}
    berlin = rows["berlin", "30 2 * * *"]
    assert [n["utc"] for n in berlin["next"]] == [
        "2026-10-24T00:30:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-26T01:30:00Z",
    ]
    assert [n["local"] for n in berlin["next"]] == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    assert berlin["names"][0] == "berlin_2026-10-24T0030Z_full"
    assert "02:30" in berlin["description"] and "Europe/Berlin" in berlin["description"]
    disabled = rows["berlin", "0 12 * * MON-FRI"]
    assert disabled["enabled"] is False and disabled["next"] == [] and "disabled" in disabled["description"]
    assert [n["utc"] for n in rows["nightly", "0 5 * * *"]["next"]][:1] == ["2026-10-24T05:00:00Z"]

    text = cli("--jobs", str(jobs), "schedules", "list", "--at", "2026-10-23T12:00Z", "--count", "1")
    assert text.code == 0, text.err
    assert "nightly  0 5 * * *  At 05:00 every day (UTC)" in text.out
    assert "next: Sat 2026-10-24 00:30 UTC (Sat 02:30 Europe/Berlin)" in text.out


def test_queue_due_queues_each_slot_of_the_window_once_named_after_it(cli, moto: Moto, jobs: Path) -> None:
    # 04:00-05:00 UTC holds nightly's 05:00 (the window's end counts), not berlin's 01:30 (before the window).
    first = due(cli, jobs, "--at", "2026-11-28T05:00Z", "--json")
    assert first.code == 0, first.err
    (queued,) = first.json()["jobs"]
    assert queued["jobName"] == "nightly_2026-11-28T0500Z" and queued["outcome"] == "submitted"
    (sent,) = moto.submitted()
    assert sent["containerOverrides"]["environment"] == [
        {"name": "COMPUTE_ON_AWS_SCHEDULED_TIME", "value": "2026-11-28T05:00:00Z"}
    ]
    assert "command" not in sent["containerOverrides"]
    # The job finished (moto's simple backend ends it at once); a retried pipeline still finds the slot taken.
    assert moto.client("batch").describe_jobs(jobs=[queued["jobId"]])["jobs"][0]["status"] == "SUCCEEDED"
    again = due(cli, jobs, "--at", "2026-11-28T05:40Z")
    assert again.code == 0, again.err
    assert f"duplicate: nightly_2026-11-28T0500Z is already SUCCEEDED as job {queued['jobId']}" in again.out
    assert len(moto.submitted()) == 1


def test_a_late_pipeline_queues_every_slot_it_missed_with_the_schedules_args(cli, moto: Moto, jobs: Path) -> None:
    result = due(cli, jobs, "--at", "2026-11-28T06:00Z", "--window", "6h", "--json")
    assert result.code == 0, result.err
    names = [j["jobName"] for j in result.json()["jobs"]]
    # Oldest first; the disabled schedule never runs; args are part of a scheduled name.
    assert names == ["berlin_2026-11-28T0130Z_full", "nightly_2026-11-28T0500Z"]
    # Submitted together (concurrently): each request is found by its name.
    berlin = next(s for s in moto.submitted() if s["jobName"] == "berlin_2026-11-28T0130Z_full")
    assert berlin["containerOverrides"]["command"] == ["etl", "full"]


def test_queue_due_for_one_job_and_nothing_due(cli, moto: Moto, jobs: Path) -> None:
    result = due(cli, jobs, "berlin", "--at", "2026-11-28T05:00Z")
    assert result.code == 0, result.err
    assert result.out == "nothing due from 2026-11-28 04:00 to 2026-11-28 05:00 UTC\n"
    assert moto.submitted() == []


def test_the_window_comes_from_the_config(cli, moto: Moto, jobs: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("schedules:\n  window: 5h\n")
    result = cli(
        "--jobs",
        str(jobs),
        "--config",
        str(config),
        "--backend",
        "aws",
        "queue",
        "--due",
        "--at",
        "2026-11-28T05:00Z",
        "--json",
    )
    assert result.code == 0, result.err
    assert [j["jobName"] for j in result.json()["jobs"]] == ["berlin_2026-11-28T0130Z_full", "nightly_2026-11-28T0500Z"]


def test_a_scheduled_chain_names_every_job_after_the_slot(cli, moto: Moto, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "extract", '{ queue = "default"; command = [ "x" ]; image = "i"; }')
    job(jobs, "load", '"0 5 * * *"', 'after = [ "extract" ];')
    first = due(cli, jobs, "--at", "2026-11-28T05:10Z", "--json")
    assert first.code == 0, first.err
    extract, load = first.json()["jobs"]
    assert (extract["jobName"], load["jobName"]) == ("extract_2026-11-28T0500Z", "load_2026-11-28T0500Z")
    assert moto.submitted()[1]["dependsOn"] == [{"jobId": extract["jobId"]}]
    # Naming the job keeps the jobs it runs after.
    again = due(cli, jobs, "load", "--at", "2026-11-28T05:20Z", "--json")
    assert [j["outcome"] for j in again.json()["jobs"]] == ["duplicate", "duplicate"]
    assert len(moto.submitted()) == 2


def test_a_run_that_cannot_be_queued_does_not_keep_the_others_back(cli, moto: Moto, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    job(jobs, "nightly", '"0 5 * * *"')
    write_job(jobs, "early", '{ queue = "no-such-queue"; command = [ "x" ]; image = "i"; schedule = "0 4 * * *"; }')
    result = due(cli, jobs, "--at", "2026-11-28T05:00Z", "--window", "2h")
    assert result.code == 1
    assert "submitted nightly_2026-11-28T0500Z to default" in result.out
    not_queued, summary, *_ = result.err.splitlines()
    assert not_queued.startswith("not queued: early: ") and "no-such-queue" in not_queued
    assert summary == "2 jobs: 1 submitted, 1 not queued"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday"], "error: --at: expected an ISO 8601 time such as 2026-11-28T05:00Z, got 'yesterday'"),
        (
            ["--at", "9999-12-31T23:59:59Z"],
            "error: --at: '9999-12-31T23:59:59Z' is out of range (a time between 1970 and 2999)",
        ),
        (["--at", "0001-01-01T00:00+01:00"], "error: --at: '0001-01-01T00:00+01:00' is out of range"),
        (["--window", "an hour"], "error: --window: expected a duration such as 30m, 1h or 1h30m, got 'an hour'"),
        (["--window", "0m"], "error: --window: must be longer than 0, got '0m'"),
        (["--window", "36500d"], "error: --window: at most 7d, got '36500d'"),
        (["--window", "7d1s"], "error: --window: at most 7d, got '7d1s'"),
        (["--window", "9" * 12 + "d"], f"error: --window: '{'9' * 12}d' is out of range"),
        (["nightly", "extra"], "error: --due: scheduled runs take the arguments their schedule declares"),
    ],
)
def test_bad_due_arguments_are_one_line_and_exit_2(cli, jobs: Path, args, message) -> None:
    result = due(cli, jobs, *args)
    assert result.code == 2
    assert result.err.startswith(message) and len(result.err.splitlines()) == 1, result.err


def test_at_and_window_need_due(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "queue", "nightly", "--window", "1h")
    assert result.code == 2 and result.err == "error: --window: only with --due\n"


# -- missed schedules


def missed(cli, jobs: Path, *args: str):
    return cli("--jobs", str(jobs), "--backend", "aws", "schedules", "missed", *args)


def test_missed_reports_the_slots_without_a_succeeded_job_and_exits_1(cli, hold_jobs: Moto, tmp_path: Path) -> None:
    """Hourly slots 01:00-06:00: queued by two pipelines that left 04:00 out, then succeeded, failed or still running
    as Batch tells; a slot not yet past the grace is not judged."""
    jobs = tmp_path / "jobs"
    job(jobs, "hourly", '"0 * * * *"')
    ids: dict[str, str] = {}
    for at in ("2026-11-28T03:10Z", "2026-11-28T07:00Z"):
        queued = due(cli, jobs, "--at", at, "--window", "3h" if at.endswith("03:10Z") else "2h30m", "--json")
        assert queued.code == 0, queued.err
        ids |= {j["jobName"][-5:-1]: j["jobId"] for j in queued.json()["jobs"]}
    assert sorted(ids) == ["0100", "0200", "0300", "0500", "0600", "0700"]
    for slot, status in {"0100": "SUCCEEDED", "0200": "FAILED", "0300": "RUNNING", "0500": "SUCCEEDED"}.items():
        hold_jobs.set_status(ids[slot], status)
    hold_jobs.proxy.clear()
    # (00:30, 06:30]: 07:00 is too recent to judge; 06:00 is still SUBMITTED, on its way.
    result = missed(cli, jobs, "--at", "2026-11-28T07:30Z", "--window", "7h", "--grace", "1h", "--json")
    assert result.code == 1, result.err
    report = result.json()
    assert (report["start"], report["end"], report["missed"]) == ("2026-11-28T00:30:00Z", "2026-11-28T06:30:00Z", 2)
    outcomes = {s["slot"][11:16]: (s["outcome"], s["job_id"]) for s in report["slots"]}
    assert outcomes == {
        "01:00": ("succeeded", ids["0100"]),
        "02:00": ("failed", ids["0200"]),
        "03:00": ("running", ids["0300"]),
        "04:00": ("missing", None),
        "05:00": ("succeeded", ids["0500"]),
        "06:00": ("running", ids["0600"]),
    }
    assert result.err.splitlines()[-1] == (
        "error: 2 of 6 scheduled slots from 2026-11-28 00:30 to 2026-11-28 06:30 UTC have no SUCCEEDED job"
    )
    # One search of the queue for all six names: never a call per slot beyond what listing the queue costs.
    assert len(hold_jobs.received["ListJobs"]) <= 7

    text = missed(cli, jobs, "--at", "2026-11-28T07:30Z", "--window", "7h", "--grace", "1h")
    assert text.code == 1
    lines = text.out.splitlines()
    assert "hourly 2026-11-28T04:00Z: missing: no job hourly_2026-11-28T0400Z in queue default" in lines
    assert any(line.startswith(f"hourly 2026-11-28T02:00Z: failed: job {ids['0200']} FAILED (") for line in lines)
    assert (
        lines[-1]
        == "6 slots from 2026-11-28 00:30 to 2026-11-28 06:30 UTC: 2 succeeded, 2 running, 1 failed, 1 missing"
    )

    fine = missed(cli, jobs, "--at", "2026-11-28T06:30Z", "--window", "2h", "--grace", "10m")
    assert fine.code == 0, fine.err
    assert fine.out.splitlines()[-1].endswith(": 1 succeeded, 1 running, 0 failed, 0 missing")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--window", "8d"), "error: --window: at most 7d: AWS Batch lists finished jobs for about a week"),
        (("--window", "soon"), "error: --window: expected a duration such as 30m, 1h or 1h30m, got 'soon'"),
        (("--window", "1h", "--grace", "2h"), "error: --grace: 2h leaves nothing of --window 1h to judge"),
        (("--at", "yesterday"), "error: --at: expected an ISO 8601 time"),
        (("--job", "nope"), "error: no job named 'nope' in "),
    ],
)
def test_missed_refuses_bad_arguments_in_one_line(cli, moto: Moto, jobs: Path, args: tuple[str, ...], message: str):
    result = missed(cli, jobs, *args)
    assert result.code == 2 and len(result.err.splitlines()) == 1 and result.err.startswith(message), result.err
    assert moto.received["ListJobs"] == []
