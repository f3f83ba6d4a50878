"""Commands about the Batch infrastructure: infra plan, apply and export (compute environments, fair-share policies
and job queues)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from compute_on_aws.cli.app import (
    ConfigOption,
    EnvOption,
    JsonOption,
    app,
    load_manifest,
    load_settings_config,
    overridden,
    print_json,
)
from compute_on_aws.errors import ComputeOnAwsError, UserError

if TYPE_CHECKING:
    from compute_on_aws.aws.session import Aws
    from compute_on_aws.cli.app import Settings
    from compute_on_aws.declared.config import Config
    from compute_on_aws.declared.infrastructure import Infrastructure
    from compute_on_aws.declared.manifest import Manifest
    from compute_on_aws.infra.apply import Replan
    from compute_on_aws.infra.cleanup import Decision, ImageDecision
    from compute_on_aws.infra.plan import Change

infra_app = typer.Typer(
    no_args_is_help=True,
    help="The Batch infrastructure of compute-on-aws.yaml: compute environments, fair-share policies and job queues, "
    "planned and applied.",
)
app.add_typer(infra_app, name="infra")

PruneOption = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Also delete compute environments, queues and fair-share policies apply made and no longer declared.",
    ),
]


def _changes(
    ctx: typer.Context, env: str | None, config_path: Path | None, prune: bool
) -> tuple[list[Change], Aws, Config, Replan]:
    """The changes that make AWS match: roles first, then the log group, compute environments and queues; and how to
    plan one of them anew, for apply."""
    from compute_on_aws.aws.session import Aws
    from compute_on_aws.infra import apply, plan, roles

    s = overridden(ctx, config_path, env)
    config = load_settings_config(s)
    infra = config.infrastructure
    manifest = jobs_for_infra(s, config)
    groups = plan.log_groups(config.log_retention_days, job_log_groups(config, manifest))
    if not infra.declared and not groups and config.notifications is None and not prune:
        raise UserError(
            f"{config.source or 'compute-on-aws.yaml'}: declares no compute, queues or notifications: nothing to plan "
            "(docs/infrastructure.md)"
        )
    _check_container_insights(infra)
    _check_consumables(infra)
    aws = Aws(config.region, batch_calls_per_second=config.batch_calls_per_second)
    needed = roles.plan_roles(aws.iam(), config)
    settings = plan.Settings(
        service_role=needed.service_role,
        instance_profile=needed.instance_profile,
        tags=config.tags,
        scope=_scope(config),
    )
    compute, queues, policies = apply.read(aws.batch())
    changes = [*needed.changes]
    existing = apply.read_log_groups(aws.logs(), groups) if groups else {}
    for name in groups:
        change = plan.log_group_change(name, config.log_retention_days, existing.get(name))
        changes += [change] if change is not None else []
    changes += plan.plan(infra, settings, compute, queues, policies, prune=prune)
    if infra.consumables or prune:
        current = apply.read_consumables(aws.batch(), infra.consumables, prune=prune) if _has_consumables_api() else {}
        changes += plan.consumable_changes(infra, settings, current, prune=prune)
    changes += _monitoring_changes(aws, config, manifest, prune=prune)
    return changes, aws, config, apply.replanner(infra, settings, aws.batch())


def jobs_for_infra(s: Settings, config: Config) -> Manifest | None:
    """The jobs, where infra needs them: the notification rules name every job's definition (a job file that does
    not evaluate would drop its own), and the log groups the jobs name are created. Without notifications, a project
    with no jobs (no jobs folder, manifest or flake) plans its infrastructure alone."""
    if config.notifications is None and s.manifest is None and s.flake is None and not s.jobs.is_dir():
        return None
    manifest = load_manifest(s)
    if manifest.errors and config.notifications is not None:
        problems = [p for problems in manifest.errors.values() for p in problems]
        raise UserError("\n".join([*problems, "the notification rules name every job: fix the jobs first"]))
    if manifest.errors:
        # Only their log groups depend on them here: the rest of the plan goes on, and says what it could not read.
        print(
            f"note: {', '.join(sorted(manifest.errors))} did not evaluate: the log groups they name are not planned "
            "(compute-on-aws jobs shows why)",
            file=sys.stderr,
        )
    return manifest


def job_log_groups(config: Config, manifest: Manifest | None) -> list[str]:
    """The log groups the jobs' definitions name (their own, or the config's logs.group)."""
    from compute_on_aws.declared.container import DEFAULT_LOG_GROUP

    named = {config.log_group} if config.log_group is not None else set()
    for job in manifest.jobs.values() if manifest is not None else ():
        named.add(job.container.log_group or config.log_group or DEFAULT_LOG_GROUP)
    return sorted(g for g in named if g != DEFAULT_LOG_GROUP)


def _has_consumables_api() -> bool:
    import botocore.session

    return "CreateConsumableResource" in botocore.session.get_session().get_service_model("batch").operation_names


def _check_consumables(infra: Infrastructure) -> None:
    """Consumable resources came with botocore 1.37-ish: an older one would refuse them after other changes."""
    if not infra.consumables:
        return
    import botocore

    if not _has_consumables_api():
        name = next(iter(infra.consumables))
        raise UserError(
            f"consumable_resources.{name}: botocore {botocore.__version__} has no consumable resources: upgrade "
            "boto3 and botocore (pip install -U boto3), or leave consumable_resources out"
        )


def _monitoring_changes(aws: Aws, config: Config, manifest: Manifest | None, *, prune: bool) -> list[Change]:
    """The topic, rules and alarms the config asks for (and, with prune, this environment's no longer asked for)."""
    from compute_on_aws.declared.infrastructure import MANAGED_TAG
    from compute_on_aws.infra import monitored, monitoring
    from compute_on_aws.infra.policy import partition

    wanted = monitoring.wanted(config, manifest)
    if not wanted.any and not prune:
        return []
    scope = _scope(config)
    region = aws.batch().meta.region_name
    account = monitored.account(aws.sts())
    where = {"partition": partition(region), "region": region, "account": account}
    topic = monitoring.topic_arn(wanted, **where) if wanted.any else None
    current = monitored.read(aws.sns(), aws.events(), aws.cloudwatch(), wanted, scope, topic)
    tags = {**config.tags, MANAGED_TAG: scope}
    return monitoring.plan_monitoring(wanted, current, scope=scope, tags=tags, prune=prune, **where)


def _check_container_insights(infra: Infrastructure) -> None:
    """ecsSettings came with botocore 1.40-ish: an older one would refuse the request after other changes were made."""
    declared = [ce.name for ce in infra.compute.values() if ce.container_insights is not None]
    if not declared:
        return
    import botocore
    import botocore.session

    model = botocore.session.get_session().get_service_model("batch")
    shape = model.operation_model("CreateComputeEnvironment").input_shape
    if shape is None or "ecsSettings" not in shape.members:
        raise UserError(
            f"compute.{declared[0]}.container_insights: botocore {botocore.__version__} has no ecsSettings: upgrade "
            "boto3 and botocore (pip install -U boto3), or leave container_insights out"
        )


def _scope(config: Config) -> str:
    from compute_on_aws.declared.infrastructure import managed_scope

    return managed_scope(config.environment)


def _print(changes: list[Change]) -> None:
    for change in changes:
        if change.action != "keep":
            print(change.line)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "replace", "delete", "keep")}
    print(
        f"{counts['create']} to create, {counts['update']} to update, {counts['replace']} to replace, "
        f"{counts['delete']} to delete, {counts['keep']} unchanged."
    )


