"""Commands about schedules: schedules list/plan/apply (EventBridge Scheduler) and ci github/gitlab (pipeline files)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from compute_on_aws.cli.app import (
    BackendOption,
    ConfigOption,
    EnvOption,
    JsonOption,
    StateDirOption,
    app,
    at_least,
    backend_for,
    load_manifest,
    load_settings_config,
    overridden,
    print_json,
)
from compute_on_aws.declared.bounds import MAX_DUE_WINDOW, MAX_LISTED_RUNS
from compute_on_aws.errors import UserError

if TYPE_CHECKING:
    from compute_on_aws.declared.config import Config
    from compute_on_aws.declared.manifest import Manifest
    from compute_on_aws.schedules.eventbridge import Declared
    from compute_on_aws.schedules.missed import Checked
    from compute_on_aws.schedules.pipelines import Kind

schedules_app = typer.Typer(
    no_args_is_help=True, help="Scheduled runs: list them, and keep EventBridge Scheduler in line with them."
)
app.add_typer(schedules_app, name="schedules")


def _report_invalid(errors: dict[str, tuple[str, ...]]) -> None:
    for problem in (p for problems in errors.values() for p in problems):
        print(f"error: {problem}", file=sys.stderr)
    if errors:
        raise typer.Exit(2)


@schedules_app.command("list")
def list_command(
    ctx: typer.Context,
    count: Annotated[
        int,
        typer.Option(
            "--count",
            help="How many next runs to show per schedule (at most 1000).",
            callback=at_least(0, MAX_LISTED_RUNS),
        ),
    ] = 3,
    at: Annotated[
        str | None, typer.Option("--at", help="Show the runs after this time (ISO 8601) [default: now].")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every declared schedule, in words, with its next runs in UTC and in its own timezone.

    \b
    Example: compute-on-aws schedules list --count 5
    """
    from compute_on_aws.cli.output import schedule_summary
    from compute_on_aws.declared import cron
    from compute_on_aws.planning import runs

    manifest = load_manifest(ctx.obj)
    after = cron.parse_time(at, "--at") if at is not None else datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for job in manifest.jobs.values():
        for schedule in job.schedules:
            upcoming = cron.next_runs(schedule, after, count) if schedule.enabled else []
            tz = cron.zone(schedule.timezone)
            rows.append(
                {
                    "job": job.name,
                    **schedule_summary(schedule),
                    "description": cron.explain(schedule),
                    "next": [{"utc": runs.scheduled_time(r), "local": r.astimezone(tz).isoformat()} for r in upcoming],
                    "names": [runs.slot_name(job, r, schedule.args) for r in upcoming],
                }
            )
    if as_json:
        print_json({"schedules": rows})
    elif not rows:
        print('no job declares a schedule (schedule = "0 5 * * *"; in jobs/<name>/default.nix)')
    for row in [] if as_json else rows:
        args = f" with {' '.join(row['args'])}" if row["args"] else ""
        print(f"{row['job']}  {row['cron']}  {row['description']}{args}")
        for run in row["next"]:
            utc = datetime.fromisoformat(run["utc"])
            local = datetime.fromisoformat(run["local"])
            shown = f"{utc:%a %Y-%m-%d %H:%M} UTC"
            if row["timezone"] != "UTC":
                shown += f" ({local:%a %H:%M} {row['timezone']})"
            print(f"  next: {shown}")
    _report_invalid(manifest.errors)


