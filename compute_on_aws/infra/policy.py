"""The IAM policy of whoever queues this project's jobs (a CI role, a developer): the calls compute-on-aws makes, on
the queues, definitions, roles and image repository the declared jobs name, and nothing else."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from compute_on_aws.declared.config import Config
from compute_on_aws.declared.container import DEFAULT_LOG_GROUP
from compute_on_aws.declared.manifest import Job, Manifest

_ECR_HOST = re.compile(r"(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?")


def partition(region: str) -> str:
    """The ARN partition of a region (China and GovCloud have their own)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _statement(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def _roles_of(jobs: Sequence[Job], config: Config) -> list[str]:
    """The job and execution roles the jobs' definitions name (theirs, or the config's)."""
    named = (
        role
        for job in jobs
        for role in (job.job_role_arn or config.job_role_arn, job.execution_role_arn or config.execution_role_arn)
    )
    return sorted({role for role in named if role is not None})


def submitter_policy(manifest: Manifest, config: Config, *, account: str = "*", region: str = "*") -> dict[str, Any]:
    """Every call of queue, status, wait, logs, cancel and list, each on the narrowest resource AWS lets a policy name.

    DescribeJobs, DescribeJobDefinitions, ListJobs and GetAuthorizationToken take no resource, so they get "*".
    """
    jobs = list(manifest.jobs.values())

    arn = f"arn:{partition(region)}"

    def batch(kind: str, name: str) -> str:
        return f"{arn}:batch:{region}:{account}:{kind}/{name}"

    queues = sorted({q for q in (job.queue or config.queue for job in jobs) if q is not None})
    definitions = sorted({job.definition_name for job in jobs})
    roles = _roles_of(jobs, config)
    statements = [
        _statement(
            "ReadJobsAndDefinitions",
            ["batch:DescribeJobs", "batch:DescribeJobDefinitions", "batch:ListJobs"],
            ["*"],
        ),
        _statement(
            "RegisterDefinitions",
            ["batch:RegisterJobDefinition", "batch:TagResource"],
            [batch("job-definition", name) for d in definitions for name in (d, f"{d}:*")],
        ),
        _statement(
            "SubmitJobs",
            ["batch:SubmitJob"],
            [batch("job-definition", f"{d}:*") for d in definitions]
            + [q if q.startswith("arn:") else batch("job-queue", q) for q in queues],
        ),
        # Every run is tagged as it is submitted (compute-on-aws:job, ...), which Batch authorizes as TagResource.
        _statement("TagRuns", ["batch:TagResource"], [batch("job", "*")]),
        # Batch cannot scope these to a queue: the ids come from this project's own output.
        _statement("StopJobs", ["batch:CancelJob", "batch:TerminateJob"], [batch("job", "*")]),
        _statement(
            "ReadJobLogs",
            ["logs:GetLogEvents"],
            [f"{arn}:logs:{region}:{account}:log-group:{g}:log-stream:*" for g in _groups_of(jobs, config)],
        ),
    ]
    if queues:  # a RUNNABLE job's place in line (status, wait)
        queue_arns = [q if q.startswith("arn:") else batch("job-queue", q) for q in queues]
        statements.append(_statement("ReadQueueHeads", ["batch:GetJobQueueSnapshot"], queue_arns))
    if roles:
        statements.append(_statement("PassJobRoles", ["iam:PassRole"], roles))
    statements += _image_statements(manifest, config)
    statements += _schedule_statements(manifest, config, arn=arn, account=account, region=region)
    return {"Version": "2012-10-17", "Statement": statements}


def _groups_of(jobs: list[Job], config: Config) -> list[str]:
    """The log groups the jobs' definitions name (Batch's default for those naming none)."""
    return sorted({job.container.log_group or config.log_group or DEFAULT_LOG_GROUP for job in jobs}) or [
        DEFAULT_LOG_GROUP
    ]


def job_role_policy(manifest: Manifest, config: Config, *, account: str = "*", region: str = "*") -> dict[str, Any]:
    """The policy of the role the jobs run as (roles.job, jobRoleArn), for what their declarations make Batch do on
    its behalf: mounting the EFS file systems declared with `iam = true` (writing only where a volume is not
    read-only), through the declared access point when there is one. The job's own code needs its own statements."""
    arn = f"arn:{partition(region)}:elasticfilesystem:{region}:{account}"
    mounts: dict[tuple[str, str | None], bool] = {}
    for job in manifest.jobs.values():
        for volume in job.container.efs_volumes:
            assert volume.efs is not None
            if volume.efs.iam:
                key = (volume.efs.file_system_id, volume.efs.access_point_id)
                mounts[key] = mounts.get(key, False) or not volume.read_only
    statements = []
    for (file_system, access_point), writes in sorted(mounts.items(), key=lambda m: (m[0][0], m[0][1] or "")):
        actions = ["elasticfilesystem:ClientMount", *(["elasticfilesystem:ClientWrite"] if writes else [])]
        statement = _statement(
            f"Mount{_sid(file_system)}{_sid(access_point or '')}", actions, [f"{arn}:file-system/{file_system}"]
        )
        if access_point is not None:
            statement["Condition"] = {
                "StringEquals": {"elasticfilesystem:AccessPointArn": f"{arn}:access-point/{access_point}"}
            }
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def execution_role_policy(
    manifest: Manifest, config: Config, *, account: str = "*", region: str = "*"
) -> dict[str, Any]:
    """The policy of the role Batch and ECS start the jobs with (roles.execution, executionRoleArn): writing their
    logs to the groups their definitions name, reading the secrets they declare, pulling Nix-built images from ECR."""
    jobs = list(manifest.jobs.values())
    arn = f"arn:{partition(region)}"
    groups = _groups_of(jobs, config)
    statements = [
        _statement(
            "WriteJobLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{arn}:logs:{region}:{account}:log-group:{g}:log-stream:*" for g in groups],
        )
    ]
    references = sorted({ref for job in jobs for ref in job.secrets.values()})
    secrets = [r for r in references if ":secretsmanager:" in r]
    parameters = [
        r if r.startswith("arn:") else f"{arn}:ssm:{region}:{account}:parameter/{r.lstrip('/')}"
        for r in references
        if ":secretsmanager:" not in r
    ]
    if secrets:
        # A secret's ARN may name one key of it (arn:...:secret:name:key::): the policy names the secret.
        whole = sorted({":".join(r.split(":")[:7]) for r in secrets})
        statements.append(_statement("ReadSecrets", ["secretsmanager:GetSecretValue"], whole))
    if parameters:
        statements.append(_statement("ReadParameters", ["ssm:GetParameters"], sorted(set(parameters))))
    pulls = [s for s in _image_statements(manifest, config) if s["Sid"] == "PushImages"]
    if pulls:
        statements.append(_statement("LogInToEcr", ["ecr:GetAuthorizationToken"], ["*"]))
        pull = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        statements.append(_statement("PullImages", pull, pulls[0]["Resource"]))
    return {"Version": "2012-10-17", "Statement": statements}


