"""Commands that watch and control queued jobs, on either backend: status, wait, logs, cancel, list."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from compute_on_aws import interrupts
from compute_on_aws.cli import display
from compute_on_aws.cli.app import (
    BackendOption,
    ConfigOption,
    EnvOption,
    JsonOption,
    Settings,
    StateDirOption,
    app,
    at_least,
    backend_for,
    load_manifest,
    load_settings_config,
    overridden,
    print_json,
    read_input,
)
from compute_on_aws.declared.bounds import MAX_WAIT_SECONDS
from compute_on_aws.errors import Interrupted, Signalled, UserError
from compute_on_aws.planning.rerun import RerunOutcome, ranges
from compute_on_aws.watching.following import Follower
from compute_on_aws.watching.waiting import wait_for

if TYPE_CHECKING:
    from compute_on_aws.backends import Backend
    from compute_on_aws.declared.config import Config
    from compute_on_aws.planning.rerun import Rerun
    from compute_on_aws.watching.views import JobView

TIMED_OUT = 124
IdsFromOption = Annotated[
    str | None,
    typer.Option(
        "--ids-from",
        metavar="FILE|-",
        help="More job ids, one per line, from this file or - (stdin); `queue --json` output works too.",
        show_default=False,
    ),
]


def job_ids_of(given: list[str] | None, ids_from: str | None, *, required: bool) -> list[str]:
    """The ids given as arguments, then those of --ids-from, each once."""
    from compute_on_aws.cli.inputs import parse_ids

    ids = list(given or [])
    if ids_from is not None:
        ids += parse_ids(read_input(ids_from, "--ids-from"), "stdin" if ids_from == "-" else ids_from)
    ids = list(dict.fromkeys(ids))
    if required and not ids:
        raise UserError("no job ids: give them as arguments or with --ids-from FILE|-")
    return ids


def wait_jobs(
    backend: Backend,
    job_ids: Sequence[str],
    *,
    follow: bool = False,
    timeout: float | None = None,
    cancel_on_interrupt: bool = False,
) -> int:
    """Waits for the jobs, showing progress on stderr (and their output on stdout with `follow`); the exit code."""
    control = backend
    backoff = backend.backoff(follow)
    printer = display.ChangePrinter(sys.stderr) if follow else display.progress(sys.stderr)
    follower = Follower(control, sys.stdout) if follow else None
    last_alive = 0.0

    def update(views: list[JobView]) -> None:
        nonlocal last_alive
        printer(views)
        if follower is not None:
            follower(views)
        if time.monotonic() - last_alive > 2:
            last_alive = time.monotonic()
            backend.keep_alive()

    try:
        result = wait_for(
            control.describe, job_ids, on_update=update, timeout=timeout, backoff=backoff, sleep=interrupts.sleep
        )
    except (Signalled, KeyboardInterrupt):  # Ctrl-C or SIGTERM (see main)
        ids = " ".join(job_ids)
        if cancel_on_interrupt:
            for job_id, what in control.cancel(job_ids, "compute-on-aws: interrupted while waiting"):
                print(f"{job_id}: {what}", file=sys.stderr)
            raise Interrupted("interrupted: cancelled the jobs it was waiting for") from None
        raise Interrupted(f"stopped waiting; the jobs go on (stop them with: compute-on-aws cancel {ids})") from None
    if result.timed_out:
        for view in result.unfinished:
            print(f"still {view.status}: {view.job_name} {view.job_id}", file=sys.stderr)
            if view.hint:  # a stuck RUNNABLE one
                print(f"  hint: {view.hint}", file=sys.stderr)
        print(f"timed out after {timeout:g} s", file=sys.stderr)
        return TIMED_OUT
    for view in result.failed:
        reason = view.status_reason or "no reason given"
        exit_code = f", exit code {view.exit_code}" if view.exit_code is not None else ""
        print(f"failed: {view.job_name} {view.job_id}: {reason}{exit_code}", file=sys.stderr)
        if view.hint:
            print(f"  hint: {view.hint}", file=sys.stderr)
    return 1 if result.failed else 0


@app.command("wait")
def wait_command(
    ctx: typer.Context,
    job_ids: Annotated[list[str] | None, typer.Argument(help="Job ids.", metavar="JOB_ID", show_default=False)] = None,
    ids_from: IdsFromOption = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="Give up after this many seconds (exit 124).", callback=at_least(0, MAX_WAIT_SECONDS)
        ),
    ] = None,
    cancel_on_interrupt: Annotated[
        bool, typer.Option("--cancel-on-interrupt", help="On Ctrl-C or SIGTERM, cancel/terminate the jobs.")
    ] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Wait for jobs: exit 0 if all succeeded, 1 if any failed, 124 on timeout.

    \b
    Example: compute-on-aws wait 6f1c0b2e-... --timeout 3600
    """
    s = overridden(ctx, config, env, backend, state_dir)
    ids = job_ids_of(job_ids, ids_from, required=True)
    backend_ = backend_for(s, load_settings_config(s))
    raise typer.Exit(wait_jobs(backend_, ids, timeout=timeout, cancel_on_interrupt=cancel_on_interrupt))


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def status_lines(view: JobView) -> list[str]:
    from compute_on_aws.cli.display import array_progress

    lines = [f"{view.job_name} {view.job_id}: {view.status}"]
    if view.in_line and view.place is not None:
        since = f", there since {_when(view.place.since)}" if view.place.since else ""
        lines.append(f"  place: {view.in_line} of queue {view.queue or '-'}{since}")
    if view.status_reason:
        lines.append(f"  reason: {view.status_reason}")
    if view.hint:
        lines.append(f"  hint: {view.hint}")
    lines.append(f"  queue {view.queue or '-'}, definition {view.definition or '-'}")
    lines.append(
        f"  created {_when(view.created_at)}, started {_when(view.started_at)}, stopped {_when(view.stopped_at)}"
    )
    if view.array_size:
        counts = ", ".join(f"{n} {state}" for state, n in view.array_counts.items())
        lines.append(f"  array: {array_progress(view)} ({counts})")
    for number, attempt in enumerate(view.attempts, 1):
        exit_code = "-" if attempt.exit_code is None else attempt.exit_code
        lines.append(f"  attempt {number}: exit {exit_code}, {attempt.status_reason or 'no reason'}")
    if view.log_stream:
        where = f"{view.log_group} {view.log_stream}" if view.log_group else view.log_stream
        lines.append(f"  log: {where} (compute-on-aws logs {view.job_id})")
    return lines


