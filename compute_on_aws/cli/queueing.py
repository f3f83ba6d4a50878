"""Commands that declare and queue: jobs, queue, render, worker."""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from compute_on_aws.cli.app import (
    JOB_ARGS,
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
    non_empty,
    overridden,
    print_json,
    read_input,
    refuse_global_options,
)
from compute_on_aws.declared.bounds import MAX_DUE_WINDOW, MAX_KILL_GRACE_SECONDS, MAX_LOCAL_VCPUS, MAX_WAIT_SECONDS
from compute_on_aws.errors import ComputeOnAwsError, Signalled, UserError

if TYPE_CHECKING:
    from compute_on_aws.backends import Backend
    from compute_on_aws.cli.display import QueueProgress
    from compute_on_aws.declared.config import Config
    from compute_on_aws.declared.manifest import Manifest
    from compute_on_aws.planning.chains import NotQueued, Queued
    from compute_on_aws.queueing import Request, Tally

# ctx.meta key: how many of the command's words came after `--` (None: no `--`).
_AFTER_DASHES = "compute_on_aws.after_dashes"


class _WordsAfterDashes(TyperCommand):
    """Notes where `--` was: click passes the words after it on as arguments like the others."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_AFTER_DASHES] = len(args) - args.index("--") - 1 if "--" in args else None
        return super().parse_args(ctx, args)


@app.command("jobs")
def jobs_command(
    ctx: typer.Context,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """List declared jobs, and every invalid declaration (exit 2 if any).

    \b
    Example: compute-on-aws jobs --json
    """
    from compute_on_aws.cli import output
    from compute_on_aws.planning.checks import job_problems

    s = overridden(ctx, config, env)
    config_ = load_settings_config(s)
    manifest = load_manifest(s)
    jobs = list(manifest.jobs.values())
    errors = [problem for problems in manifest.errors.values() for problem in problems]
    errors += [
        p
        for job in jobs
        for p in job_problems(job, job.queue or config_.queue, config_.infrastructure, config_.image.system)
    ]
    if as_json:
        print_json({"jobs": [output.job_summary(job) for job in jobs], "errors": errors})
    else:
        for line in output.jobs_table(jobs):
            print(line.rstrip())
    for problem in errors:
        print(f"error: {problem}", file=sys.stderr)
    if errors:
        raise typer.Exit(2)


def _opened(
    s: Settings, config: Config, requests: list[Request], *, dry_run: bool, manifest: Manifest | None
) -> tuple[Backend | None, Manifest]:
    """The backend (none for a dry run), warming up while Nix evaluates the jobs asked for (boto3 loads meanwhile)."""
    backend = None if dry_run else backend_for(s, config)
    if manifest is not None:
        return backend, manifest
    if backend is not None:
        backend.warm_up()
    return backend, load_manifest(s, list(dict.fromkeys(r.name for r in requests)))


def _queue(
    s: Settings,
    requests: list[Request],
    *,
    dry_run: bool,
    as_json: bool,
    wait: bool = False,
    follow: bool = False,
    after: list[str] | None = None,
    timeout: float | None = None,
    cancel_on_interrupt: bool = False,
    config: Config | None = None,
    manifest: Manifest | None = None,
) -> None:
    from compute_on_aws.backends import pushes_images
    from compute_on_aws.cli.display import QueueProgress
    from compute_on_aws.queueing import Tally, plan_requests, queue_planned

    # The config first: a mistake in it is reported before Nix runs.
    config = config or load_settings_config(s)
    backend, manifest = _opened(s, config, requests, dry_run=dry_run, manifest=manifest)
    planned = plan_requests(
        manifest,
        config,
        requests,
        os.environ,
        after=after or [],
        pushes_images=backend.pushes_images if backend is not None else pushes_images(s.backend or config.backend),
        dry_run=dry_run,
    )
    if planned.built_by_nix:
        print(
            f"note: {', '.join(planned.built_by_nix)}: entrypoint and image are built by Nix, and this evaluation had "
            "no nixpkgs: they show as <built by nix> (nix run .#compute-on-aws -- render ... shows them)",
            file=sys.stderr,
        )
    # A bar (or a line per 10%) for bulk calls; one job's line says all there is.
    progress = QueueProgress(planned.total, sys.stderr) if planned.total >= PROGRESS_FROM and not dry_run else None
    tally = Tally(progress.advance if progress is not None else None)
    # One job and what it runs after: a failure ends the command as it did before bulk calls existed.
    single = len(planned.chains) == 1
    show = _Shown(progress, backend, quiet=as_json, single=single)
    try:
        with progress or nullcontext():
            queue_planned(planned, backend, tally, show)
    except (ComputeOnAwsError, Signalled) as e:
        # A failure of the whole call (not of one job), or Ctrl-C: what was queued stays queued.
        if as_json:  # a script reading the document learns what was queued before it stopped
            _print_document(tally, stopped=str(e) if isinstance(e, ComputeOnAwsError) else "interrupted")
        _report_queued_before(tally)
        raise
    if single and tally.not_queued:
        if as_json:
            _print_document(tally, stopped=str(tally.not_queued[0].error))
        _report_queued_before(tally)
        raise tally.not_queued[0].error
    _conclude(tally, many=len(planned.chains) > 1, as_json=as_json)
    if (wait or follow) and tally.job_ids and backend is not None:
        from compute_on_aws.cli.watching import wait_jobs

        code = wait_jobs(
            backend, tally.job_ids, follow=follow, timeout=timeout, cancel_on_interrupt=cancel_on_interrupt
        )
        raise typer.Exit(code)


@dataclass(frozen=True)
class _Shown:
    """Prints each job's result as it is known: above the progress bar, or a line each."""

    progress: QueueProgress | None
    backend: Backend | None
    quiet: bool  # --json: one document at the end
    single: bool  # one job's failure is the command's error, told once

    def __call__(self, result: Queued | NotQueued) -> None:
        from compute_on_aws.cli import output
        from compute_on_aws.planning.chains import Queued

        if self.quiet or (self.single and not isinstance(result, Queued)):
            return
        if isinstance(result, Queued):
            where = self.backend.place(result.plan.queue) if self.backend is not None else result.plan.queue
            line, to_stderr = output.queue_line(result.plan, result.outcome, where=where), False
        else:
            line, to_stderr = f"not queued: {result.error}", True
        if self.progress is not None:
            self.progress.line(line, stderr=to_stderr)
        else:
            print(line, file=sys.stderr if to_stderr else sys.stdout, flush=True)


