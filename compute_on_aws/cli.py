"""The `compute-on-aws` command: parses arguments, calls the modules that do the work, prints. Exit codes:
0 done (a skipped duplicate included), 1 AWS/network/Nix/tool failure, 2 a user's mistake, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from compute_on_aws.errors import ComputeOnAwsError, Interrupted, UserError

if TYPE_CHECKING:
    from compute_on_aws.config import Config
    from compute_on_aws.model import Manifest

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Queue batch jobs declared in Nix on AWS Batch.",
)

# After the job's name, options this command does not know are the job's arguments; `--` passes everything after it.
JOB_ARGS = {"ignore_unknown_options": True}


@dataclass(frozen=True)
class Settings:
    jobs: Path
    manifest: Path | None
    config: Path | None
    env: str | None
    backend: str | None = None
    state_dir: Path | None = None


@app.callback()
def settings(
    ctx: typer.Context,
    jobs: Annotated[
        Path, typer.Option("--jobs", help="Folder of job declarations.", envvar="COMPUTE_ON_AWS_JOBS")
    ] = Path("jobs"),
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest", help="An evaluated manifest (JSON) instead of --jobs.", envvar="COMPUTE_ON_AWS_MANIFEST"
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file [default: ./compute-on-aws.yaml if present].",
            envvar="COMPUTE_ON_AWS_CONFIG",
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", help="Environment from the config's environments.", envvar="COMPUTE_ON_AWS_ENV"),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="local or aws [default: the config's backend, else local].",
            envvar="COMPUTE_ON_AWS_BACKEND",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="The local backend's state [default: $XDG_STATE_HOME/compute-on-aws].",
            envvar="COMPUTE_ON_AWS_STATE_DIR",
        ),
    ] = None,
) -> None:
    """Queue batch jobs declared in Nix (jobs/<name>/default.nix) on AWS Batch, or run them on this machine."""
    ctx.obj = Settings(jobs=jobs, manifest=manifest, config=config, env=env, backend=backend, state_dir=state_dir)


# --config and --env may also follow the command (`nix run .#queue-job -- NAME --env staging` passes them there).
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Settings file (overrides the global option).")]
EnvOption = Annotated[str | None, typer.Option("--env", help="Environment from the config's environments.")]
BackendOption = Annotated[str | None, typer.Option("--backend", help="local or aws (overrides the config).")]


def _overridden(ctx: typer.Context, config: Path | None, env: str | None, backend: str | None = None) -> Settings:
    s: Settings = ctx.obj
    return replace(s, config=config or s.config, env=env or s.env, backend=backend or s.backend)


def _backend(s: Settings, config: Config) -> str:
    backend = s.backend or config.backend
    if backend not in ("local", "aws"):
        raise UserError(f"--backend: expected local or aws, got {backend!r}")
    return backend


def _load_manifest(s: Settings) -> Manifest:
    from compute_on_aws import nix
    from compute_on_aws.model import parse_manifest

    if s.manifest is None:
        return parse_manifest(nix.evaluate_jobs(s.jobs), source=str(s.jobs))
    try:
        data = json.loads(s.manifest.read_text())
    except OSError as e:
        raise UserError(f"manifest {s.manifest}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"manifest {s.manifest}: not JSON (line {e.lineno}: {e.msg})") from None
    return parse_manifest(data, source=str(s.manifest))


def _load_config(s: Settings) -> Config:
    from compute_on_aws.config import load_config

    return load_config(s.config, environment=s.env)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


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


def _queue(
    s: Settings,
    name: str,
    args: list[str],
    *,
    dry_run: bool,
    as_json: bool,
    wait: bool = False,
    follow: bool = False,
    after: list[str] | None = None,
) -> None:
    from compute_on_aws import output
    from compute_on_aws.plan import Outcome, plan

    manifest = _load_manifest(s)
    config = _load_config(s)
    backend = _backend(s, config)
    planned = plan(manifest, config, name, args, os.environ, depends_on=after or [])
    if dry_run:
        outcome = Outcome(
            outcome="dry-run", job_id=None, request=planned.request, definition_ref=planned.job.definition_name
        )
        if not planned.resolved:
            print(
                f"note: {name}: entrypoint and image are built by Nix, and this evaluation had no nixpkgs: "
                "they show as <built by nix> (nix run .#compute-on-aws -- render ... shows them)",
                file=sys.stderr,
            )
    elif not planned.resolved:
        raise UserError(
            f"{name}: its entrypoint is built by Nix: queue it through the flake (nix run .#queue-job -- {name})"
        )
    elif backend == "local":
        from compute_on_aws.local import backend as local

        outcome = local.queue(config, planned, state_dir=s.state_dir)
    else:
        if wait or follow:
            raise UserError("--wait and --follow work with the local backend for now (see README, Backends)")
        from compute_on_aws import batch
        from compute_on_aws.aws import Aws

        outcome = batch.queue(Aws(config.region), config, planned)
    if as_json:
        _print_json({"jobs": [output.queue_result(planned, outcome)]})
    else:
        print(output.queue_line(planned, outcome, backend=backend))
    if (wait or follow) and outcome.job_id is not None:
        _wait_local(s, config, outcome.job_id, follow=follow)


def _wait_local(s: Settings, config: Config, job_id: str, *, follow: bool) -> None:
    from compute_on_aws.local import backend as local
    from compute_on_aws.local import watch

    store = local.store_for(config.local, s.state_dir)
    try:
        keep = (lambda: local.ensure_worker(store, config.local)) if config.local.autostart_worker else None
        job = watch.wait(store, job_id, follow=follow, keep_worker=keep)
    except KeyboardInterrupt:
        raise Interrupted(f"stopped waiting; job {job_id} goes on (compute-on-aws cancel {job_id} stops it)") from None
    if job["status"] == "FAILED":
        raise typer.Exit(1)


@app.command("queue", context_settings=JOB_ARGS)
def queue_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job (its folder's name).", show_default=False)],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments appended to the job's command.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent; call nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job; exit 0 if it succeeded, 1 if not.")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Wait, and print the job's output as it comes.")] = False,
    after: Annotated[
        list[str] | None, typer.Option("--after", help="Run after this job succeeded (a job id; repeatable).")
    ] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
) -> None:
    """Queue a job with arguments. Skips it (exit 0) if the same job is already queued or running.

    Example: compute-on-aws queue observes-etl 2026-11-25 --env staging
    """
    _queue(
        _overridden(ctx, config, env, backend),
        name,
        args or [],
        dry_run=dry_run,
        as_json=as_json,
        wait=wait,
        follow=follow,
        after=after,
    )


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
    _queue(_overridden(ctx, config, env), name, args or [], dry_run=True, as_json=as_json)


@app.command("worker")
def worker_command(
    ctx: typer.Context,
    max_vcpus: Annotated[
        float | None, typer.Option("--max-vcpus", help="vCPUs running jobs may use [default: config, else cores].")
    ] = None,
    kill_grace: Annotated[
        float | None, typer.Option("--kill-grace", help="Seconds between SIGTERM and SIGKILL [default: 30].")
    ] = None,
    secrets_from_environment: Annotated[
        bool, typer.Option("--secrets-from-environment", help="Give jobs their secrets from this environment.")
    ] = False,
    exit_when_idle: Annotated[bool, typer.Option("--exit-when-idle", help="Stop when nothing is left to run.")] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Run locally queued jobs in the foreground (queue starts one in the background when none runs).

    Example: compute-on-aws worker --max-vcpus 4
    """
    from compute_on_aws.local import backend as local
    from compute_on_aws.local.worker import WorkerSettings, run_worker

    s = _overridden(ctx, config, env)
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


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    job_ids: Annotated[list[str], typer.Argument(help="Job ids.", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded as the status reason.")] = "Cancelled by user",
    config: ConfigOption = None,
    env: EnvOption = None,
    backend: BackendOption = None,
) -> None:
    """Cancel queued jobs and terminate running ones.

    Example: compute-on-aws cancel 6f1c0b2e-... --reason "wrong day"
    """
    s = _overridden(ctx, config, env, backend)
    config_ = _load_config(s)
    if _backend(s, config_) != "local":
        raise UserError("cancel works with the local backend for now (see README, Backends)")
    from compute_on_aws.local import backend as local

    results = local.cancel(local.store_for(config_.local, s.state_dir), job_ids, reason)
    for job_id, what in results:
        print(f"{job_id}: {what}")
    if any(what == "not found" for _, what in results):
        raise typer.Exit(1)


def _fail(message: str, code: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    # Standalone mode: typer prints usage errors (exit 2) and help itself; our errors become one line here.
    try:
        app(prog_name="compute-on-aws")
    except ComputeOnAwsError as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
