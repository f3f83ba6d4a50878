"""The engines that run jobs, AWS Batch and this machine, behind one interface chosen once from the settings."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from compute_on_aws.errors import ComputeOnAwsError, UserError

if TYPE_CHECKING:
    from compute_on_aws.declared.config import Config
    from compute_on_aws.planning.plan import Outcome, Plan
    from compute_on_aws.planning.rerun import Rerun, RerunOutcome
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

    def named(self, queue: str, names: Collection[str]) -> dict[str, list[JobView]]:
        """Every job of the queue with one of these exact names, in any status (array children left out), by name:
        in the fewest calls the numbers allow."""
        ...

    def log_lines(self, view: JobView, attempt: int | None, token: str | None) -> tuple[list[str], str | None]:
        """New lines of the job's (or attempt's) log since `token`, and the token to go on from."""
        ...

    def plan_rerun(self, job_id: str) -> list[Rerun]:
        """The new jobs for the failed children of the ended array `job_id` (or for the failed job itself); a job
        with nothing to re-run is a UserError. Submits nothing."""
        ...

    def submit_reruns(self, reruns: Sequence[Rerun]) -> list[RerunOutcome]:
        """Each planned re-run submitted once: one still active of the same name is the answer instead."""
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

    def warm_up(self) -> None:
        """Called before the jobs are evaluated: connects in the background meanwhile (AWS makes its Batch client)."""
        ...


# Each backend by its name in --backend and the config (declared/config.py's BACKENDS): the module and class, imported
# only when asked for, so --help never loads one and a dry run reads the class alone.
BACKEND_CLASSES = {
    "local": ("compute_on_aws.backends.local", "LocalBackend"),
    "aws": ("compute_on_aws.backends.aws", "AwsBackend"),
}


def _backend_class(name: str) -> Any:
    if name not in BACKEND_CLASSES:
        raise UserError(f"--backend: expected {' or '.join(BACKEND_CLASSES)}, got {name!r}")
    module, cls = BACKEND_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def pushes_images(name: str) -> bool:
    """Whether the backend named runs pushed images (AWS) or the entrypoint built for this machine (local): what a
    dry run renders, with no backend opened."""
    return bool(_backend_class(name).pushes_images)


def open_backend(name: str, config: Config, *, state_dir: Path | None = None) -> Backend:
    """The backend named by --backend or the config; nothing is connected before its first call."""
    backend: Backend = _backend_class(name)(config, state_dir=state_dir)
    return backend