@schedules_app.command("missed")
def missed_command(
    ctx: typer.Context,
    window: Annotated[
        str, typer.Option("--window", help="How far back to look, e.g. 24h or 3d (at most 7d: Batch's history).")
    ] = "24h",
    grace: Annotated[
        str | None,
        typer.Option(
            "--grace",
            help="Slots this recent are not judged yet: a pipeline may queue them late [default: schedules.window].",
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="The window's end, ISO 8601 [default: now].")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Only this declared job's schedules.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Report the scheduled slots of the window that have no SUCCEEDED job, from the queues' own history: exit 1 when
    one failed or was never queued, 0 when every one succeeded or is still on its way (queued or running).

    A slot's run is the job named after it, whoever queued it (a CI pipeline's queue --due, EventBridge Scheduler, a
    person): one search per queue for all of its slots.

    \b
    Example: compute-on-aws schedules missed --window 24h --backend aws
    Example: compute-on-aws schedules missed --job observes-report --json
    """
    from compute_on_aws.declared import cron
    from compute_on_aws.planning.plan import find_job
    from compute_on_aws.schedules import missed

    s = overridden(ctx, config, env, backend, state_dir)
    settings = load_settings_config(s)
    end = cron.parse_time(at, "--at") if at is not None else datetime.now(UTC)
    length = cron.parse_duration(window, "--window")
    late = settings.schedule_window if grace is None else cron.parse_duration(grace, "--grace", maximum=MAX_DUE_WINDOW)
    if late >= length:
        raise UserError(f"--grace: {grace or settings.schedule_window} leaves nothing of --window {window} to judge")
    manifest = load_manifest(s, [job] if job else None)
    only = find_job(manifest, job).name if job else None
    slots = missed.slots(manifest, settings, start=end - length, end=end - late, only=only)
    checked = missed.look_up(backend_for(s, settings), slots) if slots else []
    gone = [c for c in checked if c.outcome in missed.MISSED]
    span = f"from {end - length:%Y-%m-%d %H:%M} to {end - late:%Y-%m-%d %H:%M} UTC"
    _report_missed(checked, start=end - length, end=end - late, span=span, as_json=as_json)
    for problem in (p for problems in manifest.errors.values() for p in problems):
        print(f"error: {problem} (its schedules are not checked)", file=sys.stderr)
    if gone:
        print(f"error: {len(gone)} of {len(checked)} scheduled slots {span} have no SUCCEEDED job", file=sys.stderr)
        raise typer.Exit(1)
    if manifest.errors:
        raise typer.Exit(2)


def _report_missed(checked: list[Checked], *, start: datetime, end: datetime, span: str, as_json: bool) -> None:
    from compute_on_aws.schedules.missed import MISSED

    if as_json:
        print_json({"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{end:%Y-%m-%dT%H:%M:%SZ}",
                    "slots": [c.to_json() for c in checked],
                    "missed": sum(1 for c in checked if c.outcome in MISSED)})  # fmt: skip
        return
    for c in checked:
        print(_missed_line(c))
    counts = {o: sum(1 for c in checked if c.outcome == o) for o in ("succeeded", "running", "failed", "missing")}
    print(f"{len(checked)} slots {span}: " + ", ".join(f"{n} {o}" for o, n in counts.items()))


def _missed_line(c: Checked) -> str:
    slot = f"{c.slot.job} {c.slot.at:%Y-%m-%dT%H:%MZ}"
    if c.view is None:
        return f"{slot}: missing: no job {c.slot.name} in queue {c.slot.queue}"
    line = f"{slot}: {c.outcome}: job {c.view.job_id} {c.view.status}"
    if c.outcome == "failed":
        line += f" ({c.view.status_reason or 'no reason given'}; compute-on-aws logs {c.view.job_id})"
    return line


ci_app = typer.Typer(
    no_args_is_help=True,
    help="Generated CI pipelines: scheduled ones that queue the declared schedules, and one that changes the Batch "
    "infrastructure through merge requests.",
)
app.add_typer(ci_app, name="ci")

CheckOption = Annotated[
    Path | None,
    typer.Option("--check", help="Exit 1 if this committed file differs from what would be printed.", dir_okay=False),
]


PipelineOption = Annotated[
    str,
    typer.Option(
        "--pipeline",
        help="schedules: queue --due at the declared schedules; infra: infra plan on each merge request, infra apply "
        "on the default branch.",
    ),
]


def _pipeline(
    ctx: typer.Context, kind: Kind, pipeline: str, check: Path | None, config: Path | None, env: str | None
) -> None:
    from compute_on_aws.schedules.pipelines import PIPELINES, render, render_infra

    if pipeline not in PIPELINES:
        raise UserError(f"--pipeline: expected {' or '.join(PIPELINES)}, got {pipeline!r}")
    s = overridden(ctx, config, env)
    if pipeline == "infra":  # the config alone: no job is read
        text = render_infra(kind, load_settings_config(s))
    else:
        manifest = load_manifest(s)
        _report_invalid(manifest.errors)
        text = render(kind, manifest, load_settings_config(s), now=datetime.now(UTC))
    if check is None:
        sys.stdout.write(text)
        return
    try:
        committed = check.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"--check {check}: cannot read it ({e.strerror})") from None
    if committed != text:
        flags = (f" --pipeline {pipeline}" if pipeline != "schedules" else "") + (f" --env {s.env}" if s.env else "")
        source = "compute-on-aws.yaml" if pipeline == "infra" else "the job declarations"
        print(
            f"error: {check} is out of date with {source}: regenerate it with "
            f"`compute-on-aws ci {kind}{flags} > {check}` and commit it",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    print(f"{check} is up to date")


@ci_app.command("github")
def github_command(
    ctx: typer.Context,
    pipeline: PipelineOption = "schedules",
    check: CheckOption = None,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Print a GitHub Actions workflow that runs queue --due at every declared schedule (converted to UTC); with
    --pipeline infra, one that plans the Batch infrastructure on each pull request and applies it on the default branch.

    Credentials come through GitHub's OIDC provider: roles.ci (roles.plan and roles.deploy for infra) and region in
    compute-on-aws.yaml.

    \b
    Example: compute-on-aws ci github > .github/workflows/compute-on-aws-schedules.yml
    Example: compute-on-aws ci github --pipeline infra > .github/workflows/compute-on-aws-infra.yml
    """
    _pipeline(ctx, "github", pipeline, check, config, env)


@ci_app.command("gitlab")
def gitlab_command(
    ctx: typer.Context,
    pipeline: PipelineOption = "schedules",
    check: CheckOption = None,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Print a GitLab CI job that runs queue --due in scheduled pipelines, with the pipeline schedules to create; with
    --pipeline infra, jobs that plan the Batch infrastructure in merge requests and apply it on the default branch.

    Include it from .gitlab-ci.yml (include: local: .gitlab/compute-on-aws-schedules.yml).

    \b
    Example: compute-on-aws ci gitlab > .gitlab/compute-on-aws-schedules.yml
    Example: compute-on-aws ci gitlab --pipeline infra > .gitlab/compute-on-aws-infra.yml
    """
    _pipeline(ctx, "gitlab", pipeline, check, config, env)


def _sync(ctx: typer.Context, env: str | None, config_path: Path | None, *, apply: bool, as_json: bool) -> None:
    from compute_on_aws.aws.session import Aws
    from compute_on_aws.schedules.eventbridge import Schedules

    s = overridden(ctx, config_path, env)
    manifest = load_manifest(s)
    _report_invalid(manifest.errors)
    config = load_settings_config(s)
    wanted = _wanted(manifest, config, apply=apply)
    # The same budget of Batch calls as queue: schedules apply looks up (or registers) definitions.
    remote = Schedules(Aws(config.region, batch_calls_per_second=config.batch_calls_per_second), config)
    exists = remote.group_exists()
    changes = remote.changes(wanted, remote.current() if exists else {})
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete", "unchanged")}
    if as_json and not apply:
        print_json(
            {
                "group": config.schedule_group,
                "groupExists": exists,
                "changes": [
                    {"action": c.action, "name": c.name, "job": c.job, "details": list(c.details)} for c in changes
                ],
            }
        )
        return
    if not as_json:
        _print_changes(config.schedule_group, exists, changes, counts)
    done: list[str] = []
    if apply and (not exists or counts["create"] + counts["update"] + counts["delete"]):
        done = remote.apply(changes, create_group=not exists)
        if not as_json:
            for line in done:
                print(line)
    if as_json:
        print_json({"group": config.schedule_group, "done": done})


def _wanted(manifest: Manifest, config: Config, *, apply: bool) -> list[Declared]:
    """The declared schedules, each with the request it submits; refused where only the flake can build a job."""
    import os

    from compute_on_aws.schedules.eventbridge import declared

    if config.scheduler_role_arn is None:
        raise UserError(
            f"schedules {'apply' if apply else 'plan'}: roles.scheduler is not set in compute-on-aws.yaml: the IAM "
            "role EventBridge Scheduler assumes to submit the jobs (compute-on-aws iam-policy --role scheduler prints "
            "its policy)"
        )
    wanted = declared(manifest, config, os.environ)
    unresolved = sorted({d.plan.job.name for d in wanted if not d.plan.resolved})
    if unresolved and apply:
        raise UserError(
            f"{unresolved[0]}: its entrypoint and image are built by Nix: apply through the flake "
            "(nix run .#compute-on-aws -- schedules apply)"
        )
    if unresolved:
        print(
            f"note: {', '.join(unresolved)}: built by Nix, and this evaluation had no nixpkgs: their definitions show "
            "as new revisions (nix run .#compute-on-aws -- schedules plan resolves them)",
            file=sys.stderr,
        )
    return wanted


def _print_changes(group: str, exists: bool, changes: list[Any], counts: dict[str, int]) -> None:
    print(f"EventBridge Scheduler group {group}" + ("" if exists else " (to create)") + ":")
    marks = {"create": "+", "update": "~", "delete": "-"}
    for change in changes:
        if change.action == "unchanged":
            continue
        print(f"  {marks[change.action]} {change.name}" + (f" ({change.job})" if change.job else ""))
        for detail in change.details:
            print(f"      {detail}")
    print(
        f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete, "
        f"{counts['unchanged']} unchanged."
    )


@schedules_app.command("plan")
def plan_command(
    ctx: typer.Context,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Show what schedules apply would create, update and delete on EventBridge Scheduler. Changes nothing.

    \b
    Example: nix run .#compute-on-aws -- schedules plan --env staging
    """
    _sync(ctx, env, config, apply=False, as_json=as_json)


@schedules_app.command("apply")
def apply_command(
    ctx: typer.Context,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Make EventBridge Scheduler run the declared schedules: one schedule each in this project's group, submitting
    what queue would (definitions registered first). Deletes only schedules of its own group no declaration names.

    Variables the jobs copy (their environment) take their values from this shell.

    \b
    Example: nix run .#compute-on-aws -- schedules apply --env staging
    """
    _sync(ctx, env, config, apply=True, as_json=as_json)
