"""compute-on-aws.yaml: project settings (region, image registry, roles, default tags), per environment."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from compute_on_aws.declared.bounds import (
    MAX_CALLS_PER_SECOND,
    MAX_DUE_WINDOW,
    MAX_KILL_GRACE_SECONDS,
    MAX_LOCAL_VCPUS,
)
from compute_on_aws.declared.cron import DEFAULT_WINDOW, parse_duration
from compute_on_aws.declared.infrastructure import Infrastructure, parse_infrastructure
from compute_on_aws.declared.notifications import Notifications, parse_notifications
from compute_on_aws.errors import UserError, did_you_mean

DEFAULT_PATH = Path("compute-on-aws.yaml")

# key: (type, description). docs/reference/config.md is generated from this table and SECTION_KEYS
# (docs/generate.py).
KEYS: dict[str, tuple[type, str]] = {
    "backend": (str, "where queued jobs run: local (this machine, the default) or aws (AWS Batch)"),
    "region": (str, "AWS region (default: the boto3 chain: AWS_REGION, profile)"),
    "queue": (str, "queue for jobs that declare none"),
    "image": (dict, "Nix-built images: registry, repository, tls_verify, login, system"),
    "roles": (dict, "IAM roles: job, execution, scheduler, ci, deploy, plan, service, instance, create (infra)"),
    "tags": (dict, "tags added to every job definition"),
    "templates": (str, "folder with your own container.json.j2 (or container-ec2/-fargate.json.j2 for one platform)"),
    "fargate": (dict, "Fargate settings: assign_public_ip"),
    "aws": (dict, "AWS API use: calls_per_second (Batch calls of one command, all threads; default 40 of AWS's 50)"),
    "ci": (dict, "generated CI pipelines (ci github/gitlab): uses (actions by role), gitlab_image, default_branch"),
    "schedules": (dict, "scheduled runs: window (how late CI may be, default 1h), group (EventBridge schedule group)"),
    "local": (dict, "the local backend: state_dir, max_vcpus, queue_priorities, secrets_from_environment, ..."),
    "compute": (dict, "Batch compute environments by name: type (EC2, SPOT, FARGATE, FARGATE_SPOT), max_vcpus, ..."),
    "queues": (dict, "Batch job queues by name: priority, compute (its compute environments, in order), ..."),
    "logs": (dict, "the jobs' log group: group, stream_prefix, retention_days (kept by infra apply)"),
    "consumable_resources": (dict, "Batch consumable resources by name: total, replenishable (jobs' `consumes`)"),
    "notifications": (dict, "where job events go (infra apply): topic (an SNS topic name or ARN), on (FAILED, ...)"),
    "environments": (dict, "named overrides of the keys above, chosen with --env"),
}
# section: {key: description}, the keys each section of the config takes (any other is an error); the description is
# what docs/reference/config.md says of it.
SECTION_KEYS: dict[str, dict[str, str]] = {
    "image": {
        "registry": "registry Nix-built images are pushed to (host, e.g. <account>.dkr.ecr.<region>.amazonaws.com)",
        "repository": "the one repository of those images; each is tagged <job>-<content hash>",
        "tls_verify": "verify the registry's TLS certificate (default true)",
        "login": "how to log in to the registry: ecr, none, or auto (the default: ecr when the registry is ECR)",
        "system": "what images are built for: x86_64-linux (the default) or aarch64-linux (Graviton)",
    },
    "roles": {
        "job": "IAM role ARN jobs run as, unless a job declares jobRoleArn",
        "execution": "IAM role ARN Batch and ECS pull images, read secrets and write logs with (executionRoleArn)",
        "scheduler": "IAM role ARN EventBridge Scheduler assumes to submit scheduled jobs (schedules apply)",
        "ci": "IAM role ARN the generated CI pipelines assume through OIDC (ci github, ci gitlab)",
        "deploy": "IAM role ARN the infrastructure pipeline applies with, on the default branch (ci --pipeline infra)",
        "plan": "IAM role ARN, read only, the infrastructure pipeline plans merge requests with (iam-policy --role "
        "infra-plan)",
        "service": "IAM role ARN Batch manages compute environments with (default: AWS's service-linked role)",
        "instance": "instance profile ARN of the EC2 and spot instances Batch starts (infra apply)",
        "create": "infra apply creates the service-linked role and the instance profile when missing (default false)",
    },
    "schedules": {
        "window": "queue --due queues the runs of this last stretch of time, e.g. 90m (default 1h)",
        "group": "EventBridge Scheduler group schedules apply owns (default compute-on-aws; <group>-<env> with --env)",
    },
    "ci": {
        "uses": "the actions the GitHub workflow uses, by role: checkout, nix, aws (owner/repo@<commit>)",
        "allow_unpinned": "accept ci.uses refs that are tags or branches, not commits (default false)",
        "gitlab_image": "image of the GitLab CI job (default nixos/nix:latest)",
        "default_branch": "the branch the GitHub infrastructure pipeline applies from (default main; GitLab knows it)",
    },
    "ci.uses": {
        "checkout": "action that checks the repository out (default actions/checkout, v7.0.1 by commit)",
        "nix": "action that installs Nix (default cachix/install-nix-action, v31.11.0 by commit)",
        "aws": "action that assumes the pipeline's role (default aws-actions/configure-aws-credentials, v6.2.3)",
    },
    "fargate": {
        "assign_public_ip": "Fargate jobs get a public IP address (networkConfiguration.assignPublicIp; default false)",
    },
    "aws": {
        "calls_per_second": "Batch calls one command makes per second, all threads together (default 40 of AWS's 50)",
    },
    "notifications": {
        "topic": "an SNS topic name (infra apply creates it, with its policy) or the ARN of an existing one",
        "on": "the events every job sends there unless it declares `notify`: FAILED (default), SUCCEEDED, BLOCKED",
    },
    "logs": {
        "group": "CloudWatch Logs group of every job that declares no logGroup (default Batch's /aws/batch/job)",
        "stream_prefix": "prefix of the jobs' log streams, unless a job declares logStreamPrefix (default: the "
        "definition's name)",
        "retention_days": "days CloudWatch keeps the jobs' logs, one of its retention periods (infra apply sets it, "
        "on every group the jobs name)",
    },
    "local": {
        "state_dir": "the local backend's state, relative to the config (default $XDG_STATE_HOME/compute-on-aws)",
        "max_vcpus": "vCPUs the local jobs running at once may reserve together (default: this machine's cores)",
        "queue_priorities": "queue name: priority; RUNNABLE local jobs start highest first (default 1 each)",
        "secrets_from_environment": "local jobs read their secrets from the worker's environment (default false)",
        "kill_grace_seconds": "seconds from SIGTERM to SIGKILL when a local job times out or is stopped (default 30)",
        "autostart_worker": "queue starts a background worker when none runs (default true)",
    },
}
IMAGE_KEYS = set(SECTION_KEYS["image"])
# The Nix systems Batch runs images of (x86_64 and Graviton instances), with the architecture an image config names.
IMAGE_SYSTEMS = {"x86_64-linux": "amd64", "aarch64-linux": "arm64"}
ROLE_KEYS = set(SECTION_KEYS["roles"])
SCHEDULE_KEYS = set(SECTION_KEYS["schedules"])
CI_KEYS = set(SECTION_KEYS["ci"])
CI_USES_KEYS = set(SECTION_KEYS["ci.uses"])
FARGATE_KEYS = set(SECTION_KEYS["fargate"])
AWS_KEYS = set(SECTION_KEYS["aws"])
LOGS_KEYS = set(SECTION_KEYS["logs"])
# The retention periods CloudWatch Logs accepts, in days.
# fmt: off
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on
LOCAL_KEYS = set(SECTION_KEYS["local"])
BACKENDS = ("local", "aws")


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    registry: str | None = None
    repository: str | None = None
    tls_verify: bool = True
    # How to log in to the registry: "ecr" (a token from ECR), "none", or "auto" (ECR when the host looks like ECR).
    login: str = "auto"
    # The system Nix builds images for: the compute environments' architecture, whatever machine queues.
    system: str = "x86_64-linux"


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    # SQLite database, logs and work folders (default: $XDG_STATE_HOME/compute-on-aws).
    state_dir: Path | None = None
    # Like a compute environment's maxvCpus: what running jobs may reserve together (default: this machine's cores).
    max_vcpus: float | None = None
    # Queue name -> priority (higher first), as job queues have; unnamed queues have 1.
    queue_priorities: dict[str, int] = field(default_factory=dict)
    # Resolve declared secrets from the worker's environment, under the same names (never stored).
    secrets_from_environment: bool = False
    # Between SIGTERM and SIGKILL when a job times out or is terminated (ECS's default stop timeout is 30 s).
    kill_grace_seconds: float = 30
    # `queue` starts a background worker when none runs; false leaves running jobs to `compute-on-aws worker`.
    autostart_worker: bool = True


@dataclass(frozen=True, kw_only=True)
class Config:
    source: str | None = None
    environment: str | None = None
    backend: str = "local"
    local: LocalSettings = field(default_factory=LocalSettings)
    region: str | None = None
    queue: str | None = None
    image: ImageSettings = field(default_factory=ImageSettings)
    job_role_arn: str | None = None
    execution_role_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    templates: Path | None = None
    fargate_assign_public_ip: bool = False
    # The role EventBridge Scheduler assumes to submit scheduled jobs, and the one CI pipelines assume (OIDC).
    scheduler_role_arn: str | None = None
    ci_role_arn: str | None = None
    # The roles the infrastructure pipeline applies with (default branch) and plans a merge request with (read only).
    deploy_role_arn: str | None = None
    plan_role_arn: str | None = None
    # `queue --due` queues the slots of the last `schedule_window`; `schedules apply` owns `schedule_group`.
    schedule_window: timedelta = DEFAULT_WINDOW
    schedule_group: str = "compute-on-aws"
    # The actions a generated GitHub workflow uses, by role (e.g. pinned to commits), and GitLab's job image.
    ci_uses: dict[str, str] = field(default_factory=dict)
    ci_gitlab_image: str = "nixos/nix:latest"
    ci_default_branch: str = "main"
    # Batch allows ~50 calls/s per account, shared by every tool in it: one command keeps below, leaving room.
    batch_calls_per_second: float = 40
    # The role Batch acts with for compute environments (None: AWS's service-linked role), and the instance profile of
    # their EC2 and spot instances.
    service_role_arn: str | None = None
    instance_profile_arn: str | None = None
    # `infra apply` creates the service-linked role and the instance profile (with its role) when missing.
    create_roles: bool = False
    # How long CloudWatch keeps the jobs' logs (None: as it is; a new group keeps them for ever).
    log_retention_days: int | None = None
    # The log group and stream prefix of jobs that declare none (None: Batch's /aws/batch/job, the definition's name).
    log_group: str | None = None
    log_stream_prefix: str | None = None
    # Compute environments and job queues `infra plan/apply/export` manage, and jobs' queues are checked against.
    infrastructure: Infrastructure = field(default_factory=Infrastructure)
    # Where job events go (EventBridge rules to an SNS topic), kept by `infra apply`; None: nowhere.
    notifications: Notifications | None = None


def _unknown(where: str, key: str, known: set[str] | dict[str, Any]) -> UserError:
    return UserError(f"{where}: unknown key {key!r}{did_you_mean(key, known)}")


def _check_section(where: str, data: Any, known: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in known:
            raise _unknown(where, str(key), known)
    return data


def _string(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}: expected a non-empty string, got {value!r}")
    return value


# owner/repo[/path]@ref, as GitHub's `uses:` takes an action: anything else would be YAML of its own in the workflow.
_ACTION = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*@[A-Za-z0-9_./-]+")
# A git branch name, as `git check-ref-format --branch` allows it, less what needs quoting in YAML or a shell.
_BRANCH = re.compile(r"(?!.*\.\.)(?!.*//)(?![/.-])[A-Za-z0-9_./-]+(?<![/.])(?<!\.lock)")


def _action(where: str, value: Any, *, allow_unpinned: bool) -> str:
    if not isinstance(value, str) or not _ACTION.fullmatch(value):
        raise UserError(f"{where}: expected an action as owner/repo@ref (e.g. actions/checkout@v4), got {value!r}")
    if not allow_unpinned and not re.fullmatch(r"[0-9a-f]{40}", value.rpartition("@")[2]):
        raise UserError(
            f"{where}: expected an action pinned by commit, owner/repo@<40-hex commit>, got {value!r} (a tag can be "
            "moved to other code; set ci.allow_unpinned: true to accept it)"
        )
    return value


def _branch(where: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 255 or not _BRANCH.fullmatch(value):
        raise UserError(f"{where}: expected a branch name (letters, digits, _ . / -), got {value!r}")
    return value


# What CloudWatch Logs accepts (the same rule as a job's logGroup and logStreamPrefix, nix/lib/declaration.nix).
LOG_GROUP = (re.compile(r"[A-Za-z0-9._/#-]{1,512}"), "1-512 letters, digits and . _ / # -")
LOG_STREAM_PREFIX = (re.compile(r"[^:*]{1,256}"), "1-256 characters without : or *")


def _log_name(where: str, value: Any, rule: tuple[re.Pattern[str], str]) -> str:
    text = _string(where, value)
    if not rule[0].fullmatch(text):
        raise UserError(f"{where}: expected {rule[1]}, got {text[:60]!r}")
    return text


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{where}: expected true or false, got {value!r}")
    return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """An environment's settings over the top level: sections (image, roles, tags, fargate) merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


