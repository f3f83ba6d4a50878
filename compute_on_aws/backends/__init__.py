"""The engines that run jobs, AWS Batch and this machine, behind one interface chosen once from the settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from compute_on_aws.errors import ComputeOnAwsError, UserError

if TYPE_CHECKING:
    from compute_on_aws.declared.config import Config
    from compute_on_aws.planning.plan import Outcome, Plan
    from compute_on_aws.watching.views import JobView
    from compute_on_aws.watching.waiting import Backoff

# Told of each plan as its outcome (or why it was not queued) is known: progress displays count them.
OnResult = Callable[["Plan", "Outcome | ComputeOnAwsError"], None]


class Backend(Protocol):
    """Queues planned jobs, and describes, lists, reads the logs of and cancels queued ones."""

    # "aws" or "local", as in --backend.
    name: str
    # Whether plans name an image pushed to the registry (AWS) or the entrypoint built for this machine (local).
    pushes_images: bool

    def place(self, queue: str) -> str:
        """Where a job queued on `queue` is, as a line tells it ("local queue default" for the local backend)."""
        ...

    def queue(self, plans: Sequence[Plan], on_result: OnResult) -> list[Outcome | ComputeOnAwsError]:
        """Queues independent plans (none names another's id), each once: a plan whose job is already queued comes
        back as a duplicate. One result per plan, in order; `on_result` is called as each is known. A failure of one
        plan is its result; the others go on."""
        ...

    def describe(self, job_ids: Sequence[str]) -> dict[str, JobView]: ...

    def list_jobs(self, queues: Sequence[str], status: str | None) -> list[JobView]:
        """Every job in the queues (in `status` only, if given), array children left out."""
        ...

    def log_lines(self, view: JobView, attempt: int | None, token: str | None) -> tuple[list[str], str | None]:
        """New lines of the job's (or attempt's) log since `token`, and the token to go on from."""
        ...

    def cancel(self, job_ids: Sequence[str], reason: str) -> list[tuple[str, str]]:
        """Cancels queued jobs and terminates started ones: (job id, what was done) for each."""
        ...

    def backoff(self, follow: bool) -> Backoff:
        """How often waiting polls: each poll costs API calls on AWS, a SQLite read locally."""
        ...

    def keep_alive(self) -> None:
        """Called every few seconds while waiting (the local backend restarts a worker that died)."""
        ...


def pushes_images(name: str) -> bool:
    """Whether the backend --backend or the config names runs pushed images (AWS) or the entrypoint built for this
    machine (local): what a dry run renders, with no backend opened."""
    if name not in ("local", "aws"):
        raise UserError(f"--backend: expected local or aws, got {name!r}")
    return name == "aws"


def open_backend(name: str, config: Config, *, state_dir: Path | None = None) -> Backend:
    """The backend named by --backend or the config; nothing is connected before its first call."""
    if name == "local":
        from compute_on_aws.backends.local import LocalBackend

        return LocalBackend(config, state_dir=state_dir)
    if name == "aws":
        from compute_on_aws.backends.aws import AwsBackend

        return AwsBackend(config)
    raise UserError(f"--backend: expected local or aws, got {name!r}")