def _conclude(tally: Tally, *, many: bool, as_json: bool) -> None:
    """The JSON document, the summary of a bulk call or a failed one, and exit 1 (or the worst error's code) if a job
    was not queued."""
    if as_json:
        _print_document(tally)
    if many or tally.not_queued:
        _summary(tally)
    if tally.not_queued:
        raise typer.Exit(max(n.error.exit_code for n in tally.not_queued))


def _print_document(tally: Tally, *, stopped: str | None = None) -> None:
    """--json's document: the jobs queued, their definitions, the jobs not queued; and, when the call stopped
    part-way, why (the jobs listed stay queued)."""
    from compute_on_aws.cli import output

    document: dict[str, Any] = {
        "jobs": [output.queue_result(q.plan, q.outcome) for q in tally.queued],
        "definitions": output.definitions(q.plan for q in tally.queued),
        "failed": [output.not_queued(n.plan, n.error) for n in tally.not_queued],
    }
    if stopped is not None:
        document["stopped"] = stopped
    print_json(document)
    sys.stdout.flush()


# From this many jobs in one call, progress is shown while they are queued.
PROGRESS_FROM = 10


def _summary(tally: Tally) -> None:
    """The counts, why jobs were not queued, and how to queue the rest."""
    outcomes: Counter[str] = Counter(q.outcome.outcome for q in tally.queued)
    counts = ", ".join(
        f"{outcomes[o]} {label}"
        for o, label in (("submitted", "submitted"), ("duplicate", "duplicates"), ("dry-run", "dry runs"))
        if outcomes[o]
    )
    failed = tally.not_queued
    print(
        f"{len(tally.queued) + len(failed)} jobs: {counts or 'none queued'}"
        + (f", {len(failed)} not queued" if failed else ""),
        file=sys.stderr,
    )
    if not failed:
        return
    reasons = Counter(str(missing.error) for missing in failed)
    for reason, count in reasons.most_common(5):
        print(f"  {count} x {reason}" if count > 1 else f"  {reason}", file=sys.stderr)
    again = [q for q in tally.queued if q.outcome.outcome == "submitted" and q.plan.job.allow_duplicates]
    if not again:
        print(
            "to queue the rest, run the same command again: the jobs it queued are found and skipped as duplicates",
            file=sys.stderr,
        )
        return
    print(
        "to queue the rest (these jobs allow duplicates, so the same command would queue the others twice):",
        file=sys.stderr,
    )
    for missing in failed[:20]:
        words = " ".join(shlex.quote(a) for a in missing.plan.args)
        print(f"  compute-on-aws queue {missing.plan.job.name}" + (f" -- {words}" if words else ""), file=sys.stderr)
    if len(failed) > 20:
        print(f"  ... and {len(failed) - 20} more (--json lists them all under failed)", file=sys.stderr)


