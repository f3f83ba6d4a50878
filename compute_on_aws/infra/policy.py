"""The IAM policy of whoever queues this project's jobs (a CI role, a developer): the calls compute-on-aws makes, on
the queues, definitions, roles and image repository the declared jobs name, and nothing else."""

from __future__ import annotations

import re
from typing import Any

from compute_on_aws.declared.config import Config
from compute_on_aws.declared.manifest import Manifest
from compute_on_aws.watching.views import DEFAULT_LOG_GROUP

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
    roles = sorted(
        {
            role
            for job in jobs
            for role in (job.job_role_arn or config.job_role_arn, job.execution_role_arn or config.execution_role_arn)
            if role is not None
        }
    )
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
        # Batch cannot scope these to a queue: the ids come from this project's own output.
        _statement("StopJobs", ["batch:CancelJob", "batch:TerminateJob"], [batch("job", "*")]),
        _statement(
            "ReadJobLogs",
            ["logs:GetLogEvents"],
            [f"{arn}:logs:{region}:{account}:log-group:{DEFAULT_LOG_GROUP}:log-stream:*"],
        ),
    ]
    if roles:
        statements.append(_statement("PassJobRoles", ["iam:PassRole"], roles))
    statements += _image_statements(manifest, config)
    statements += _schedule_statements(manifest, config, arn=arn, account=account, region=region)
    return {"Version": "2012-10-17", "Statement": statements}


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
    statements = [_statement("SubmitScheduledJobs", ["batch:SubmitJob"], resources)] if scheduled else []
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


def infra_policy(config: Config, *, account: str = "*", region: str = "*", read_only: bool = False) -> dict[str, Any]:
    """What `infra plan` and `infra apply [--prune]` call: the declared compute environments, fair-share policies and
    queues by name, and those it may prune only while they carry this environment's compute-on-aws:infra tag.
    read_only: what `infra plan` alone calls, for a role a merge request's pipeline may assume."""
    policy = _infra_policy(config, account=account, region=region)
    if read_only:
        policy["Statement"] = [
            {**statement, "Action": reads}
            for statement in policy["Statement"]
            if (reads := [a for a in statement["Action"] if _READING.fullmatch(a.split(":")[1])])
        ]
    return policy


# The calls that change nothing: all `infra plan` makes.
_READING = re.compile(r"(Describe|List|Get)[A-Za-z]*")


def _infra_policy(config: Config, *, account: str, region: str) -> dict[str, Any]:
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
    if config.log_retention_days is not None:
        statements += [
            # DescribeLogGroups names no resource a policy can scope.
            _statement("ReadLogGroups", ["logs:DescribeLogGroups"], ["*"]),
            _statement(
                "KeepJobLogGroup",
                ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource"],
                [f"{arn}:logs:{region}:{account}:log-group:{DEFAULT_LOG_GROUP}"],
            ),
        ]
    return {"Version": "2012-10-17", "Statement": statements}


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
