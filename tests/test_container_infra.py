"""What the jobs' container settings need from the account, kept by `infra apply` against moto over HTTP: the log
groups the definitions name (with the declared retention) and the consumable resources (moto lacks them: the shim in
front of it keeps them, tests/batchshim.py); and the IAM policies that name exactly those."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Moto, botocore_has, write_job
from test_infra import settings

MANAGED = "compute-on-aws:infra"
NEW_BOTOCORE = pytest.mark.skipif(
    not botocore_has("CreateConsumableResource"), reason="this botocore predates consumable resources"
)


def project(tmp_path: Path, account: dict[str, str], **extra: Any) -> Path:
    config = {
        **settings(account),
        "logs": {"group": "/teams/etl", "retention_days": 30},
        "consumable_resources": {"db": {"total": 2}, "licence": {"total": 1, "replenishable": False}},
        **extra,
    }
    (tmp_path / "compute-on-aws.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_job(
        tmp_path / "jobs",
        "load",
        '{ queue = "high"; command = [ "load" ]; image = "busybox:1.36"; logGroup = "/teams/load"; consumes.db = 1; }',
    )
    write_job(tmp_path / "jobs", "report", '{ queue = "high"; command = [ "report" ]; image = "busybox:1.36"; }')
    return tmp_path


def infra(cli, root: Path, *args: str) -> Any:
    return cli("--jobs", str(root / "jobs"), "infra", args[0], "--config", str(root / "compute-on-aws.yaml"), *args[1:])


@NEW_BOTOCORE
def test_apply_creates_the_jobs_log_groups_and_consumable_resources_once(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    root = project(tmp_path, account)
    plan = infra(cli, root, "plan")
    assert plan.code == 0, plan.err
    # The three groups are read in one call (logGroupIdentifiers; a botocore this new has it).
    assert moto.proxy.received["DescribeLogGroups"] == 1
    lines = plan.out.splitlines()
    for line in (
        "+ log group /aws/batch/job: retention 30 days",
        "+ log group /teams/etl: retention 30 days",
        "+ log group /teams/load: retention 30 days",
        "+ consumable resource db: total 2; REPLENISHABLE",
        "+ consumable resource licence: total 1; NON_REPLENISHABLE",
    ):
        assert line in lines
    applied = infra(cli, root, "apply")
    assert applied.code == 0, applied.err
    groups = {g["logGroupName"]: g for g in moto.client("logs").describe_log_groups()["logGroups"]}
    assert {name: g.get("retentionInDays") for name, g in groups.items()} == {
        "/aws/batch/job": 30,
        "/teams/etl": 30,
        "/teams/load": 30,
    }
    made = moto.shim.consumables
    assert {n: (r["totalQuantity"], r["resourceType"]) for n, r in made.items()} == {
        "db": (2, "REPLENISHABLE"),
        "licence": (1, "NON_REPLENISHABLE"),
    }
    assert made["db"]["tags"] == {"team": "observes", MANAGED: "default"}
    again = infra(cli, root, "plan")
    assert again.out.splitlines()[-1].startswith("0 to create, 0 to update, 0 to replace, 0 to delete")


@NEW_BOTOCORE
def test_a_new_total_is_set_in_place_a_new_kind_replaces_and_prune_deletes_only_its_own(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    root = project(tmp_path, account)
    assert infra(cli, root, "apply").code == 0
    moto.shim.consumables["theirs"] = {"consumableResourceName": "theirs", "totalQuantity": 9, "tags": {}}
    changed = {"db": {"total": 5}, "licence": {"total": 1}}
    root = project(tmp_path, account, consumable_resources=changed)
    plan = infra(cli, root, "plan").out.splitlines()
    assert "~ consumable resource db: total: 2 -> 5" in plan
    assert (
        "-/+ consumable resource licence: resource_type: NON_REPLENISHABLE -> REPLENISHABLE (Batch cannot change it)"
        in plan
    )
    assert infra(cli, root, "apply").code == 0
    made = moto.shim.consumables
    assert (made["db"]["totalQuantity"], made["licence"]["resourceType"]) == (5, "REPLENISHABLE")
    root = project(tmp_path, account, consumable_resources={"db": {"total": 5}})
    pruned = infra(cli, root, "apply", "--prune")
    assert pruned.code == 0, pruned.err
    assert "deleted consumable resource licence" in pruned.out
    assert sorted(made) == ["db", "theirs"]


def test_bad_consumable_resources_are_one_line_each_and_nothing_is_called(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    bad = {"db": {"total": -1}, "a b": {"total": 1}, "lic": {"total": 1, "replenishable": "yes"}, "x": 3}
    root = project(tmp_path, account, consumable_resources=bad)
    result = infra(cli, root, "plan")
    assert result.code == 2
    where = f"{root / 'compute-on-aws.yaml'}"
    assert result.err.splitlines() == [
        f"error: {where}: consumable_resources.db.total: expected a whole number 0..2147483647, got -1",
        f"error: {where}: consumable_resources.a b: a consumable resource name is 1-128 letters, digits, - or _",
        f"error: {where}: consumable_resources.lic.replenishable: expected true or false, got 'yes'",
        f"error: {where}: consumable_resources.x: expected {{total: <count>, replenishable: true}}, got 3",
    ]
    assert moto.proxy.received == {}


def test_the_policies_name_exactly_the_log_groups_and_file_systems_the_jobs_need(cli, tmp_path: Path) -> None:
    (tmp_path / "compute-on-aws.yaml").write_text(
        yaml.safe_dump(
            {"region": "us-east-1", "logs": {"group": "/teams/etl"}, "consumable_resources": {"db": {"total": 1}}}
        )
    )
    write_job(
        tmp_path / "jobs",
        "load",
        '{ queue = "q"; command = [ "load" ]; image = "busybox:1.36"; logGroup = "/teams/load"; '
        'jobRoleArn = "arn:aws:iam::123456789012:role/load"; '
        'volumes.input = { mountPoint = "/in"; readOnly = true; '
        'efs = { fileSystemId = "fs-0123abcd"; iam = true; }; }; '
        'volumes.out = { mountPoint = "/out"; '
        'efs = { fileSystemId = "fs-4567abcd"; accessPointId = "fsap-0123456789abcdef0"; iam = true; }; }; '
        'volumes.plain = { mountPoint = "/p"; efs.fileSystemId = "fs-89abcdef"; }; '
        'secrets.DB = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:password::"; '
        'secrets.API = "/etl/api-key"; }',
    )
    write_job(tmp_path / "jobs", "report", '{ queue = "q"; command = [ "report" ]; image = "busybox:1.36"; }')

    def policy(role: str) -> dict[str, Any]:
        printed = cli(
            "--jobs",
            str(tmp_path / "jobs"),
            "--config",
            str(tmp_path / "compute-on-aws.yaml"),
            "iam-policy",
            "--role",
            role,
            "--account",
            "123456789012",
        )
        assert printed.code == 0, printed.err
        return {s["Sid"]: s for s in printed.json()["Statement"]}

    efs = "arn:aws:elasticfilesystem:us-east-1:123456789012"
    # Read-only: mount, not write; with an access point: only through it; without iam: nothing to grant.
    assert policy("job") == {
        "MountFs0123abcd": {
            "Sid": "MountFs0123abcd",
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount"],
            "Resource": [f"{efs}:file-system/fs-0123abcd"],
        },
        "MountFs4567abcdFsap0123456789abcdef0": {
            "Sid": "MountFs4567abcdFsap0123456789abcdef0",
            "Effect": "Allow",
            "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            "Resource": [f"{efs}:file-system/fs-4567abcd"],
            "Condition": {
                "StringEquals": {"elasticfilesystem:AccessPointArn": f"{efs}:access-point/fsap-0123456789abcdef0"}
            },
        },
    }
    logs = "arn:aws:logs:us-east-1:123456789012:log-group"
    execution = policy("execution")
    assert execution["WriteJobLogs"]["Resource"] == [
        f"{logs}:/teams/etl:log-stream:*",
        f"{logs}:/teams/load:log-stream:*",
    ]
    assert execution["ReadSecrets"]["Resource"] == ["arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"]
    assert execution["ReadParameters"]["Resource"] == ["arn:aws:ssm:us-east-1:123456789012:parameter/etl/api-key"]
    submitter = policy("submitter")
    assert submitter["ReadJobLogs"]["Resource"] == [
        f"{logs}:/teams/etl:log-stream:*",
        f"{logs}:/teams/load:log-stream:*",
    ]
    infra_policy = policy("infra")
    assert infra_policy["KeepJobLogGroups"]["Resource"] == [f"{logs}:/teams/etl", f"{logs}:/teams/load"]
    assert infra_policy["KeepConsumableResources"]["Resource"] == [
        "arn:aws:batch:us-east-1:123456789012:consumable-resource/db"
    ]


def test_a_job_that_does_not_evaluate_is_said_and_the_rest_is_planned(
    cli, moto: Moto, account: dict[str, str], tmp_path: Path
) -> None:
    root = project(tmp_path, account, consumable_resources={})
    write_job(root / "jobs", "broken", '{ queue = 3; command = [ "x" ]; image = "busybox:1.36"; }')
    plan = infra(cli, root, "plan")
    assert plan.code == 0, plan.err
    assert plan.err == (
        "note: broken did not evaluate: the log groups they name are not planned (compute-on-aws jobs shows why)\n"
    )
    assert "+ log group /teams/load: retention 30 days" in plan.out.splitlines()
