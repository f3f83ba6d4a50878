"""Job declarations -> manifest, through real Nix (pure evaluation, no nixpkgs), as `compute-on-aws jobs` runs it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, nix_value, pure_manifest, write_job

from compute_on_aws.declared.manifest import parse_manifest
from compute_on_aws.errors import UserError
from compute_on_aws.nix import evaluate_jobs

BASE = 'queue = "q"; command = [ "true" ]; image = "busybox:1.36";'

# (job, attributes added to BASE, the exact problem reported for it)
INVALID = [
    ("vcpus-zero", "vcpus = 0;", "vcpus-zero: vcpus: must be > 0, got 0"),
    ("vcpus-string", 'vcpus = "2";', 'vcpus-string: vcpus: must be a number, got "2"'),
    ("vcpus-fraction-ec2", "vcpus = 0.5;", "vcpus-fraction-ec2: vcpus: must be a whole number on EC2"),
    ("memory-small", "memory = 2;", "memory-small: memory: must be >= 4, got 2"),
    ("gpus-negative", "gpus = -1;", "gpus-negative: gpus: must be >= 0, got -1"),
    ("attempts-11", "attempts = 11;", "attempts-11: attempts: must be between 1 and 10, got 11"),
    ("attempts-0", "attempts = 0;", "attempts-0: attempts: must be between 1 and 10, got 0"),
    ("timeout-59", "attemptDurationSeconds = 59;", "timeout-59: attemptDurationSeconds: must be >= 60, got 59"),
    ("parallel-0", "parallel = 0;", "parallel-0: parallel: must be between 1 and 10000, got 0"),
    ("parallel-big", "parallel = 10001;", "parallel-big: parallel: must be between 1 and 10000, got 10001"),
    ("queue-space", 'queue = "a b";', "queue-space: queue: must be a queue name"),
    ("definition-bad", 'definitionName = "-x";', "definition-bad: definitionName: must be 1-128 letters"),
    ("platform-k8s", 'platform = "EKS";', 'platform-k8s: platform: must be "EC2" or "FARGATE", got "EKS"'),
    ("priority-big", "schedulingPriority = 10000;", "priority-big: schedulingPriority: must be between 0 and 9999"),
    ("share-bad", 'shareIdentifier = "a b";', "share-bad: shareIdentifier: must be 1-255 letters"),
    ("role-bad", 'jobRoleArn = "admin";', "role-bad: jobRoleArn: must be an IAM role ARN"),
    (
        "exec-role-bad",
        'executionRoleArn = "arn:aws:s3:::b";',
        "exec-role-bad: executionRoleArn: must be an IAM role ARN",
    ),
    ("tags-aws", 'tags."aws:owner" = "me";', 'tags-aws: tags: tag key "aws:owner": the aws: prefix is reserved'),
    ("tags-long", f'tags.k = "{"v" * 257}";', "tags-long: tags: k: is longer than 256 characters"),
    (
        "tags-51",
        'tags = builtins.listToAttrs (builtins.genList (i: { name = "k${toString i}"; value = "v"; }) 51);',
        "tags-51: tags: has 51 tags; AWS allows 50",
    ),
    (
        "env-number",
        "env.PORT = 8080;",
        "env-number: env: PORT: must be a string (write numbers and booleans in quotes)",
    ),
    ("env-reserved", 'env.AWS_BATCH_X = "1";', 'env-reserved: env: "AWS_BATCH_X": names starting with AWS_BATCH'),
    ("env-name", 'env."a-b" = "1";', 'env-name: env: "a-b" is not a valid variable name'),
    ("environment-str", 'environment = "HOME";', "environment-str: environment: must be a list of variable names"),
    ("environment-dup", 'environment = [ "A" "A" ];', 'environment-dup: environment: lists "A" more than once'),
    (
        "credential",
        'environment = [ "GITLAB_TOKEN" ];',
        'credential: environment: "GITLAB_TOKEN" looks like a credential and would travel in plain text; '
        'declare it under secrets (secrets.GITLAB_TOKEN = "arn:aws:secretsmanager:...") or, if it is not secret, '
        "list it in plaintextCredentials",
    ),
    (
        "plaintext-unknown",
        'plaintextCredentials = [ "X" ];',
        'plaintext-unknown: plaintextCredentials: "X" is not in environment',
    ),
    ("secret-url", 'secrets.DB = "https://vault";', "secret-url: secrets: DB: must be a Secrets Manager ARN"),
    (
        "twice",
        'environment = [ "A" ]; env.A = "1";',
        'twice: environment: "A" is declared more than once across environment, env and secrets',
    ),
    (
        "retry-many",
        'retryRules = builtins.genList (i: { onExitCode = "1"; action = "retry"; }) 6;',
        "retry-many: retryRules: has 6 rules; AWS allows 5",
    ),
    (
        "retry-action",
        'retryRules = [ { onExitCode = "1"; action = "again"; } ];',
        'retry-action: retryRules: rule 1: action must be "retry" or "exit", got "again"',
    ),
    (
        "retry-empty",
        'retryRules = [ { action = "exit"; } ];',
        "retry-empty: retryRules: rule 1: needs at least one of onStatusReason, onReason, onExitCode",
    ),
    (
        "retry-code",
        'retryRules = [ { onExitCode = "1x"; action = "exit"; } ];',
        'retry-code: retryRules: rule 1: onExitCode: must be digits optionally ending in *, got "1x"',
    ),
    (
        "retry-typo",
        'retryRules = [ { onExit = "1"; action = "exit"; } ];',
        "retry-typo: retryRules: rule 1: unknown attribute onExit",
    ),
    (
        "fargate-size",
        'platform = "FARGATE"; vcpus = 3;',
        "fargate-size: vcpus: Fargate takes 0.25, 0.5, 1, 2, 4, 8 or 16, got 3",
    ),
    (
        "fargate-memory",
        'platform = "FARGATE"; vcpus = 1; memory = 1024;',
        "fargate-memory: memory: Fargate with 1 vCPU takes one of 2048, 3072, 4096, 5120, 6144, 7168, 8192 MiB, "
        "got 1024",
    ),
    (
        "fargate-gpu",
        'platform = "FARGATE"; vcpus = 1; memory = 2048; gpus = 1;',
        'fargate-gpu: gpus: Fargate has no GPUs; use platform = "EC2"',
    ),
    ("typo", "vcpu = 2;", "typo: vcpu: unknown attribute (did you mean vcpus?)"),
    ("bool-str", 'allowDuplicates = "yes";', 'bool-str: allowDuplicates: must be true or false, got "yes"'),
    ("command-empty", "command = [ ];", "command-empty: command: must be a non-empty list of strings, got a list"),
    ("description-int", "description = 1;", "description-int: description: must be a string, got 1"),
    (
        "after-str",
        'after = "fine";',
        'after-str: after: must be a list of job names (folders of the jobs folder), got "fine"',
    ),
    ("after-unknown", 'after = [ "fine" "nope" ];', 'after-unknown: after: no job named "nope" in the jobs folder'),
    ("after-self", 'after = [ "after-self" ];', "after-self: after: a job cannot run after itself"),
    ("after-dup", 'after = [ "fine" "fine" ];', 'after-dup: after: lists "fine" more than once'),
    (
        "after-type",
        'after = [ { job = "fine"; type = "ONE_TO_ONE"; } ];',
        'after-type: after: type: must be "N_TO_N", got "ONE_TO_ONE"',
    ),
    (
        "after-n-to-n",
        'parallel = 3; after = [ { job = "array"; type = "N_TO_N"; } ];',
        "after-n-to-n: after: array: N_TO_N pairs array children, so both jobs need the same parallel (2 or more); "
        "this one has 3, array has 4",
    ),
    (
        "sequential-single",
        "sequential = true;",
        "sequential-single: sequential: runs the children of an array one at a time, and this job is no array",
    ),
    (
        "after-21",
        'after = builtins.genList (i: "j${toString i}") 21;',
        "after-21: after: lists 21 jobs; AWS allows 20 dependencies per job",
    ),
    # Container settings, checked where AWS checks them (issue 22's bad values among them).
    (
        "efs-id",
        'volumes.data = { mountPoint = "/data"; efs.fileSystemId = "fs-12"; };',
        "efs-id: volumes: data: efs: fileSystemId: must be an EFS file system id (fs- and 8 to 40 hex digits), "
        'got "fs-12"',
    ),
    (
        "efs-both",
        'volumes.data = { mountPoint = "/data"; hostPath = "/srv"; efs.fileSystemId = "fs-0123abcd"; };',
        "efs-both: volumes: data: declare efs or hostPath (one of them)",
    ),
    (
        "efs-plain-iam",
        'volumes.d = { mountPoint = "/d"; efs = { fileSystemId = "fs-0123abcd"; iam = true; '
        "transitEncryption = false; }; };",
        "efs-plain-iam: volumes: d: efs: transitEncryption: EFS IAM authorization and access points need it",
    ),
    (
        "mount-relative",
        'volumes.d = { mountPoint = "data"; hostPath = "/srv"; };',
        'mount-relative: volumes: d: mountPoint: must be an absolute path (starting with /), got "data"',
    ),
    (
        "mount-twice",
        'volumes = { a = { mountPoint = "/d"; hostPath = "/a"; }; b = { mountPoint = "/d"; hostPath = "/b"; }; };',
        'mount-twice: volumes: two volumes mount at "/d"',
    ),
    ("tmpfs-0", 'tmpfs."/scratch" = 0;', "tmpfs-0: tmpfs: /scratch: size: must be between 1 and 2147483647, got 0"),
    (
        "tmpfs-option",
        'tmpfs."/s" = { size = 64; mountOptions = [ "exec" "bogus" ]; };',
        'tmpfs-option: tmpfs: /s: mountOptions: "bogus" is not a tmpfs mount option Batch accepts',
    ),
    (
        "storage-300",
        'platform = "FARGATE"; vcpus = 1; ephemeralStorage = 300;',
        "storage-300: ephemeralStorage: must be between 21 and 200, got 300",
    ),
    (
        "storage-ec2",
        "ephemeralStorage = 50;",
        "storage-ec2: ephemeralStorage: the task's disk size is Fargate's; EC2 jobs use the instance's",
    ),
    ("ulimit-name", "ulimits.nofiles = 1024;", 'ulimit-name: ulimits: "nofiles" is not a ulimit Batch knows'),
    (
        "ulimit-order",
        "ulimits.nofile = { soft = 2048; hard = 1024; };",
        "ulimit-order: ulimits: nofile: soft (2048) is above hard (1024)",
    ),
    ("swap-alone", "swappiness = 10;", "swap-alone: swappiness: needs maxSwap"),
    (
        "fargate-shm",
        'platform = "FARGATE"; vcpus = 1; sharedMemorySize = 256;',
        'fargate-shm: sharedMemorySize: Fargate has no sharedMemorySize; use platform = "EC2" or remove it',
    ),
    (
        "fargate-host",
        'platform = "FARGATE"; vcpus = 1; volumes.d = { mountPoint = "/d"; hostPath = "/srv"; };',
        "fargate-host: volumes: d: hostPath: Fargate has no host folders",
    ),
    (
        "fargate-old",
        'platform = "FARGATE"; vcpus = 1; platformVersion = "1.3.0"; '
        'volumes.d = { mountPoint = "/d"; efs.fileSystemId = "fs-0123abcd"; };',
        'fargate-old: platformVersion: EFS volumes need Fargate 1.4.0 or later, got "1.3.0"',
    ),
    ("user-space", 'user = "a b";', "user-space: user: must be a user name or uid"),
    ("log-group", 'logGroup = "a b";', "log-group: logGroup: must be a log group name"),
    (
        "run-tags-51",
        'runTags = builtins.listToAttrs (builtins.genList (i: { name = "r${toString i}"; value = "v"; }) 51);',
        "run-tags-51: runTags: has 51 tags; AWS allows 50",
    ),
    (
        "run-tags-47",
        'runTags = builtins.listToAttrs (builtins.genList (i: { name = "r${toString i}"; value = "v"; }) 47);',
        "run-tags-47: runTags: each run would carry 51 tags (47 runTags, 4 of compute-on-aws, and the definition's "
        "tags, as propagateTags is on); AWS allows 50",
    ),
    (
        "run-tags-own",
        'runTags."compute-on-aws:job" = "x";',
        "run-tags-own: runTags: compute-on-aws:job: the compute-on-aws: prefix is the tool's own",
    ),
    ("consumes-0", "consumes.licence = 0;", "consumes-0: consumes: licence: must be between 1 and 2147483647, got 0"),
]


def evaluate(cli, jobs: Path):
    result = cli("--jobs", str(jobs), "jobs", "--json")
    return result, result.json()


def test_every_invalid_declaration_is_reported_at_once(cli, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    for name, extra, _ in INVALID:
        write_job(jobs, name, f"{{ {BASE} }} // {{ {extra} }}")
    write_job(jobs, "fine", f"{{ {BASE} }}")
    write_job(jobs, "array", f"{{ {BASE} parallel = 4; }}")
    result, data = evaluate(cli, jobs)
    assert result.code == 2
    assert [j["name"] for j in data["jobs"]] == ["array", "fine"]
    for name, _, expected in INVALID:
        mine = [e for e in data["errors"] if e.startswith(f"{name}: ")]
        assert any(e.startswith(expected) for e in mine), f"{name}: expected {expected!r}, got {mine}"
        assert f"error: {mine[0]}" in result.err


def test_after_cycles_are_reported_on_each_job_of_the_cycle(cli, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "extract", f'{{ {BASE} after = [ "publish" ]; }}')
    write_job(jobs, "load", f'{{ {BASE} after = [ "extract" ]; }}')
    write_job(jobs, "publish", f'{{ {BASE} after = [ "load" ]; }}')
    write_job(jobs, "report", f'{{ {BASE} after = [ "publish" ]; }}')  # after a cycle, not in one
    result, data = evaluate(cli, jobs)
    assert result.code == 2
    assert data["errors"] == [
        "extract: after: publish runs (directly or not) after extract, a cycle",
        "load: after: extract runs (directly or not) after load, a cycle",
        "publish: after: load runs (directly or not) after publish, a cycle",
    ]
    assert [j["name"] for j in data["jobs"]] == ["report"]


def test_two_jobs_naming_one_definition_are_both_refused(cli, tmp_path: Path) -> None:
    """Each would register a revision over the other's whenever queued; a job whose definitionName is its own name
    is fine, as is a definitionName nobody else uses."""
    jobs = tmp_path / "jobs"
    write_job(jobs, "daily", f'{{ {BASE} definitionName = "etl"; }}')
    write_job(jobs, "hourly", f'{{ {BASE} definitionName = "etl"; }}')
    write_job(jobs, "weekly", f'{{ {BASE} definitionName = "weekly-etl"; }}')
    result, data = evaluate(cli, jobs)
    assert result.code == 2
    assert [j["name"] for j in data["jobs"]] == ["weekly"]
    assert data["errors"] == [
        f"{name}: definitionName: 'etl' is also the definition of {other}: each would register a revision over the "
        "other's whenever queued (give each job a definition name of its own)"
        for name, other in (("daily", "hourly"), ("hourly", "daily"))
    ]


def test_a_job_larger_than_any_instance_type_is_refused_without_compute_declared(cli, tmp_path: Path) -> None:
    """With no compute in the config nothing else bounds vcpus and memory: Batch would take the job and leave it
    RUNNABLE for ever."""
    jobs = tmp_path / "jobs"
    write_job(jobs, "huge", f"{{ {BASE} vcpus = 100000; memory = 99999999999; }}")
    write_job(jobs, "large", f"{{ {BASE} vcpus = 192; memory = 786432; }}")
    result = cli("--jobs", str(jobs), "--backend", "aws", "queue", "huge", "large", "--dry-run")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith("error: huge: vcpus 100000 (the most of any instance type: ")
    assert "memory 99999999999 MiB (the most of any instance type: " in line
    assert line.endswith("no EC2 instance can run it, and Batch would leave it RUNNABLE for ever")
    assert cli("--jobs", str(jobs), "--backend", "aws", "queue", "large", "--dry-run").code == 0


def test_program_rules(cli, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "neither", '{ queue = "q"; }')
    write_job(jobs, "both", '{ queue = "q"; command = [ "a" ]; image = "i"; entrypoint = { text = "a"; }; }')
    write_job(jobs, "no-image", '{ queue = "q"; command = [ "a" ]; }')
    write_job(jobs, "no-text", '{ queue = "q"; entrypoint = { runtimeInputs = [ ]; }; }')
    write_job(jobs, "script-typo", '{ queue = "q"; entrypoint = { text = "a"; runtimeInput = [ ]; }; }')
    _, data = evaluate(cli, jobs)
    assert sorted(data["errors"]) == [
        "both: program: declare entrypoint or command, not both",
        "neither: program: declare either entrypoint (a script or package built by Nix) or command (a list, run in "
        "image)",
        "no-image: image: required with command (the image that holds the program); or declare an entrypoint to have "
        "Nix build one",
        "no-text: entrypoint: text is required",
        "script-typo: entrypoint: unknown attribute runtimeInput (expected text, runtimeInputs)",
    ]


# Attributes of Makes' computeOnAwsBatch with no counterpart of that name: (job, attribute as Makes wrote it, the line
# `compute-on-aws jobs` prints), instead of "unknown attribute" or a misleading "did you mean".
MAKES = [
    (
        "etl-definition",
        'definition = "makes";',
        "etl-definition: definition: Makes' definition reused a job definition managed elsewhere; here the definition "
        "is built from this file (command and image, or entrypoint) and registered when it changes: remove definition "
        "(definitionName only renames the definition built here)",
    ),
    (
        "etl-next",
        'nextJob = { name = "load"; command = [ "load" ]; };',
        "etl-next: nextJob: Makes' nextJob declared the job to queue after this one; here that job gets a folder of "
        'its own, jobs/<its name>/default.nix, declaring after = [ "etl-next" ];',
    ),
    (
        "etl-setup",
        "setup = [ ];",
        "etl-setup: setup: Makes' setup sourced scripts (credentials, variables) before queueing; there is none here: "
        "credentials come from the shell that queues (AWS_PROFILE, AWS_REGION, ...), and the job's variables from "
        "environment, env and secrets",
    ),
    (
        "etl-dry",
        "dryRun = true;",
        "etl-dry: dryRun: Makes' dryRun made every run of the job a dry run; here it is chosen per run: compute-on-aws "
        "queue etl-dry --dry-run (or compute-on-aws render etl-dry)",
    ),
    (
        "etl-name",
        'name = "observesEtl";',
        "etl-name: name: Makes' name named the job; here a job is named after its folder (etl-name): remove name "
        "(definitionName names the job definition)",
    ),
]


@pytest.mark.parametrize(("job", "attribute", "line"), MAKES, ids=[m[1].split(" ")[0] for m in MAKES])
def test_an_attribute_of_makes_says_what_to_write_instead(
    cli, tmp_path: Path, job: str, attribute: str, line: str
) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, job, f"{{ {BASE} {attribute} }}")
    result, data = evaluate(cli, jobs)
    assert result.code == 2
    assert data["errors"] == [line]
    assert result.err == f"error: {line}\n"


def test_makes_attributes_are_reported_with_the_others(cli, tmp_path: Path) -> None:
    """A file carried over whole: one line per Makes attribute, next to the usual problems of the rest."""
    jobs = tmp_path / "jobs"
    write_job(jobs, "etl", f'{{ {BASE} definition = "makes"; setup = [ ]; vcpu = 2; attempts = 0; }}')
    _, data = evaluate(cli, jobs)
    assert [e.split(": ", 2)[1] for e in data["errors"]] == ["definition", "setup", "vcpu", "attempts"]
    assert "etl: vcpu: unknown attribute (did you mean vcpus?)" in data["errors"]


def test_folders_and_files_that_are_not_jobs(cli, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    (jobs / "empty").mkdir(parents=True)
    (jobs / "README.md").write_text("not a job")
    write_job(jobs, "list", "[ 1 ]")
    write_job(jobs, "bad name", f"{{ {BASE} }}")
    _, data = evaluate(cli, jobs)
    assert sorted(data["errors"]) == [
        "bad name: the folder name must be 1-128 letters, digits, - or _, starting with a letter or digit",
        "empty: default.nix: missing (every folder under the jobs folder is a job and needs one)",
        "list: must be an attribute set, or a function ({ pkgs, ... }: { ... }) returning one; got a list",
    ]


def test_nixpkgs_is_only_needed_for_entrypoints(cli, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(
        jobs,
        "script",
        '{ pkgs, ... }: { queue = "q"; entrypoint = { text = "${pkgs.jq}/bin/jq ."; runtimeInputs = [ pkgs.jq ]; }; }',
    )
    write_job(jobs, "package", '{ pkgs, ... }: { queue = "q"; entrypoint = pkgs.hello; }')
    write_job(jobs, "misuse", f"{{ pkgs, ... }}: {{ {BASE} memory = pkgs.memory; }}")
    _, data = evaluate(cli, jobs)
    assert data["errors"] == ["misuse: memory: could not be evaluated without nixpkgs (only entrypoint may use pkgs)"]
    assert [j["name"] for j in data["jobs"]] == ["package", "script"]
    assert {j["program"] for j in data["jobs"]} == {"entrypoint"}


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "minimal", f"{{ {BASE} }}")
    write_job(
        jobs,
        "named",
        '{ name, ... }: { queue = "q"; command = [ "echo" name ]; image = "i"; '
        'retryRules = [ { onExitCode = "137"; action = "RETRY"; } ]; }',
    )
    manifest = pure_manifest(jobs)
    assert manifest["version"] == 5 and manifest["errors"] == {} and manifest["hostSystem"] is None
    minimal = manifest["jobs"]["minimal"]
    assert minimal == {
        "name": "minimal",
        "description": "",
        "queue": "q",
        "definitionName": "minimal",
        "platform": "EC2",
        "vcpus": 1,
        "memory": 2048,
        "gpus": 0,
        "attempts": 3,
        "retryRules": [{"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}],
        "attemptDurationSeconds": 86400,
        "environment": [],
        "plaintextCredentials": [],
        "after": [],
        "sequential": False,
        "env": {},
        "secrets": {},
        "parallel": 1,
        "tags": {},
        "propagateTags": True,
        "allowDuplicates": False,
        "notify": None,
        "includePositionalArgsInName": True,
        "schedulingPriority": None,
        "shareIdentifier": None,
        "jobRoleArn": None,
        "executionRoleArn": None,
        "program": {"kind": "command", "command": ["true"]},
        "image": {"kind": "reference", "reference": "busybox:1.36"},
        "schedules": [],
        "volumes": {},
        "sharedMemorySize": None,
        "tmpfs": {},
        "initProcessEnabled": False,
        "maxSwap": None,
        "swappiness": None,
        "ulimits": {},
        "user": None,
        "readonlyRootFilesystem": False,
        "ephemeralStorage": None,
        "platformVersion": None,
        "logGroup": None,
        "logStreamPrefix": None,
        "runTags": {},
        "consumes": {},
    }
    named = manifest["jobs"]["named"]
    assert named["program"]["command"] == ["echo", "named"]
    assert named["retryRules"] == [{"onExitCode": "137", "action": "RETRY"}]


def test_plaintext_credentials_opt_in(cli, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(
        jobs,
        "legacy",
        f'{{ {BASE} environment = [ "DEPLOY_TOKEN" "CI_JOB_ID" ]; plaintextCredentials = [ "DEPLOY_TOKEN" ]; }}',
    )
    result, data = evaluate(cli, jobs)
    assert result.code == 0 and data["errors"] == []


def test_nix_syntax_error_is_one_line_with_its_position(cli, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "broken", "{ queue = ; }")
    result = cli("--jobs", str(jobs), "jobs")
    assert result.code == 2
    assert result.err == f"error: jobs folder {jobs}: syntax error, unexpected ';' ({jobs}/broken/default.nix:1:11)\n"


def test_missing_jobs_folder(cli, tmp_path: Path) -> None:
    result = cli("--jobs", str(tmp_path / "nope"), "jobs")
    assert result.code == 2
    assert "jobs folder" in result.err and "not found" in result.err


def test_this_repositorys_jobs(cli) -> None:
    result = cli("--jobs", str(ROOT / "jobs"), "jobs", "--json")
    assert result.code == 0, result.err
    jobs = {j["name"]: j for j in result.json()["jobs"]}
    assert jobs["hello"]["program"] == "command"
    assert jobs["observes-etl"]["program"] == "entrypoint"


@pytest.mark.parametrize("count", [200])
def test_many_jobs_evaluate_quickly_enough_to_list(cli, tmp_path: Path, count: int) -> None:
    jobs = tmp_path / "jobs"
    for i in range(count):
        write_job(jobs, f"job{i:03}", f"{{ {BASE} }}")
    result, data = evaluate(cli, jobs)
    assert result.code == 0 and len(data["jobs"]) == count


CREDENTIAL_NAMES = ["GITLAB_TOKEN", "DB_PASSWORD", "DATABASE_URL", "ANALYTICS_DATABASE_URL", "SENTRY_DSN", "DSN"]
CREDENTIAL_NAMES += ["AZURE_CONNECTION_STRING", "GITHUB_PAT", "REGISTRY_AUTH", "aws_secret_access_key"]
ORDINARY_NAMES = ["OBSERVES_API_URL", "SERVICE_URL", "CI_JOB_ID", "PATH", "AUTHOR", "PATTERN", "DATABASE_NAME"]


def test_which_names_look_like_credentials() -> None:
    """Names that carry credentials by convention are refused in `environment`; ordinary URLs and lookalikes are not."""
    names = CREDENTIAL_NAMES + ORDINARY_NAMES
    check = f"(import {ROOT}/nix/lib/declaration.nix).looksLikeCredential"
    found = nix_value(f"map {check} (builtins.fromJSON ''{json.dumps(names)}'')")
    verdicts = dict(zip(names, found, strict=True))
    assert [n for n, is_credential in verdicts.items() if is_credential] == CREDENTIAL_NAMES


def test_a_value_that_throws_is_reported_with_its_message_and_the_other_jobs_still_evaluate(
    cli, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "fine", f"{{ {BASE} }}")
    write_job(jobs, "sized", f'{{ {BASE} memory = throw "memory comes from the sizes table"; }}')
    write_job(jobs, "broken", 'throw "broken: waiting for the new schema"')
    write_job(jobs, "misuse", f"{{ pkgs, ... }}: {{ {BASE} memory = pkgs.lib.max 1 2; }}")
    result, data = evaluate(cli, jobs)
    assert result.code == 2
    assert [j["name"] for j in data["jobs"]] == ["fine"]
    assert data["errors"] == [
        f"broken: {jobs}/broken/default.nix: broken: waiting for the new schema",
        "misuse: memory: could not be evaluated without nixpkgs (only entrypoint may use pkgs)",
        "sized: memory: memory comes from the sizes table",
    ]


def broken_neighbours(jobs: Path) -> None:
    """Job files Nix cannot even load (tryEval catches neither): only evaluation that never imports them succeeds."""
    write_job(jobs, "c", "{ a = ; }")
    write_job(jobs, "d", f"{{ {BASE} memory = undefinedVariable; }}")


def test_only_evaluates_the_named_jobs_and_what_they_run_after(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "a", f'{{ {BASE} after = [ "b" ]; }}')
    write_job(jobs, "b", f'{{ {BASE} after = [ {{ job = "e"; type = "N_TO_N"; }} ]; parallel = 2; }}')
    write_job(jobs, "e", f"{{ {BASE} parallel = 2; }}")
    broken_neighbours(jobs)
    manifest = parse_manifest(evaluate_jobs(jobs, only=["a"]), source=str(jobs))
    assert sorted(manifest.jobs) == ["a", "b", "e"] and manifest.errors == {}
    assert sorted(parse_manifest(evaluate_jobs(jobs, only=["e", "e"]), source=str(jobs)).jobs) == ["e"]


def test_without_only_a_broken_job_file_still_stops_every_job(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "a", f"{{ {BASE} }}")
    broken_neighbours(jobs)
    with pytest.raises(UserError, match=f"^jobs folder {re.escape(str(jobs))}: "):
        evaluate_jobs(jobs)


def test_only_still_reports_the_problems_of_the_named_jobs(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    # An invalid job adds no `after` edges: b is not evaluated (it would be imported otherwise, and it is broken).
    write_job(jobs, "a", f'{{ {BASE} vcpus = 0; after = [ "c" ]; }}')
    write_job(jobs, "sized", f'{{ {BASE} after = [ "thrower" ]; }}')
    write_job(jobs, "thrower", f'{{ {BASE} memory = throw "memory comes from the sizes table"; }}')
    broken_neighbours(jobs)
    data = evaluate_jobs(jobs, only=["a", "sized"])
    assert data["errors"] == {
        "a": ["a: vcpus: must be > 0, got 0"],
        "thrower": ["thrower: memory: memory comes from the sizes table"],
    }
    assert sorted(data["jobs"]) == ["sized"]


def test_only_refuses_a_name_that_is_no_job(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "extract", f"{{ {BASE} }}")
    write_job(jobs, "load", f"{{ {BASE} }}")
    broken_neighbours(jobs)
    with pytest.raises(UserError) as raised:
        evaluate_jobs(jobs, only=["load", "extrct"])
    assert str(raised.value) == f"no job named 'extrct' in {jobs} (did you mean extract?)"
    with pytest.raises(UserError) as raised:
        evaluate_jobs(jobs, only=["zzz"])
    assert str(raised.value) == f"no job named 'zzz' in {jobs} (declared jobs: c, d, extract, load)"


def test_only_reports_the_after_problems_of_the_jobs_it_reaches(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    write_job(jobs, "a", f'{{ {BASE} after = [ "b" "x" ]; }}')
    write_job(jobs, "b", f'{{ {BASE} after = [ "nope" ]; }}')
    write_job(jobs, "x", f'{{ {BASE} after = [ "y" ]; }}')
    write_job(jobs, "y", f'{{ {BASE} after = [ "x" ]; }}')
    broken_neighbours(jobs)
    data = evaluate_jobs(jobs, only=["a"])
    assert data["errors"] == {
        "b": ['b: after: no job named "nope" in the jobs folder'],
        "x": ["x: after: y runs (directly or not) after x, a cycle"],
        "y": ["y: after: x runs (directly or not) after y, a cycle"],
    }
    assert sorted(data["jobs"]) == ["a"]


def test_eval_nix_leaves_out_names_that_are_no_folder(tmp_path: Path) -> None:
    """The library's own contract (the helper refuses such names before asking Nix)."""
    jobs = tmp_path / "jobs"
    write_job(jobs, "a", f"{{ {BASE} }}")
    broken_neighbours(jobs)
    evaluation = ["nix-instantiate", "--eval", "--strict", "--json", str(ROOT / "nix/lib/eval.nix")]
    only = json.dumps(["a", "ghost", "../a"])
    result = subprocess.run(
        [*evaluation, "--argstr", "jobsDir", str(jobs), "--argstr", "only", only],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(result.stdout)
    assert sorted(data["jobs"]) == ["a"] and data["errors"] == {}


def test_the_manifest_version_nix_writes_is_the_one_the_helper_reads() -> None:
    """nix/lib/manifest.nix and compute_on_aws/declared/manifest.py each spell the version: one without the other
    would make every helper refuse every manifest."""
    from compute_on_aws.declared.manifest import MANIFEST_VERSION

    written = nix_value(
        f"(import {ROOT}/nix/lib/manifest.nix {{ evaluated = {{ jobs = {{ }}; errors = {{ }}; }}; }}).version"
    )
    assert written == MANIFEST_VERSION