# The templates a project's own folder may replace: the built-in ones (compute_on_aws/templates) and the container
# template of one platform.
TEMPLATE_NAMES = (
    "container.json.j2",
    "container-ec2.json.j2",
    "container-fargate.json.j2",
    "ci-github.yml.j2",
    "ci-github-infra.yml.j2",
    "ci-gitlab.yml.j2",
    "ci-gitlab-infra.yml.j2",
)


def _templates_dir(where: str, base_dir: Path, value: Any) -> Path | None:
    if value is None:
        return None
    folder = base_dir / _string(f"{where}: templates", value)
    if not folder.is_dir():
        raise UserError(f"{where}: templates: folder {folder} not found")
    if not any((folder / name).is_file() for name in TEMPLATE_NAMES):
        raise UserError(
            f"{where}: templates: folder {folder} holds none of {', '.join(TEMPLATE_NAMES)}: the built-in templates "
            "would be used for all (name the folder that holds yours)"
        )
    return folder


def _number(where: str, value: Any, *, minimum: float, maximum: float) -> float:
    """A finite number in [minimum, maximum] (NaN and infinities compare as neither, so they are refused too)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
                # YAML 1.1 (PyYAML) reads 1e9 as text: a float needs a dot and a signed exponent.
                hint = f" (YAML reads {value} as text: write it as a plain number, e.g. 1000 or 1.0e+3)"
            except ValueError:
                pass
        raise UserError(f"{where}: expected a number from {minimum:g} to {maximum:g}, got {value!r}{hint}")
    return float(value)


def _local(where: str, base_dir: Path, local: dict[str, Any]) -> LocalSettings:
    priorities = local.get("queue_priorities", {})
    if not isinstance(priorities, dict) or not all(
        isinstance(q, str) and isinstance(p, int) and not isinstance(p, bool) for q, p in priorities.items()
    ):
        raise UserError(f"{where}: local.queue_priorities: expected queue names mapped to integer priorities")
    state_dir = local.get("state_dir")
    return LocalSettings(
        state_dir=None if state_dir is None else base_dir / _string(f"{where}: local.state_dir", state_dir),
        max_vcpus=None
        if local.get("max_vcpus") is None
        else _number(f"{where}: local.max_vcpus", local["max_vcpus"], minimum=0.25, maximum=MAX_LOCAL_VCPUS),
        queue_priorities=dict(priorities),
        secrets_from_environment=_bool(
            f"{where}: local.secrets_from_environment", local.get("secrets_from_environment", False)
        ),
        kill_grace_seconds=_number(
            f"{where}: local.kill_grace_seconds",
            local.get("kill_grace_seconds", 30),
            minimum=0,
            maximum=MAX_KILL_GRACE_SECONDS,
        ),
        autostart_worker=_bool(f"{where}: local.autostart_worker", local.get("autostart_worker", True)),
    )


# What AWS accepts, checked before a value reaches a template, a file name or a CI file.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}"
_QUEUE = re.compile(rf"{_NAME}|arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{{12}}:job-queue/{_NAME}")
_ENVIRONMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _tags(where: str, tags: dict[Any, Any]) -> dict[str, str]:
    for k, v in tags.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise UserError(f"{where}: tags: {k!r}: keys and values must be strings (quote numbers)")
        if not k.strip():
            raise UserError(f"{where}: tags: a key is empty: AWS takes keys of 1-128 characters")
    return tags


def _checked(where: str, label: str, value: str | None, pattern: re.Pattern[str], what: str) -> str | None:
    if value is not None and not pattern.fullmatch(value):
        raise UserError(f"{where}: {label}: expected {what}, got {value[:80]!r}")
    return value


def _role(where: str, label: str, value: Any, kind: str = "role") -> str | None:
    """An IAM ARN of `kind` (role, instance-profile), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(rf"arn:aws[a-z-]*:iam::\d{{12}}:{kind}/\S+", value):
        what = "an IAM role" if kind == "role" else f"an IAM {kind.replace('-', ' ')}"
        raise UserError(f"{where}: {label}: expected {what} ARN (arn:aws:iam::<account>:{kind}/<name>), got {value!r}")
    return value


