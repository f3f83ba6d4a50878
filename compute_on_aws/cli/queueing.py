"""Commands that declare and queue: jobs, queue, render, worker."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from compute_on_aws.cli.app import (
    JOB_ARGS,
    BackendOption,
    ConfigOption,
    EnvOption,
    Settings,
    StateDirOption,
    _backend,
    _load_config,
    _load_manifest,
    _overridden,
    _print_json,
    app,
    at_least,
)
from compute_on_aws.errors import ComputeOnAwsError, Signalled, UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from compute_on_aws.chains import Queued
    from compute_on_aws.config import Config
    from compute_on_aws.model import Manifest
    from compute_on_aws.plan import Outcome, Plan


@app.command("jobs")
def jobs_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List declared jobs, and every invalid declaration (exit 2 if any).

    Example: compute-on-aws jobs --json
    """
    from compute_on_aws import output

    manifest = _load_manifest(ctx.obj)
    jobs = list(manifest.jobs.values())
    errors = [problem for problems in manifest.errors.values() for problem in problems]
    if as_json:
        _print_json({"jobs": [output.job_summary(job) for job in jobs], "errors": errors})
    else:
        for line in output.jobs_table(jobs):
            print(line.rstrip())
    for problem in errors:
        print(f"error: {problem}", file=sys.stderr)
    if errors:
        raise typer.Exit(2)


@dataclass(frozen=True)
class Request:
    """One job to queue, with the jobs it runs after: its arguments, and the slot of a scheduled run."""

    name: str
    args: tuple[str, ...] = ()
    slot: datetime | None = None


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
    from compute_on_aws import output
    from compute_on_aws.chains import plan_chain, queue_chain
    from compute_on_aws.plan import Outcome

    manifest = manifest or _load_manifest(s)
    config = config or _load_config(s)
    backend = _backend(s, config)
    # Every chain planned (variables, limits, names checked) before the first job is queued.
    chains = []
    unresolved: dict[str, None] = {}
    for r in requests:
        chain, plans = plan_chain(
            manifest, config, r.name, r.args, os.environ, after=after or [], pushed_image=backend == "aws", slot=r.slot
        )
        chains.append(chain)
        unresolved.update((p.job.name, None) for p in plans if not p.resolved)
        if unresolved and not dry_run:
            raise UserError(
                f"{next(iter(unresolved))}: its entrypoint is built by Nix: queue it through the flake "
                f"(nix run .#queue-job -- {r.name})"
            )
    if unresolved:
        print(
            f"note: {', '.join(unresolved)}: entrypoint and image are built by Nix, and this evaluation had no "
            "nixpkgs: they show as <built by nix> (nix run .#compute-on-aws -- render ... shows them)",
            file=sys.stderr,
        )

    aws = None
    submit: Callable[[Plan], Outcome]
    if dry_run:

        def submit(p: Plan) -> Outcome:
            return Outcome(outcome="dry-run", job_id=None, request=p.request, definition_ref=p.job.definition_name)

    elif backend == "local":
        from compute_on_aws.local import backend as local

        def submit(p: Plan) -> Outcome:
            return local.queue(config, p, state_dir=s.state_dir)

    else:
        from compute_on_aws import batch
        from compute_on_aws.aws import Aws

        aws = Aws(config.region)

        def submit(p: Plan) -> Outcome:
            return batch.queue(aws, config, p)

    results: list[Queued] = []
    failed: ComputeOnAwsError | None = None
    for chain in chains:
        queued_here: list[Queued] = []
        try:
            for queued in queue_chain(chain, submit):
                queued_here.append(queued)
                if not as_json:
                    print(output.queue_line(queued.plan, queued.outcome, backend=backend), flush=True)
        except ComputeOnAwsError as e:
            _report_queued_before(queued_here)
            if len(chains) == 1:
                raise
            # Scheduled runs are independent: one that cannot be queued does not keep the others from running.
            print(f"error: {e}", file=sys.stderr, flush=True)
            failed = failed if failed is not None and failed.exit_code >= e.exit_code else e
        except Signalled:
            _report_queued_before(queued_here)
            raise
        finally:
            results.extend(queued_here)
    if as_json:
        _print_json({"jobs": [output.queue_result(q.plan, q.outcome) for q in results]})
        sys.stdout.flush()
    if failed is not None:
        raise typer.Exit(failed.exit_code)
    job_ids = [q.outcome.job_id for q in results if q.outcome.job_id is not None]
    if (wait or follow) and job_ids:
        from compute_on_aws.cli.watching import control_for, keep_alive_for, wait_jobs

        code = wait_jobs(
            control_for(s, config, aws),
            job_ids,
            follow=follow,
            timeout=timeout,
            cancel_on_interrupt=cancel_on_interrupt,
            keep_alive=keep_alive_for(s, config),
        )
        raise typer.Exit(code)


def _report_queued_before(results: list[Queued]) -> None:
    """When a later job of a chain fails to queue (or Ctrl-C comes), the ones before it stay queued: say which."""
    queued = [(q.plan.job_name, q.outcome.job_id) for q in results if q.outcome.outcome == "submitted"]
    if queued:
        listed = ", ".join(f"{job_name} {job_id}" for job_name, job_id in queued)
        ids = " ".join(str(job_id) for _, job_id in queued)
        print(
            f"note: queued before this stopped: {listed} (they stay queued; cancel them with: "
            f"compute-on-aws cancel {ids})",
            file=sys.stderr,
        )


