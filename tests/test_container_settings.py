"""Issue 22's container settings end to end: declared in Nix, rendered, checked against botocore's model of the call,
registered and submitted to moto over HTTP (read back at the proxy, where moto keeps fields it does not model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Moto, botocore_has, write_job

EVERYTHING = """{
  queue = "default";
  command = [ "etl" ];
  image = "busybox:1.36";
  jobRoleArn = "arn:aws:iam::123456789012:role/etl";
  volumes = {
    data = {
      mountPoint = "/data";
      readOnly = true;
      efs = { fileSystemId = "fs-0123abcd"; accessPointId = "fsap-0123456789abcdef0"; iam = true; };
    };
    scratch = { mountPoint = "/scratch"; hostPath = "/mnt/scratch"; };
  };
  sharedMemorySize = 1024;
  tmpfs = { "/tmp" = 512; "/cache" = { size = 256; mountOptions = [ "noexec" "mode=1777" ]; }; };
  initProcessEnabled = true;
  maxSwap = 2048;
  swappiness = 10;
  ulimits = { nofile = 65536; nproc = { soft = 1024; hard = 4096; }; };
  user = "1000:1000";
  readonlyRootFilesystem = true;
  logGroup = "/teams/etl";
  runTags = { team = "observes"; };
  consumes = { db-connections = 2; };
}"""

FARGATE = """{
  queue = "default";
  command = [ "etl" ];
  image = "busybox:1.36";
  platform = "FARGATE";
  vcpus = 1;
  executionRoleArn = "arn:aws:iam::123456789012:role/exec";
  ephemeralStorage = 100;
  platformVersion = "1.4.0";
  initProcessEnabled = true;
  volumes.data = { mountPoint = "/data"; efs = { fileSystemId = "fs-0123abcd"; rootDirectory = "/exports"; }; };
}"""

CONFIG = {
    "region": "us-east-1",
    "queue": "default",
    "tags": {"project": "etl"},
    "logs": {"stream_prefix": "etl"},
    "consumable_resources": {"db-connections": {"total": 4}},
}


NEW_BOTOCORE = pytest.mark.skipif(
    not botocore_has("RegisterJobDefinition", "consumableResourceProperties"),
    reason="this botocore predates consumable resources (the lowest supported does)",
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_job(tmp_path / "jobs", "everything", EVERYTHING)
    write_job(tmp_path / "jobs", "fargate", FARGATE)
    (tmp_path / "compute-on-aws.yaml").write_text(json.dumps(CONFIG))
    return tmp_path


def run(cli, project: Path, *args: str) -> Any:
    return cli("--config", str(project / "compute-on-aws.yaml"), "--jobs", str(project / "jobs"), *args)


def valid_for_botocore(operation: str, request: dict[str, Any]) -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("batch")
    validate_parameters(request, model.operation_model(operation).input_shape)


@NEW_BOTOCORE
def test_every_setting_renders_as_batch_takes_it(cli, project: Path) -> None:
    result = run(cli, project, "queue", "--dry-run", "--json", "everything", "2026-12-07")
    assert result.code == 0, result.err
    [job] = result.queued()
    definition, request = job["definition"], job["request"]
    valid_for_botocore("RegisterJobDefinition", definition)
    valid_for_botocore("SubmitJob", request)
    container = definition["containerProperties"]
    assert container["volumes"] == [
        {
            "name": "data",
            "efsVolumeConfiguration": {
                "fileSystemId": "fs-0123abcd",
                "transitEncryption": "ENABLED",
                "authorizationConfig": {"iam": "ENABLED", "accessPointId": "fsap-0123456789abcdef0"},
            },
        },
        {"name": "scratch", "host": {"sourcePath": "/mnt/scratch"}},
    ]
    assert container["mountPoints"] == [
        {"sourceVolume": "data", "containerPath": "/data", "readOnly": True},
        {"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": False},
    ]
    assert container["linuxParameters"] == {
        "sharedMemorySize": 1024,
        "tmpfs": [
            {"containerPath": "/cache", "size": 256, "mountOptions": ["noexec", "mode=1777"]},
            {"containerPath": "/tmp", "size": 512},
        ],
        "initProcessEnabled": True,
        "maxSwap": 2048,
        "swappiness": 10,
    }
    assert container["ulimits"] == [
        {"name": "nofile", "softLimit": 65536, "hardLimit": 65536},
        {"name": "nproc", "softLimit": 1024, "hardLimit": 4096},
    ]
    assert container["user"] == "1000:1000" and container["readonlyRootFilesystem"] is True
    # The job's group, the config's stream prefix.
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/teams/etl", "awslogs-stream-prefix": "etl"},
    }
    assert definition["consumableResourceProperties"] == {
        "consumableResourceList": [{"consumableResource": "db-connections", "quantity": 2}]
    }
    assert request["tags"] == {
        "compute-on-aws:job": "everything",
        "compute-on-aws:args": "2026-12-07",
        "team": "observes",
    }


@NEW_BOTOCORE
def test_fargate_settings_render_as_fargate_takes_them(cli, project: Path) -> None:
    result = run(cli, project, "render", "--json", "fargate")
    assert result.code == 0, result.err
    [job] = result.queued()
    definition = job["definition"]
    valid_for_botocore("RegisterJobDefinition", definition)
    container = definition["containerProperties"]
    assert container["ephemeralStorage"] == {"sizeInGiB": 100}
    assert container["fargatePlatformConfiguration"] == {"platformVersion": "1.4.0"}
    assert container["linuxParameters"] == {"initProcessEnabled": True}
    assert container["volumes"][0]["efsVolumeConfiguration"] == {
        "fileSystemId": "fs-0123abcd",
        "transitEncryption": "ENABLED",
        "rootDirectory": "/exports",
    }
    # A registry image may hold several architectures: Fargate's default is left to it.
    assert "runtimePlatform" not in container


@NEW_BOTOCORE
def test_moto_registers_and_submits_every_setting_as_sent(
    cli, moto: Moto, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
    result = run(cli, project, "--backend", "aws", "queue", "--json", "everything", "full")
    assert result.code == 0, result.err
    [job] = result.queued()
    assert job["outcome"] == "submitted"
    [registered] = moto.registered()
    sent = {k: v for k, v in job["definition"].items()}
    assert registered == sent
    described = moto.client("batch").describe_job_definitions(jobDefinitionName="everything")["jobDefinitions"]
    assert described[0]["containerProperties"]["volumes"] == sent["containerProperties"]["volumes"]
    [submitted] = moto.submitted()
    assert submitted["tags"] == {
        "compute-on-aws:job": "everything",
        "compute-on-aws:args": "full",
        "compute-on-aws:commit": "0123456789abcdef0123456789abcdef01234567",
        "team": "observes",
    }
    # Queued again with the same settings: the same definition, no new revision.
    again = run(cli, project, "--backend", "aws", "queue", "--json", "everything", "other")
    assert again.code == 0, again.err
    assert len(moto.registered()) == 1


def test_efs_iam_without_a_job_role_is_one_line(cli, project: Path) -> None:
    text = EVERYTHING.replace('jobRoleArn = "arn:aws:iam::123456789012:role/etl";', "")
    write_job(project / "jobs", "everything", text)
    result = run(cli, project, "render", "everything")
    assert (result.code, result.err) == (
        2,
        "error: everything: volumes: data: efs.iam: EFS authorizes the job role, and this job has none; declare "
        "jobRoleArn or set roles.job in compute-on-aws.yaml\n",
    )


def test_51_tags_on_a_run_are_refused_before_anything_is_sent(cli, project: Path) -> None:
    config = {**CONFIG, "tags": {f"c{i}": "v" for i in range(49)}}
    (project / "compute-on-aws.yaml").write_text(json.dumps(config))
    result = run(cli, project, "queue", "--dry-run", "everything")
    assert result.code == 2
    assert result.err == (
        "error: everything: with propagateTags, the job and definition carry 51 tags; AWS fails jobs over 50\n"
    )


GOLDEN = Path(__file__).parent / "golden" / "container-settings.tf.json"


def test_the_terraform_export_holds_every_setting_and_what_the_jobs_need(cli, project: Path) -> None:
    """The two jobs as Terraform JSON. Regenerate after a deliberate change (look at the diff first) with
    `python tests/test_container_settings.py`, which writes the project of this file and exports it."""
    result = run(cli, project, "infra", "export", "--format", "terraform")
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        "note: the consumableResourceProperties of everything are not in the export (no argument of hashicorp/aws's "
        "aws_batch_job_definition known here sets it): queue registers them, or set them beside Terraform"
    ]
    assert result.out == GOLDEN.read_text()
    document = json.loads(result.out)
    resources = document["resource"]
    assert resources["awscc_batch_consumable_resource"]["db-connections"] == {
        "consumable_resource_name": "db-connections",
        "total_quantity": 4,
        "resource_type": "REPLENISHABLE",
        "tags": {"project": "etl", "compute-on-aws:infra": "default"},
    }
    assert document["terraform"]["required_providers"]["awscc"]["source"] == "hashicorp/awscc"
    assert set(resources["aws_cloudwatch_log_group"]) == {"batch_jobs", "teams_etl"}
    container = json.loads(resources["aws_batch_job_definition"]["everything"]["container_properties"])
    assert container["volumes"][0]["efsVolumeConfiguration"]["fileSystemId"] == "fs-0123abcd"
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/teams/etl"
    fargate = json.loads(resources["aws_batch_job_definition"]["fargate"]["container_properties"])
    assert fargate["ephemeralStorage"] == {"sizeInGiB": 100}


if __name__ == "__main__":
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_job(root / "jobs", "everything", EVERYTHING)
        write_job(root / "jobs", "fargate", FARGATE)
        (root / "compute-on-aws.yaml").write_text(json.dumps(CONFIG))
        command = [sys.executable, "-m", "compute_on_aws", "--config", str(root / "compute-on-aws.yaml")]
        command += ["--jobs", str(root / "jobs"), "infra", "export", "--format", "terraform", "-o", str(GOLDEN)]
        subprocess.run(command, check=True)