def _report_queued_before(tally: Tally) -> None:
    """When a call stops part-way (a failure of AWS or Ctrl-C), the jobs queued before stay queued: say which."""
    queued = tally.submitted
    if not queued:
        return
    if len(queued) <= 20:
        listed = ", ".join(f"{job_name} {job_id}" for job_name, job_id in queued)
        ids = " ".join(str(job_id) for _, job_id in queued)
        print(
            f"note: queued before this stopped: {listed} (they stay queued; cancel them with: "
            f"compute-on-aws cancel {ids})",
            file=sys.stderr,
        )
        return
    print(
        f"note: {len(queued)} jobs were queued before this stopped (they stay queued: running the same command again "
        "skips them as duplicates; compute-on-aws list shows them)",
        file=sys.stderr,
    )


@app.command("queue", context_settings=JOB_ARGS, cls=_WordsAfterDashes)
def queue_command(
    ctx: typer.Context,
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="The job (its folder's name) and its arguments; or several jobs, then -- and the arguments of each.",
            metavar="NAME [ARGS]",
            show_default=False,
        ),
    ] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Queue every declared job.")] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            help="Queue the jobs that declare this tag, KEY=VALUE (repeatable: all must match).",
            metavar="KEY=VALUE",
        ),
    ] = None,
    args_from: Annotated[
        str | None,
        typer.Option(
            "--args-from",
            metavar="FILE|-",
            help="Queue each job once per line of this file (or - for stdin): its arguments, as shell words or a "
            "JSON array.",
            show_default=False,
        ),
    ] = None,
    due: Annotated[
        bool, typer.Option("--due", help="Queue every scheduled run whose time is inside the window ending at --at.")
    ] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="With --due: the window's end, ISO 8601 [default: now].")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option("--window", help="With --due: how far back runs are due, e.g. 90m [default: config, else 1h]."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent; call nothing.")] = False,
    as_json: JsonOption = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the jobs; exit 0 if all succeeded, 1 if not.")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Wait, and print the jobs' output as it comes.")] = False,
    after: Annotated[
        list[str] | None,
        typer.Option(
            "--after", help="Run after this job succeeded (a job id; repeatable).", parser=non_empty("--after")
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="With --wait or --follow: give up waiting after this many seconds (exit 124).",
            callback=at_least(0, MAX_WAIT_SECONDS),
        ),
    ] = None,
    cancel_on_interrupt: Annotated[
        bool, typer.Option("--cancel-on-interrupt", help="With --wait: on Ctrl-C or SIGTERM, cancel the jobs.")
    ] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Queue jobs with arguments. Skips a job (exit 0) if the same job is already queued or running.

    Many at once: several names (their arguments after --), --all, --tag KEY=VALUE, and --args-from FILE (one
    job per line of arguments), all within one budget of AWS calls (aws.calls_per_second). If some cannot be queued,
    it says which and exits 1; running it again queues only the rest.

    With --due (a scheduled CI pipeline), queues the scheduled runs of the last hour instead: each named after its
    slot (observes-etl_2026-11-28T0500Z), so a second or retried pipeline finds it queued and skips it.

    \b
    Examples: compute-on-aws queue hello world --follow;
    compute-on-aws queue hello --args-from names.txt;
    nix run .#queue-job -- observes-etl 2026-11-25 --env staging (in CI, where CI_COMMIT_SHA is set)
    """
    s = overridden(ctx, config, env, backend, state_dir)
    names, args = _names_and_args(ctx, words or [], args_elsewhere=args_from is not None)
    manifest: Manifest | None = None
    config_: Config | None = None
    if due:
        if all_jobs or tag or args_from is not None or len(names) > 1:
            raise UserError("--due: queues the scheduled runs of one job or all; not with --all, --tag, --args-from")
        manifest, config_, requests = _due_requests(
            s, names[0] if names else None, args, at=at, window=window, as_json=as_json
        )
    else:
        if at is not None or window is not None:
            raise UserError(f"{'--at' if at is not None else '--window'}: only with --due")
        if all_jobs or tag:
            if names:
                raise UserError(f"{'--all' if all_jobs else '--tag'}: selects the jobs; name none ({names[0]!r})")
            manifest = load_manifest(s)
            names = _selected(manifest, all_jobs, tag or [])
        elif not names:
            raise UserError(
                "queue: name the job to queue (compute-on-aws jobs lists them), or give --all, --tag or --due"
            )
        requests = _requests(names, args, args_from)
    if requests:
        _queue(
            s,
            requests,
            dry_run=dry_run,
            as_json=as_json,
            wait=wait,
            follow=follow,
            after=after,
            timeout=timeout,
            cancel_on_interrupt=cancel_on_interrupt,
            config=config_,
            manifest=manifest,
        )
    if manifest is not None and manifest.errors:
        raise typer.Exit(2)


def _requests(names: list[str], args: list[str], args_from: str | None) -> list[Request]:
    """Each job once with the command line's arguments, or once per argument list of --args-from."""
    from compute_on_aws.queueing import Request

    if args_from is None:
        return [Request(name, tuple(args)) for name in names]
    from compute_on_aws.cli.inputs import parse_arg_lists

    if args:
        raise UserError("--args-from: gives each job's arguments; give none on the command line too")
    source = "stdin" if args_from == "-" else args_from
    arg_lists = parse_arg_lists(read_input(args_from, "--args-from"), source)
    if not arg_lists:
        raise UserError(f"--args-from {source}: no argument lists in it (one per line)")
    return [Request(name, a) for name in names for a in arg_lists]


