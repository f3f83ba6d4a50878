"""The command line as users meet it: help, arguments reaching the job, mistakes in one line, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pure_manifest, write_job

from compute_on_aws.cli import app

COMMANDS = [command.name for command in app.registered_commands]


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    write_job(folder, "hello", '{ queue = "default"; command = [ "echo" "hi" ]; image = "busybox"; }')
    write_job(folder, "hello-world", '{ queue = "default"; command = [ "echo" ]; image = "busybox"; }')
    write_job(folder, "broken", '{ queue = "default"; command = [ "echo" ]; image = "busybox"; attempts = 0; }')
    return folder


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_every_command_has_help(cli, command: str) -> None:
    result = cli(*([command] if command else []), "--help")
    assert result.code == 0
    assert result.out.startswith(f"Usage: compute-on-aws {command}".rstrip())


def test_arguments_after_the_job_reach_it_untouched(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "render", "hello", "-x", "--since", "2026-01-01", "--json", "--", "--json", "a b")
    assert result.code == 0, result.err
    request = result.queued()[0]["request"]
    assert request["containerOverrides"]["command"] == ["echo", "hi", "-x", "--since", "2026-01-01", "--json", "a b"]


def test_options_may_follow_the_job_name(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "queue", "hello", "--dry-run", "2026-01-01", "--json")
    assert result.code == 0, result.err
    assert result.queued()[0]["jobName"] == "hello_2026-01-01"


def test_unknown_job_suggests_close_names(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "render", "helo")
    assert result.code == 2
    assert result.err == f"error: no job named 'helo' in {jobs} (did you mean hello or hello-world?)\n"


def test_an_invalid_job_is_refused_with_its_problems(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "queue", "broken", "--dry-run")
    assert result.code == 2
    assert result.err == "error: broken is not valid: attempts: must be between 1 and 10, got 0\n"


def test_other_invalid_jobs_do_not_block_a_valid_one(cli, jobs: Path) -> None:
    assert cli("--jobs", str(jobs), "render", "hello").code == 0


def test_jobs_lists_valid_jobs_and_fails_on_invalid_ones(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "jobs")
    assert result.code == 2
    assert [line.split()[0] for line in result.out.splitlines()] == ["JOB", "hello", "hello-world"]
    assert result.err == "error: broken: attempts: must be between 1 and 10, got 0\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON (line 1: Expecting property name enclosed in double quotes)"),
        (
            '{"version": 2, "jobs": {}, "errors": {}}',
            "version: this helper reads version 5, got 2 (update compute-on-aws or the flake)",
        ),
        ('{"version": 5, "jobs": {"a": {}}, "errors": {}}', "jobs.a.platform: missing"),
        ("[]", "top level: expected an object"),
    ],
)
def test_a_bad_manifest_is_one_line(cli, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    result = cli("--manifest", str(path), "jobs")
    assert result.code == 2
    assert result.err == f"error: manifest {path}: {message}\n"


def test_missing_manifest_file(cli, tmp_path: Path) -> None:
    result = cli("--manifest", str(tmp_path / "nope.json"), "jobs")
    assert result.code == 2
    assert result.err == f"error: manifest {tmp_path / 'nope.json'}: cannot read it (No such file or directory)\n"


def test_usage_mistakes_exit_2(cli) -> None:
    assert cli("nope").code == 2
    assert cli("queue").code == 2


def test_a_manifest_from_nix_is_used_as_is(cli, jobs: Path, tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(pure_manifest(jobs)))
    result = cli("--manifest", str(path), "--jobs", "/nonexistent", "render", "hello", "--json")
    assert result.code == 0, result.err
    assert result.queued()[0]["definition"]["containerProperties"]["command"] == ["echo", "hi"]


def test_help_and_dry_runs_do_not_load_boto3(jobs: Path) -> None:
    code = (
        "import sys\n"
        "from compute_on_aws.cli import main\n"
        f"sys.argv = ['compute-on-aws', '--jobs', {str(jobs)!r}, 'render', 'hello']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('boto3' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.stderr.strip().splitlines()[-1] == "False"
    assert result.stdout.startswith("dry run: would submit hello to default")


def test_config_and_environment_may_follow_the_command(cli, jobs: Path, tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("queue: q\nenvironments:\n  staging:\n    tags: { stage: staging }\n")
    result = cli("--jobs", str(jobs), "render", "hello", "--config", str(config), "--env", "staging", "--json")
    assert result.code == 0, result.err
    assert result.queued()[0]["definition"]["tags"] == {"stage": "staging"}


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "command",
    [
        ["wait", "job-1", "--timeout"],
        ["queue", "hello", "--wait", "--timeout"],
        ["worker", "--max-vcpus"],
        ["worker", "--kill-grace"],
    ],
    ids=["wait-timeout", "queue-timeout", "max-vcpus", "kill-grace"],
)
def test_a_negative_or_non_finite_number_is_refused(cli, jobs: Path, command: list[str], value: str) -> None:
    result = cli("--jobs", str(jobs), *command, value)
    assert result.code == 2
    assert "expected a number >= " in result.err and value in result.err


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["wait", "job-1", "--timeout", "1e12"], "--timeout: expected at most 31536000, got 1000000000000"),
        (["worker", "--max-vcpus", "1e6"], "--max-vcpus: expected at most 100000, got 1000000"),
        (["worker", "--kill-grace", "100000"], "--kill-grace: expected at most 86400, got 100000"),
        (["schedules", "list", "--count", "1000000"], "--count: expected at most 1000, got 1000000"),
    ],
    ids=["wait-timeout", "max-vcpus", "kill-grace", "list-count"],
)
def test_a_number_beyond_its_bound_is_refused(cli, jobs: Path, command: list[str], message: str) -> None:
    result = cli("--jobs", str(jobs), *command)
    assert result.code == 2 and result.err == f"error: {message}\n"


def test_a_manifest_that_is_not_utf8_is_a_users_mistake(cli, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(b'{"version": 5, "jobs": {}, "errors": {"\xff": []}}')
    result = cli("--manifest", str(manifest), "jobs")
    assert result.code == 2
    assert result.err == f"error: manifest {manifest}: not UTF-8 text (byte 39)\n"


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": None},
            "error: incomplete AWS credentials in env: AWS_SECRET_ACCESS_KEY is missing (set both AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY, or neither, or complete the profile)",
        ),
        (
            {"AWS_REGION": "us east 1"},
            "error: AWS region 'us east 1' is not a region name (like us-east-1): check AWS_REGION, "
            "AWS_DEFAULT_REGION, your profile and region in compute-on-aws.yaml",
        ),
    ],
    ids=["key-without-secret", "bad-region"],
)
def test_a_mistake_in_the_aws_environment_is_one_line_and_exit_2(
    cli, jobs: Path, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str | None], message: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    result = cli("--jobs", str(jobs), "--backend", "aws", "queue", "hello")
    assert result.code == 2
    assert result.err.strip() == message


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand, as the words that name it."""
    import typer.main

    def walk(command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        sub = getattr(command, "commands", None)
        if not sub:
            return [path]
        return [p for name, c in sorted(sub.items()) for p in walk(c, (*path, name))]

    return walk(typer.main.get_command(app), ())


GLOBAL = ["--config", "--env", "--backend", "--state-dir"]


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_a_global_option_after_a_command_is_taken_or_refused_in_one_line(cli, jobs: Path, path) -> None:
    """Each of --config, --env, --backend, --state-dir after a command's name: listed in its --help (it is taken),
    or refused in one line saying to put it before, exit 2; never taken as a job's argument."""
    helped = cli(*path, "--help").out
    for option in GLOBAL:
        if f"{option} " in helped:
            continue
        words = ["hello"] if path in {("queue",), ("render",)} else []
        result = cli("--jobs", str(jobs), *path, *words, option, "x")
        assert result.code == 2, (path, option, result.out)
        assert result.err.count("\n") == 1, result.err
        assert result.err.startswith(f"error: {option}: `{' '.join(path)}` does not take it after its name: give it")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # click words its messages in its own way from one release to the next: the test holds what they say.
        (["jobs", "--bogus"], ["No such option", "--bogus", "(compute-on-aws jobs --help lists what it takes)"]),
        (["nosuch"], ["No such command", "nosuch", "(compute-on-aws --help lists what it takes)"]),
        (["wait", "--timeout", "soon", "j"], ["Invalid value for '--timeout'", "(compute-on-aws wait --help"]),
        (["render"], ["Missing argument", "name", "(compute-on-aws render --help lists what it takes)"]),
        (["jobs", "--jobs", "x"], ["--jobs: `jobs` does not take it after its name: give it before"]),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_2(cli, args: list[str], words: list[str]) -> None:
    result = cli(*args)
    assert result.code == 2, result.err
    assert result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    for word in words:
        assert word.lower() in result.err.lower()


def test_a_group_alone_shows_its_help(cli) -> None:
    result = cli("infra")
    assert result.code == 2
    assert "Usage: compute-on-aws infra" in result.out + result.err


def test_render_takes_backend_as_an_option_not_as_arguments(cli, jobs: Path) -> None:
    result = cli("--jobs", str(jobs), "render", "hello", "--backend", "aws", "--json")
    assert result.code == 0, result.err
    [job] = result.queued()
    # No arguments: the job's name is its own, and its command is the declared one, not overridden.
    assert job["request"]["jobName"] == "hello"
    assert "containerOverrides" not in job["request"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "", "render", "hello"], "--env: expected a value, got an empty string"),
        (["render", "hello", "--env", " "], "--env: expected a value, got an empty string"),
        (["--state-dir", "", "status"], "--state-dir: expected a value, got an empty string"),
        (["queue", "hello", "--state-dir", ""], "--state-dir: expected a value, got an empty string"),
        (["queue", "hello", "--after", "", "--dry-run"], "--after: expected a value, got an empty string"),
    ],
    ids=["global-env", "env", "global-state-dir", "state-dir", "after"],
)
def test_an_empty_value_is_refused_not_read_as_unset(cli, jobs: Path, args: list[str], message: str) -> None:
    """A CI variable expanded to nothing: `--state-dir ""` would be the current folder, `--after ""` a dependency
    on job id ""."""
    result = cli("--jobs", str(jobs), *args)
    assert result.code == 2 and result.err == f"error: {message}\n"


