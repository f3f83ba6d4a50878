"""`infra cleanup`: old revisions of this project's job definitions deregistered, against moto over HTTP; kept are the
newest --keep, any an active job or a schedule uses, and every revision compute-on-aws did not register."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Moto, Script, write_job

from compute_on_aws.infra.apply import revisions_in_use

JOB = '{{ queue = "default"; command = [ "etl" ]; image = "busybox"; env.V = "{v}"; }}'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "compute-on-aws.yaml").write_text("region: us-east-1\n")
    return tmp_path


def run(cli, project: Path, *args: str) -> Any:
    return cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"), "--backend", "aws",
               *args)  # fmt: skip


def revisions(moto: Moto) -> list[int]:
    # The shim's client: its key still works once moto checks IAM policies (as_user).
    batch = moto.shim.client("batch")
    found = batch.describe_job_definitions(jobDefinitionName="etl", status="ACTIVE")["jobDefinitions"]
    return sorted(d["revision"] for d in found)


def test_cleanup_keeps_the_newest_those_in_use_and_others_and_deregisters_the_rest(
    cli, moto: Moto, project: Path
) -> None:
    # Revision 1: another tool's (no content hash). Then four changes of the job, each a revision of ours; the
    # second one's job stays queued.
    moto.client("batch").register_job_definition(
        jobDefinitionName="etl",
        type="container",
        containerProperties={"image": "busybox", "command": ["x"], "vcpus": 1, "memory": 512},
    )
    for v in range(1, 5):
        write_job(project / "jobs", "etl", JOB.format(v=v))
        if v == 2:
            moto.shim.scripts["etl_held"] = Script(path=[("RUNNABLE", 0.0)], hold=True)
            assert run(cli, project, "queue", "etl", "held").code == 0
        else:
            assert run(cli, project, "queue", "etl", f"run{v}").code == 0
    assert revisions(moto) == [1, 2, 3, 4, 5]
    moto.proxy.clear()
    plan = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"),
               "infra", "cleanup", "--keep", "1")  # fmt: skip
    assert plan.code == 0, plan.err
    lines = plan.out.splitlines()
    assert lines[0] == "  etl:5: keep (among the 1 newest)"
    assert lines[1] == "- etl:4: deregister (older, and used by no active job or schedule)"
    assert lines[2].startswith("  etl:3: keep (used by job ") and lines[2].endswith(" (RUNNABLE))")
    assert lines[3] == "- etl:2: deregister (older, and used by no active job or schedule)"
    assert lines[4] == "  etl:1: keep (not registered by compute-on-aws)"
    assert lines[5] == "2 to deregister, 3 kept; 0 image tags to delete"
    assert moto.proxy.received["DeregisterJobDefinition"] == 0  # a plan changes nothing
    applied = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"),
                  "infra", "cleanup", "--keep", "1", "--apply", "--json")  # fmt: skip
    assert applied.code == 0, applied.err
    done = [r["definition"] for r in applied.json()["revisions"] if r["done"]]
    assert done == ["etl:4", "etl:2"]
    assert revisions(moto) == [1, 3, 5]
    again = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"),
                "infra", "cleanup", "--keep", "1", "--apply")  # fmt: skip
    assert again.out.splitlines()[-1] == "0 deregistered, 3 kept; 0 image tags deleted"


def test_a_keep_of_0_is_one_line_and_nothing_is_called(cli, moto: Moto, project: Path) -> None:
    write_job(project / "jobs", "etl", JOB.format(v=1))
    moto.proxy.clear()
    result = cli("--jobs", str(project / "jobs"), "infra", "cleanup", "--keep", "0")
    assert result.code == 2
    assert result.err == (
        "error: --keep: expected a whole number of at least 1 (the newest revision is always kept), got 0\n"
    )
    assert moto.proxy.received == {}


def test_a_schedule_pins_the_revision_it_submits() -> None:
    schedule = {"Target": {"Input": json.dumps({"JobDefinition": "etl:7", "JobName": "etl_scheduled"})}}
    assert revisions_in_use(None, [], {"etl-0": schedule, "broken": {"Target": {"Input": "{"}}}) == {  # type: ignore[arg-type]
        "etl:7": "schedule etl-0"
    }


def test_the_infra_policy_is_enough_to_clean_up(cli, moto: Moto, project: Path, as_user) -> None:
    for v in range(1, 4):
        write_job(project / "jobs", "etl", JOB.format(v=v))
        assert run(cli, project, "queue", "etl", f"run{v}").code == 0
    printed = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"),
                  "iam-policy", "--role", "infra", "--account", "123456789012")  # fmt: skip
    assert printed.code == 0, printed.err
    statements = {s["Sid"]: s for s in printed.json()["Statement"]}
    assert statements["CleanUpDefinitions"]["Resource"] == ["arn:aws:batch:us-east-1:123456789012:job-definition/etl:*"]
    as_user(printed.json())
    applied = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"),
                  "infra", "cleanup", "--keep", "1", "--apply")  # fmt: skip
    assert applied.code == 0, applied.err
    assert revisions(moto) == [3]


ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_image_tags_no_kept_revision_names_are_deleted_from_ecr_and_no_others(cli, moto: Moto, tmp_path: Path) -> None:
    """Revisions as compute-on-aws registers Nix-built images' (a content hash, `<job>-<Nix hash>` tags), registered
    here directly; the images pushed to moto's ECR."""
    (tmp_path / "compute-on-aws.yaml").write_text(f"region: us-east-1\nimage:\n  registry: {ECR}\n  repository: jobs\n")
    write_job(tmp_path / "jobs", "etl", JOB.format(v=1))
    ecr, batch = moto.client("ecr"), moto.client("batch")
    ecr.create_repository(repositoryName="jobs")
    hashes = [f"{i:032d}" for i in range(1, 4)]
    for n, tag in enumerate([*(f"etl-{h}" for h in hashes), "latest", "other-job-" + "f" * 32]):
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": f"sha256:{n:064d}"},
        }
        ecr.put_image(repositoryName="jobs", imageManifest=json.dumps(manifest), imageTag=tag)
    for h in hashes:
        batch.register_job_definition(
            jobDefinitionName="etl",
            type="container",
            parameters={"computeOnAwsHash": h},
            containerProperties={"image": f"{ECR}/jobs:etl-{h}", "command": ["etl"], "vcpus": 1, "memory": 512},
        )
    printed = cli("--jobs", str(tmp_path / "jobs"), "--config", str(tmp_path / "compute-on-aws.yaml"),
                  "iam-policy", "--role", "infra", "--account", "123456789012")  # fmt: skip
    statements = {s["Sid"]: s for s in printed.json()["Statement"]}
    assert statements["CleanUpImages"]["Resource"] == ["arn:aws:ecr:us-east-1:123456789012:repository/jobs"]
    moto.proxy.clear()
    args = ("--jobs", str(tmp_path / "jobs"), "--config", str(tmp_path / "compute-on-aws.yaml"), "infra", "cleanup")
    plan = cli(*args, "--keep", "2")
    assert plan.code == 0, plan.err
    assert f"- image etl-{hashes[0]}: delete (named by no revision kept)" in plan.out.splitlines()
    assert f"  image etl-{hashes[2]}: keep (named by a revision kept)" in plan.out.splitlines()
    assert "  image latest: keep (not pushed by compute-on-aws for these jobs)" in plan.out.splitlines()
    assert plan.out.splitlines()[-1] == "1 to deregister, 2 kept; 1 image tags to delete"
    assert moto.proxy.received["BatchDeleteImage"] == 0
    applied = cli(*args, "--keep", "2", "--apply")
    assert applied.code == 0, applied.err
    left = sorted(i["imageTag"] for i in ecr.list_images(repositoryName="jobs")["imageIds"] if "imageTag" in i)
    assert left == sorted([f"etl-{hashes[1]}", f"etl-{hashes[2]}", "latest", "other-job-" + "f" * 32])
    assert cli(*args, "--keep", "2").out.splitlines()[-1] == "0 to deregister, 2 kept; 0 image tags to delete"


def test_only_tags_of_the_declared_jobs_shape_are_this_project_s() -> None:
    from compute_on_aws.infra.cleanup import _ours

    h = "a" * 32
    assert _ours(f"etl-{h}", ["etl"]) and not _ours(f"e-{h}", ["etl"]) and not _ours("etl-latest", ["etl"])
    long = "j" * 200
    assert _ours(f"{long[:95]}-{h}", [long]) and not _ours(f"{long[:94]}-{h}", [long])
