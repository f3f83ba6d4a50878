"""Requests for AWS Batch from a job declaration: the job definition (from jinja2 templates) and the submission.

Pure: no AWS and no Nix. The definition holds everything fixed for a job (resources, retries, timeout, image, literal
environment, secrets, roles, tags); a submission carries only what changes per run (arguments, propagated variables).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compute_on_aws.declared.config import Config
from compute_on_aws.declared.container import DEFAULT_LOG_GROUP, Volume
from compute_on_aws.declared.manifest import Job, RetryRule
from compute_on_aws.errors import UserError

# The definition parameter holding the content hash: an ACTIVE revision with the same hash is reused, not re-registered.
HASH_PARAMETER = "computeOnAwsHash"


TEMPLATE = "container.json.j2"


def template_names(job: Job) -> list[str]:
    """The templates tried, first found wins: a project's own for the job's platform only, then the one template."""
    return [f"container-{job.platform.lower()}.json.j2", TEMPLATE]


# Fargate's name of the CPU architecture a Nix image built for a system runs on.
FARGATE_ARCHITECTURES = {"x86_64-linux": "X86_64", "aarch64-linux": "ARM64"}


def platform_properties(job: Job, config: Config) -> dict[str, Any]:
    """The containerProperties one platform has and the other lacks: Fargate's network and platform version, and the
    CPU architecture of an image Nix builds (Fargate's default is X86_64: an aarch64-linux image would fail to start
    there). A registry image may hold several architectures: Fargate's default is left to it."""
    if job.platform != "FARGATE":
        return {}
    properties: dict[str, Any] = {
        "networkConfiguration": {"assignPublicIp": "ENABLED" if config.fargate_assign_public_ip else "DISABLED"},
        "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
    }
    if job.image.kind == "nix":
        architecture = FARGATE_ARCHITECTURES[config.image.system]
        properties["runtimePlatform"] = {"operatingSystemFamily": "LINUX", "cpuArchitecture": architecture}
    if job.container.platform_version is not None:
        properties["fargatePlatformConfiguration"] = {"platformVersion": job.container.platform_version}
    if job.container.ephemeral_storage is not None:
        properties["ephemeralStorage"] = {"sizeInGiB": job.container.ephemeral_storage}
    return properties


def _enabled(on: bool) -> str:
    return "ENABLED" if on else "DISABLED"


def _volume(volume: Volume) -> dict[str, Any]:
    if volume.efs is None:
        return {"name": volume.name, "host": {"sourcePath": volume.host_path}}
    efs = volume.efs
    configuration: dict[str, Any] = {
        "fileSystemId": efs.file_system_id,
        "transitEncryption": _enabled(efs.transit_encryption),
    }
    if efs.root_directory is not None:
        configuration["rootDirectory"] = efs.root_directory
    if efs.access_point_id is not None or efs.iam:
        authorization: dict[str, str] = {"iam": _enabled(efs.iam)}
        if efs.access_point_id is not None:
            authorization["accessPointId"] = efs.access_point_id
        configuration["authorizationConfig"] = authorization
    return {"name": volume.name, "efsVolumeConfiguration": configuration}


def log_configuration(job: Job, config: Config) -> dict[str, Any] | None:
    """The awslogs driver's group and stream prefix, when the job or the config names one (None: Batch's defaults,
    /aws/batch/job and streams named after the definition)."""
    group = job.container.log_group or config.log_group
    prefix = job.container.log_stream_prefix or config.log_stream_prefix
    if group is None and prefix is None:
        return None
    options = {"awslogs-group": group or DEFAULT_LOG_GROUP, "awslogs-stream-prefix": prefix or job.definition_name}
    return {"logDriver": "awslogs", "options": options}


def container_settings(job: Job) -> dict[str, Any]:
    """The containerProperties a job declares beyond resources: volumes and their mount points, Linux parameters,
    ulimits, user and a read-only root. Only what is declared: a job declaring none renders as before (same hash)."""
    c = job.container
    settings: dict[str, Any] = {}
    if c.volumes:
        settings["volumes"] = [_volume(v) for v in c.volumes]
        settings["mountPoints"] = [
            {"sourceVolume": v.name, "containerPath": v.mount_point, "readOnly": v.read_only} for v in c.volumes
        ]
    linux: dict[str, Any] = {}
    if c.shared_memory_size is not None:
        linux["sharedMemorySize"] = c.shared_memory_size
    if c.tmpfs:
        linux["tmpfs"] = [
            {
                "containerPath": t.path,
                "size": t.size,
                **({"mountOptions": list(t.mount_options)} if t.mount_options else {}),
            }
            for t in c.tmpfs
        ]
    if c.init_process_enabled:
        linux["initProcessEnabled"] = True
    if c.max_swap is not None:
        linux["maxSwap"] = c.max_swap
    if c.swappiness is not None:
        linux["swappiness"] = c.swappiness
    if linux:
        settings["linuxParameters"] = linux
    if c.ulimits:
        settings["ulimits"] = [{"name": u.name, "softLimit": u.soft, "hardLimit": u.hard} for u in c.ulimits]
    if c.user is not None:
        settings["user"] = c.user
    if c.readonly_root_filesystem:
        settings["readonlyRootFilesystem"] = True
    return settings