@pytest.mark.parametrize("backend", ["aws", "local"])
@pytest.mark.parametrize("where", ["argument", "command"])
def test_a_batch_parameter_reference_is_refused_on_both_backends(
    cli, jobs: Path, tmp_path: Path, backend: str, where: str
) -> None:
    """`Ref::name` is replaced by AWS Batch with a job parameter, passed as it is by the local backend: refused on
    both, in an argument or the declared command, before anything is queued."""
    write_job(jobs, "refs", '{ queue = "default"; command = [ "echo" "--in=Ref::input" ]; image = "busybox"; }')
    name, args = ("hello", ["ok", "--in=Ref::input"]) if where == "argument" else ("refs", [])
    state = ["--state-dir", str(tmp_path / "state")] if backend == "local" else []
    result = cli("--jobs", str(jobs), "--backend", backend, *state, "queue", name, *args, "--dry-run")
    assert result.code == 2
    shown = "argument 2 '--in=Ref::input'" if where == "argument" else "command: '--in=Ref::input'"
    assert result.err.startswith(f"error: {name}: {shown}: AWS Batch would replace Ref::... with a job parameter")
    assert len(result.err.splitlines()) == 1 and result.out == ""


def test_jobs_lists_a_command_with_a_batch_parameter_reference_as_invalid(cli, jobs: Path) -> None:
    write_job(jobs, "refs", '{ queue = "default"; command = [ "echo" "Ref::input" ]; image = "busybox"; }')
    result = cli("--jobs", str(jobs), "jobs")
    assert result.code == 2
    assert "error: refs: command: 'Ref::input': AWS Batch would replace Ref::... with a job parameter" in result.err