@app.command("queue", context_settings=JOB_ARGS)
def queue_command(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="The job (its folder's name); with --due, only its runs.", show_default=False)
    ] = None,
    args: Annotated[list[str] | None, typer.Argument(help="Arguments appended to the job's command.")] = None,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job; exit 0 if it succeeded, 1 if not.")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Wait, and print the job's output as it comes.")] = False,
    after: Annotated[
        list[str] | None, typer.Option("--after", help="Run after this job succeeded (a job id; repeatable).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="With --wait: give up waiting after this many seconds (124).", callback=at_least(0)
        ),
    ] = None,
    cancel_on_interrupt: Annotated[
        bool, typer.Option("--cancel-on-interrupt", help="With --wait: on Ctrl-C or SIGTERM, cancel the job.")
    ] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Queue a job with arguments. Skips it (exit 0) if the same job is already queued or running.

    With --due (a scheduled CI pipeline), queues the scheduled runs of the last hour instead: each named after its
    slot (observes-etl_2026-11-28T0500Z), so a second or retried pipeline finds it queued and skips it.

    Example: compute-on-aws queue observes-etl 2026-11-25 --env staging
    """
    s = _overridden(ctx, config, env, backend, state_dir)
    if due:
        manifest, config_, requests = _due_requests(s, name, args or [], at=at, window=window, as_json=as_json)
    else:
        if at is not None or window is not None:
            raise UserError(f"{'--at' if at is not None else '--window'}: only with --due")
        if name is None:
            raise UserError("queue: name the job to queue (compute-on-aws jobs lists them), or give --due")
        manifest, config_, requests = None, None, [Request(name, tuple(args or ()))]
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


def _due_requests(
    s: Settings, name: str | None, args: list[str], *, at: str | None, window: str | None, as_json: bool
) -> tuple[Manifest, Config, list[Request]]:
    """The scheduled runs due in the window (printed), and the manifest and config they were read from."""
    from compute_on_aws import schedules
    from compute_on_aws.plan import find_job

    if args:
        raise UserError(f"--due: scheduled runs take the arguments their schedule declares, not {' '.join(args)!r}")
    manifest = _load_manifest(s)
    config = _load_config(s)
    end = schedules.parse_time(at, "--at") if at is not None else datetime.now(UTC)
    length = config.schedule_window if window is None else schedules.parse_duration(window, "--window")
    only = None if name is None else find_job(manifest, name).name
    due = [d for d in schedules.due(manifest, end, length) if only is None or d.job.name == only]
    for problem in (p for problems in manifest.errors.values() for p in problems):
        print(f"error: {problem} (its schedules are not queued)", file=sys.stderr)
    span = f"from {end - length:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if as_json and not due:
        _print_json({"jobs": []})
    elif not as_json:
        listed = ", ".join(f"{d.job.name} at {d.slot:%H:%M}" for d in due)
        print(f"due {span}: {listed}" if due else f"nothing due {span}", flush=True)
    return manifest, config, [Request(d.job.name, d.schedule.args, d.slot) for d in due]


@app.command("render", context_settings=JOB_ARGS)
def render_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job (its folder's name).", show_default=False)],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments appended to the job's command.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the exact requests).")] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Show the job definition and submission for a job, without calling AWS (same as queue --dry-run).

    Example: compute-on-aws render observes-etl 2026-11-25 --json
    """
    _queue(_overridden(ctx, config, env), [Request(name, tuple(args or ()))], dry_run=True, as_json=as_json)


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
            "--role", help="submitter (whoever queues and applies schedules) or scheduler (roles.scheduler's own)."
        ),
    ] = "submitter",
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Print the IAM policy whoever queues these jobs needs (a CI role, a developer): least privilege, as JSON.

    It allows what queue, status, wait, logs, cancel, list and schedules plan/apply call, on the queues, job
    definitions, roles, ECR repository and schedule group of the declared jobs only. With --role scheduler: the policy
    of the role EventBridge Scheduler assumes (SubmitJob on the scheduled jobs' queues and definitions).

    Example: compute-on-aws iam-policy --account 123456789012 --env production > policy.json
    """
    from compute_on_aws.policy import scheduler_policy, submitter_policy

    if role not in ("submitter", "scheduler"):
        raise UserError(f"--role: expected submitter or scheduler, got {role!r}")

    s = _overridden(ctx, config, env)
    manifest = _load_manifest(s)
    config_ = _load_config(s)
    if account != "*" and not (account.isdigit() and len(account) == 12):
        raise UserError(f"--account: expected a 12-digit AWS account id, got {account!r}")
    region = region or config_.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "*"
    make = submitter_policy if role == "submitter" else scheduler_policy
    _print_json(make(manifest, config_, account=account, region=region))
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
            "--max-vcpus", help="vCPUs running jobs may use [default: config, else cores].", callback=at_least(0.25)
        ),
    ] = None,
    kill_grace: Annotated[
        float | None,
        typer.Option("--kill-grace", help="Seconds between SIGTERM and SIGKILL [default: 30].", callback=at_least(0)),
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

    Example: compute-on-aws worker --max-vcpus 4
    """
    from compute_on_aws.local import backend as local
    from compute_on_aws.local.worker import WorkerSettings, run_worker

    s = _overridden(ctx, config, env, state_dir=state_dir)
    settings = _load_config(s).local
    run_worker(
        local.store_for(settings, s.state_dir),
        WorkerSettings(
            max_vcpus=max_vcpus or local.max_vcpus(settings),
            kill_grace=settings.kill_grace_seconds if kill_grace is None else kill_grace,
            secrets_from_environment=secrets_from_environment or settings.secrets_from_environment,
            exit_when_idle=exit_when_idle,
        ),
    )
