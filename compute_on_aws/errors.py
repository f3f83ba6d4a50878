"""Errors the CLI turns into one line and an exit code; anything else escaping is a bug."""

from __future__ import annotations

from collections.abc import Iterable


class ComputeOnAwsError(Exception):
    """A failure the user can act on: its message is the whole story, printed as one line."""

    exit_code = 1


class UserError(ComputeOnAwsError):
    """A user's mistake: a bad declaration, config, argument or environment."""

    exit_code = 2


class AwsError(ComputeOnAwsError):
    """AWS or the network said no; the message holds AWS's error code and what to do."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def throttled(self) -> bool:
        return self.code in ("TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded")


class NixError(ComputeOnAwsError):
    """A Nix build failed (evaluation mistakes in declarations are UserErrors)."""


class ToolError(ComputeOnAwsError):
    """An external tool (an image's stream script) failed."""


class RegistryError(ComputeOnAwsError):
    """An image registry refused a call or could not be reached; the message holds its error code."""


class Interrupted(ComputeOnAwsError):
    """Ctrl-C or SIGTERM while waiting: the message says what goes on and how to stop it."""

    exit_code = 130


class Signalled(BaseException):
    """Ctrl-C or SIGTERM arrived (raised by the CLI's signal handlers).

    A BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it; not a KeyboardInterrupt, which
    typer would turn into a silent exit 130 before our one line is printed.
    """


def did_you_mean(name: str, known: Iterable[str], *, listing: str = "known") -> str:
    """` (did you mean X?)` for the closest of `known`, else ` (<listing>: a, b)`: what every unknown name ends with."""
    import difflib

    choices = sorted(known)
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else f" ({listing}: {', '.join(choices) or 'none'})"