def _window(where: str, value: Any) -> timedelta:
    if value is None:
        return timedelta(hours=1)
    return parse_duration(
        _string(f"{where}: schedules.window", value), f"{where}: schedules.window", maximum=MAX_DUE_WINDOW
    )


def _group(where: str, base: Any, own: Any, environment: str | None) -> str:
    """The schedule group `schedules apply` owns. Each environment has its own (`<group>-<env>` unless the environment
    names one): apply deletes what its group holds beyond the declarations, so two environments never share one."""
    if environment is None or own is not None:
        value = base if environment is None else own
        if value is None:
            return "compute-on-aws"
    else:
        value = f"{_string(f'{where}: schedules.group', base) if base is not None else 'compute-on-aws'}-{environment}"
    group = _string(f"{where}: schedules.group", value)
    if not re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", group) or group == "default":
        raise UserError(
            f"{where}: schedules.group: expected 1-64 letters, digits, - _ or . (and not AWS's default group), "
            f"got {group!r}"
        )
    return group


def _chosen(data: Any, source: str, environment: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The top level with the chosen environment's settings merged in, and every environment's settings."""
    top = _check_section(source, data, set(KEYS))
    environments = top.get("environments", {})
    if not isinstance(environments, dict):
        raise UserError(f"{source}: environments: expected a mapping of environment names to settings")
    # Every environment is checked, not just the chosen one: a typo in staging's settings shows up in any run.
    for name, settings in environments.items():
        if not isinstance(name, str) or not _ENVIRONMENT.fullmatch(name):
            raise UserError(
                f"{source}: environments: {name!r} is not an environment name (1-64 letters, digits, - _ or ., "
                "starting with a letter or digit): it names CI jobs and --env"
            )
        _check_section(f"{source}: environments.{name}", settings or {}, set(KEYS) - {"environments"})
    if environment is not None:
        if environment not in environments:
            known = ", ".join(sorted(environments)) or "none declared"
            raise UserError(f"{source}: environments: no environment {environment!r} (known: {known})")
        top = _merge(top, environments[environment] or {})
    return top, environments


def _choice(where: str, key: str, value: Any, allowed: Sequence[Any], what: str) -> Any:
    if value not in allowed:
        raise UserError(f"{where}: {key}: expected {what}, got {value!r}")
    return value


def parse_config(data: Any, *, source: str, base_dir: Path, environment: str | None) -> Config:
    if data is None:
        data = {}
    top, environments = _chosen(data, source, environment)
    where = source if environment is None else f"{source} (environment {environment})"

    wrong = [
        f"{where}: {key}: expected {'a mapping' if kind is dict else 'a string'}"
        for key, (kind, _) in KEYS.items()
        if key in top and not isinstance(top[key], kind)
    ]
    if wrong:
        raise UserError("\n".join(wrong))
    image = _check_section(f"{where}: image", top.get("image", {}), IMAGE_KEYS)
    roles = _check_section(f"{where}: roles", top.get("roles", {}), ROLE_KEYS)
    fargate = _check_section(f"{where}: fargate", top.get("fargate", {}), FARGATE_KEYS)
    local = _check_section(f"{where}: local", top.get("local", {}), LOCAL_KEYS)
    scheduling = _check_section(f"{where}: schedules", top.get("schedules", {}), SCHEDULE_KEYS)
    ci = _check_section(f"{where}: ci", top.get("ci", {}), CI_KEYS)
    aws = _check_section(f"{where}: aws", top.get("aws", {}), AWS_KEYS)
    logs = _check_section(f"{where}: logs", top.get("logs", {}), LOGS_KEYS)
    log_group = None if logs.get("group") is None else _log_name(f"{where}: logs.group", logs["group"], LOG_GROUP)
    prefix = logs.get("stream_prefix")
    log_prefix = None if prefix is None else _log_name(f"{where}: logs.stream_prefix", prefix, LOG_STREAM_PREFIX)
    retention = logs.get("retention_days")
    if retention is not None:
        periods = ", ".join(map(str, RETENTION_DAYS))
        # True == 1: a boolean is no number of days.
        allowed = () if isinstance(retention, bool) else RETENTION_DAYS
        _choice(where, "logs.retention_days", retention, allowed, f"one of CloudWatch's periods ({periods})")
    uses = _check_section(f"{where}: ci.uses", ci.get("uses", {}), CI_USES_KEYS)
    unpinned = _bool(f"{where}: ci.allow_unpinned", ci.get("allow_unpinned", False))
    backend = _choice(where, "backend", top.get("backend", "local"), BACKENDS, " or ".join(BACKENDS))
    tags = _tags(where, top.get("tags", {}))
    login = _choice(where, "image.login", image.get("login", "auto"), ("auto", "ecr", "none"), "auto, ecr or none")
    system = _choice(
        where,
        "image.system",
        image.get("system", "x86_64-linux"),
        tuple(IMAGE_SYSTEMS),
        "x86_64-linux or aarch64-linux (Graviton)",
    )

    def opt(section: dict[str, Any], key: str, label: str) -> str | None:
        return None if section.get(key) is None else _string(f"{where}: {label}", section[key])

    return Config(
        source=source,
        environment=environment,
        backend=backend,
        local=_local(where, base_dir, local),
        region=_checked(where, "region", opt(top, "region", "region"), _REGION, "an AWS region name (like eu-west-1)"),
        queue=_checked(
            where,
            "queue",
            opt(top, "queue", "queue"),
            _QUEUE,
            "a job queue name (1-128 letters, digits, - or _) or a job-queue ARN",
        ),
        image=ImageSettings(
            registry=opt(image, "registry", "image.registry"),
            repository=opt(image, "repository", "image.repository"),
            tls_verify=_bool(f"{where}: image.tls_verify", image.get("tls_verify", True)),
            login=login,
            system=system,
        ),
        job_role_arn=_role(where, "roles.job", roles.get("job")),
        execution_role_arn=_role(where, "roles.execution", roles.get("execution")),
        tags=dict(tags),
        templates=_templates_dir(where, base_dir, top.get("templates")),
        fargate_assign_public_ip=_bool(f"{where}: fargate.assign_public_ip", fargate.get("assign_public_ip", False)),
        scheduler_role_arn=_role(where, "roles.scheduler", roles.get("scheduler")),
        ci_role_arn=_role(where, "roles.ci", roles.get("ci")),
        deploy_role_arn=_role(where, "roles.deploy", roles.get("deploy")),
        plan_role_arn=_role(where, "roles.plan", roles.get("plan")),
        service_role_arn=_role(where, "roles.service", roles.get("service")),
        instance_profile_arn=_role(where, "roles.instance", roles.get("instance"), "instance-profile"),
        create_roles=_bool(f"{where}: roles.create", roles.get("create", False)),
        log_retention_days=retention,
        log_group=log_group,
        log_stream_prefix=log_prefix,
        schedule_window=_window(where, scheduling.get("window")),
        batch_calls_per_second=_number(
            f"{where}: aws.calls_per_second", aws.get("calls_per_second", 40), minimum=0.1, maximum=MAX_CALLS_PER_SECOND
        ),
        ci_uses={k: _action(f"{where}: ci.uses.{k}", v, allow_unpinned=unpinned) for k, v in uses.items()},
        ci_gitlab_image=_string(f"{where}: ci.gitlab_image", ci.get("gitlab_image", "nixos/nix:latest")),
        ci_default_branch=_branch(f"{where}: ci.default_branch", ci.get("default_branch", "main")),
        infrastructure=parse_infrastructure(
            top.get("compute"), top.get("queues"), consumables=top.get("consumable_resources"), where=where
        ),
        notifications=parse_notifications(where, top.get("notifications"), opt(top, "region", "region")),
        schedule_group=_group(
            where,
            (data.get("schedules") or {}).get("group"),
            ((environments.get(environment) or {}).get("schedules") or {}).get("group") if environment else None,
            environment,
        ),
    )


def _strict_loader() -> type:
    """yaml.SafeLoader refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""
    import yaml

    class StrictSafeLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictSafeLoader


def load_config(path: Path | None, *, environment: str | None) -> Config:
    """Reads the config file: the given one (which must exist) or ./compute-on-aws.yaml when present."""
    import yaml

    if path is None:
        if not DEFAULT_PATH.is_file():
            if environment is not None:
                raise UserError(f"--env {environment}: there is no {DEFAULT_PATH} to read environments from")
            return Config()
        path = DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"config {path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"config {path}: not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader that also refuses repeated keys
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config {path}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    return parse_config(data, source=str(path), base_dir=path.parent, environment=environment)
