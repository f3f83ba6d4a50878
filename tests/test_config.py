"""compute-on-aws.yaml: checked keys and types, environments chosen with --env, and safe YAML, as the CLI reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import write_job

from compute_on_aws.declared.config import Config, load_config
from compute_on_aws.errors import UserError

# No queue and a Nix-built image: both come from the config.
JOB = '{ pkgs, ... }: { entrypoint = { text = "echo hi"; }; }'


@pytest.fixture
def run(cli, tmp_path: Path):
    """The CLI from the test's own folder (holding jobs/), so only this test's config can be read."""
    write_job(tmp_path / "jobs", "etl", JOB)
    write_job(tmp_path / "jobs", "plain", '{ command = [ "true" ]; image = "busybox:1.36"; }')

    def go(*args: str):
        return cli("--jobs", str(tmp_path / "jobs"), *args, cwd=tmp_path)

    return go


def config_file(tmp_path: Path, text: str, name: str = "settings.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def rendered(result) -> dict[str, Any]:
    assert result.code == 0, result.err
    [job] = result.queued()
    return job


BASE = """
region: eu-west-1
queue: main-queue
image:
  registry: registry.example.com
  repository: main-repo
tags:
  team: data
  env: production
"""


def test_config_given_with_the_option(run, tmp_path: Path) -> None:
    job = rendered(run("--config", config_file(tmp_path, BASE), "render", "--json", "etl"))
    assert job["jobQueue"] == "main-queue"
    assert job["definition"]["tags"] == {"team": "data", "env": "production"}
    assert job["definition"]["containerProperties"]["image"].startswith("registry.example.com/main-repo:etl-")


@pytest.mark.parametrize(
    ("text", "where", "suggestion"),
    [
        ("regoin: eu-west-1\n", "regoin", "did you mean region?"),
        ("queu: q\n", "queu", "did you mean queue?"),
        ("image:\n  registy: r.example.com\n", "registy", "did you mean registry?"),
        ("image:\n  tls_verfy: true\n", "tls_verfy", "did you mean tls_verify?"),
        ("roles:\n  exection: arn:aws:iam::123456789012:role/x\n", "exection", "did you mean execution?"),
        ("fargate:\n  assign_public: true\n", "assign_public", "did you mean assign_public_ip?"),
    ],
)
def test_unknown_keys_are_refused_with_a_suggestion(
    run, tmp_path: Path, text: str, where: str, suggestion: str
) -> None:
    result = run("--config", config_file(tmp_path, text), "render", "--json", "etl")
    assert result.code == 2
    assert result.out == ""
    assert where in result.err and suggestion in result.err
    assert len(result.err.splitlines()) == 1


def test_unknown_key_far_from_any_lists_the_known_ones(run, tmp_path: Path) -> None:
    result = run("--config", config_file(tmp_path, "zzzzzz: 1\n"), "render", "etl")
    assert result.code == 2
    assert "zzzzzz" in result.err
    for key in ("region", "queue", "image", "roles", "tags", "templates", "fargate", "environments"):
        assert key in result.err


ENVIRONMENTS = (
    BASE
    + """
environments:
  staging:
    queue: staging-queue
    image:
      repository: staging-repo
    tags:
      env: staging
      stage: two
  production: {}
