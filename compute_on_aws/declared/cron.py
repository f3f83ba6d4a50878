"""Schedules as times: a cron read in a timezone, its next runs and the runs in a window, and the durations and times
users write. Pure: the current time is an argument. Cron semantics are cronsim's (Debian cron's, daylight saving time
included)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from compute_on_aws.errors import UserError

# How late a CI scheduler may start a pipeline: GitHub delays scheduled workflows by minutes, at busy hours by more.
DEFAULT_WINDOW = timedelta(hours=1)

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """When a job runs on its own: a 5-field cron read in `timezone` (IANA), with the arguments its runs get."""

    cron: str
    timezone: str
    args: tuple[str, ...]
    enabled: bool


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


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str, what: str, *, maximum: timedelta | None = None) -> timedelta:
    """`90m`, `1h`, `1h30m`, `2d`: a positive duration, at most `maximum`."""
    found = _DURATION.fullmatch(text.strip())
    if not text.strip() or found is None:
        raise UserError(f"{what}: expected a duration such as 30m, 1h or 1h30m, got {text!r}")
    try:
        days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
        duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except (OverflowError, ValueError):  # beyond timedelta's range, or more digits than int() reads
        raise UserError(f"{what}: {text!r} is out of range") from None
    if duration <= timedelta(0):
        raise UserError(f"{what}: must be longer than 0, got {text!r}")
    if maximum is not None and duration > maximum:
        raise UserError(f"{what}: at most {_spelled(maximum)}, got {text!r}")
    return duration


def _spelled(duration: timedelta) -> str:
    return f"{duration.days}d" if duration.days and not duration.seconds else f"{int(duration.total_seconds())}s"


# The times --at accepts: after the epoch (Batch's timestamps start there) and well before datetime's year 9999.
FIRST_YEAR = 1970
LAST_YEAR = 2999


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 time (`2026-11-28T05:00Z`, `2026-11-28 06:00+01:00`); without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{what}: expected an ISO 8601 time such as 2026-11-28T05:00Z, got {text!r}") from None
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        moment = datetime.max.replace(tzinfo=UTC)
    # Windows and schedules are computed around it: years far away overflow datetime, and mean nothing for a job.
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise UserError(f"{what}: {text!r} is out of range (a time between {FIRST_YEAR} and {LAST_YEAR})")
    return moment
