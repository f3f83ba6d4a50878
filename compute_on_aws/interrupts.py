"""Ctrl-C and SIGTERM as the exception Signalled: raised at once, or at the next safe point inside `deferred()`.

An exception raised by a signal handler lands wherever the main thread is. Two places make that wrong:
- inside another module's `try/except`, where it can vanish: seen with Debian 12's CPython 3.11.2 inside botocore's
  event aliasing, after which `wait` went on waiting. So each signal is also recorded, and `check()`, called where the
  waiting loops pause, raises it again;
- between a lock's acquire and the `try` that releases it, as in concurrent.futures' `wait()` (it takes every future's
  lock in a loop): the lock stays held, the sender threads block on it and the process never ends. So code that waits
  on threads runs inside `deferred()`, where the handler only records the signal and the waiting loop calls `check()`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from compute_on_aws.errors import Signalled

_received: int | None = None
_deferring = 0


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    if not _deferring:
        raise Signalled(signum)


def install() -> None:
    global _received
    _received = None
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def check() -> None:
    """Raises Signalled if a signal arrived since `install()`, even one whose exception was lost or deferred."""
    if _received is not None:
        raise Signalled(_received)


@contextmanager
def deferred() -> Iterator[None]:
    """While inside, a signal is only recorded: the code inside calls `check()` where it is safe to stop."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


def sleep(seconds: float) -> None:
    """time.sleep between polls, after making sure no signal was lost while polling."""
    check()
    time.sleep(seconds)
