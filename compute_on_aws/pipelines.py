"""Scheduled CI pipelines (GitHub Actions, GitLab CI) rendered from the declared schedules: each starts at the jobs'
times and runs `queue --due`. Pure: the text of the file, from the manifest and the config."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from compute_on_aws import chains, schedules
from compute_on_aws.config import Config
from compute_on_aws.errors import UserError
from compute_on_aws.model import Manifest, Schedule

Kind = Literal["github", "gitlab"]
# Well-known actions at their current major versions; `ci.uses` in the config replaces them (e.g. pinned by commit).
DEFAULT_USES = {
    "checkout": "actions/checkout@v4",
    "nix": "cachix/install-nix-action@v31",
    "aws": "aws-actions/configure-aws-credentials@v4",
}
# GitHub's 5-minute floor for scheduled workflows.
GITHUB_SHORTEST = timedelta(minutes=5)
# GitLab's predefined variables under the names a job may copy, as GitHub spells them.
GITHUB_EQUIVALENTS = {
    "CI_COMMIT_SHA": "${{ github.sha }}",
    "CI_COMMIT_REF_NAME": "${{ github.ref_name }}",
    "CI_PIPELINE_ID": "${{ github.run_id }}",
    "CI_PROJECT_PATH": "${{ github.repository }}",
}


@dataclass(frozen=True)
class CronLine:
    cron: str
    timezone: str
    comment: str


def _window(config: Config) -> str:
    minutes = int(config.schedule_window.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _scheduled(manifest: Manifest) -> list[tuple[str, Schedule]]:
    found = [(job.name, s) for job in manifest.jobs.values() for s in job.schedules if s.enabled]
    if not found:
        raise UserError(
            'no job declares an enabled schedule: a pipeline would never start (schedule = "0 5 * * *"; in '
            "jobs/<name>/default.nix)"
        )
    return found


def _variables(manifest: Manifest) -> list[str]:
    """What the scheduled jobs and the jobs they run after copy from the pipeline's environment."""
    names: set[str] = set()
    for job_name in {name for name, _ in _scheduled(manifest)}:
        for job in chains.order(manifest, job_name):
            names.update(job.environment)
    return sorted(names)


def _github_crons(manifest: Manifest, now: datetime) -> list[CronLine]:
    by_cron: dict[str, list[str]] = {}
    for job_name, schedule in _scheduled(manifest):
        lines = schedules.utc_crons(schedule, job=job_name, now=now, shortest=GITHUB_SHORTEST)
        note = "" if len(lines) == 1 else f", at each UTC offset {schedule.timezone} uses"
        for line in lines:
            by_cron.setdefault(line, []).append(f"{job_name}: {schedules.explain(schedule)}{note}")
    return [CronLine(cron, "UTC", "; ".join(comments)) for cron, comments in by_cron.items()]


def _gitlab_crons(manifest: Manifest) -> list[CronLine]:
    by_cron: dict[tuple[str, str], list[str]] = {}
    for job_name, schedule in _scheduled(manifest):
        by_cron.setdefault((schedule.cron, schedule.timezone), []).append(job_name)
    return [CronLine(cron, zone, ", ".join(jobs)) for (cron, zone), jobs in by_cron.items()]


def render(kind: Kind, manifest: Manifest, config: Config, *, now: datetime) -> str:
    from compute_on_aws.render import templates

    if config.ci_role_arn is None:
        raise UserError(
            f"ci {kind}: roles.ci is not set in compute-on-aws.yaml: the IAM role the pipeline assumes through "
            f"{'GitHub' if kind == 'github' else 'GitLab'}'s OIDC provider to queue jobs (iam-policy prints what it "
            "needs)"
        )
    if config.region is None:
        raise UserError(f"ci {kind}: region is not set in compute-on-aws.yaml: the region the pipeline queues in")
    env = config.environment
    name = "compute-on-aws-schedules" + (f"-{env}" if env else "")
    common = {
        "name": name,
        "env_flag": f" --env {env}" if env else "",
        "window": _window(config),
        "role": config.ci_role_arn,
        "region": config.region,
    }
    variables = _variables(manifest)
    if kind == "github":
        text: str = (
            templates(config.templates)
            .get_template("ci-github.yml.j2")
            .render(
                crons=_github_crons(manifest, now),
                variables=[(v, GITHUB_EQUIVALENTS.get(v, "${{ vars.%s }}" % v)) for v in variables],  # noqa: UP031
                uses={**DEFAULT_USES, **config.ci_uses},
                **common,
            )
        )
    else:
        text = (
            templates(config.templates)
            .get_template("ci-gitlab.yml.j2")
            .render(
                crons=_gitlab_crons(manifest),
                variables=[v for v in variables if not v.startswith(("CI_", "GITLAB_"))],
                image=config.ci_gitlab_image,
                **common,
            )
        )
    return text