def _as_json(changes: list[Change]) -> list[dict[str, object]]:
    return [{"action": c.action, "kind": c.kind, "name": c.name, "details": list(c.details)} for c in changes]


@infra_app.command("plan")
def plan_command(
    ctx: typer.Context,
    prune: PruneOption = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 when AWS matches the declarations, 2 when changes are pending, 1 on any error (bad "
            "declarations included), as Terraform's -detailed-exitcode: for merge-request pipelines.",
        ),
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Show what infra apply would create, update or leave alone (with --prune, delete), and why. Changes nothing.

    \b
    Example: compute-on-aws infra plan --env staging
    Example: compute-on-aws infra plan --detailed-exitcode  # 2: changes pending
    """
    try:
        changes, _, _, _ = _changes(ctx, env, config, prune)
    except UserError as e:
        if not detailed_exitcode:
            raise
        # 2 says "changes pending" here: a bad declaration must not read as one.
        raise ComputeOnAwsError(str(e)) from None
    if as_json:
        print_json({"changes": _as_json(changes)})
    else:
        _print(changes)
    if detailed_exitcode and any(c.action != "keep" for c in changes):
        raise typer.Exit(2)


@infra_app.command("apply")
def apply_command(
    ctx: typer.Context,
    prune: PruneOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Make AWS match the declared compute environments and queues: create and update them in order (a compute
    environment VALID before a queue uses it), each waited for. A second apply changes nothing.

    \b
    Example: compute-on-aws infra apply --env staging
    """
    from compute_on_aws.declared.infrastructure import MANAGED_TAG
    from compute_on_aws.infra.apply import Applier, apply
    from compute_on_aws.infra.policy import partition

    changes, aws, settings, replan = _changes(ctx, env, config, prune)
    if not as_json:
        _print(changes)
    steps: list[str] = []

    def step(line: str) -> None:
        steps.append(line)
        if not as_json:
            print(line, flush=True)

    applier = Applier(
        aws.batch(),
        aws.iam(),
        aws.logs(),
        step,
        monitoring=(aws.sns(), aws.events(), aws.cloudwatch()),
        partition=partition(settings.region or aws.batch().meta.region_name),
        tags={**settings.tags, MANAGED_TAG: _scope(settings)},
        replan=replan,
    )
    try:
        apply(changes, applier)
    finally:
        # What was done, also when a step failed (the error follows on stderr).
        if as_json:
            print_json({"changes": _as_json(changes), "done": steps})
    if not as_json and not steps:
        print("nothing to do: AWS matches the declarations", file=sys.stderr)


@infra_app.command("export")
def export_command(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="What to write: terraform (Terraform JSON).")] = "terraform",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (e.g. batch.tf.json) [default: stdout].")
    ] = None,
    leave_out_nix_built: Annotated[
        bool,
        typer.Option(
            "--leave-out-nix-built",
            help="Outside the flake: write the rest, without the definitions of jobs whose image Nix builds.",
        ),
    ] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Write the declared compute environments and queues, a job definition per job and Batch's log group as
    Terraform JSON (hashicorp/aws 6), for accounts managed with Terraform. Reads no AWS.

    A job whose entrypoint or image Nix builds has a definition only where nixpkgs evaluates it (through the flake:
    nix run .#compute-on-aws -- infra export); elsewhere export refuses, or leaves it out if asked to.

    \b
    Example: compute-on-aws infra export --format terraform -o batch.tf.json
    """
    from compute_on_aws.infra import terraform
    from compute_on_aws.infra.monitoring import wanted
    from compute_on_aws.infra.plan import Settings
    from compute_on_aws.infra.policy import partition
    from compute_on_aws.infra.roles import instance_profile
    from compute_on_aws.planning.plan import job_definition

    if format != "terraform":
        raise UserError(f"--format: expected terraform, got {format!r}")
    s = overridden(ctx, config, env)
    settings_config = load_settings_config(s)
    manifest = load_manifest(s)
    problems = [p for problems in manifest.errors.values() for p in problems]
    if problems:
        raise UserError("\n".join(problems))
    jobs = [job for _, job in sorted(manifest.jobs.items())]
    unresolved = [job.name for job in jobs if not job.resolved(settings_config.image.system)]
    if unresolved and not leave_out_nix_built:
        # Placeholders in a Terraform file would register definitions that cannot run.
        raise UserError(
            f"infra export: {', '.join(unresolved)}: built by Nix, and this evaluation had no nixpkgs: export through "
            "the flake (nix run .#compute-on-aws -- infra export), or give --leave-out-nix-built"
        )
    if unresolved:
        print(f"note: left out the definitions of {', '.join(unresolved)} (built by Nix)", file=sys.stderr)
        jobs = [job for job in jobs if job.name not in unresolved]
    definitions = [job_definition(job, settings_config) for job in jobs]
    settings = Settings(
        service_role=settings_config.service_role_arn,
        instance_profile=instance_profile(settings_config),
        tags=settings_config.tags,
        scope=_scope(settings_config),
    )
    document = terraform.export(
        settings_config.infrastructure,
        settings,
        definitions,
        create_roles=settings_config.create_roles,
        log_retention_days=settings_config.log_retention_days,
        partition=partition(settings_config.region or "us-east-1"),
        notifications=wanted(settings_config, manifest),
        log_groups=job_log_groups(settings_config, manifest),
    )
    for note in terraform.export_notes(settings_config.infrastructure, definitions):
        print(note, file=sys.stderr)
    text = terraform.text(document)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UserError(f"--output {output}: cannot write it ({e.strerror})") from None
    print(f"wrote {output}", file=sys.stderr)


@infra_app.command("cleanup")
def cleanup_command(
    ctx: typer.Context,
    keep: Annotated[
        int, typer.Option("--keep", help="Newest revisions of each job's definition always kept (at least 1).")
    ] = 10,
    apply: Annotated[
        bool, typer.Option("--apply", help="Deregister what the plan names (without it: plan only).")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Deregister old revisions of this project's job definitions, and delete the ECR image tags only they named.

    Kept: revisions compute-on-aws did not register, the --keep newest of each definition, and any an active job
    or a schedule uses; image tags a kept revision names, and any tag compute-on-aws did not push for these jobs.
    Shows the plan; --apply carries it out.

    \b
    Example: compute-on-aws infra cleanup --keep 5
    Example: compute-on-aws infra cleanup --keep 5 --apply
    """
    from compute_on_aws.aws.session import Aws
    from compute_on_aws.infra.apply import clean_up
    from compute_on_aws.schedules.eventbridge import Schedules

    if keep < 1:
        raise UserError(
            f"--keep: expected a whole number of at least 1 (the newest revision is always kept), got {keep}"
        )
    s = overridden(ctx, config, env)
    settings = load_settings_config(s)
    manifest = load_manifest(s)
    if manifest.errors:
        problems = [p for problems in manifest.errors.values() for p in problems]
        raise UserError("\n".join([*problems, "infra cleanup keeps what every job uses: fix the jobs first"]))
    jobs = list(manifest.jobs.values())
    if not jobs:
        raise UserError(f"{manifest.source}: declares no jobs: no definitions to clean up")
    aws = Aws(settings.region, batch_calls_per_second=settings.batch_calls_per_second)
    schedules = Schedules(aws, settings)
    pinned = schedules.current() if any(j.schedules for j in jobs) and schedules.group_exists() else {}
    queues = sorted({q for j in jobs if (q := j.queue or settings.queue)})
    decisions, done, images = clean_up(
        aws.batch(), sorted({j.definition_name for j in jobs}), queues, pinned, keep=keep, apply=apply
    )
    tags = _clean_images(aws, settings, decisions, images, [j.name for j in jobs], apply=apply)
    _print_cleanup(decisions, done, tags, apply=apply, as_json=as_json)


def _print_cleanup(
    decisions: list[Decision], done: list[str], tags: list[ImageDecision], *, apply: bool, as_json: bool
) -> None:
    if as_json:
        print_json(
            {
                "revisions": [{**d.to_json(), "done": d.ref in done} for d in decisions],
                "images": [{**t.to_json(), "done": apply and t.action == "delete"} for t in tags],
            }
        )
        return
    for d in decisions:
        print(f"{'-' if d.action == 'deregister' else ' '} {d.ref}: {d.action} ({d.why})")
    for t in tags:
        print(f"{'-' if t.action == 'delete' else ' '} image {t.tag}: {t.action} ({t.why})")
    gone = sum(d.action == "deregister" for d in decisions)
    deleted = sum(t.action == "delete" for t in tags)
    verb, image_verb = ("deregistered", "deleted") if apply else ("to deregister", "to delete")
    print(f"{gone} {verb}, {len(decisions) - gone} kept; {deleted} image tags {image_verb}")


def _clean_images(
    aws: Aws, settings: Config, decisions: list[Decision], images: dict[str, str], jobs: list[str], *, apply: bool
) -> list[ImageDecision]:
    """The image tags of image.repository no revision kept names, deleted with `apply`: on ECR only (another
    registry keeps its tags, with a line saying so)."""
    from compute_on_aws.images import is_ecr
    from compute_on_aws.infra.apply import delete_tags, image_tags
    from compute_on_aws.infra.cleanup import plan_images

    registry, repository = settings.image.registry, settings.image.repository
    if registry is None or repository is None:
        return []
    if not is_ecr(registry):
        print(f"note: image.registry {registry} is not ECR: its image tags are left as they are", file=sys.stderr)
        return []
    tags = plan_images(image_tags(aws.ecr(), repository), f"{registry}/{repository}", decisions, images, jobs)
    if apply:
        delete_tags(aws.ecr(), repository, [t.tag for t in tags if t.action == "delete"])
    return tags