@functools.lru_cache(maxsize=4)
def templates(own: Path | None) -> Any:
    import jinja2

    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("compute_on_aws", "templates")]
    if own is not None:
        loaders.insert(0, jinja2.FileSystemLoader(own))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - JSON output; every value goes through tojson
        keep_trailing_newline=True,
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def definition_request(job: Job, config: Config, *, image: str, command: Sequence[str]) -> dict[str, Any]:
    """The RegisterJobDefinition request for a job, with its content hash as a parameter."""
    job_role = job.job_role_arn or config.job_role_arn
    execution_role = job.execution_role_arn or config.execution_role_arn
    if execution_role is None and (job.platform == "FARGATE" or job.secrets):
        needs = "Fargate" if job.platform == "FARGATE" else "reading secrets"
        raise UserError(
            f"{job.name}: executionRoleArn: {needs} needs an execution role; "
            "declare executionRoleArn or set roles.execution in compute-on-aws.yaml"
        )
    if job_role is None and any(v.efs is not None and v.efs.iam for v in job.container.volumes):
        volume = next(v.name for v in job.container.volumes if v.efs is not None and v.efs.iam)
        raise UserError(
            f"{job.name}: volumes: {volume}: efs.iam: EFS authorizes the job role, and this job has none; "
            "declare jobRoleArn or set roles.job in compute-on-aws.yaml"
        )
    resources = [{"type": "VCPU", "value": _number(job.vcpus)}, {"type": "MEMORY", "value": str(job.memory)}]
    if job.gpus:
        resources.append({"type": "GPU", "value": str(job.gpus)})
    context = {
        "job": job,
        "image": image,
        "command": list(command),
        "resources": resources,
        "environment": [{"name": k, "value": v} for k, v in sorted(job.env.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(job.secrets.items())],
        "retry_rules": [_retry_rule(rule) for rule in job.retry_rules],
        "tags": {**config.tags, **job.tags},
        "job_role_arn": job_role,
        "execution_role_arn": execution_role,
        "platform_properties": platform_properties(job, config),
        "container_settings": {
            **container_settings(job),
            **({"logConfiguration": logs} if (logs := log_configuration(job, config)) else {}),
        },
        "consumable_resources": [
            {"consumableResource": name, "quantity": quantity} for name, quantity in job.container.consumes.items()
        ],
        # What a project's own container-fargate.json.j2, written before platform_properties, reads.
        "assign_public_ip": config.fargate_assign_public_ip,
    }
    request = _rendered(job, config, context)
    request.setdefault("parameters", {})[HASH_PARAMETER] = content_hash(request)
    return request


def _retry_rule(rule: RetryRule) -> dict[str, str]:
    """An evaluateOnExit entry: the conditions the rule sets, and its action."""
    fields = (
        ("onStatusReason", rule.on_status_reason),
        ("onReason", rule.on_reason),
        ("onExitCode", rule.on_exit_code),
        ("action", rule.action),
    )
    return {key: value for key, value in fields if value is not None}


def _rendered(job: Job, config: Config, context: dict[str, Any]) -> dict[str, Any]:
    """The job's template rendered and read as JSON; any failure of a project's own template is one line naming it."""
    import jinja2

    name = TEMPLATE
    try:
        template = templates(config.templates).select_template(template_names(job))
        name = template.name or TEMPLATE
        text = template.render(context)
    except jinja2.TemplatesNotFound:
        raise UserError(f"template {TEMPLATE} not found (templates: {config.templates})") from None
    except jinja2.TemplateError as e:
        name = getattr(e, "name", None) or name
        line = getattr(e, "lineno", None)
        raise UserError(f"template {name}{f' line {line}' if line else ''}: {e.message}") from None
    except Exception as e:  # a project's own template can fail in filters (e.g. tojson of an undefined value)
        raise UserError(f"template {name}: rendering failed: {e}") from None
    try:
        request = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"template {name}: rendered text is not JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(request, dict) or request.get("jobDefinitionName") != job.definition_name:
        raise UserError(f"template {name}: must render an object whose jobDefinitionName is the job's definition name")
    return request


def content_hash(definition: Mapping[str, Any]) -> str:
    """A hash of the definition's content (order-independent), ignoring the hash parameter itself."""
    content = dict(definition)
    parameters = {k: v for k, v in content.get("parameters", {}).items() if k != HASH_PARAMETER}
    content.pop("parameters", None)
    if parameters:
        content["parameters"] = parameters
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def submit_request(
    job: Job,
    *,
    job_name: str,
    queue: str,
    definition: Mapping[str, Any],
    definition_ref: str,
    args: Sequence[str],
    variables: Mapping[str, str],
    depends_on: Sequence[tuple[str, str | None]] = (),
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The SubmitJob request. Overrides hold only the arguments (appended to the command) and propagated variables."""
    overrides: dict[str, Any] = {}
    if args:
        overrides["command"] = [*definition["containerProperties"]["command"], *args]
    if variables:
        overrides["environment"] = [{"name": k, "value": v} for k, v in sorted(variables.items())]
    request: dict[str, Any] = {"jobName": job_name, "jobQueue": queue, "jobDefinition": definition_ref}
    if overrides:
        request["containerOverrides"] = overrides
    if job.parallel > 1:
        request["arrayProperties"] = {"size": job.parallel}
    dependencies = [{"jobId": job_id, **({"type": kind} if kind else {})} for job_id, kind in depends_on]
    if job.sequential:
        dependencies.append({"type": "SEQUENTIAL"})
    if dependencies:
        request["dependsOn"] = dependencies
    if job.share_identifier is not None:
        request["shareIdentifier"] = job.share_identifier
    if tags:
        request["tags"] = dict(tags)
    return request