def _listed(s: Settings, config: Config, job: str | None, queue: str | None, status: str | None) -> list[JobView]:
    """This project's jobs (or one declared job's) in their queues, newest first: each queue listed once, whatever
    the number of jobs declared."""
    from compute_on_aws.planning.plan import find_job
    from compute_on_aws.watching.views import of_declared

    manifest = load_manifest(s, [job] if job else None)
    declared = [find_job(manifest, job)] if job else list(manifest.jobs.values())
    queues: dict[str, None] = {}
    for each in declared:
        where = queue or each.queue or config.queue
        if where is None:
            raise UserError(f"{each.name}: no queue declared or configured: pass --queue")
        queues[where] = None
    found = of_declared(backend_for(s, config).list_jobs(list(queues), status), declared) if queues else []
    return sorted(found, key=lambda v: v.created_at or 0, reverse=True)


@app.command("status")
def status_command(
    ctx: typer.Context,
    job_ids: Annotated[list[str] | None, typer.Argument(help="Job ids.", metavar="JOB_ID", show_default=False)] = None,
    ids_from: IdsFromOption = None,
    job: Annotated[str | None, typer.Option("--job", help="The latest jobs of this declared job.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Queue to look in (with --job).")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show jobs: state, reason (with a hint when stuck or failed), attempts, array progress, times, log.

    \b
    Example: compute-on-aws status --job observes-etl
    """
    s = overridden(ctx, config, env, backend, state_dir)
    config_ = load_settings_config(s)
    ids = job_ids_of(job_ids, ids_from, required=job is None)
    if job is not None:
        ids += [v.job_id for v in _listed(s, config_, job, queue, None)[:20]]
    found = backend_for(s, config_).describe(ids)
    missing = [j for j in ids if j not in found]
    shown = [found[j] for j in ids if j in found]
    if as_json:
        print_json({"jobs": [v.to_json() for v in shown], "missing": missing})
    else:
        for view in shown:
            print("\n".join(status_lines(view)))
        for job_id in missing:
            print(f"{job_id}: not found", file=sys.stderr)
    if missing:
        raise typer.Exit(1)


@app.command("list")
def list_command(
    ctx: typer.Context,
    queue: Annotated[str | None, typer.Option("--queue", help="Queue [default: each job's own].")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Only this declared job.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only jobs in this state.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """List this project's jobs in their queues, newest first.

    \b
    Example: compute-on-aws list --status RUNNING
    """
    from compute_on_aws.watching.views import STATES

    if status is not None and status.upper() not in STATES:
        raise UserError(f"--status: expected one of {', '.join(STATES)}, got {status!r}")
    s = overridden(ctx, config, env, backend, state_dir)
    views = _listed(s, load_settings_config(s), job, queue, status.upper() if status else None)
    if as_json:
        print_json({"jobs": [v.to_json() for v in views]})
        return
    rows = [("CREATED", "STATUS", "JOB ID", "QUEUE", "NAME")]
    rows += [(_when(v.created_at), v.status, v.job_id, v.queue or "-", v.job_name) for v in views]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=False)) + "  " + row[4])


@app.command("logs")
def logs_command(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="Job id.", show_default=False)],
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing until the job stops.")] = False,
    attempt: Annotated[int | None, typer.Option("--attempt", help="Attempt number [default: the latest].")] = None,
    index: Annotated[int | None, typer.Option("--index", help="Array child index.")] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Print a job's log (CloudWatch, or the local log file); --follow streams it until the job stops.

    \b
    Example: compute-on-aws logs 6f1c0b2e-... --follow
    """
    s = overridden(ctx, config, env, backend, state_dir)
    control = backend_for(s, load_settings_config(s))
    target = job_id if index is None else f"{job_id}:{index}"
    view = control.describe([target]).get(target)
    if view is None:
        raise UserError(f"no job {target}")
    if view.array_size:
        raise UserError(f"{job_id} is an array job of {view.array_size}: pass --index 0..{view.array_size - 1}")
    if attempt is not None and not 1 <= attempt <= len(view.attempts):
        raise UserError(f"--attempt {attempt}: {target} has {len(view.attempts)} attempt(s)")
    if follow and attempt is None:
        raise typer.Exit(wait_jobs(control, [target], follow=True))
    lines, _ = control.log_lines(view, attempt, None)
    if not lines and view.log_stream is None:
        print(f"{target} is {view.status}: no log yet", file=sys.stderr)
    for line in lines:
        print(line)


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    job_ids: Annotated[list[str] | None, typer.Argument(help="Job ids.", metavar="JOB_ID", show_default=False)] = None,
    ids_from: IdsFromOption = None,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded as the status reason.")] = "Cancelled by user",
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Cancel queued jobs and terminate running ones, saying which it did to each (exit 1 if one is unknown).

    \b
    Example: compute-on-aws cancel 6f1c0b2e-... --reason "wrong day"
    """
    s = overridden(ctx, config, env, backend, state_dir)
    ids = job_ids_of(job_ids, ids_from, required=True)
    results = backend_for(s, load_settings_config(s)).cancel(ids, reason)
    for job_id, what in results:
        print(f"{job_id}: {what}")
    if any(what == "not found" or what.startswith("failed") for _, what in results):
        raise typer.Exit(1)


def _check_own_queues(s: Settings, config: Config, planned: list[tuple[str, list[Rerun]]]) -> None:
    """A job of another project's queue is not re-run from here: the queues this project's config and jobs name."""
    has_jobs = s.manifest is not None or s.flake is not None or s.jobs.is_dir()
    jobs = load_manifest(s).jobs.values() if has_jobs else ()
    own = set(config.infrastructure.queues) | {q for j in jobs if (q := j.queue or config.queue)}
    for job_id, reruns in planned:
        queue = str(reruns[0].request["jobQueue"]).rsplit("/", 1)[-1]
        if own and queue not in own:
            raise UserError(
                f"{job_id}: in queue {queue}, not one of this project's ({', '.join(sorted(own))}): nothing re-run"
            )


@app.command("rerun")
def rerun_command(
    ctx: typer.Context,
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Ids of ended arrays, or of failed jobs.", metavar="JOB_ID", show_default=False),
    ] = None,
    ids_from: IdsFromOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the requests; submit nothing.")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Re-run the failed children of ended arrays (or failed jobs, e.g. those of a bulk call from --ids-from), once.

    Each child of the new array sees the index it had (COMPUTE_ON_AWS_ARRAY_INDICES; a Nix-built entrypoint sets
    AWS_BATCH_JOB_ARRAY_INDEX back from it). While a re-run of a job is active, running this again submits nothing.

    \b
    Example: compute-on-aws rerun 6f1c0b2e-... --json
    """
    s = overridden(ctx, config, env, backend, state_dir)
    ids = job_ids_of(job_ids, ids_from, required=True)
    settings = load_settings_config(s)
    control = backend_for(s, settings)
    # Every id is checked before anything is submitted: a bad one stops the whole call.
    planned = [(job_id, control.plan_rerun(job_id)) for job_id in ids]
    _check_own_queues(s, settings, planned)
    if dry_run:
        outcomes = [
            (of, [RerunOutcome(r.request["jobName"], None, r.indices, "planned", r.request) for r in reruns])
            for of, reruns in planned
        ]
    else:
        results = iter(control.submit_reruns([r for _, reruns in planned for r in reruns]))
        outcomes = [(of, [next(results) for _ in reruns]) for of, reruns in planned]
    if as_json:
        print_json({"reruns": [{"of": of, **o.to_json()} for of, done in outcomes for o in done]})
        return
    for of, done in outcomes:
        for o in done:
            what = f"children {ranges(o.indices)}" if o.indices else "the job"
            if o.outcome == "planned":
                print(f"{o.job_name}: would re-run {what} of {of}")
            elif o.outcome == "active":
                print(f"{o.job_name} {o.job_id}: already re-running {what} of {of} (nothing submitted)")
            else:
                print(f"{o.job_name} {o.job_id}: re-running {what} of {of}")