"""
)


def test_an_environment_merges_over_the_top_level(run, tmp_path: Path) -> None:
    path = config_file(tmp_path, ENVIRONMENTS)
    job = rendered(run("--config", path, "--env", "staging", "render", "--json", "etl"))
    assert job["jobQueue"] == "staging-queue"
    # Tags merge key by key: the environment's win, the others stay.
    assert job["definition"]["tags"] == {"team": "data", "env": "staging", "stage": "two"}
    # Image settings merge key by key too: the registry stays, the repository changes.
    assert job["definition"]["containerProperties"]["image"].startswith("registry.example.com/staging-repo:etl-")

    config = load_config(Path(path), environment="staging")
    assert config.region == "eu-west-1"
    assert config.environment == "staging"
    assert (config.image.registry, config.image.repository) == ("registry.example.com", "staging-repo")


def test_without_env_the_top_level_applies(run, tmp_path: Path) -> None:
    job = rendered(run("--config", config_file(tmp_path, ENVIRONMENTS), "render", "--json", "etl"))
    assert job["jobQueue"] == "main-queue"
    assert job["definition"]["tags"] == {"team": "data", "env": "production"}


def test_an_empty_environment_changes_nothing(run, tmp_path: Path) -> None:
    path = config_file(tmp_path, ENVIRONMENTS)
    plain = rendered(run("--config", path, "render", "--json", "etl"))
    production = rendered(run("--config", path, "--env", "production", "render", "--json", "etl"))
    assert production["definition"] == plain["definition"]
    assert production["request"] == plain["request"]


def test_env_from_the_environment_variable(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPUTE_ON_AWS_ENV", "staging")
    job = rendered(run("--config", config_file(tmp_path, ENVIRONMENTS), "render", "--json", "etl"))
    assert job["jobQueue"] == "staging-queue"


def test_unknown_environment_lists_the_known_ones(run, tmp_path: Path) -> None:
    result = run("--config", config_file(tmp_path, ENVIRONMENTS), "--env", "stagign", "render", "etl")
    assert result.code == 2
    assert result.out == ""
    assert "stagign" in result.err and "production" in result.err and "staging" in result.err


def test_unknown_environment_when_none_are_declared(run, tmp_path: Path) -> None:
    result = run("--config", config_file(tmp_path, BASE), "--env", "staging", "render", "etl")
    assert result.code == 2
    assert "staging" in result.err


def test_unknown_key_inside_an_environment(run, tmp_path: Path) -> None:
    text = BASE + "environments:\n  staging:\n    queeu: q\n"
    result = run("--config", config_file(tmp_path, text), "--env", "staging", "render", "etl")
    assert result.code == 2
    assert "queeu" in result.err and "did you mean queue?" in result.err


def test_env_without_a_config_file(run, tmp_path: Path) -> None:
    result = run("--env", "staging", "render", "etl")
    assert result.code == 2
    assert result.out == ""
    assert "staging" in result.err and "compute-on-aws.yaml" in result.err


def test_a_missing_config_file_given_with_the_option(run, tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "nope.yaml"), "render", "etl")
    assert result.code == 2
    assert "nope.yaml" in result.err


def test_invalid_yaml_names_the_line(run, tmp_path: Path) -> None:
    # Line 5 continues line 4's plain scalar with a mapping, which YAML refuses there.
    text = "region: eu-west-1\nqueue: q\ntags:\n  team: data\n    bad: indent\n"
    result = run("--config", config_file(tmp_path, text), "render", "etl")
    assert result.code == 2
    assert result.out == ""
    assert "line 5" in result.err
    assert len(result.err.splitlines()) == 1


def test_python_tags_are_refused_and_nothing_runs(run, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = f'region: !!python/object/apply:os.system ["touch {marker}"]\n'
    result = run("--config", config_file(tmp_path, text), "render", "etl")
    assert result.code == 2
    assert result.out == ""
    assert not marker.exists()
    # The same refusal from the library call.
    with pytest.raises(UserError, match="YAML"):
        load_config(tmp_path / "settings.yaml", environment=None)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("tags:\n  port: 8080\n", "port"),
        ("tags:\n  enabled: true\n", "enabled"),
        ("tags: [a, b]\n", "tags"),
        ('image:\n  tls_verify: "yes"\n', "tls_verify"),
        ("image:\n  login: sometimes\n", "login"),
        ("image:\n  system: aarch64-darwin\n", "image.system: expected x86_64-linux or aarch64-linux (Graviton)"),
        ("image: registry.example.com\n", "image"),
        ("region: 12\n", "region"),
        ('region: ""\n', "region"),
        ("queue: [a]\n", "queue"),
        ("roles:\n  job: 5\n", "roles.job"),
        ("fargate:\n  assign_public_ip: ENABLED\n", "assign_public_ip"),
        ("templates: 3\n", "templates"),
        ("environments: [staging]\n", "environments"),
        ("- a list\n", "mapping"),
    ],
)
def test_wrong_types_name_the_key(run, tmp_path: Path, text: str, named: str) -> None:
    result = run("--config", config_file(tmp_path, text), "render", "etl")
    assert result.code == 2
    assert result.out == ""
    assert named in result.err
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('region: "us east 1"\n', "region: expected an AWS region name (like eu-west-1), got 'us east 1'"),
        (
            "region: eu-west-1; rm -rf /\n",
            "region: expected an AWS region name (like eu-west-1), got 'eu-west-1; rm -rf /'",
        ),
        (
            'queue: "a b"\n',
            "queue: expected a job queue name (1-128 letters, digits, - or _) or a job-queue ARN, got 'a b'",
        ),
        (
            "queue: arn:aws:batch:eu-west-1:123:job-queue/q\n",
            "queue: expected a job queue name (1-128 letters, digits, - or _) or a job-queue ARN, got "
            "'arn:aws:batch:eu-west-1:123:job-queue/q'",
        ),
        (
            "roles:\n  job: not-an-arn\n",
            "roles.job: expected an IAM role ARN (arn:aws:iam::<account>:role/<name>), got 'not-an-arn'",
        ),
        (
            "roles:\n  execution: arn:aws:iam::123456789012:user/me\n",
            "roles.execution: expected an IAM role ARN (arn:aws:iam::<account>:role/<name>), got "
            "'arn:aws:iam::123456789012:user/me'",
        ),
        ("tags:\n  '': x\n", "tags: a key is empty: AWS takes keys of 1-128 characters"),
        (
            "notifications:\n  topic: t\n  on: []\n",
            "notifications.on: lists no event: name at least one of FAILED, SUCCEEDED, BLOCKED (or remove "
            "notifications)",
        ),
        (
            'environments:\n  "st ag":\n    queue: q\n',
            "environments: 'st ag' is not an environment name (1-64 letters, digits, - _ or ., starting with a letter "
            "or digit): it names CI jobs and --env",
        ),
    ],
)
def test_values_aws_would_refuse_are_refused_first(run, tmp_path: Path, text: str, line: str) -> None:
    """Checked where AWS checks them, before they reach a template or a generated CI file."""
    path = config_file(tmp_path, text)
    result = run("--config", path, "render", "etl")
    assert (result.code, result.out) == (2, "")
    assert result.err == f"error: {path}: {line}\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("region", "us-gov-west-1"),
        ("region", "cn-north-1"),
        ("queue", "arn:aws:batch:eu-west-1:123456789012:job-queue/main_queue-2"),
    ],
)
def test_values_aws_accepts_pass(run, tmp_path: Path, key: str, value: str) -> None:
    text = "".join(f"{key}: {value}\n" if line.startswith(f"{key}:") else f"{line}\n" for line in BASE.splitlines())
    text += "environments:\n  staging.eu-1:\n    tags: {}\n"
    result = run("--config", config_file(tmp_path, text), "render", "etl")
    assert result.code == 0, result.err


def test_every_key_of_a_wrong_type_is_named_at_once(run, tmp_path: Path) -> None:
    path = config_file(tmp_path, "compute: [spot]\nqueues: 3\nregion: 5\n")
    result = run("--config", path, "render", "etl")
    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: {path}: region: expected a string",
        f"error: {path}: compute: expected a mapping",
        f"error: {path}: queues: expected a mapping",
    ]


def test_wrong_types_inside_the_chosen_environment(run, tmp_path: Path) -> None:
    text = BASE + "environments:\n  staging:\n    tags:\n      port: 8080\n"
    path = config_file(tmp_path, text)
    result = run("--config", path, "--env", "staging", "render", "etl")
    assert result.code == 2
    assert "port" in result.err and "staging" in result.err


def test_the_default_config_is_read_from_the_current_folder(run, tmp_path: Path) -> None:
    config_file(tmp_path, "queue: from-default-file\ntags:\n  who: default\n", name="compute-on-aws.yaml")
    job = rendered(run("render", "--json", "plain"))
    assert job["jobQueue"] == "from-default-file"
    assert job["definition"]["tags"] == {"who": "default"}


def test_an_explicit_config_replaces_the_default_one(run, tmp_path: Path) -> None:
    config_file(tmp_path, "queue: from-default-file\n", name="compute-on-aws.yaml")
    job = rendered(run("--config", config_file(tmp_path, BASE), "render", "--json", "etl"))
    assert job["jobQueue"] == "main-queue"


def test_without_any_config_the_defaults_apply(run, tmp_path: Path) -> None:
    write_job(tmp_path / "jobs", "queued", '{ queue = "q"; command = [ "true" ]; image = "i"; }')
    job = rendered(run("render", "--json", "queued"))
    assert job["definition"]["tags"] == {}
    # A job with no queue and no config has nowhere to go.
    result = run("render", "etl")
    assert result.code == 2
    assert "queue" in result.err


def test_an_empty_config_file_is_the_defaults(run, tmp_path: Path) -> None:
    write_job(tmp_path / "jobs", "queued", '{ queue = "q"; command = [ "true" ]; image = "i"; }')
    job = rendered(run("--config", config_file(tmp_path, ""), "render", "--json", "queued"))
    assert job["definition"]["tags"] == {}
    assert job["jobQueue"] == "q"


def test_templates_are_relative_to_the_config_file(run, tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    (folder / "tpl").mkdir(parents=True)
    (folder / "tpl" / "container-ec2.json.j2").write_text(
        '{"jobDefinitionName": {{ job.definition_name | tojson }}, "marker": "from-conf-tpl"}'
    )
    path = config_file(folder, "queue: q\nimage: {registry: r.example.com, repository: repo}\ntemplates: tpl\n")
    job = rendered(run("--config", path, "render", "--json", "etl"))
    assert job["definition"]["marker"] == "from-conf-tpl"


def test_a_templates_folder_without_templates_is_refused(run, tmp_path: Path) -> None:
    """`templates: /etc` (or a typo'd folder that exists): nothing in it would be used, silently."""
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "container.json").write_text("{}")  # not the name looked for
    path = config_file(tmp_path, "queue: q\ntemplates: tpl\n")
    result = run("--config", path, "render", "etl")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith(f"error: {path}: templates: folder {tmp_path / 'tpl'} holds none of container.json.j2, ")
    assert "built-in templates would be used" in line


