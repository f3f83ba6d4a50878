"""Schedules as times: next runs, the runs due in a window and their names, and the same cron as GitHub (UTC only) and
EventBridge Scheduler write it. Pure: the current time is an argument. Cron semantics are cronsim's (Debian cron's,
daylight saving time included)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from compute_on_aws import naming
from compute_on_aws.errors import UserError
from compute_on_aws.model import Job, Manifest, Schedule

# The run's slot, given to every scheduled run (from CI or from EventBridge Scheduler) as an ISO 8601 UTC time.
SCHEDULED_TIME_VARIABLE = "COMPUTE_ON_AWS_SCHEDULED_TIME"
# How late a CI scheduler may start a pipeline: GitHub delays scheduled workflows by minutes, at busy hours by more.
DEFAULT_WINDOW = timedelta(hours=1)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin or UTC") from None


def problem(schedule: Schedule) -> str | None:
    """What is wrong with a schedule (Nix checks declarations; this catches hand-written manifests), or None."""
    if len(schedule.cron.split()) != 5:
        return f"cron: {schedule.cron!r} has {len(schedule.cron.split())} fields; cron takes 5"
    if not re.fullmatch(r"[0-9A-Za-z*,/ -]+", schedule.cron):
        return f"cron: {schedule.cron!r}: only digits, names, * , - and / are allowed"
    try:
        CronSim(schedule.cron, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError as e:
        return f"cron: {schedule.cron!r}: {e}"
    try:
        zone(schedule.timezone)
    except UserError as e:
        return f"timezone: {e}"
    return None


def _runs(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Runs strictly after `after`, in UTC."""
    for run in CronSim(schedule.cron, after.astimezone(zone(schedule.timezone))):
        yield run.astimezone(UTC)


def next_runs(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    runs = _runs(schedule, after)
    return [run for _, run in zip(range(count), runs, strict=False)]


def runs_between(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Runs in (start, end]: a pipeline started at `end` queues the slots it may have been late for."""
    found = []
    for run in _runs(schedule, start):
        if run > end:
            break
        found.append(run)
    return found


def explain(schedule: Schedule) -> str:
    """`At 05:00 every day (UTC)`: cronsim's words, with the timezone the cron is read in."""
    words = CronSim(schedule.cron, datetime(2026, 1, 1, tzinfo=UTC)).explain()
    return f"{words} ({schedule.timezone})" + ("" if schedule.enabled else ", disabled")


def slot_name(job: Job, slot: datetime, args: tuple[str, ...]) -> str:
    """`observes-etl_2026-11-28T0500Z`: a second pipeline (or a retried one) for the same slot is a duplicate of the
    first. Arguments always count in a scheduled name, so two schedules of one job never share a run."""
    return naming.job_name(f"{job.name}_{slot.astimezone(UTC):%Y-%m-%dT%H%MZ}", args, include_args=True)


def scheduled_time(slot: datetime) -> str:
    return f"{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Due:
    job: Job
    schedule: Schedule
    slot: datetime


def due(manifest: Manifest, at: datetime, window: timedelta) -> list[Due]:
    """Every slot of every enabled schedule in (at - window, at], oldest first."""
    found = [
        Due(job, schedule, slot)
        for job in manifest.jobs.values()
        for schedule in job.schedules
        if schedule.enabled
        for slot in runs_between(schedule, at - window, at)
    ]
    return sorted(found, key=lambda d: (d.slot, d.job.name))


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str, what: str) -> timedelta:
    """`90m`, `1h`, `1h30m`, `2d`: a positive duration."""
    found = _DURATION.fullmatch(text.strip())
    if not text.strip() or found is None:
        raise UserError(f"{what}: expected a duration such as 30m, 1h or 1h30m, got {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise UserError(f"{what}: must be longer than 0, got {text!r}")
    return duration


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 time (`2026-11-28T05:00Z`, `2026-11-28 06:00+01:00`); without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{what}: expected an ISO 8601 time such as 2026-11-28T05:00Z, got {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _numeric(cron: str) -> str:
    """Months and weekdays as numbers: POSIX cron, which GitHub documents, has no names."""
    minute, hour, dom, month, dow = cron.split()
    for i, name in enumerate(_MONTHS):
        month = re.sub(name, str(i + 1), month, flags=re.IGNORECASE)
    for i, name in enumerate(_WEEKDAYS):
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


# Batch job names allow no `:`, and EventBridge Scheduler's time has them: its runs share one name per schedule, and
# get their slot in SCHEDULED_TIME_VARIABLE (the scheduler invokes each slot once: AWS's own guarantee).
EVENTBRIDGE_TIME = "<aws.scheduler.scheduled-time>"
EVENTBRIDGE_EXECUTION = "<aws.scheduler.execution-id>"
_SCHEDULE_NAME_LIMIT = 64


def eventbridge_name(job: str, index: int) -> str:
    """`observes-etl.0`: the job and the schedule's place in its declaration (`.` is in no job name)."""
    name = f"{job}.{index}"
    if len(name) <= _SCHEDULE_NAME_LIMIT:
        return name
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    return f"{job[: _SCHEDULE_NAME_LIMIT - len(digest) - len(str(index)) - 2]}-{digest}.{index}"


def eventbridge_job_name(job: Job, args: tuple[str, ...]) -> str:
    return naming.job_name(f"{job.name}_scheduled", args, include_args=True)


def eventbridge_expression(schedule: Schedule, *, job: str) -> str:
    """`cron(0 5 * * ? *)`: AWS's six fields (a year at the end), one of the two day fields `?`, weekdays by name (AWS
    numbers them from 1 = Sunday). Cron runs a day matching either day field when both are restricted; AWS cannot."""
    # AWS writes a step from the field's first value (0/15), not from `*`.
    minute, hour, dom, month, dow = (
        ",".join(f"{low}/{item[2:]}" if item.startswith("*/") else item for item in field.split(","))
        for field, low in zip(schedule.cron.split(), (0, 0, 1, 1, 0), strict=True)
    )
    if dom != "*" and dow != "*":
        raise UserError(
            f"{job}: schedule {schedule.cron!r} restricts both the day of the month and the day of the week, which "
            "EventBridge Scheduler cannot express: declare two schedules, one for each"
        )
    if dow == "*":
        return f"cron({minute} {hour} {dom} {month} ? *)"
    sim = CronSim(schedule.cron, datetime(2026, 1, 1, tzinfo=UTC))
    days = ",".join(_WEEKDAYS[d] for d in sorted(w for w in sim.weekdays if isinstance(w, int)))
    return f"cron({minute} {hour} ? {month} {days} *)"