def _sid(text: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", text))


def _schedule_statements(manifest: Manifest, config: Config, *, arn: str, account: str, region: str) -> list[Any]:
    """What `schedules plan` and `apply` call: the project's schedule group and the schedules inside it only."""
    if config.scheduler_role_arn is None or not any(job.schedules for job in manifest.jobs.values()):
        return []
    scheduler = f"{arn}:scheduler:{region}:{account}"
    group = config.schedule_group
    return [
        # ListSchedules names no resource a policy can scope.
        _statement("ListSchedules", ["scheduler:ListSchedules"], ["*"]),
        _statement(
            "ManageScheduleGroup",
            ["scheduler:GetScheduleGroup", "scheduler:CreateScheduleGroup", "scheduler:TagResource"],
            [f"{scheduler}:schedule-group/{group}"],
        ),
        _statement(
            "ManageSchedules",
            [
                "scheduler:GetSchedule",
                "scheduler:CreateSchedule",
                "scheduler:UpdateSchedule",
                "scheduler:DeleteSchedule",
            ],
            [f"{scheduler}:schedule/{group}/*"],
        ),
        {
            **_statement("PassSchedulerRole", ["iam:PassRole"], [config.scheduler_role_arn]),
            "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        },
    ]


def scheduler_policy(manifest: Manifest, config: Config, *, account: str = "*", region: str = "*") -> dict[str, Any]:
    """The policy of the role EventBridge Scheduler assumes (roles.scheduler): SubmitJob on the queues and definitions
    of the scheduled jobs, nothing else."""
    scheduled = [job for job in manifest.jobs.values() if job.schedules]
    arn = f"arn:{partition(region)}:batch:{region}:{account}"
    queues = sorted({q for q in (job.queue or config.queue for job in scheduled) if q is not None})
    resources = [f"{arn}:job-definition/{d}:*" for d in sorted({job.definition_name for job in scheduled})]
    resources += [q if q.startswith("arn:") else f"{arn}:job-queue/{q}" for q in queues]
    statements = (
        [
            _statement("SubmitScheduledJobs", ["batch:SubmitJob"], resources),
            _statement("TagScheduledRuns", ["batch:TagResource"], [f"{arn}:job/*"]),
        ]
        if scheduled
        else []
    )
    return {"Version": "2012-10-17", "Statement": statements}


def _image_statements(manifest: Manifest, config: Config) -> list[dict[str, Any]]:
    """Pushing Nix-built images, when they go to ECR (another registry has its own credentials, not IAM)."""
    registry, repository = config.image.registry, config.image.repository
    builds_images = any(job.image.kind == "nix" for job in manifest.jobs.values())
    host = _ECR_HOST.fullmatch(registry or "")
    if not builds_images or registry is None or repository is None or config.image.login == "none":
        return []
    if host is None and config.image.login != "ecr":
        return []
    account = host["account"] if host else "*"
    region = host["region"] if host else "*"
    return [
        _statement("LogInToEcr", ["ecr:GetAuthorizationToken"], ["*"]),
        _statement(
            "PushImages",
            [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:GetDownloadUrlForLayer",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            [f"arn:{partition(region)}:ecr:{region}:{account}:repository/{repository}"],
        ),
    ]


def infra_policy(
    config: Config,
    *,
    account: str = "*",
    region: str = "*",
    read_only: bool = False,
    log_groups: Sequence[str] = (),
    definitions: Sequence[str] = (),
    schedules: bool = False,
) -> dict[str, Any]:
    """What `infra plan` and `infra apply [--prune]` call: the declared compute environments, fair-share policies and
    queues by name, and those it may prune only while they carry this environment's compute-on-aws:infra tag.
    read_only: what `infra plan` alone calls, for a role a merge request's pipeline may assume. definitions: the jobs'
    definition names, whose old revisions `infra cleanup` deregisters (reading the schedules that pin revisions, when
    `schedules`)."""
    policy = _infra_policy(config, account=account, region=region, log_groups=log_groups)
    policy["Statement"] += _cleanup_statements(config, definitions, schedules, arn=f"arn:{partition(region)}",
                                               account=account, region=region)  # fmt: skip
    if read_only:
        policy["Statement"] = [
            {**statement, "Action": reads}
            for statement in policy["Statement"]
            if (reads := [a for a in statement["Action"] if _READING.fullmatch(a.split(":")[1])])
        ]
    return policy


def _cleanup_statements(
    config: Config, definitions: Sequence[str], schedules: bool, *, arn: str, account: str, region: str
) -> list[dict[str, Any]]:
    if not definitions:
        return []
    batch = f"{arn}:batch:{region}:{account}"
    statements = [
        _statement("ReadDefinitions", ["batch:DescribeJobDefinitions"], ["*"]),
        _statement(
            "CleanUpDefinitions",
            ["batch:DeregisterJobDefinition"],
            [f"{batch}:job-definition/{d}:*" for d in sorted(set(definitions))],
        ),
    ]
    host = _ECR_HOST.fullmatch(config.image.registry or "")
    if host is not None and config.image.repository is not None:
        repository = f"{arn}:ecr:{host['region']}:{host['account']}:repository/{config.image.repository}"
        statements.append(_statement("CleanUpImages", ["ecr:ListImages", "ecr:BatchDeleteImage"], [repository]))
    if schedules:
        scheduler, group = f"{arn}:scheduler:{region}:{account}", config.schedule_group
        statements += [
            _statement("ListSchedules", ["scheduler:ListSchedules"], ["*"]),
            _statement("ReadPinnedRevisions", ["scheduler:GetSchedule"], [f"{scheduler}:schedule/{group}/*"]),
        ]
    return statements


# The calls that change nothing: all `infra plan` makes.
_READING = re.compile(r"(Describe|List|Get)[A-Za-z]*")


def _infra_policy(config: Config, *, account: str, region: str, log_groups: Sequence[str]) -> dict[str, Any]:
    from compute_on_aws.declared.infrastructure import MANAGED_TAG, managed_scope
    from compute_on_aws.infra.roles import INSTANCE_POLICY, SERVICE_LINKED_ROLE, instance_profile

    infra = config.infrastructure
    arn = f"arn:{partition(region)}"
    batch = f"{arn}:batch:{region}:{account}"
    compute = [f"{batch}:compute-environment/{name}" for name in infra.compute]
    queues = [f"{batch}:job-queue/{name}" for name in infra.queues]
    ours = {"StringEquals": {f"aws:ResourceTag/{MANAGED_TAG}": managed_scope(config.environment)}}
    statements: list[dict[str, Any]] = [
        # These name no resource a policy can scope. ListJobs: a queue is deleted only while no job is in it.
        _statement(
            "ReadInfrastructure",
            [
                "batch:DescribeComputeEnvironments",
                "batch:DescribeJobQueues",
                "batch:ListJobs",
                "batch:ListSchedulingPolicies",
                "batch:DescribeSchedulingPolicies",
            ],
            ["*"],
        ),
    ]
    if compute:
        statements.append(
            _statement(
                "ManageDeclaredComputeEnvironments",
                ["batch:CreateComputeEnvironment", "batch:UpdateComputeEnvironment", "batch:TagResource"],
                compute,
            )
        )
    declared_policies = [f"{batch}:scheduling-policy/{q.name}" for q in infra.queues.values() if q.fair_share]
    if declared_policies:
        statements.append(
            _statement(
                "ManageDeclaredSchedulingPolicies",
                ["batch:CreateSchedulingPolicy", "batch:UpdateSchedulingPolicy", "batch:TagResource"],
                declared_policies,
            )
        )
    if queues:
        policies = sorted({q.scheduling_policy for q in infra.queues.values() if q.scheduling_policy})
        policies += declared_policies
        statements.append(
            _statement(
                "ManageDeclaredQueues",
                ["batch:CreateJobQueue", "batch:UpdateJobQueue", "batch:TagResource"],
                queues + compute + policies,
            )
        )
    statements.append(
        {
            **_statement(
                "PruneOwnResources",
                [
                    "batch:UpdateComputeEnvironment",
                    "batch:DeleteComputeEnvironment",
                    "batch:UpdateJobQueue",
                    "batch:DeleteJobQueue",
                    "batch:DeleteSchedulingPolicy",
                ],
                [f"{batch}:compute-environment/*", f"{batch}:job-queue/*", f"{batch}:scheduling-policy/*"],
            ),
            "Condition": ours,
        }
    )
    iam = f"{arn}:iam::{account}"
    linked = f"{iam}:role/aws-service-role/batch.amazonaws.com/{SERVICE_LINKED_ROLE}"
    roles = [config.service_role_arn] if config.service_role_arn is not None else []
    profiles = []
    profile = instance_profile(config)
    if profile is not None:
        # The instance profile's role bears the profile's name (as the console, AWS's guides and roles.create make it).
        found = re.fullmatch(r"(?:.*:iam::(\d{12}):instance-profile/(?:.*/)?)?([^/]+)", profile)
        if found is not None:  # declared/config.py checked the form
            owner = found[1] or account
            roles.append(f"{arn}:iam::{owner}:role/{found[2]}")
            profiles.append(f"{arn}:iam::{owner}:instance-profile/{found[2]}")
    statements.append(
        _statement(
            "CheckBatchRoles",
            ["iam:GetRole", "iam:GetInstanceProfile"],
            roles + profiles + ([] if config.service_role_arn else [linked]),
        )
    )
    if config.service_role_arn is None:
        statements.append(
            {
                **_statement("CreateBatchServiceLinkedRole", ["iam:CreateServiceLinkedRole"], [linked]),
                "Condition": {"StringEquals": {"iam:AWSServiceName": "batch.amazonaws.com"}},
            }
        )
    if config.create_roles and profiles:
        statements.append(
            _statement(
                "CreateInstanceRole",
                [
                    "iam:CreateRole",
                    "iam:TagRole",
                    "iam:CreateInstanceProfile",
                    "iam:TagInstanceProfile",
                    "iam:AddRoleToInstanceProfile",
                ],
                roles[-1:] + profiles,
            )
        )
        statements.append(
            {
                **_statement("AttachInstancePolicy", ["iam:AttachRolePolicy"], roles[-1:]),
                "Condition": {"ArnEquals": {"iam:PolicyARN": f"{arn}:{INSTANCE_POLICY}"}},
            }
        )
    if roles:
        statements.append(_statement("PassBatchRoles", ["iam:PassRole"], roles))
    statements += _monitoring_statements(config, arn=arn, account=account, region=region)
    statements += _job_needs_statements(config, arn=arn, account=account, region=region, log_groups=log_groups)
    return {"Version": "2012-10-17", "Statement": statements}


def _job_needs_statements(
    config: Config, *, arn: str, account: str, region: str, log_groups: Sequence[str]
) -> list[dict[str, Any]]:
    """Keeping what the jobs' definitions name: their log groups and the consumable resources."""
    statements: list[dict[str, Any]] = []
    groups = sorted({*log_groups, *([DEFAULT_LOG_GROUP] if config.log_retention_days is not None else [])})
    if groups:
        statements += [
            # DescribeLogGroups names no resource a policy can scope.
            _statement("ReadLogGroups", ["logs:DescribeLogGroups"], ["*"]),
            _statement(
                "KeepJobLogGroups",
                ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource"],
                [f"{arn}:logs:{region}:{account}:log-group:{g}" for g in groups],
            ),
        ]
    if config.infrastructure.consumables:
        batch = f"{arn}:batch:{region}:{account}"
        statements += [
            _statement("ListConsumableResources", ["batch:ListConsumableResources"], ["*"]),
            _statement(
                "KeepConsumableResources",
                [
                    "batch:CreateConsumableResource",
                    "batch:DescribeConsumableResource",
                    "batch:UpdateConsumableResource",
                    "batch:TagResource",
                ],
                [f"{batch}:consumable-resource/{name}" for name in sorted(config.infrastructure.consumables)],
            ),
        ]
    return statements


def _monitoring_statements(config: Config, *, arn: str, account: str, region: str) -> list[dict[str, Any]]:
    """Reading this environment's rules and alarms (infra plan and --prune), deleting them while tagged as its own,
    and, with notifications declared, keeping them and the topic."""
    from compute_on_aws.declared.infrastructure import MANAGED_TAG, managed_scope
    from compute_on_aws.infra.monitoring import prefix

    scope = managed_scope(config.environment)
    rules = f"{arn}:events:{region}:{account}:rule/{prefix(scope)}*"
    alarms = f"{arn}:cloudwatch:{region}:{account}:alarm:{prefix(scope)}*"
    ours = {"StringEquals": {f"aws:ResourceTag/{MANAGED_TAG}": scope}}
    statements = [
        # ListRules and DescribeAlarms name no resource a policy can scope.
        _statement("ListRulesAndAlarms", ["events:ListRules", "cloudwatch:DescribeAlarms"], ["*"]),
        _statement(
            "ReadOwnRulesAndAlarms",
            ["events:ListTargetsByRule", "events:ListTagsForResource", "cloudwatch:ListTagsForResource"],
            [rules, alarms],
        ),
        {
            **_statement(
                "PruneOwnRulesAndAlarms",
                ["events:RemoveTargets", "events:DeleteRule", "cloudwatch:DeleteAlarms"],
                [rules, alarms],
            ),
            "Condition": ours,
        },
    ]
    notifications = config.notifications
    if notifications is None:
        return statements
    statements.append(
        _statement(
            "KeepRulesAndAlarms",
            [
                "events:PutRule",
                "events:PutTargets",
                "events:TagResource",
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:TagResource",
            ],
            [rules, alarms],
        )
    )
    topic = notifications.topic_arn or f"{arn}:sns:{region}:{account}:{notifications.topic_name}"
    if notifications.topic_name is not None:
        statements.append(
            _statement(
                "KeepTopic",
                ["sns:CreateTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:TagResource"],
                [topic],
            )
        )
    return statements
