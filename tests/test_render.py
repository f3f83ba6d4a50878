"""The requests for AWS Batch: the job definition (from templates) and the submission, as `render --json` shows them."""

from __future__ import annotations

import copy
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from conftest import write_job

from compute_on_aws.declared.config import Config, ImageSettings
from compute_on_aws.declared.manifest import parse_manifest
from compute_on_aws.errors import UserError
from compute_on_aws.planning import chains, plan, render

ACCOUNT = "123456789012"
EXEC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/exec-from-config"
JOB_ROLE = f"arn:aws:iam::{ACCOUNT}:role/job-from-config"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db"
SECRET_VALUE = "s3cr3t-value-123"


def project(tmp_path: Path, jobs: dict[str, str], config: str | None = None) -> list[str]:
    """Writes job folders (and a config file); returns the global options that point the CLI at them."""
    for name, text in jobs.items():
        write_job(tmp_path / "jobs", name, text)
    options = ["--jobs", str(tmp_path / "jobs")]
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
        options += ["--config", str(tmp_path / "config.yaml")]
    return options


@pytest.fixture
def run(cli, tmp_path: Path):
    """The CLI run from the test's own folder, so no compute-on-aws.yaml but the test's is read."""

    def go(*args: str):
        return cli(*args, cwd=tmp_path)

    return go


def rendered(run, options: list[str], name: str, *args: str) -> dict[str, Any]:
    result = run(*options, "render", "--json", name, *args)
    assert result.code == 0, result.err
    [job] = result.queued()
    return job


