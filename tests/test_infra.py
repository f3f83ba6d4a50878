"""`infra plan` and `infra apply` against moto over HTTP: compute environments and job queues from the config, created
in order, updated in place, pruned only when tagged as this project's; a bad declaration stops before any call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Moto, write_job


def settings(account: dict[str, str], **changes: Any) -> dict[str, Any]:
    network = {"subnets": [account["subnet"]], "security_groups": [account["group"]]}
    config: dict[str, Any] = {
        "backend": "aws",
        "region": "us-east-1",
        "roles": {"service": account["service"], "instance": account["profile"]},
        "tags": {"team": "observes"},
        "compute": {
            "spot": {"type": "SPOT", "max_vcpus": 64, "instance_types": ["m5", "c5"], **network},
            "on-demand": {"type": "EC2", "max_vcpus": 16, **network},
        },
        "queues": {
            "high": {"priority": 10, "compute": ["on-demand", "spot"]},
            "bulk": {"priority": 1, "compute": ["spot"]},
        },
    }
    for path, value in changes.items():
        *parents, key = path.split("__")
        section = config
        for parent in parents:
            section = section[parent]
        if value is None:
            del section[key]
        else:
            section[key] = value
    return config


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "compute-on-aws.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def busybox_job(jobs: Path, name: str, attributes: str) -> None:
    """A job declaration running echo in busybox, with these attributes ("queue = ...;")."""
    write_job(jobs, name, f'{{ {attributes} command = [ "echo" ]; image = "busybox:1.36"; }}')


def infra(cli, path: Path, *args: str):
    return cli("infra", args[0], "--config", str(path), *args[1:])


def described(moto: Moto) -> tuple[dict[str, Any], dict[str, Any]]:
    batch = moto.client("batch")
    compute = {c["computeEnvironmentName"]: c for c in batch.describe_compute_environments()["computeEnvironments"]}
    queues = {q["jobQueueName"]: q for q in batch.describe_job_queues()["jobQueues"]}
    return compute, queues


def test_plan_on_an_account_without_them_shows_what_apply_creates_and_changes_nothing(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    result = infra(cli, write(tmp_path, settings(account)), "plan")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "+ compute environment spot: SPOT, 0-64 vCPUs",
        "+ compute environment on-demand: EC2, 0-16 vCPUs",
        "+ job queue high: priority 10, compute [on-demand, spot]",
        "+ job queue bulk: priority 1, compute [spot]",
        "4 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged.",
    ]
    assert moto.received["CreateComputeEnvironment"] == moto.received["CreateJobQueue"] == []


def test_apply_creates_in_order_and_a_second_apply_changes_nothing(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, settings(account))
    result = infra(cli, path, "apply")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-4:] == [
        "created compute environment spot",
        "created compute environment on-demand",
        "created job queue high",
        "created job queue bulk",
    ]
    compute, queues = described(moto)
    spot = compute["spot"]["computeResources"]
    assert spot["type"] == "SPOT" and spot["maxvCpus"] == 64 and spot["minvCpus"] == 0
    assert spot["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert compute["on-demand"]["computeResources"]["allocationStrategy"] == "BEST_FIT_PROGRESSIVE"
    assert spot["instanceRole"] == account["profile"] and spot["subnets"] == [account["subnet"]]
    assert compute["spot"]["tags"] == {"team": "observes", "compute-on-aws:infra": "default"}
    assert queues["high"]["priority"] == 10 and queues["high"]["state"] == "ENABLED"
    assert [o["computeEnvironment"] for o in queues["high"]["computeEnvironmentOrder"]] == ["on-demand", "spot"]
    # The queues were created after both compute environments they use.
    assert [r["computeEnvironmentName"] for r in moto.received["CreateComputeEnvironment"]] == ["spot", "on-demand"]

    again = infra(cli, path, "apply")
    assert again.code == 0, again.err
    assert again.out.splitlines() == ["0 to create, 0 to update, 0 to replace, 0 to delete, 4 unchanged."]
    assert "nothing to do" in again.err
    assert len(moto.received["CreateComputeEnvironment"]) == 2 and moto.received["UpdateJobQueue"] == []


def test_a_change_of_priority_or_max_vcpus_is_an_update_in_place(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    assert infra(cli, write(tmp_path, settings(account)), "apply").code == 0
    changed = settings(account, queues__high__priority=20, compute__spot__max_vcpus=128)
    path = write(tmp_path, changed)
    plan = infra(cli, path, "plan")
    assert plan.code == 0, plan.err
    assert plan.out.splitlines() == [
        "~ compute environment spot: max_vcpus: 64 -> 128",
        "~ job queue high: priority: 10 -> 20",
        "0 to create, 2 to update, 0 to replace, 0 to delete, 2 unchanged.",
    ]
    result = infra(cli, path, "apply")
    assert result.code == 0, result.err
    (update,) = moto.received["UpdateComputeEnvironment"]
    # Only what changed is sent (Batch refuses some unchanged values in an update, such as BEST_FIT).
    assert update == {"computeEnvironment": "spot", "state": "ENABLED", "computeResources": {"maxvCpus": 128}}
    (queue,) = moto.received["UpdateJobQueue"]
    assert queue["priority"] == 20
    compute, queues = described(moto)
    assert queues["high"]["priority"] == 20
    # UpdateJobQueue names compute environments by ARN.
    order = [o["computeEnvironment"] for o in queue["computeEnvironmentOrder"]]
    assert order == [compute["on-demand"]["computeEnvironmentArn"], compute["spot"]["computeEnvironmentArn"]]
    assert moto.received["CreateComputeEnvironment"][2:] == []  # nothing was recreated


def test_prune_deletes_only_what_apply_created_and_no_longer_declared(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    assert infra(cli, write(tmp_path, settings(account)), "apply").code == 0
    path = write(tmp_path, settings(account, queues__bulk=None))
    plan = infra(cli, path, "plan")
    assert plan.out.splitlines()[-1] == "0 to create, 0 to update, 0 to replace, 0 to delete, 3 unchanged."
    pruning = infra(cli, path, "plan", "--prune")
    assert "- job queue bulk: no longer declared" in pruning.out.splitlines()
    # The queues the fixture made by hand (default, etl-small, other) carry no tag of ours: left alone.
    assert "default" not in pruning.out
    result = infra(cli, path, "apply", "--prune")
    assert result.code == 0, result.err
    assert "deleted job queue bulk" in result.out.splitlines()
    _, queues = described(moto)
    assert "bulk" not in queues and {"default", "etl-small", "other", "high"} <= set(queues)
    (disable,) = moto.received["UpdateJobQueue"]
    assert disable == {"jobQueue": "bulk", "state": "DISABLED"}  # Batch deletes only a disabled queue


def test_every_problem_of_the_declarations_is_one_line_and_nothing_is_called(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    broken = settings(
        account,
        queues__bulk__compute=["spto"],
        compute__spot__type="SPOTS",
        compute__fargate={"type": "FARGATE", "max_vcpus": 4, "min_vcpus": 1},
    )
    result = infra(cli, write(tmp_path, broken), "plan")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines)
    where = str(tmp_path / "compute-on-aws.yaml")
    assert f"error: {where}: compute.spot.type: expected one of EC2, SPOT, FARGATE, FARGATE_SPOT, got 'SPOTS'" in lines
    assert any(
        "queues.bulk.compute: no compute environment 'spto' is declared (did you mean spot?)" in x for x in lines
    )
    assert any("compute.fargate.min_vcpus: does not apply to FARGATE" in x for x in lines)
    assert any("compute.fargate.subnets: required" in x for x in lines)
    assert moto.received["CreateComputeEnvironment"] == []


def test_jobs_and_queue_refuse_an_undeclared_queue_and_a_job_no_compute_can_run(
    cli, account: dict[str, str], tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs"
    busybox_job(jobs, "typo", 'queue = "hgih"; memory = 512;')
    busybox_job(jobs, "huge", 'queue = "high"; vcpus = 96; memory = 512;')
    busybox_job(jobs, "fits", 'queue = "high"; vcpus = 48; memory = 512;')
    path = write(tmp_path, settings(account))
    listed = cli("--jobs", str(jobs), "--config", str(path), "jobs")
    assert listed.code == 2
    assert listed.err.strip().splitlines() == [
        "error: huge: needs 96 vCPU, 512 MiB on EC2, which no compute environment of queue high can give: "
        "on-demand (EC2, at most 16 vCPU; optimal instances: up to 192 vCPU, 1048576 MiB, x86_64), "
        "spot (SPOT, at most 64 vCPU; m5/c5 instances: up to 96 vCPU, 393216 MiB, x86_64)",
        "error: typo: queue: 'hgih' is not among the queues compute-on-aws.yaml declares (did you mean high?)",
    ]
    typo = cli("--jobs", str(jobs), "--config", str(path), "queue", "typo", "--dry-run")
    assert typo.code == 2 and "did you mean high?" in typo.err
    # 48 vCPUs fit the spot compute environment (64), not the on-demand one (16): the queue can run it.
    assert cli("--jobs", str(jobs), "--config", str(path), "queue", "fits", "--dry-run").code == 0


def test_a_failure_part_way_names_what_was_done_and_what_was_not(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    broken = settings(account, **{"compute__on-demand__subnets": ["subnet-0000000000000000"]})
    result = infra(cli, write(tmp_path, broken), "apply")
    assert result.code == 1
    (line,) = result.err.strip().splitlines()
    assert line.startswith("error: creating compute environment on-demand: AWS InvalidParameterValue")
    assert "subnet subnet-0000000000000000 does not exist" in line
    assert "(already done: created compute environment spot)" in line
    assert line.endswith("not done: create job queue high, create job queue bulk")
    compute, queues = described(moto)
    assert "spot" in compute and "on-demand" not in compute and "high" not in queues


def test_apply_json_says_what_was_done_also_when_a_step_fails(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    broken = settings(account, **{"compute__on-demand__subnets": ["subnet-0000000000000000"]})
    result = infra(cli, write(tmp_path, broken), "apply", "--json")
    assert result.code == 1
    printed = result.json()
    assert printed["done"] == ["created compute environment spot"]
    assert [c["name"] for c in printed["changes"] if c["action"] == "create"] == ["spot", "on-demand", "high", "bulk"]
    assert "creating compute environment on-demand" in result.err


GOLDEN = Path(__file__).parent / "golden" / "infra-export.tf.json"


def test_export_refuses_definitions_it_cannot_resolve(cli) -> None:
    """Outside the flake a Nix-built job has no image or command: a Terraform file with placeholders would register
    definitions that cannot run, so export stops, in one line, and names the two ways on."""
    root = Path(__file__).parent.parent
    result = cli("--jobs", str(root / "jobs"), "infra", "export", cwd=root)
    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        "error: infra export: observes-etl: built by Nix, and this evaluation had no nixpkgs: export through the flake "
        "(nix run .#compute-on-aws -- infra export), or give --leave-out-nix-built\n"
    )


def test_export_writes_this_repository_s_infrastructure_as_the_golden_terraform_file(cli) -> None:
    """The example config and jobs as Terraform JSON. A change to the templates or the export shows here: look at the
    diff, then regenerate with `compute-on-aws infra export --leave-out-nix-built -o tests/golden/infra-export.tf.json`
    from the root. Without nixpkgs, the Nix-built job's definition is left out, and said to be."""
    root = Path(__file__).parent.parent
    result = cli(
        "--jobs", str(root / "jobs"), "infra", "export", "--format", "terraform", "--leave-out-nix-built", cwd=root
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        "note: left out the definitions of observes-etl (built by Nix)",
        "note: compute.spot.container_insights is not in the export (no argument of hashicorp/aws's "
        "aws_batch_compute_environment known here sets it): infra apply sets it, or set it beside Terraform",
    ]
    assert result.out == GOLDEN.read_text()
    assert "<built by nix>" not in result.out
    document = json.loads(result.out)
    resources = document["resource"]
    # roles.create is true in the example: the roles apply would create are in it too.
    assert set(resources) == {
        "aws_iam_service_linked_role",
        "aws_iam_role",
        "aws_iam_role_policy_attachment",
        "aws_iam_instance_profile",
        "aws_batch_compute_environment",
        "aws_batch_scheduling_policy",
        "aws_batch_job_queue",
        "aws_batch_job_definition",
        "aws_cloudwatch_log_group",
        "aws_sns_topic",
        "aws_sns_topic_policy",
        "aws_cloudwatch_event_rule",
        "aws_cloudwatch_event_target",
        "aws_cloudwatch_metric_alarm",
    }
    # The notifications as apply makes them: the rule to the topic, the alarms on their counting rules.
    target = resources["aws_cloudwatch_event_target"]["compute-on-aws-default-failed"]
    assert target["arn"] == "${aws_sns_topic.compute-on-aws-alerts.arn}"
    assert "compute-on-aws logs <id>" in target["input_transformer"][0]["input_template"]
    alarm = resources["aws_cloudwatch_metric_alarm"]["compute-on-aws-default-etl-small-failed"]
    assert alarm["dimensions"] == {
        "RuleName": "${aws_cloudwatch_event_rule.compute-on-aws-default-alarm-etl-small-failed.name}"
    }
    assert alarm["alarm_actions"] == ["${aws_sns_topic.compute-on-aws-alerts.arn}"] and alarm["threshold"] == 3.0
    # Queues name their compute environments and fair-share policy by reference: Terraform creates those first.
    order = resources["aws_batch_job_queue"]["default"]["compute_environment_order"]
    assert [o["compute_environment"] for o in order] == [
        "${aws_batch_compute_environment.on-demand.arn}",
        "${aws_batch_compute_environment.spot.arn}",
    ]
    etl_small = resources["aws_batch_job_queue"]["etl-small"]
    assert etl_small["scheduling_policy_arn"] == "${aws_batch_scheduling_policy.etl-small.arn}"
    (fair,) = resources["aws_batch_scheduling_policy"]["etl-small"]["fair_share_policy"]
    assert fair["share_decay_seconds"] == 3600
    assert fair["share_distribution"] == [
        {"share_identifier": "observes", "weight_factor": 1.0},
        {"share_identifier": "scans", "weight_factor": 2.0},
    ]
    assert set(resources["aws_batch_job_definition"]) == {"hello"}
    assert document["terraform"]["required_providers"]["aws"]["source"] == "hashicorp/aws"