def test_every_built_in_template_can_be_replaced() -> None:
    """TEMPLATE_NAMES, which a templates folder is checked against, names every template the package ships."""
    import compute_on_aws
    from compute_on_aws.declared.config import TEMPLATE_NAMES

    shipped = {p.name for p in (Path(compute_on_aws.__file__).parent / "templates").glob("*.j2")}
    assert shipped and shipped <= set(TEMPLATE_NAMES)


def test_a_typo_in_an_environment_not_chosen_is_still_reported(cli, tmp_path: Path) -> None:
    (tmp_path / "compute-on-aws.yaml").write_text("environments:\n  staging:\n    regoin: eu-west-1\n")
    (tmp_path / "jobs").mkdir()
    result = cli("--jobs", str(tmp_path / "jobs"), "render", "x", cwd=tmp_path)
    assert result.code == 2
    assert result.err == (
        "error: compute-on-aws.yaml: environments.staging: unknown key 'regoin' (did you mean region?)\n"
    )


def test_a_config_that_is_not_utf8_is_a_users_mistake(run, tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("queue: caf\xe9\n".encode("latin-1"))
    result = run("--config", str(path), "render", "etl")
    assert result.code == 2
    assert result.err == f"error: config {path}: not UTF-8 text (byte 10)\n"


def test_a_key_given_twice_is_an_error_naming_it_and_its_line(run, tmp_path: Path) -> None:
    result = run("--config", config_file(tmp_path, "queue: a\nregion: us-east-1\nqueue: b\n"), "render", "etl")
    assert result.code == 2
    assert result.err.startswith("error: config ") and "key 'queue' is given twice" in result.err
    assert "line 3" in result.err and len(result.err.splitlines()) == 1


def test_every_backend_the_config_accepts_can_be_opened(tmp_path: Path) -> None:
    """The config's list of backend names and the backends' own table are one set: a name accepted in
    compute-on-aws.yaml always opens a backend that says where its jobs are."""
    from compute_on_aws.backends import BACKEND_CLASSES, open_backend
    from compute_on_aws.declared.config import BACKENDS

    assert set(BACKENDS) == set(BACKEND_CLASSES)
    for name in BACKENDS:
        backend = open_backend(name, Config(backend=name), state_dir=tmp_path)
        assert backend.name == name
        assert backend.place("q").endswith("q")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aws:\n  calls_per_second: .nan\n", "aws.calls_per_second: expected a number from 0.1 to 100000, got nan"),
        ("aws:\n  calls_per_second: .inf\n", "aws.calls_per_second: expected a number from 0.1 to 100000, got inf"),
        (
            "aws:\n  calls_per_second: 1e9\n",
            "aws.calls_per_second: expected a number from 0.1 to 100000, got '1e9' (YAML reads 1e9 as text: write it "
            "as a plain number, e.g. 1000 or 1.0e+3)",
        ),
        ("aws:\n  calls_per_second: 1.0e+9\n", "got 1000000000.0"),
        ("local:\n  max_vcpus: .nan\n", "local.max_vcpus: expected a number from 0.25 to 100000, got nan"),
        ("local:\n  max_vcpus: -.inf\n", "local.max_vcpus: expected a number from 0.25 to 100000, got -inf"),
        ("local:\n  kill_grace_seconds: 1000000\n", "local.kill_grace_seconds: expected a number from 0 to 86400"),
        ("schedules:\n  window: 1000d\n", "schedules.window: at most 7d, got '1000d'"),
    ],
    ids=["cps-nan", "cps-inf", "cps-1e9", "cps-huge", "vcpus-nan", "vcpus-minus-inf", "grace-huge", "window-huge"],
)
def test_numbers_out_of_bounds_are_refused_in_one_line(run, tmp_path: Path, text: str, message: str) -> None:
    result = run("--config", config_file(tmp_path, text), "render", "etl")
    assert result.code == 2 and result.out == ""
    assert message in result.err and len(result.err.splitlines()) == 1, result.err