def without_hash(definition: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(definition)
    stripped["parameters"].pop(render.HASH_PARAMETER)
    if not stripped["parameters"]:
        del stripped["parameters"]
    return stripped


EC2_JOB = f"""{{
  queue = "q";
  command = [ "run" "--flag" ];
  image = "busybox:1.36";
  vcpus = 4;
  memory = 8192;
  gpus = 2;
  attempts = 5;
  retryRules = [
    {{ onExitCode = "137"; action = "retry"; }}
    {{ onStatusReason = "Host EC2*"; action = "RETRY"; }}
    {{ onReason = "*"; action = "exit"; }}
  ];
  attemptDurationSeconds = 3600;
  propagateTags = false;
  env = {{ ZED = "last"; ALPHA = "first"; MIDDLE = "m"; }};
  secrets.DB_PASSWORD = "{SECRET}";
  tags = {{ team = "from-job"; owner = "me"; }};
  jobRoleArn = "arn:aws:iam::{ACCOUNT}:role/job-from-job";
  schedulingPriority = 0;
}}"""

EC2_CONFIG = f"""
tags: {{team: from-config, env: prod}}
roles: {{job: "{JOB_ROLE}", execution: "{EXEC_ROLE}"}}
"""


def test_ec2_definition(run, tmp_path: Path) -> None:
    options = project(tmp_path, {"big": EC2_JOB}, EC2_CONFIG)
    job = rendered(run, options, "big")
    definition = job["definition"]
    assert without_hash(definition) == {
        "jobDefinitionName": "big",
        "type": "container",
        "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": "busybox:1.36",
            "command": ["run", "--flag"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "4"},
                {"type": "MEMORY", "value": "8192"},
                {"type": "GPU", "value": "2"},
            ],
            "environment": [
                {"name": "ALPHA", "value": "first"},
                {"name": "MIDDLE", "value": "m"},
                {"name": "ZED", "value": "last"},
            ],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": SECRET}],
            # The declaration's job role wins over the config's; the execution role comes from the config.
            "jobRoleArn": f"arn:aws:iam::{ACCOUNT}:role/job-from-job",
            "executionRoleArn": EXEC_ROLE,
        },
        "retryStrategy": {
            "attempts": 5,
            "evaluateOnExit": [
                {"onExitCode": "137", "action": "RETRY"},
                {"onStatusReason": "Host EC2*", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
        "timeout": {"attemptDurationSeconds": 3600},
        "schedulingPriority": 0,
        "propagateTags": False,
        "tags": {"team": "from-job", "owner": "me", "env": "prod"},
    }
    assert len(definition["parameters"][render.HASH_PARAMETER]) >= 16
    # The hash is of the definition itself: recomputing it from what is printed gives it back.
    assert render.content_hash(definition) == definition["parameters"][render.HASH_PARAMETER]


def test_ec2_without_gpus_or_roles(run, tmp_path: Path) -> None:
    options = project(tmp_path, {"small": '{ queue = "q"; command = [ "true" ]; image = "busybox:1.36"; }'})
    definition = rendered(run, options, "small")["definition"]
    container = definition["containerProperties"]
    assert container["resourceRequirements"] == [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]
    assert "jobRoleArn" not in container and "executionRoleArn" not in container
    assert definition["propagateTags"] is True
    assert "schedulingPriority" not in definition
    assert render.HASH_PARAMETER in definition["parameters"]


def test_roles_come_from_the_config_when_not_declared(run, tmp_path: Path) -> None:
    options = project(tmp_path, {"small": '{ queue = "q"; command = [ "true" ]; image = "busybox:1.36"; }'}, EC2_CONFIG)
    container = rendered(run, options, "small")["definition"]["containerProperties"]
    assert container["jobRoleArn"] == JOB_ROLE
    assert container["executionRoleArn"] == EXEC_ROLE


FARGATE_JOB = """{
  queue = "q";
  command = [ "true" ];
  image = "busybox:1.36";
  platform = "FARGATE";
  vcpus = 0.25;
  memory = 512;
  %s
}"""


@pytest.mark.parametrize(("assign", "expected"), [("true", "ENABLED"), ("false", "DISABLED"), (None, "DISABLED")])
def test_fargate_definition(run, tmp_path: Path, assign: str | None, expected: str) -> None:
    config = f'roles: {{execution: "{EXEC_ROLE}"}}\n'
    if assign is not None:
        config += f"fargate: {{assign_public_ip: {assign}}}\n"
    options = project(tmp_path, {"tiny": FARGATE_JOB % ""}, config)
    definition = rendered(run, options, "tiny")["definition"]
    assert definition["platformCapabilities"] == ["FARGATE"]
    container = definition["containerProperties"]
    assert container["resourceRequirements"] == [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}]
    assert container["executionRoleArn"] == EXEC_ROLE
    assert container["networkConfiguration"] == {"assignPublicIp": expected}
    assert "jobRoleArn" not in container


def test_fargate_execution_role_from_the_declaration_wins(run, tmp_path: Path) -> None:
    declared = f"arn:aws:iam::{ACCOUNT}:role/exec-from-job"
    options = project(
        tmp_path,
        {"tiny": FARGATE_JOB % f'executionRoleArn = "{declared}"; jobRoleArn = "{JOB_ROLE}";'},
        f'roles: {{execution: "{EXEC_ROLE}"}}\n',
    )
    container = rendered(run, options, "tiny")["definition"]["containerProperties"]
    assert container["executionRoleArn"] == declared
    assert container["jobRoleArn"] == JOB_ROLE


def test_fargate_needs_an_execution_role(run, tmp_path: Path) -> None:
    options = project(tmp_path, {"tiny": FARGATE_JOB % ""})
    result = run(*options, "render", "--json", "tiny")
    assert result.code == 2
    assert result.out == ""
    assert "executionRoleArn" in result.err and "tiny" in result.err
    assert len(result.err.splitlines()) == 1


def test_secrets_on_ec2_need_an_execution_role(run, tmp_path: Path) -> None:
    declaration = f'{{ queue = "q"; command = [ "true" ]; image = "i"; secrets.DB = "{SECRET}"; }}'
    options = project(tmp_path, {"s": declaration})
    result = run(*options, "render", "--json", "s")
    assert result.code == 2
    assert "executionRoleArn" in result.err
    # With one in the config, the same job renders.
    options = project(tmp_path, {}, f'roles: {{execution: "{EXEC_ROLE}"}}\n')
    assert rendered(run, options, "s")["definition"]["containerProperties"]["executionRoleArn"] == EXEC_ROLE


# --- content hash: computed from manifests written here, planned as the CLI plans them


def manifest_job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": "hashed",
        "description": "",
        "queue": "q",
        "definitionName": "hashed",
        "platform": "EC2",
        "vcpus": 1,
        "memory": 2048,
        "gpus": 0,
        "attempts": 3,
        "retryRules": [{"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}],
        "attemptDurationSeconds": 3600,
        "environment": [],
        "plaintextCredentials": [],
        "after": [],
        "sequential": False,
        "env": {"A": "1", "B": "2"},
        "secrets": {},
        "parallel": 1,
        "tags": {"team": "t", "owner": "o"},
        "propagateTags": True,
        "allowDuplicates": False,
        "includePositionalArgsInName": True,
        "schedulingPriority": None,
        "shareIdentifier": None,
        "jobRoleArn": None,
        "executionRoleArn": None,
        "program": {"kind": "command", "command": ["true"]},
        "image": {"kind": "reference", "reference": "busybox:1.36"},
        "schedules": [],
    }
    # A definition of its own, as `evalJobs` names it (the job's name), unless the change names one.
    job.update({"definitionName": changes.get("name", job["name"])}, **changes)
    return job


def planned(
    job: dict[str, Any], config: Config | None = None, args: tuple[str, ...] = (), environ: dict[str, str] | None = None
) -> plan.Plan:
    manifest = parse_manifest({"version": 5, "errors": {}, "jobs": {job["name"]: job}}, source="test")
    return plan.plan(manifest, config or Config(), job["name"], list(args), environ or {})


def definition_hash(job: dict[str, Any], config: Config | None = None) -> str:
    return planned(job, config).definition["parameters"][render.HASH_PARAMETER]


def test_identical_declarations_have_the_same_hash() -> None:
    assert definition_hash(manifest_job()) == definition_hash(manifest_job())


def test_declaration_order_does_not_change_the_hash() -> None:
    reordered = manifest_job(env={"B": "2", "A": "1"}, tags={"owner": "o", "team": "t"})
    reordered = dict(reversed(list(reordered.items())))
    assert definition_hash(reordered) == definition_hash(manifest_job())


@pytest.mark.parametrize(
    "change",
    [
        {"memory": 4096},
        {"vcpus": 2},
        {"env": {"A": "1", "B": "3"}},
        {"env": {"A": "1", "B": "2", "C": "3"}},
        {"image": {"kind": "reference", "reference": "busybox:1.37"}},
        {"tags": {"team": "t", "owner": "someone-else"}},
        {"tags": {"team": "t"}},
        {"attempts": 4},
        {"program": {"kind": "command", "command": ["false"]}},
        {"propagateTags": False},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_changed_declaration_changes_the_hash(change: dict[str, Any]) -> None:
    assert definition_hash(manifest_job(**change)) != definition_hash(manifest_job())


def test_a_changed_config_tag_changes_the_hash() -> None:
    assert definition_hash(manifest_job(), Config(tags={"env": "prod"})) != definition_hash(
        manifest_job(), Config(tags={"env": "staging"})
    )


def test_content_hash_ignores_key_order_and_its_own_parameter() -> None:
    definition = planned(manifest_job()).definition
    expected = definition["parameters"][render.HASH_PARAMETER]

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reverse(v) for k, v in reversed(list(value.items()))}
        if isinstance(value, list):
            return [reverse(v) for v in value]
        return value

    shuffled = reverse(definition)
    assert list(shuffled) != list(definition)
    assert render.content_hash(shuffled) == expected
    no_parameter = {k: v for k, v in definition.items() if k != "parameters"}
    assert render.content_hash(no_parameter) == expected
    other = copy.deepcopy(definition)
    other["parameters"][render.HASH_PARAMETER] = "0" * 32
    assert render.content_hash(other) == expected
    # List order is content: environment order is fixed by sorting, so a swapped list is a different definition.
    swapped = copy.deepcopy(definition)
    swapped["containerProperties"]["environment"].reverse()
    assert render.content_hash(swapped) != expected


def test_env_literals_are_sorted_whatever_the_manifest_order() -> None:
    job = manifest_job(env={"ZED": "z", "ALPHA": "a", "MID": "m"}, secrets={"Z_S": SECRET, "A_S": SECRET})
    definition = planned(job, Config(execution_role_arn=EXEC_ROLE)).definition
    assert [v["name"] for v in definition["containerProperties"]["environment"]] == ["ALPHA", "MID", "ZED"]
    assert definition["containerProperties"]["secrets"] == [
        {"name": "A_S", "valueFrom": SECRET},
        {"name": "Z_S", "valueFrom": SECRET},
    ]


# --- the submission


def test_no_overrides_without_arguments_or_propagated_variables(run, tmp_path: Path) -> None:
    options = project(tmp_path, {"plain": '{ queue = "q"; command = [ "echo" "hi" ]; image = "i"; }'})
    job = rendered(run, options, "plain")
    assert job["request"] == {
        "jobName": "plain",
        "jobQueue": "q",
        "jobDefinition": "plain",
        "tags": {"compute-on-aws:job": "plain"},
    }


def test_arguments_are_appended_to_the_command(run, tmp_path: Path) -> None:
    options = project(tmp_path, {"plain": '{ queue = "q"; command = [ "echo" "hi" ]; image = "i"; }'})
    job = rendered(run, options, "plain", "2026-11-25", "--since", "s3://b/k")
    assert job["request"]["containerOverrides"] == {"command": ["echo", "hi", "2026-11-25", "--since", "s3://b/k"]}
    assert set(job["request"]["containerOverrides"]) == {"command"}
    # The definition keeps the declared command; only the submission carries the arguments.
    assert job["definition"]["containerProperties"]["command"] == ["echo", "hi"]


PROPAGATING = '{ queue = "q"; command = [ "echo" ]; image = "i"; environment = [ "RUN_LABEL" "CI_COMMIT_SHA" ]; }'


@pytest.mark.parametrize("as_json", [True, False])
def test_propagated_values_are_never_printed(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    monkeypatch.setenv("RUN_LABEL", SECRET_VALUE)
    monkeypatch.setenv("CI_COMMIT_SHA", f"sha-{SECRET_VALUE}")
    options = project(tmp_path, {"prop": PROPAGATING})
    for command in (["render"], ["queue", "--dry-run"]):
        result = run(*options, *command, *(["--json"] if as_json else []), "prop", "arg1")
        assert result.code == 0, result.err
        assert SECRET_VALUE not in result.out and SECRET_VALUE not in result.err
        if as_json:
            [job] = result.queued()
            assert job["request"]["containerOverrides"] == {
                "command": ["echo", "arg1"],
                "environment": [
                    {"name": "CI_COMMIT_SHA", "value": "<redacted>"},
                    {"name": "RUN_LABEL", "value": "<redacted>"},
                ],
            }


def test_propagated_values_are_sent() -> None:
    job = manifest_job(environment=["RUN_LABEL"])
    request = planned(job, environ={"RUN_LABEL": SECRET_VALUE}).request
    assert request["containerOverrides"] == {"environment": [{"name": "RUN_LABEL", "value": SECRET_VALUE}]}


def test_missing_propagated_variables_are_all_named(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BETA_VAR", SECRET_VALUE)
    variables = 'environment = [ "ALPHA_VAR" "BETA_VAR" "GAMMA_VAR" ];'
    options = project(tmp_path, {"prop": f'{{ queue = "q"; command = [ "echo" ]; image = "i"; {variables} }}'})
    result = run(*options, "render", "--json", "prop")
    assert result.code == 2
    assert result.out == ""
    assert "ALPHA_VAR" in result.err and "GAMMA_VAR" in result.err
    assert "BETA_VAR" not in result.err and SECRET_VALUE not in result.err


def test_array_share_and_priority(run, tmp_path: Path) -> None:
    options = project(
        tmp_path,
        {
            "array": '{ queue = "q"; command = [ "true" ]; image = "i"; parallel = 4; shareIdentifier = "teamA"; '
            "schedulingPriority = 42; }",
            "single": '{ queue = "q"; command = [ "true" ]; image = "i"; parallel = 1; }',
        },
    )
    array = rendered(run, options, "array")
    assert array["request"]["arrayProperties"] == {"size": 4}
    assert array["request"]["shareIdentifier"] == "teamA"
    assert array["definition"]["schedulingPriority"] == 42
    single = rendered(run, options, "single")
    assert "arrayProperties" not in single["request"]
    assert "shareIdentifier" not in single["request"]


# --- a project's own templates


def own_template(tmp_path: Path, name: str, text: str) -> str:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return "templates: templates\n"


def packaged(name: str) -> str:
    return (resources.files("compute_on_aws") / "templates" / name).read_text()


def logging_template(tmp_path: Path, name: str) -> list[str]:
    """A project whose own template `name` is the packaged one plus a log configuration, with an EC2 job (ec2) and a
    Fargate job (fg): the options pointing the CLI at it."""
    original = packaged("container.json.j2")
    anchor = '"image": {{ image | tojson }},'
    assert anchor in original
    text = original.replace(anchor, '"logConfiguration": {"logDriver": "awslogs"},\n    ' + anchor)
    config = own_template(tmp_path, name, text) + f'roles: {{execution: "{EXEC_ROLE}"}}\n'
    return project(
        tmp_path,
        {"ec2": '{ queue = "q"; command = [ "true" ]; image = "i"; }', "fg": FARGATE_JOB % ""},
        config,
    )


def test_a_projects_own_template_is_used(run, tmp_path: Path) -> None:
    options = logging_template(tmp_path, "container.json.j2")
    ec2 = rendered(run, options, "ec2")["definition"]
    assert ec2["containerProperties"]["logConfiguration"] == {"logDriver": "awslogs"}
    assert ec2["containerProperties"]["image"] == "i"
    # One template for both platforms: Fargate's own properties come in as data.
    fargate = rendered(run, options, "fg")["definition"]
    assert fargate["platformCapabilities"] == ["FARGATE"]
    assert fargate["containerProperties"]["logConfiguration"] == {"logDriver": "awslogs"}
    assert fargate["containerProperties"]["networkConfiguration"] == {"assignPublicIp": "DISABLED"}


def test_a_template_reads_any_declared_attribute(run, tmp_path: Path) -> None:
    """`job.declared` is the job as Nix wrote it: a field only the template uses needs no change to the helper (here
    the description, which the packaged template does not send, becomes a tag)."""
    original = packaged("container.json.j2")
    anchor = '"tags": {{ tags | tojson }}'
    assert anchor in original
    text = original.replace(anchor, '"tags": {{ dict(tags, about=job.declared.description) | tojson }}')
    config = own_template(tmp_path, "container.json.j2", text)
    job = '{ queue = "q"; command = [ "true" ]; image = "i"; description = "Loads one day"; }'
    options = project(tmp_path, {"described": job}, config)
    assert rendered(run, options, "described")["definition"]["tags"] == {"about": "Loads one day"}


def test_a_projects_template_for_one_platform_is_used_for_that_platform_only(run, tmp_path: Path) -> None:
    """Projects that wrote container-ec2.json.j2 (the name of the EC2 template before there was one for both) keep
    it: it renders their EC2 jobs, the packaged template their Fargate jobs."""
    options = logging_template(tmp_path, "container-ec2.json.j2")
    assert rendered(run, options, "ec2")["definition"]["containerProperties"]["logConfiguration"]
    fargate = rendered(run, options, "fg")["definition"]
    assert fargate["platformCapabilities"] == ["FARGATE"]
    assert "logConfiguration" not in fargate["containerProperties"]


@pytest.mark.parametrize(
    "text",
    [
        # Not valid jinja2.
        '{ "jobDefinitionName": {{ job.definition_name | tojson }\n}',
        "{% if job.gpus %}\n{}\n",
        "{{ job.definition_name | no_such_filter }}",
        # Valid jinja2 that renders no job definition.
        "jobDefinitionName: {{ job.definition_name }}\n",
        '{"jobDefinitionName": {{ job.definition_name | tojson }},}',
        "[]",
        '{"jobDefinitionName": "someone-else"}',
    ],
)
def test_a_broken_template_is_one_line_naming_it(run, tmp_path: Path, text: str) -> None:
    config = own_template(tmp_path, "container-ec2.json.j2", text)
    options = project(tmp_path, {"ec2": '{ queue = "q"; command = [ "true" ]; image = "i"; }'}, config)
    result = run(*options, "render", "--json", "ec2")
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.splitlines()) == 1, result.err
    assert "container-ec2.json.j2" in result.err


@pytest.mark.parametrize(
    ("old", "new"),
    [("job.definition_name | tojson", "job.definiton_name | tojson"), ("image | tojson", "image | tojson(1, 2, 3)")],
)
def test_a_template_failing_while_rendering_is_a_user_error(run, tmp_path: Path, old: str, new: str) -> None:
    original = packaged("container.json.j2")
    assert old in original
    config = own_template(tmp_path, "container.json.j2", original.replace(old, new, 1))
    options = project(tmp_path, {"ec2": '{ queue = "q"; command = [ "true" ]; image = "i"; }'}, config)
    result = run(*options, "render", "--json", "ec2")
    assert result.code == 2
    assert "container.json.j2" in result.err


def test_a_missing_templates_folder_is_an_error(run, tmp_path: Path) -> None:
    options = project(
        tmp_path, {"ec2": '{ queue = "q"; command = [ "true" ]; image = "i"; }'}, "templates: tempaltes\n"
    )
    result = run(*options, "render", "--json", "ec2")
    assert result.code == 2
    assert "tempaltes" in result.err


def test_a_misspelled_field_printed_without_tojson_is_a_user_error(run, tmp_path: Path) -> None:
    config = own_template(tmp_path, "container-ec2.json.j2", '{"x": "{{ job.no_such_field }}"}')
    options = project(tmp_path, {"ec2": '{ queue = "q"; command = [ "true" ]; image = "i"; }'}, config)
    result = run(*options, "render", "--json", "ec2")
    assert result.code == 2
    assert "container-ec2.json.j2" in result.err and "no_such_field" in result.err


def test_templates_render_any_string_safely(run, tmp_path: Path) -> None:
    nix_string = r'"quote \" backslash \\ newline \n braces }} {{ {% %} dollar \${x}"'
    options = project(tmp_path, {"t": f'{{ queue = "q"; command = [ "echo" ]; image = "i"; env.X = {nix_string}; }}'})
    env = rendered(run, options, "t")["definition"]["containerProperties"]["environment"]
    assert env == [{"name": "X", "value": 'quote " backslash \\ newline \n braces }} {{ {% %} dollar ${x}'}]


# --- chains: the order jobs are queued in, from manifests written here


def chain_manifest(after: dict[str, list[str]]) -> Any:
    jobs = {n: manifest_job(name=n, after=[{"job": d, "type": None} for d in deps]) for n, deps in after.items()}
    return parse_manifest({"version": 5, "errors": {}, "jobs": jobs}, source="test")


def test_a_chain_puts_each_job_once_after_all_it_runs_after() -> None:
    manifest = chain_manifest({"report": ["load", "extract"], "load": ["extract"], "extract": [], "other": []})
    assert [j.name for j in chains.order(manifest, "report")] == ["extract", "load", "report"]
    assert [j.name for j in chains.order(manifest, "extract")] == ["extract"]


def test_a_cycle_in_a_hand_written_manifest_is_one_clear_error() -> None:
    manifest = chain_manifest({"a": ["b"], "b": ["c"], "c": ["b"]})
    with pytest.raises(UserError, match=r"^a: after: a cycle: b -> c -> b$"):
        chains.order(manifest, "a")


def test_every_job_of_a_chain_is_checked_before_any_is_queued() -> None:
    jobs = {
        "extract": manifest_job(name="extract"),
        "load": manifest_job(name="load", environment=["RUN_DATE"], after=[{"job": "extract", "type": None}]),
    }
    manifest = parse_manifest({"version": 5, "errors": {}, "jobs": jobs}, source="test")
    with pytest.raises(UserError, match="load: environment: RUN_DATE is not set"):
        chains.plan_chain(manifest, Config(), "load", [], {})


# --- images Nix builds: the system's build, the tag


def nix_image_job(name: str, systems: tuple[str, ...] = ("x86_64-linux", "aarch64-linux")) -> dict[str, Any]:
    builds = {s: {"command": [f"/nix/store/{s}-entry/bin/{name}"], "drv": f"/nix/store/{s}-entry.drv"} for s in systems}
    images = {s: {"tag": f"{s[:3]}{'0' * 29}", "drv": f"/nix/store/{s}-image.drv"} for s in systems}
    return manifest_job(
        name=name,
        program={"kind": "entrypoint", "builds": builds},
        image={"kind": "nix", "name": name, "builds": images},
    )


def planned_on(
    job: dict[str, Any], config: Config, *, host: str | None = "x86_64-linux", aws: bool = True
) -> plan.Plan:
    data = {"version": 5, "hostSystem": host, "errors": {}, "jobs": {job["name"]: job}}
    return plan.plan(parse_manifest(data, source="m.json"), config, job["name"], [], {}, pushed_image=aws)


REGISTRY = Config(image=ImageSettings(registry="r.example", repository="jobs", system="aarch64-linux"))


def test_aws_runs_the_image_system_build_and_local_runs_this_machines() -> None:
    job = nix_image_job("etl")
    on_aws = planned_on(job, REGISTRY)
    container = on_aws.definition["containerProperties"]
    assert container["command"] == ["/nix/store/aarch64-linux-entry/bin/etl"]
    assert container["image"] == f"r.example/jobs:etl-aar{'0' * 29}"
    assert on_aws.image_push == plan.ImagePush(
        drv="/nix/store/aarch64-linux-image.drv", target=container["image"], system="aarch64-linux"
    )
    local = planned_on(job, REGISTRY, aws=False)
    assert local.definition["containerProperties"]["command"] == ["/nix/store/x86_64-linux-entry/bin/etl"]
    assert local.program_drv == "/nix/store/x86_64-linux-entry.drv" and local.image_push is None


def test_a_manifest_without_builds_for_image_system_is_a_users_mistake() -> None:
    with pytest.raises(UserError) as e:
        planned_on(nix_image_job("etl", systems=("x86_64-linux",)), REGISTRY)
    assert str(e.value) == (
        "etl: m.json has builds for x86_64-linux, not aarch64-linux (image.system in compute-on-aws.yaml): use a "
        "flake that builds images for it (compute-on-aws's flake builds x86_64-linux and aarch64-linux)"
    )


@pytest.mark.parametrize(("system", "architecture"), [("aarch64-linux", "ARM64"), ("x86_64-linux", "X86_64")])
def test_a_nix_image_on_fargate_names_its_architecture(system: str, architecture: str) -> None:
    """Fargate runs X86_64 unless told: an aarch64-linux image registered without runtimePlatform fails at start."""
    config = Config(
        image=ImageSettings(registry="r.example", repository="jobs", system=system),
        execution_role_arn=EXEC_ROLE,
    )
    job = {**nix_image_job("etl"), "platform": "FARGATE", "vcpus": 1, "memory": 2048}
    container = planned_on(job, config).definition["containerProperties"]
    assert container["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": architecture}
    # A registry image may hold several architectures: Fargate's default is left to it.
    registry = manifest_job(name="etl", platform="FARGATE", vcpus=1, memory=2048)
    assert "runtimePlatform" not in planned_on(registry, config).definition["containerProperties"]


def test_an_arm64_image_is_refused_on_fargate_spot_as_aws_refuses_it() -> None:
    from compute_on_aws.declared.infrastructure import parse_infrastructure
    from compute_on_aws.planning.checks import job_problems

    network = {"subnets": ["subnet-1"], "security_groups": ["sg-1"]}
    infra = parse_infrastructure(
        {
            "spot": {"type": "FARGATE_SPOT", "max_vcpus": 16, **network},
            "on": {"type": "FARGATE", "max_vcpus": 16, **network},
        },
        {"cheap": {"compute": ["spot"]}, "mixed": {"compute": ["spot", "on"]}},
        where="c.yaml",
    )
    job = {**nix_image_job("etl"), "platform": "FARGATE", "vcpus": 1, "memory": 2048}
    manifest = parse_manifest({"version": 5, "errors": {}, "jobs": {"etl": job}}, source="m.json")
    etl = manifest.jobs["etl"]
    assert job_problems(etl, "cheap", infra, "aarch64-linux") == [
        "etl: needs 1 vCPU, 2048 MiB on FARGATE (aarch64-linux image), which no compute environment of queue cheap can "
        "give: spot (FARGATE_SPOT, at most 16 vCPU, 16 vCPU and 120 GiB a task, x86_64 only)"
    ]
    assert job_problems(etl, "cheap", infra, "x86_64-linux") == []
    assert job_problems(etl, "mixed", infra, "aarch64-linux") == []


def test_an_image_tag_stays_within_dockers_128_characters_whatever_the_jobs_name() -> None:
    name = "a-very-long-job-name-" * 6  # 126 characters
    tag = planned_on(nix_image_job(name), REGISTRY).definition["containerProperties"]["image"].split(":", 1)[1]
    assert len(tag) == 128 and tag.endswith(f"-aar{'0' * 29}") and name.startswith(tag[:95])
    assert plan.image_tag("hello", "0" * 32) == f"hello-{'0' * 32}"


# Definitions as released: an upgrade that renders the same declaration differently re-registers every job's
# definition (a new revision per job) and, worse, makes a running job's definition look changed. A change here must be
# deliberate: regenerate with WRITE_GOLDEN=1 and say why in the commit.
GOLDEN_DEFINITIONS = Path(__file__).parent / "golden" / "definitions.json"
RELEASED = {
    "ec2": ({"big": EC2_JOB}, EC2_CONFIG, "big"),
    "ec2-plain": ({"small": '{ queue = "q"; command = [ "true" ]; image = "busybox:1.36"; }'}, None, "small"),
    "fargate": ({"tiny": FARGATE_JOB % ""}, f'roles: {{execution: "{EXEC_ROLE}"}}\n', "tiny"),
    "fargate-public": (
        {"tiny": FARGATE_JOB % f'jobRoleArn = "{JOB_ROLE}";'},
        f'roles: {{execution: "{EXEC_ROLE}"}}\nfargate: {{assign_public_ip: true}}\n',
        "tiny",
    ),
}


def test_definitions_render_as_released(run, tmp_path: Path) -> None:
    found = {}
    for case, (jobs, config, name) in RELEASED.items():
        folder = tmp_path / case
        folder.mkdir()
        found[case] = rendered(run, project(folder, jobs, config), name)["definition"]
    if os.environ.get("WRITE_GOLDEN"):
        GOLDEN_DEFINITIONS.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    assert found == json.loads(GOLDEN_DEFINITIONS.read_text())