def _names_and_args(ctx: typer.Context, words: list[str], *, args_elsewhere: bool) -> tuple[list[str], list[str]]:
    """`NAME ARGS...` (today's form) or `NAME... -- ARGS...`: with `--`, the words before it are jobs; so are all of
    them when the arguments come from elsewhere (--args-from)."""
    refuse_global_options(ctx, _before_dashes(ctx, words))
    after_dashes = ctx.meta.get(_AFTER_DASHES)
    if after_dashes is None:
        return (words, []) if args_elsewhere else (words[:1], words[1:])
    cut = len(words) - after_dashes
    return words[:cut], words[cut:]


def _before_dashes(ctx: typer.Context, words: list[str]) -> list[str]:
    after_dashes = ctx.meta.get(_AFTER_DASHES)
    return words if after_dashes is None else words[: len(words) - after_dashes]


def _selected(manifest: Manifest, all_jobs: bool, tags: list[str]) -> list[str]:
    """The declared jobs --all or every --tag KEY=VALUE picks (invalid declarations are reported apart)."""
    wanted = []
    for pair in tags:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--tag: expected KEY=VALUE, got {pair!r}")
        wanted.append((key, value))
    names = [job.name for job in manifest.jobs.values() if all_jobs or all(job.tags.get(k) == v for k, v in wanted)]
    for problem in (p for problems in manifest.errors.values() for p in problems):
        print(f"error: {problem} (not queued)", file=sys.stderr)
    if not names:
        what = "declared" if all_jobs else f"with tag {' and '.join(tags)}"
        raise UserError(f"no valid job {what} in {manifest.source}")
    return names


