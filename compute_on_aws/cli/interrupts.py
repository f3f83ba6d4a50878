"""Ctrl-C and SIGTERM as the exception Signalled, with a second chance when a library loses it.

An exception raised by a signal handler can vanish when the signal lands inside another module's `try/except`: seen
with Debian 12's CPython 3.11.2 inside botocore's event aliasing, after which `wait` went on waiting. So each signal is
also recorded, and `check()`, called where the waiting loops pause, raises it again.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

from compute_on_aws.errors import Signalled

_received: int | None = None


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise Signalled(signum)


def install() -> None:
    global _received
    _received = None
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def check() -> None:
    """Raises Signalled if a signal arrived since `install()`, even one whose exception was lost."""
    if _received is not None:
        raise Signalled(_received)


def sleep(seconds: float) -> None:
    """time.sleep between polls, after making sure no signal was lost while polling."""
    check()
    time.sleep(seconds)
