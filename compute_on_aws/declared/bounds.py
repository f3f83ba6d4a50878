"""Bounds of the numbers a user sets in the config or on the command line: beyond them a value is a typo, not a
setting, and some (a window of a century) would make the tool work for hours. Kept apart so the CLI reads them
without importing the rest."""

from __future__ import annotations

from datetime import timedelta

MAX_LOCAL_VCPUS = 100_000
MAX_KILL_GRACE_SECONDS = 86_400
MAX_CALLS_PER_SECOND = 100_000
# The longest wait an option may ask for (a year): beyond ~1e9 s threads cannot wait at all.
MAX_WAIT_SECONDS = 365 * 86_400
# How late a scheduled pipeline may be (schedules.window, queue --due --window, schedules missed --grace).
MAX_DUE_WINDOW = timedelta(days=7)
MAX_LISTED_RUNS = 1000
