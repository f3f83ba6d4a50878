"""Telling processes apart across pid reuse and reboots, and stopping a job's whole process group."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


def identity(pid: int) -> str | None:
    """`<boot id>:<pid>:<start time>` of a live process, None when there is none: equal only for the same process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        return f"{_boot_id()}:{pid}:?"
    # The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return f"{_boot_id()}:{pid}:{fields[19]}"


def alive(pid: int | None, recorded: str | None) -> bool:
    return pid is not None and recorded is not None and identity(pid) == recorded


class ExitWaiter:
    """Waits for a child's exit for at most some seconds, woken the moment it exits: through a pidfd on Linux (5.3 and
    later), else through Popen.wait's own short sleeps."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._fd: int | None = None
        opener = getattr(os, "pidfd_open", None)
        if opener is not None:
            with contextlib.suppress(OSError):
                self._fd = opener(process.pid)

    def wait(self, seconds: float) -> None:
        if self._fd is not None:
            select.select([self._fd], [], [], seconds)
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(seconds)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def stop_group(pgid: int, grace: float, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM to the process group, then SIGKILL after `grace` seconds if any of it is left.

    `reap` collects the leader when it is our child (a zombie still counts as a member of its group).
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if reap is not None:
        reap()


def kill_group(pgid: int) -> None:
    """SIGKILL to a process group left behind by a dead worker."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