@pytest.mark.parametrize("line", ['tenant-a "x\x00y"', '["tenant-a", "x\\u0000y"]'], ids=["shell-words", "json-escape"])
def test_an_args_line_holding_nul_is_refused_naming_the_line(cli, jobs: Path, tmp_path: Path, line: str) -> None:
    listing = tmp_path / "args.txt"
    listing.write_text(f"ok\n{line}\n")
    result = cli("--jobs", str(jobs), "queue", "hello", "--args-from", str(listing), "--dry-run")
    assert result.code == 2
    assert result.err == f"error: {listing}:2: holds a NUL byte, which no program's argument can carry\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'\xef\xbb\xbf{ queue = "q"; command = [ "x" ]; image = "i"; }',
            "starts with a UTF-8 byte order mark (BOM), which Nix cannot parse: save it as UTF-8 without one",
        ),
        (b'{ queue = "q"; command = [ "caf\xe9" ]; image = "i"; }', "not UTF-8 text (byte 31): save it as UTF-8"),
    ],
    ids=["bom", "latin-1"],
)
def test_a_job_file_that_is_not_plain_utf8_is_named(cli, jobs: Path, content: bytes, message: str) -> None:
    (jobs / "odd").mkdir()
    (jobs / "odd" / "default.nix").write_bytes(content)
    result = cli("--jobs", str(jobs), "jobs")
    assert result.code == 2 and result.err == f"error: {jobs / 'odd' / 'default.nix'}: {message}\n"


def test_unbounded_recursion_names_the_job(cli, jobs: Path) -> None:
    write_job(jobs, "loops", '{ queue = "q"; command = [ (let f = x: f x; in f 1) ]; image = "i"; }')
    result = cli("--jobs", str(jobs), "jobs")
    assert result.code == 2
    assert result.err.startswith(f"error: jobs folder {jobs}: loops: ")
    assert result.err.endswith(f" in {jobs / 'loops' / 'default.nix'} or a job it runs after\n")
    assert len(result.err.splitlines()) == 1
