"""The IAM roles compute environments need: Batch's service role and the instance profile of EC2 and spot instances.
Checked to exist before anything changes; created, when `roles.create` is true, before the compute environments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compute_on_aws.aws.session import calling
from compute_on_aws.errors import AwsError, UserError
from compute_on_aws.infra.plan import Change

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef

    from compute_on_aws.declared.config import Config

SERVICE_LINKED_ROLE = "AWSServiceRoleForBatch"
# The instance profile (and its role) `roles.create` makes when roles.instance names none.
INSTANCE_PROFILE = "compute-on-aws-instance"
# What an ECS container instance needs (AWS's managed policy for Batch's EC2 instances).
INSTANCE_POLICY = "iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@dataclass(frozen=True)
class Roles:
    """What the compute environment requests name, and what must be created first."""

    # ARN of the service role, or None: AWS's service-linked role.
    service_role: str | None
    # ARN or name of the instance profile; None when no compute environment runs instances.
    instance_profile: str | None
    changes: tuple[Change, ...]


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _exists(iam: IAMClient, kind: str, name: str) -> bool:
    with calling(f"looking for {kind} {name}"):
        try:
            if kind == "role":
                iam.get_role(RoleName=name)
            else:
                iam.get_instance_profile(InstanceProfileName=name)
        except iam.exceptions.NoSuchEntityException:
            return False
    return True


def instance_profile(config: Config) -> str | None:
    """The instance profile the compute environments name: roles.instance, else the one roles.create makes (None when
    no compute environment runs instances, or nothing names or makes one)."""
    if not any(not ce.fargate for ce in config.infrastructure.compute.values()):
        return None
    return config.instance_profile_arn or (INSTANCE_PROFILE if config.create_roles else None)


def plan_roles(iam: IAMClient, config: Config) -> Roles:
    """The roles the declared compute environments use, read from IAM: a named one that does not exist is an error
    (every one at once); with roles.create, the missing ones become changes."""
    infra = config.infrastructure
    create = config.create_roles
    changes: list[Change] = []
    missing: list[str] = []
    where = config.source or "compute-on-aws.yaml"
    if config.service_role_arn is not None:
        name = _name(config.service_role_arn)
        if not _exists(iam, "role", name):
            missing.append(f"{where}: roles.service: role {name} does not exist in this account")
    elif create and infra.compute and not _exists(iam, "role", SERVICE_LINKED_ROLE):
        changes.append(Change(action="create", kind="role", name=SERVICE_LINKED_ROLE, details=("Batch's own",)))
    profile = instance_profile(config)
    if any(not ce.fargate for ce in infra.compute.values()):
        if profile is None:
            missing.append(
                f"{where}: roles.instance: EC2 and spot compute environments need an instance profile: name one "
                "(arn:aws:iam::<account>:instance-profile/<name>), or set roles.create: true"
            )
        else:
            name = _name(profile)
            if not _exists(iam, "instance profile", name):
                if not create:
                    missing.append(f"{where}: roles.instance: instance profile {name} does not exist in this account")
                else:
                    role = f"trusted by EC2, with {INSTANCE_POLICY.rsplit('/', 1)[-1]}"
                    changes.append(Change(action="create", kind="role", name=name, details=(role,)))
                    changes.append(
                        Change(action="create", kind="instance profile", name=name, details=(f"role {name}",))
                    )
    if missing:
        suffix = " (create it, or set roles.create: true to let infra apply create what Batch needs)"
        raise UserError("\n".join(m + (suffix if "does not exist" in m else "") for m in missing))
    return Roles(service_role=config.service_role_arn, instance_profile=profile, changes=tuple(changes))


def create(iam: IAMClient, change: Change, *, partition: str, tags: dict[str, str]) -> None:
    """One change of plan_roles: Batch's service-linked role, an instance role, or its instance profile."""
    tagged: list[TagTypeDef] = [{"Key": k, "Value": v} for k, v in tags.items()]
    if change.kind == "role" and change.name == SERVICE_LINKED_ROLE:
        iam.create_service_linked_role(AWSServiceName="batch.amazonaws.com")
    elif change.kind == "role":
        iam.create_role(RoleName=change.name, AssumeRolePolicyDocument=json.dumps(EC2_TRUST), Tags=tagged)
        iam.attach_role_policy(RoleName=change.name, PolicyArn=f"arn:{partition}:{INSTANCE_POLICY}")
    elif change.kind == "instance profile":
        iam.create_instance_profile(InstanceProfileName=change.name, Tags=tagged)
        iam.add_role_to_instance_profile(InstanceProfileName=change.name, RoleName=change.name)
    else:
        raise AwsError(f"{change.kind} {change.name}: not an IAM change")
