"""A job and the jobs it runs after (`after`): every one planned and checked before any is queued, then each queued in
order, its requests naming the ids its prerequisites got. Pure apart from the backend's `submit`, which is passed in."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from compute_on_aws.config import Config
from compute_on_aws.errors import UserError
from compute_on_aws.model import Job, Manifest
from compute_on_aws.plan import Outcome, Plan, find_job, plan


def order(manifest: Manifest, name: str) -> list[Job]:
    """The job and every job it runs after, followed through, each once, prerequisites first."""
    done: list[Job] = []
    visiting: list[str] = []

    def visit(current: str) -> None:
        if any(j.name == current for j in done):
            return
        if current in visiting:  # Nix rejects cycles; a hand-written manifest may still hold one
            cycle = " -> ".join([*visiting[visiting.index(current) :], current])
            raise UserError(f"{name}: after: a cycle: {cycle}")
        visiting.append(current)
        job = find_job(manifest, current)
        for prerequisite in job.after:
            visit(prerequisite.job)
        visiting.pop()
        done.append(job)

    visit(name)
    return done


def pending_id(job_name: str) -> str:
    """Stands for the id of a job queued in the same run, in a dry run's requests."""
    return f"<job id of {job_name}>"


@dataclass(frozen=True)
class Queued:
    plan: Plan
    outcome: Outcome


@dataclass(frozen=True, kw_only=True)
class Chain:
    manifest: Manifest
    config: Config
    name: str
    args: tuple[str, ...]
    environ: Mapping[str, str]
    after: tuple[str, ...]  # job ids from --after: the named job waits for them too
    pushed_image: bool
    jobs: tuple[Job, ...]
    # A scheduled run's slot: every job of the chain is named by it, so a second pipeline finds each one done.
    slot: datetime | None = None

    def plan(self, job: Job, ids: Mapping[str, str]) -> Plan:
        depends_on = [(ids.get(d.job, pending_id(d.job)), d.type) for d in job.after]
        if job.name == self.name:
            depends_on += [(job_id, None) for job_id in self.after]
        return plan(
            self.manifest,
            self.config,
            job.name,
            self.args,
            self.environ,
            depends_on=depends_on,
            pushed_image=self.pushed_image,
            slot=self.slot,
        )


def plan_chain(
    manifest: Manifest,
    config: Config,
    name: str,
    args: Sequence[str],
    environ: Mapping[str, str],
    *,
    after: Sequence[str] = (),
    pushed_image: bool = True,
    slot: datetime | None = None,
) -> tuple[Chain, list[Plan]]:
    """The chain, and a plan of each of its jobs (ids not known yet shown by pending_id): a missing variable or a limit
    in the last job is raised here, before the first is queued."""
    chain = Chain(
        manifest=manifest,
        config=config,
        name=name,
        args=tuple(args),
        environ=environ,
        after=tuple(after),
        pushed_image=pushed_image,
        jobs=tuple(order(manifest, name)),
        slot=slot,
    )
    return chain, [chain.plan(job, {}) for job in chain.jobs]


def queue_chain(chain: Chain, submit: Callable[[Plan], Outcome]) -> Iterator[Queued]:
    """Submits each job in order, each naming its prerequisites' ids; yields each as it is queued."""
    ids: dict[str, str] = {}
    for job in chain.jobs:
        current = chain.plan(job, ids)
        outcome = submit(current)
        if outcome.job_id is not None:
            ids[job.name] = outcome.job_id
        yield Queued(current, outcome)
