"""Jobs and the jobs they run after (`after`): every one planned and checked before any is queued, then queued in waves,
each job's requests naming the ids its prerequisites got. Pure apart from the backend's `queue`, which is passed in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from compute_on_aws.declared.config import Config
from compute_on_aws.declared.manifest import Job, Manifest
from compute_on_aws.errors import ComputeOnAwsError, UserError
from compute_on_aws.planning.plan import Definitions, Outcome, Plan, find_job, plan


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
    # Plans made when the chain was checked, of the jobs that wait for no other: no id changes them, so queueing
    # reuses them rather than rendering a thousand definitions twice.
    ready: Mapping[str, Plan] = field(default_factory=dict)
    # Rendered definitions, shared by the chains of one call (see plan.plan).
    definitions: Definitions = field(default_factory=dict)

    def plan(self, job: Job, ids: Mapping[str, str]) -> Plan:
        if job.name in self.ready:
            return self.ready[job.name]
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
            definitions=self.definitions,
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
    definitions: Definitions | None = None,
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
        definitions={} if definitions is None else definitions,
    )
    plans = [chain.plan(job, {}) for job in chain.jobs]
    ready = {job.name: p for job, p in zip(chain.jobs, plans, strict=True) if not job.after}
    return replace(chain, ready=ready), plans


@dataclass(frozen=True)
class NotQueued:
    plan: Plan
    error: ComputeOnAwsError


def _shared(plan: Plan) -> tuple[object, ...]:
    """Plans that queue the same job: one name, while active (unless the job allows duplicates: then only the very same
    request). A prerequisite several chains share is queued once."""
    if not plan.job.allow_duplicates or plan.slot is not None:
        return (plan.queue, plan.job_name, plan.definition["jobDefinitionName"])
    return (plan.job.name, json.dumps(plan.request, sort_keys=True))


def queue_chains(
    chains: Sequence[Chain], queue: Callable[[Sequence[Plan]], list[Outcome | ComputeOnAwsError]]
) -> Iterator[tuple[int, Queued | NotQueued]]:
    """Queues many chains in waves: every chain's first job in one call of `queue`, then every second job (naming the
    ids of the first), and so on; yields (chain index, result) per job. A job whose prerequisite was not queued is not
    queued either."""
    ids: list[dict[str, str]] = [{} for _ in chains]
    stopped: dict[int, str] = {}
    for level in range(max((len(c.jobs) for c in chains), default=0)):
        wave: list[Plan] = []
        owners: list[list[tuple[int, Plan]]] = []
        first: dict[tuple[object, ...], int] = {}
        for index, chain in enumerate(chains):
            if level >= len(chain.jobs):
                continue
            current = chain.plan(chain.jobs[level], ids[index])
            if index in stopped:
                error = UserError(f"{current.job_name}: not queued: it runs after {stopped[index]}, which was not")
                yield index, NotQueued(current, error)
                continue
            key = _shared(current)
            if key not in first:
                first[key] = len(wave)
                wave.append(current)
                owners.append([])
            owners[first[key]].append((index, current))
        results = queue(wave) if wave else []
        for result, sharing in zip(results, owners, strict=True):
            for position, (index, current) in enumerate(sharing):
                if isinstance(result, ComputeOnAwsError):
                    stopped[index] = current.job_name
                    yield index, NotQueued(current, result)
                    continue
                outcome = result if position == 0 else _same_job(current, result)
                if outcome.job_id is not None:
                    ids[index][current.job.name] = outcome.job_id
                yield index, Queued(current, outcome)


def _same_job(plan: Plan, queued: Outcome) -> Outcome:
    """For a plan sharing a job queued by another chain of the same call: that job, as a duplicate."""
    if queued.outcome == "dry-run":
        return replace(queued, request=plan.request)
    status = queued.existing_status if queued.outcome == "duplicate" else "SUBMITTED"
    return Outcome(
        outcome="duplicate",
        job_id=queued.job_id,
        request=plan.request,
        definition_ref=queued.definition_ref,
        existing_status=status,
    )