def test_export_keeps_secrets_as_references(cli, tmp_path: Path) -> None:
    """A secret stays a reference in the exported definition: the file holds no secret value."""
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:observes/api-token"
    jobs = tmp_path / "jobs"
    busybox_job(jobs, "etl", f'queue = "q"; secrets.API_TOKEN = "{secret}";')
    path = write(tmp_path, {"roles": {"execution": "arn:aws:iam::123456789012:role/execution"}})
    result = cli("--jobs", str(jobs), "--config", str(path), "infra", "export")
    assert result.code == 0, result.err
    definition = json.loads(result.out)["resource"]["aws_batch_job_definition"]["etl"]
    assert json.loads(definition["container_properties"])["secrets"] == [{"name": "API_TOKEN", "valueFrom": secret}]


def test_export_refuses_another_format(cli, tmp_path: Path) -> None:
    result = cli("infra", "export", "--format", "cloudformation", "--config", str(write(tmp_path, {})))
    assert result.code == 2
    assert result.err.strip() == "error: --format: expected terraform, got 'cloudformation'"


def test_iam_policy_role_infra_is_enough_for_apply_and_prune(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path, as_user
) -> None:
    path = write(tmp_path, {**settings(account, queues__bulk__fair_share=FAIR), "logs": {"retention_days": 30}})
    printed = cli("--config", str(path), "iam-policy", "--role", "infra", "--account", "123456789012")
    assert printed.code == 0, printed.err
    policy = printed.json()
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["ManageDeclaredComputeEnvironments"]["Resource"] == [
        "arn:aws:batch:us-east-1:123456789012:compute-environment/spot",
        "arn:aws:batch:us-east-1:123456789012:compute-environment/on-demand",
    ]
    assert sids["ManageDeclaredSchedulingPolicies"]["Resource"] == [
        "arn:aws:batch:us-east-1:123456789012:scheduling-policy/bulk"
    ]
    assert sids["PruneOwnResources"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/compute-on-aws:infra": "default"}
    }
    # roles.service is set: the service role and the instance profile's role may be passed, nothing else.
    assert sids["PassBatchRoles"]["Resource"] == [account["service"], "arn:aws:iam::123456789012:role/ecs-instance"]
    assert "CreateBatchServiceLinkedRole" not in sids
    as_user(policy)
    assert infra(cli, path, "apply").code == 0
    pruned = infra(
        cli,
        write(tmp_path, {**settings(account, queues__bulk=None), "logs": {"retention_days": 30}}),
        "apply",
        "--prune",
    )
    assert pruned.code == 0, pruned.err
    assert "deleted job queue bulk" in pruned.out
    assert "deleted scheduling policy bulk" in pruned.out


