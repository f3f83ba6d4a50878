"""Generated CI pipelines (GitHub Actions, GitLab CI). The scheduled one, from the declared schedules: it starts at the
jobs' times and runs `queue --due`. The infrastructure one, from the config: `infra plan` on each merge request,
`infra apply` on the default branch. Pure: the text of the file, from the manifest and the config."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cronsim import CronSim

from compute_on_aws.declared import cron
from compute_on_aws.declared.config import Config
from compute_on_aws.declared.cron import MONTHS, WEEKDAYS, Schedule, zone
from compute_on_aws.declared.manifest import Manifest
from compute_on_aws.errors import UserError
from compute_on_aws.planning import chains

# A key of PROVIDERS, and which of its pipelines.
Kind = Literal["github", "gitlab"]
Pipeline = Literal["schedules", "infra"]
PIPELINES = ("schedules", "infra")
# What a pipeline file puts in names and shell lines unquoted: checked, as nothing else may be there.
_ENVIRONMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
# Well-known actions pinned by commit (a tag can be moved; a commit cannot), at the releases named beside them (read
# from each repository's tags on 2026-12-07). `ci.uses` in the config replaces them.
DEFAULT_USES = {
    "checkout": "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
    "nix": "cachix/install-nix-action@630ae543ea3a38a9a4166f03376c02c50f408342",
    "aws": "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c",
}
DEFAULT_RELEASES = {"checkout": "v7.0.1", "nix": "v31.11.0", "aws": "v6.2.3"}
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
        lines = utc_crons(schedule, job=job_name, now=now, shortest=GITHUB_SHORTEST)
        note = "" if len(lines) == 1 else f", at each UTC offset {schedule.timezone} uses"
        for line in lines:
            by_cron.setdefault(line, []).append(f"{job_name}: {cron.explain(schedule)}{note}")
    return [CronLine(cron, "UTC", "; ".join(comments)) for cron, comments in by_cron.items()]


def _gitlab_crons(manifest: Manifest) -> list[CronLine]:
    by_cron: dict[tuple[str, str], list[str]] = {}
    for job_name, schedule in _scheduled(manifest):
        by_cron.setdefault((schedule.cron, schedule.timezone), []).append(job_name)
    return [CronLine(cron, zone, ", ".join(jobs)) for (cron, zone), jobs in by_cron.items()]


@dataclass(frozen=True)
class Provider:
    """A CI service the pipeline file is written for: its name in messages, its template, and the template's own
    values (its cron lines and how the jobs' variables reach the pipeline)."""

    title: str
    template: str
    values: Callable[[Manifest, Config, datetime, list[str]], dict[str, Any]]
    infra_template: str
    infra_values: Callable[[Config], dict[str, Any]]


def _github(manifest: Manifest, config: Config, now: datetime, variables: list[str]) -> dict[str, Any]:
    return {
        "crons": _github_crons(manifest, now),
        "variables": [(v, GITHUB_EQUIVALENTS.get(v, "${{ vars.%s }}" % v)) for v in variables],  # noqa: UP031
        **_uses(config),
    }


def _uses(config: Config) -> dict[str, Any]:
    """The actions by role, and the release a default one is pinned at (a comment beside it, as Dependabot reads)."""
    return {
        "uses": {**DEFAULT_USES, **config.ci_uses},
        "releases": {role: "" if role in config.ci_uses else f"  # {r}" for role, r in DEFAULT_RELEASES.items()},
    }


def _gitlab(manifest: Manifest, config: Config, now: datetime, variables: list[str]) -> dict[str, Any]:
    return {
        "crons": _gitlab_crons(manifest),
        # GitLab sets its own CI_ and GITLAB_ variables in every pipeline.
        "variables": [v for v in variables if not v.startswith(("CI_", "GITLAB_"))],
        "image": config.ci_gitlab_image,
    }


def _github_infra(config: Config) -> dict[str, Any]:
    return {**_uses(config), "branch": config.ci_default_branch}


def _gitlab_infra(config: Config) -> dict[str, Any]:
    return {"image": config.ci_gitlab_image}


PROVIDERS: dict[str, Provider] = {
    "github": Provider("GitHub", "ci-github.yml.j2", _github, "ci-github-infra.yml.j2", _github_infra),
    "gitlab": Provider("GitLab", "ci-gitlab.yml.j2", _gitlab, "ci-gitlab-infra.yml.j2", _gitlab_infra),
}


def _common(kind: Kind, pipeline: Pipeline, config: Config) -> dict[str, Any]:
    """What every provider's file of `pipeline` takes from the config, checked."""
    if config.region is None:
        raise UserError(f"ci {kind}: region is not set in compute-on-aws.yaml: the region the pipeline works in")
    if not _REGION.fullmatch(config.region):
        raise UserError(f"ci {kind}: region: expected an AWS region such as eu-central-1, got {config.region!r}")
    env = config.environment
    if env is not None and not _ENVIRONMENT.fullmatch(env):
        raise UserError(f"ci {kind}: --env {env!r}: a pipeline takes letters, digits, _ . and - in an environment name")
    return {
        "name": f"compute-on-aws-{pipeline}" + (f"-{env}" if env else ""),
        "env_flag": f" --env {env}" if env else "",
        "region": config.region,
    }


def _required_role(kind: Kind, key: str, arn: str | None, why: str) -> str:
    if arn is None:
        title = PROVIDERS[kind].title
        raise UserError(
            f"ci {kind}: roles.{key} is not set in compute-on-aws.yaml: the IAM role the pipeline assumes through "
            f"{title}'s OIDC provider {why}"
        )
    return arn


def render(kind: Kind, manifest: Manifest, config: Config, *, now: datetime) -> str:
    """The scheduled pipeline file for `kind` (a key of PROVIDERS): the same settings for every provider, then its
    own."""
    from compute_on_aws.planning.render import templates

    provider = PROVIDERS[kind]
    role = _required_role(kind, "ci", config.ci_role_arn, "to queue jobs (iam-policy prints what it needs)")
    common = {**_common(kind, "schedules", config), "window": _window(config), "role": role}
    values = provider.values(manifest, config, now, _variables(manifest))
    text: str = templates(config.templates).get_template(provider.template).render(**common, **values)
    return text


def render_infra(kind: Kind, config: Config) -> str:
    """The infrastructure pipeline file for `kind`: plan on merge requests with roles.plan, apply on the default
    branch with roles.deploy. Merge-request code never gets the role that changes AWS."""
    from compute_on_aws.planning.render import templates

    provider = PROVIDERS[kind]
    deploy = _required_role(
        kind, "deploy", config.deploy_role_arn, "to apply on the default branch (iam-policy --role infra)"
    )
    plan = _required_role(
        kind,
        "plan",
        config.plan_role_arn,
        "to plan merge requests, reading only (iam-policy --role infra-plan): merge-request code must not get "
        "roles.deploy",
    )
    if not config.infrastructure.declared and config.log_retention_days is None:
        raise UserError(
            f"ci {kind} --pipeline infra: {config.source or 'compute-on-aws.yaml'} declares no compute or queues: "
            "nothing to plan (docs/infrastructure.md)"
        )
    values = {**_common(kind, "infra", config), "deploy_role": deploy, "plan_role": plan}
    template = templates(config.templates).get_template(provider.infra_template)
    text: str = template.render(**values, **provider.infra_values(config))
    return text


def _listed(values: set[int]) -> str:
    """`0,15,30` or `1-5`: runs of three or more consecutive values as ranges."""
    ordered = sorted(values)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(f"{ordered[i]}-{ordered[j]}" if j - i >= 2 else ",".join(map(str, ordered[i : j + 1])))
        i = j + 1
    return ",".join(parts)


def _offsets(name: str, start: datetime) -> list[timedelta]:
    """Every UTC offset the zone uses in the year from `start` (two where it keeps daylight saving time)."""
    tz = zone(name)
    found = {(start + timedelta(days=d)).astimezone(tz).utcoffset() for d in range(0, 366, 7)}
    return sorted(o for o in found if o is not None)


def utc_crons(schedule: Schedule, *, job: str, now: datetime, shortest: timedelta | None = None) -> list[str]:
    """The schedule as crons read in UTC, for schedulers that know no timezone (GitHub Actions).

    Each UTC offset the zone uses gives its own lines, so a zone with daylight saving time gets the crons of both
    offsets: the pipeline then starts at both times, and `queue --due` queues only the run that is really due (the
    other start finds it queued). Refused where a shift moves runs to another day while the cron names days of the
    month or months (no UTC cron says "the day before the 1st").
    """
    if schedule.timezone in ("UTC", "Etc/UTC") or _offsets(schedule.timezone, now) == [timedelta(0)]:
        lines = [schedule.cron]
    else:
        lines = []
        for offset in _offsets(schedule.timezone, now):
            lines += [line for line in _shifted(schedule, offset, job) if line not in lines]
    lines = [_numeric(line) for line in lines]
    if shortest is not None:
        for line in lines:
            _check_interval(line, schedule, job, shortest)
    return lines


def _numeric(cron: str) -> str:
    """Months and weekdays as numbers: POSIX cron, which GitHub documents, has no names."""
    minute, hour, dom, month, dow = cron.split()
    for i, name in enumerate(MONTHS):
        month = re.sub(name, str(i + 1), month, flags=re.IGNORECASE)
    for i, name in enumerate(WEEKDAYS):
        dow = re.sub(name, str(i), dow, flags=re.IGNORECASE)
    return f"{minute} {hour} {dom} {month} {dow}"


def _shifted(schedule: Schedule, offset: timedelta, job: str) -> list[str]:
    sim = CronSim(schedule.cron, datetime(2026, 1, 1, tzinfo=UTC))
    minute, hour, dom, month, dow = schedule.cron.split()
    shift = int(offset.total_seconds() // 60)
    # {(utc hours, day shift): utc minutes}: local times regrouped after the shift, one cron line per group.
    # Every day alike: a run moved past midnight is still a run of every day.
    days_free = dom == "*" and month == "*" and dow == "*"
    hours_at: dict[tuple[int, int], set[int]] = {}
    for h in sim.hours:
        for m in sim.minutes:
            total = h * 60 + m - shift
            day = 0 if days_free else total // 1440
            hours_at.setdefault((total % 1440 % 60, day), set()).add(total % 1440 // 60)
    groups: dict[tuple[frozenset[int], int], set[int]] = {}
    for (m, day), hours in hours_at.items():
        groups.setdefault((frozenset(hours), day), set()).add(m)
    lines = []
    for (utc_hours, day), minutes in sorted(groups.items(), key=lambda g: (g[0][1], min(g[0][0]), min(g[1]))):
        days = f"{dom} {month} {dow}"
        if day != 0:
            if dom != "*" or month != "*":
                raise UserError(
                    f"{job}: schedule {schedule.cron!r} in {schedule.timezone}: some runs fall on another day in UTC, "
                    "and a cron naming days of the month or months cannot say so; GitHub runs schedules in UTC only: "
                    "write this cron in UTC, or run it from EventBridge Scheduler (schedules apply) or GitLab, which "
                    "keep timezones"
                )
            # Nix allows no `#` or `L` in weekdays: every one is a plain number here.
            days = f"* * {_listed({(w + day) % 7 for w in sim.weekdays if isinstance(w, int)})}"
        shown_minutes = minute if minutes == sim.minutes else _listed(minutes)
        shown_hours = hour if utc_hours == sim.hours else "*" if len(utc_hours) == 24 else _listed(set(utc_hours))
        lines.append(f"{shown_minutes} {shown_hours} {days}")
    return lines


def _check_interval(line: str, schedule: Schedule, job: str, shortest: timedelta) -> None:
    runs = CronSim(line, datetime(2026, 1, 5, tzinfo=UTC))
    previous = next(runs)
    for _ in range(200):
        current = next(runs)
        if current - previous < shortest:
            raise UserError(
                f"{job}: schedule {schedule.cron!r} runs more often than every {shortest.seconds // 60} minutes, "
                "the shortest interval GitHub schedules workflows at: run it from EventBridge Scheduler "
                "(schedules apply) instead"
            )
        previous = current