def _due_requests(
    s: Settings, name: str | None, args: list[str], *, at: str | None, window: str | None, as_json: bool
) -> tuple[Manifest, Config, list[Request]]:
    """The scheduled runs due in the window (printed), and the manifest and config they were read from."""
    from compute_on_aws.declared import cron
    from compute_on_aws.planning import runs
    from compute_on_aws.planning.plan import find_job
    from compute_on_aws.queueing import Request

    if args:
        raise UserError(f"--due: scheduled runs take the arguments their schedule declares, not {' '.join(args)!r}")
    manifest = load_manifest(s)
    config = load_settings_config(s)
    end = cron.parse_time(at, "--at") if at is not None else datetime.now(UTC)
    length = (
        config.schedule_window if window is None else cron.parse_duration(window, "--window", maximum=MAX_DUE_WINDOW)
    )
    only = None if name is None else find_job(manifest, name).name
    due = [d for d in runs.due(manifest, end, length) if only is None or d.job.name == only]
    for problem in (p for problems in manifest.errors.values() for p in problems):
        print(f"error: {problem} (its schedules are not queued)", file=sys.stderr)
    span = f"from {end - length:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if as_json and not due:
        print_json({"jobs": []})
    elif not as_json:
        listed = ", ".join(f"{d.job.name} at {d.slot:%H:%M}" for d in due)
        print(f"due {span}: {listed}" if due else f"nothing due {span}", flush=True)
    return manifest, config, [Request(d.job.name, d.schedule.args, d.slot) for d in due]


@app.command("render", context_settings=JOB_ARGS, cls=_WordsAfterDashes)
def render_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job (its folder's name).", show_default=False)],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments appended to the job's command.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the exact requests).")] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
) -> None:
    """Show the job definition and submission for a job, without calling AWS (same as queue --dry-run).

    With --backend local, the command runs the entrypoint built for this machine rather than the pushed image.

    \b
    Example: compute-on-aws render hello world --json
    """
    from compute_on_aws.queueing import Request

    refuse_global_options(ctx, _before_dashes(ctx, [name, *(args or [])]))
    s = overridden(ctx, config, env, backend)
    _queue(s, [Request(name, tuple(args or ()))], dry_run=True, as_json=as_json)