def test_roles_named_but_missing_are_errors_before_any_change(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    missing = settings(
        account,
        roles={
            "service": "arn:aws:iam::123456789012:role/no-such-role",
            "instance": "arn:aws:iam::123456789012:instance-profile/no-such-profile",
        },
    )
    result = infra(cli, write(tmp_path, missing), "apply")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 2
    assert "roles.service: role no-such-role does not exist in this account" in lines[0]
    assert "roles.instance: instance profile no-such-profile does not exist in this account" in lines[1]
    assert all(line.endswith("or set roles.create: true to let infra apply create what Batch needs)") for line in lines)
    assert moto.received["CreateComputeEnvironment"] == []


def test_roles_create_makes_the_instance_profile_before_the_compute_environments(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compute_on_aws.infra import apply

    monkeypatch.setattr(apply, "IAM_PROPAGATION", 0)
    path = write(tmp_path, settings(account, roles={"service": account["service"], "create": True}))
    plan = infra(cli, path, "plan")
    assert plan.out.splitlines()[:2] == [
        "+ role compute-on-aws-instance: trusted by EC2, with AmazonEC2ContainerServiceforEC2Role",
        "+ instance profile compute-on-aws-instance: role compute-on-aws-instance",
    ]
    result = infra(cli, path, "apply")
    assert result.code == 0, result.err
    iam = moto.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName="compute-on-aws-instance")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["compute-on-aws-instance"]
    attached = iam.list_attached_role_policies(RoleName="compute-on-aws-instance")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEC2ContainerServiceforEC2Role"]
    compute, _ = described(moto)
    assert compute["spot"]["computeResources"]["instanceRole"] == "compute-on-aws-instance"
    assert infra(cli, path, "plan").out.splitlines()[-1].startswith("0 to create, 0 to update")
    # Without roles.service, Batch's own service-linked role is created too.
    linked = infra(cli, write(tmp_path, settings(account, roles={"create": True})), "plan")
    assert "+ role AWSServiceRoleForBatch: Batch's own" in linked.out.splitlines()


def test_export_with_roles_create_holds_the_roles_apply_would_create(
    cli, account: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, settings(account, roles={"create": True}))
    jobs = tmp_path / "jobs"
    write_job(jobs, "hello", '{ queue = "high"; command = [ "echo" ]; image = "busybox:1.36"; memory = 512; }')
    result = cli("--jobs", str(jobs), "--config", str(path), "infra", "export", "--format", "terraform")
    assert result.code == 0, result.err
    resources = json.loads(result.out)["resource"]
    assert resources["aws_iam_service_linked_role"] == {"batch": {"aws_service_name": "batch.amazonaws.com"}}
    role = resources["aws_iam_role"]["compute-on-aws-instance"]
    assert json.loads(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attachment = resources["aws_iam_role_policy_attachment"]["compute-on-aws-instance"]
    assert attachment["policy_arn"] == "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
    (spot,) = resources["aws_batch_compute_environment"]["spot"]["compute_resources"]
    assert spot["instance_role"] == "${aws_iam_instance_profile.compute-on-aws-instance.arn}"
    assert "service_role" not in resources["aws_batch_compute_environment"]["spot"]


def test_logs_retention_days_keeps_the_jobs_log_group(cli, moto: Moto, account: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, {**settings(account), "logs": {"retention_days": 30}})
    plan = infra(cli, path, "plan")
    assert plan.out.splitlines()[0] == "+ log group /aws/batch/job: retention 30 days"
    assert infra(cli, path, "apply").code == 0
    (group,) = moto.client("logs").describe_log_groups(logGroupNamePrefix="/aws/batch/job")["logGroups"]
    assert group["retentionInDays"] == 30
    assert infra(cli, path, "plan").out.splitlines()[-1].endswith(" 0 to delete, 5 unchanged.")
    longer = write(tmp_path, {**settings(account), "logs": {"retention_days": 90}})
    assert infra(cli, longer, "plan").out.splitlines()[0] == "~ log group /aws/batch/job: retention_days: 30 -> 90"
    assert infra(cli, longer, "apply").code == 0
    (group,) = moto.client("logs").describe_log_groups(logGroupNamePrefix="/aws/batch/job")["logGroups"]
    assert group["retentionInDays"] == 90
    wrong = infra(cli, write(tmp_path, {**settings(account), "logs": {"retention_days": 31}}), "plan")
    assert wrong.code == 2 and "logs.retention_days: expected one of CloudWatch's periods" in wrong.err


def test_apply_waits_for_each_resource_to_settle_backing_off_and_reports_invalid_and_timeouts() -> None:
    """Batch answers CREATING for a while after a create: apply polls, each pause longer, until VALID; INVALID and
    a resource that never settles end in one error naming it (moto answers VALID at once, so this drives the poll)."""
    from compute_on_aws.errors import AwsError
    from compute_on_aws.infra.apply import _settled

    answers = iter([{"status": "CREATING"}, {"status": "CREATING"}, {"status": "UPDATING"}, {"status": "VALID"}])
    pauses: list[float] = []
    _settled(lambda: next(answers), "compute environment spot", sleep=pauses.append)
    assert len(pauses) == 3 and pauses[0] < pauses[2]
    gone = iter([{"status": "DELETING"}, None])
    _settled(lambda: next(gone), "job queue bulk", gone=True, sleep=lambda _: None)
    with pytest.raises(AwsError, match="compute environment spot: Batch says INVALID: CLIENT_ERROR - no subnet"):
        _settled(
            lambda: {"status": "INVALID", "statusReason": "CLIENT_ERROR - no subnet"},
            "compute environment spot",
            sleep=lambda _: None,
        )
    with pytest.raises(AwsError, match="job queue high: still CREATING after 0 minutes"):
        _settled(lambda: {"status": "CREATING"}, "job queue high", timeout=0.0, sleep=lambda _: None)


def test_adding_a_fair_share_policy_replaces_the_queue_when_no_job_is_in_it(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    assert infra(cli, write(tmp_path, settings(account)), "apply").code == 0
    policy = moto.client("batch").create_scheduling_policy(name="fair", fairsharePolicy={"shareDecaySeconds": 3600})
    path = write(tmp_path, settings(account, queues__bulk__scheduling_policy=policy["arn"]))
    plan = infra(cli, path, "plan")
    assert plan.out.splitlines()[0] == (
        f"-/+ job queue bulk: scheduling_policy (none) -> {policy['arn']}: a queue's fair-share policy can be "
        "replaced, not added or removed"
    )
    result = infra(cli, path, "apply")
    assert result.code == 0, result.err
    assert "replaced job queue bulk" in result.out.splitlines()
    (deleted,) = moto.received["DeleteJobQueue"]
    assert deleted["jobQueue"] == "bulk"
    assert moto.received["CreateJobQueue"][-1]["schedulingPolicyArn"] == policy["arn"]
    _, queues = described(moto)
    assert queues["bulk"]["schedulingPolicyArn"] == policy["arn"]
    assert infra(cli, path, "plan").out.splitlines()[-1].startswith("0 to create, 0 to update, 0 to replace")


def test_a_queue_with_jobs_in_it_is_neither_pruned_nor_replaced(
    cli, hold_jobs: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    """Deleting a queue ends its jobs: apply refuses, and says how many and what to do."""
    assert infra(cli, write(tmp_path, settings(account)), "apply").code == 0
    hold_jobs.register_definition("waiting")
    hold_jobs.client("batch").submit_job(jobName="waiting", jobQueue="bulk", jobDefinition="waiting")
    result = infra(cli, write(tmp_path, settings(account, queues__bulk=None)), "apply", "--prune")
    assert result.code == 1
    assert "deleting job queue bulk: 1 job(s) still waiting or running in it, which deleting the queue would end" in (
        result.err
    )
    _, queues = described(hold_jobs)
    assert "bulk" in queues and hold_jobs.received["DeleteJobQueue"] == []


FAIR = {"share_decay": "1h", "compute_reservation": 10, "shares": {"etl": 0.5, "scans*": 2}}


def test_a_declared_fair_share_is_created_before_its_queue_updated_in_place_and_pruned_with_it(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, settings(account, queues__bulk__fair_share=FAIR))
    plan = infra(cli, path, "plan")
    assert plan.code == 0, plan.err
    assert plan.out.splitlines()[2:5] == [
        "+ scheduling policy bulk: share decay 3600 s, compute reservation 10%, 2 share(s)",
        "+ job queue high: priority 10, compute [on-demand, spot]",
        "+ job queue bulk: priority 1, compute [spot], fair share",
    ]
    result = infra(cli, path, "apply")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-3:] == [
        "created scheduling policy bulk",
        "created job queue high",
        "created job queue bulk",
    ]
    batch = moto.client("batch")
    (created,) = moto.received["CreateSchedulingPolicy"]
    assert created["fairsharePolicy"] == {
        "shareDecaySeconds": 3600,
        "computeReservation": 10,
        "shareDistribution": [
            {"shareIdentifier": "etl", "weightFactor": 0.5},
            {"shareIdentifier": "scans*", "weightFactor": 2.0},
        ],
    }
    (policy,) = batch.describe_scheduling_policies(
        arns=[p["arn"] for p in batch.list_scheduling_policies()["schedulingPolicies"]]
    )["schedulingPolicies"]
    assert policy["tags"] == {"team": "observes", "compute-on-aws:infra": "default"}
    _, queues = described(moto)
    assert queues["bulk"]["schedulingPolicyArn"] == policy["arn"]
    assert "schedulingPolicyArn" not in queues["high"]
    assert infra(cli, path, "apply").out.splitlines() == [
        "0 to create, 0 to update, 0 to replace, 0 to delete, 5 unchanged."
    ]

    # A new weight is an update of the policy in place; the queue keeps it.
    reweighted = write(
        tmp_path, settings(account, queues__bulk__fair_share={**FAIR, "shares": {"etl": 0.25, "scans*": 2}})
    )
    changed = infra(cli, reweighted, "apply")
    assert changed.code == 0, changed.err
    assert (
        changed.out.splitlines()[0] == "~ scheduling policy bulk: shares: [etl=0.5, scans*=2] -> [etl=0.25, scans*=2]"
    )
    (update,) = moto.received["UpdateSchedulingPolicy"]
    assert update["arn"] == policy["arn"]
    assert update["fairsharePolicy"]["shareDistribution"][0] == {"shareIdentifier": "etl", "weightFactor": 0.25}
    assert moto.received["DeleteJobQueue"] == [] and moto.received["UpdateJobQueue"] == []

    # A policy made elsewhere is never pruned; the declared one goes with its queue.
    other = batch.create_scheduling_policy(name="elsewhere")["arn"]
    pruned = infra(cli, write(tmp_path, settings(account, queues__bulk=None)), "apply", "--prune")
    assert pruned.code == 0, pruned.err
    assert pruned.out.splitlines()[-2:] == ["deleted job queue bulk", "deleted scheduling policy bulk"]
    assert moto.received["DeleteSchedulingPolicy"] == [{"arn": policy["arn"]}]
    assert [p["arn"] for p in batch.list_scheduling_policies()["schedulingPolicies"]] == [other]


def test_fair_share_problems_are_one_line_each(cli, moto: Moto, account: dict[str, str], tmp_path: Path) -> None:
    broken = settings(
        account,
        queues__bulk__fair_share={
            "share_decay": "8d",
            "compute_reservation": 100,
            "shares": {"etl*": 1, "etl_daily": 2, "bad-name": 1, "scans": 1000},
            "decay": 1,
        },
        queues__high__fair_share={"shares": {"a": 1}},
        queues__high__scheduling_policy="arn:aws:batch:us-east-1:123456789012:scheduling-policy/x",
    )
    result = infra(cli, write(tmp_path, broken), "plan")
    assert result.code == 2
    where = f"error: {tmp_path / 'compute-on-aws.yaml'}: queues"
    assert sorted(result.err.strip().splitlines()) == sorted(
        [
            f"{where}.bulk.fair_share.decay: unknown key (did you mean share_decay?)",
            f"{where}.bulk.fair_share.share_decay: Batch takes at most 7d, got 8d",
            f"{where}.bulk.fair_share.compute_reservation: expected a whole number 0..99, got 100",
            f"{where}.bulk.fair_share.shares.bad-name: a share identifier takes 1-255 letters, digits and _, "
            "optionally ending in *",
            f"{where}.bulk.fair_share.shares.scans: expected a weight factor from 0.0001 to 999.9999, got 1000",
            f"{where}.bulk.fair_share.shares.etl_daily: overlaps etl*, which Batch refuses",
            f"{where}.high.fair_share: give either fair_share or scheduling_policy (an existing one's ARN)",
        ]
    )
    assert moto.received["CreateSchedulingPolicy"] == []
    # Batch's default decay, written out, is no problem.
    zero = settings(account, queues__bulk__fair_share={"share_decay": 0, "shares": {"etl": 1}})
    assert infra(cli, write(tmp_path, zero), "plan").code == 0


def test_a_job_on_a_fair_share_queue_needs_a_share_identifier_and_only_there(
    cli, account: dict[str, str], tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs"
    busybox_job(jobs, "anonymous", 'queue = "bulk";')
    busybox_job(jobs, "stray", 'queue = "high"; shareIdentifier = "etl";')
    busybox_job(jobs, "named", 'queue = "bulk"; shareIdentifier = "etl";')
    path = write(tmp_path, settings(account, queues__bulk__fair_share=FAIR))
    listed = cli("--jobs", str(jobs), "--config", str(path), "jobs")
    assert listed.code == 2
    assert listed.err.strip().splitlines() == [
        "error: anonymous: shareIdentifier: queue bulk schedules by fair share, and Batch refuses a job without a "
        "share identifier there (its shares: etl, scans*)",
        "error: stray: shareIdentifier: queue high has no fair-share policy, and Batch refuses a share identifier "
        "there: remove it, or declare fair_share on the queue",
    ]
    queued = cli("--jobs", str(jobs), "--config", str(path), "queue", "named", "--dry-run", "--json")
    assert queued.code == 0, queued.err
    assert '"shareIdentifier": "etl"' in queued.out


def test_a_job_no_instance_type_of_its_queue_can_hold_is_refused(cli, account: dict[str, str], tmp_path: Path) -> None:
    """Memory, GPUs and the architecture of a Nix-built image, each against the instance types of the queue's
    compute: one instance must hold the whole job, as Batch places a job on one."""
    jobs = tmp_path / "jobs"
    busybox_job(jobs, "roomy", 'queue = "bulk"; vcpus = 4; memory = 400000;')
    busybox_job(jobs, "gpu", 'queue = "bulk"; gpus = 1;')
    # m5.24xlarge holds exactly this: accepted.
    busybox_job(jobs, "largest", 'queue = "bulk"; vcpus = 64; memory = 393216;')
    write_job(jobs, "nix-built", '{ queue = "arm"; entrypoint.text = "echo"; }')
    busybox_job(jobs, "multi-arch", 'queue = "arm";')
    network = {"subnets": [account["subnet"]], "security_groups": [account["group"]]}
    config = settings(
        account,
        compute__graviton={"type": "EC2", "max_vcpus": 64, "instance_types": ["m6g"], **network},
        queues__arm={"priority": 1, "compute": ["graviton"]},
    )
    listed = cli("--jobs", str(jobs), "--config", str(write(tmp_path, config)), "jobs")
    assert listed.code == 2
    spot = "spot (SPOT, at most 64 vCPU; m5/c5 instances: up to 96 vCPU, 393216 MiB, x86_64)"
    assert listed.err.strip().splitlines() == [
        "error: gpu: needs 1 vCPU, 2048 MiB, 1 GPU on EC2, which no compute environment of queue bulk can give: "
        + spot,
        "error: nix-built: needs 1 vCPU, 2048 MiB on EC2 (x86_64-linux image), which no compute environment of queue "
        "arm can give: graviton (EC2, at most 64 vCPU; m6g instances: up to 64 vCPU, 262144 MiB, arm64)",
        f"error: roomy: needs 4 vCPU, 400000 MiB on EC2, which no compute environment of queue bulk can give: {spot}",
    ]
    # Built for Graviton, the Nix image runs there.
    arm = write(tmp_path, {**config, "image": {"system": "aarch64-linux"}})
    errors = cli("--jobs", str(jobs), "--config", str(arm), "jobs").err
    assert "gpu:" in errors and "nix-built" not in errors


@pytest.mark.parametrize("action", ["CreateComputeEnvironment", "CreateSchedulingPolicy", "CreateJobQueue"])
def test_a_create_whose_answer_was_lost_converges(cli, moto: Moto, account: dict[str, str], tmp_path: Path, action):
    """AWS created it, its answer was lost (a 500 after the fact), botocore sent the create again and met what the
    first one made: that is the resource asked for, not a conflict. apply exits 0, each thing made once, and a second
    apply has nothing to do."""
    path = write(tmp_path, settings(account, queues__bulk__fair_share=FAIR))
    moto.proxy.script[action] = ["error-after"]
    result = infra(cli, path, "apply")
    assert result.code == 0, result.err
    assert moto.proxy.injected[(action, "error-after")] == 1
    assert len(moto.received[action]) == {"CreateSchedulingPolicy": 2}.get(action, 3)  # the retry included
    compute, queues = described(moto)
    assert {"on-demand", "spot"} <= set(compute) and {"bulk", "high"} <= set(queues)
    assert queues["bulk"]["schedulingPolicyArn"].endswith("/bulk")
    again = infra(cli, path, "plan")
    assert again.out.splitlines()[-1].startswith("0 to create, 0 to update"), again.out


def test_a_create_meeting_something_else_of_that_name_still_fails(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    """A queue of the same name that is not what was asked (another priority, and not this project's tag) is a real
    conflict: apply exits 1 naming it and what differs."""
    path = write(tmp_path, settings(account))
    import boto3

    # Straight to moto, past the proxy (whose interceptor this is).
    batch = boto3.client("batch", endpoint_url=moto.server, region_name="us-east-1")

    def someone_elses_queue(request: dict, forward):
        if request.get("jobQueueName") == "bulk" and not batch.describe_job_queues(jobQueues=["bulk"])["jobQueues"]:
            high = batch.describe_compute_environments(computeEnvironments=["spot"])["computeEnvironments"][0]
            batch.create_job_queue(
                jobQueueName="bulk",
                state="ENABLED",
                priority=99,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": high["computeEnvironmentArn"]}],
            )
        return forward()

    moto.proxy.intercept("CreateJobQueue", someone_elses_queue)
    result = infra(cli, path, "apply")
    assert result.code == 1
    assert result.err == (
        "error: job queue bulk already exists and is not what was asked (priority: 99 -> 1; tag compute-on-aws:infra "
        "None, not 'default': not made by this project's apply): rename the declaration, or make the two agree\n"
    )


def test_plan_detailed_exitcode_is_2_while_changes_are_pending_0_after_apply_and_1_for_any_error(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    """As Terraform's -detailed-exitcode, for a merge request's pipeline: a bad declaration must not read as 'changes
    pending' (2), as it would with the usual exit code of a user's mistake."""
    path = write(tmp_path, settings(account))
    pending = infra(cli, path, "plan", "--detailed-exitcode")
    assert pending.code == 2 and pending.out.splitlines()[-1].startswith("4 to create"), pending.err
    assert infra(cli, path, "plan", "--detailed-exitcode", "--json").code == 2
    assert infra(cli, path, "apply").code == 0
    same = infra(cli, path, "plan", "--detailed-exitcode")
    assert same.code == 0 and same.out.splitlines() == [
        "0 to create, 0 to update, 0 to replace, 0 to delete, 4 unchanged."
    ]
    bad = write(tmp_path, settings(account, queues__bulk__priority=-1))
    broken = infra(cli, bad, "plan", "--detailed-exitcode")
    assert broken.code == 1 and "queues.bulk.priority: expected a whole number 0..1000, got -1" in broken.err
    assert infra(cli, bad, "plan").code == 2


def test_iam_policy_role_infra_plan_is_enough_to_plan_and_not_to_apply(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path, as_user
) -> None:
    path = write(tmp_path, {**settings(account, queues__bulk__fair_share=FAIR), "logs": {"retention_days": 30}})
    printed = cli("--config", str(path), "iam-policy", "--role", "infra-plan", "--account", "123456789012")
    assert printed.code == 0, printed.err
    policy = printed.json()
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions and all(a.split(":")[1].startswith(("Describe", "List", "Get")) for a in actions), actions
    as_user(policy)
    planned = infra(cli, path, "plan", "--detailed-exitcode")
    assert planned.code == 2, planned.err
    refused = infra(cli, path, "apply")
    assert refused.code == 1 and "AccessDenied" in refused.err
    assert moto.received["CreateComputeEnvironment"] == []