@app.command("iam-policy")
def iam_policy_command(
    ctx: typer.Context,
    account: Annotated[str, typer.Option("--account", help="AWS account id of the resources.")] = "*",
    region: Annotated[
        str | None, typer.Option("--region", help="Region of the resources [default: config, AWS_REGION, else *].")
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="submitter (whoever queues and applies schedules), scheduler (roles.scheduler's own), infra "
            "(whoever runs infra plan and apply: roles.deploy), infra-plan (infra plan only, reading: roles.plan), "
            "job (roles.job's, for the EFS volumes the jobs mount with iam) or execution (roles.execution's: logs, "
            "secrets, images).",
        ),
    ] = "submitter",
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Print the IAM policy whoever queues these jobs needs (a CI role, a developer): least privilege, as JSON.

    It allows what queue, status, wait, logs, cancel, list and schedules plan/apply call, on the queues, job
    definitions, roles, ECR repository and schedule group of the declared jobs only. With --role scheduler: the policy
    of the role EventBridge Scheduler assumes (SubmitJob on the scheduled jobs' queues and definitions). With --role
    infra: what infra plan and apply call, on the declared compute environments and queues (and, to prune, on those
    tagged as this environment's). With --role infra-plan: the reading part of that, for the role a merge request's
    pipeline plans with. With --role job: what the jobs' declarations make Batch do as their job role (mounting EFS
    volumes declared with iam = true). With --role execution: writing the jobs' log groups, reading their secrets and
    pulling their Nix-built images.

    \b
    Example: compute-on-aws iam-policy --account 123456789012 --env staging > policy.json
    """
    from compute_on_aws.infra import policy

    makers = {
        "submitter": policy.submitter_policy,
        "scheduler": policy.scheduler_policy,
        "job": policy.job_role_policy,
        "execution": policy.execution_role_policy,
    }
    if role not in (*makers, "infra", "infra-plan"):
        raise UserError(f"--role: expected submitter, scheduler, infra, infra-plan, job or execution, got {role!r}")

    s = overridden(ctx, config, env)
    config_ = load_settings_config(s)
    if account != "*" and not (account.isdigit() and len(account) == 12):
        raise UserError(f"--account: expected a 12-digit AWS account id, got {account!r}")
    region = region or config_.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "*"
    if role.startswith("infra"):  # the config, and the log groups of the jobs where there are jobs
        from compute_on_aws.cli.infra import job_log_groups

        has_jobs = s.manifest is not None or s.flake is not None or s.jobs.is_dir()
        jobs = load_manifest(s) if has_jobs else None
        declared = list(jobs.jobs.values()) if jobs is not None else []
        print_json(
            policy.infra_policy(
                config_,
                account=account,
                region=region,
                read_only=role == "infra-plan",
                log_groups=job_log_groups(config_, jobs),
                definitions=[j.definition_name for j in declared],
                schedules=any(j.schedules for j in declared),
            )
        )
        return
    manifest = load_manifest(s)
    print_json(makers[role](manifest, config_, account=account, region=region))
    for problem in (p for problems in manifest.errors.values() for p in problems):
        print(f"error: {problem} (not in the policy)", file=sys.stderr)
    if manifest.errors:
        raise typer.Exit(2)


@app.command("worker")
def worker_command(
    ctx: typer.Context,
    max_vcpus: Annotated[
        float | None,
        typer.Option(
            "--max-vcpus",
            help="vCPUs running jobs may use [default: config, else cores].",
            callback=at_least(0.25, MAX_LOCAL_VCPUS),
        ),
    ] = None,
    kill_grace: Annotated[
        float | None,
        typer.Option(
            "--kill-grace",
            help="Seconds between SIGTERM and SIGKILL [default: 30].",
            callback=at_least(0, MAX_KILL_GRACE_SECONDS),
        ),
    ] = None,
    secrets_from_environment: Annotated[
        bool, typer.Option("--secrets-from-environment", help="Give jobs their secrets from this environment.")
    ] = False,
    exit_when_idle: Annotated[bool, typer.Option("--exit-when-idle", help="Stop when nothing is left to run.")] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run locally queued jobs in the foreground (queue starts one in the background when none runs).

    \b
    Example: compute-on-aws worker --max-vcpus 4
    """
    from compute_on_aws.backends.local import submit as local
    from compute_on_aws.backends.local.worker import WorkerSettings, run_worker

    s = overridden(ctx, config, env, state_dir=state_dir)
    settings = load_settings_config(s).local
    run_worker(
        local.store_for(settings, s.state_dir),
        WorkerSettings(
            max_vcpus=max_vcpus or local.max_vcpus(settings),
            kill_grace=settings.kill_grace_seconds if kill_grace is None else kill_grace,
            secrets_from_environment=secrets_from_environment or settings.secrets_from_environment,
            exit_when_idle=exit_when_idle,
        ),
    )
