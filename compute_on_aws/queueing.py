"""The queue use case: every request planned and checked before the first job is queued, then queued in waves on a
backend (or on none, in a dry run), each result told as it is known. Prints nothing: the CLI shows what it is told."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from compute_on_aws.backends import Backend
from compute_on_aws.declared.config import Config
from compute_on_aws.declared.manifest import Manifest
from compute_on_aws.errors import ComputeOnAwsError, UserError
from compute_on_aws.planning.chains import Chain, NotQueued, Queued, plan_chain, queue_chains
from compute_on_aws.planning.plan import Definitions, Outcome, Plan


@dataclass(frozen=True)
class Request:
    """One job to queue, with the jobs it runs after: its arguments, and the slot of a scheduled run."""

    name: str
    args: tuple[str, ...] = ()
    slot: datetime | None = None


@dataclass(frozen=True)
class Planned:
    """The chains to queue, and the jobs whose entrypoint and image only the flake can build (dry runs show them as
    `<built by nix>`)."""

    chains: tuple[Chain, ...]
    built_by_nix: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(len(c.jobs) for c in self.chains)


def plan_requests(
    manifest: Manifest,
    config: Config,
    requests: Sequence[Request],
    environ: Mapping[str, str],
    *,
    after: Sequence[str],
    pushes_images: bool,
    dry_run: bool,
) -> Planned:
    """Every chain planned (variables, limits, names checked): a mistake in the last request stops the call before the
    first job is queued. Outside a dry run, a job Nix must build is refused: only the flake can build it."""
    chains: list[Chain] = []
    unresolved: dict[str, None] = {}
    definitions: Definitions = {}
    for r in requests:
        chain, plans = plan_chain(
            manifest,
            config,
            r.name,
            r.args,
            environ,
            after=list(after),
            pushed_image=pushes_images,
            slot=r.slot,
            definitions=definitions,
        )
        chains.append(chain)
        unresolved.update((p.job.name, None) for p in plans if not p.resolved)
        if unresolved and not dry_run:
            raise UserError(
                f"{next(iter(unresolved))}: its entrypoint is built by Nix: queue it through the flake "
                f"(nix run .#queue-job -- {r.name})"
            )
    # A job asked for that another one asked for runs after (with the same arguments) is queued as part of that one.
    runs_after = {(j.name, c.args, c.slot) for c in chains for j in c.jobs[:-1]}
    kept = tuple(c for c in chains if (c.name, c.args, c.slot) not in runs_after)
    return Planned(kept, tuple(unresolved))


@dataclass
class Tally:
    """What a call came to, job by job, as results arrive."""

    # Called once per job as the backend tells its outcome (a progress display counts them).
    on_tick: Callable[[], None] | None = None
    results: list[Queued | NotQueued] = field(default_factory=list)
    # As the backend tells them, before a wave ends: what a stop part-way through a wave reports as queued.
    seen: list[tuple[Plan, Outcome]] = field(default_factory=list)

    def tick(self, plan: Plan, result: Outcome | ComputeOnAwsError) -> None:
        if not isinstance(result, ComputeOnAwsError):
            self.seen.append((plan, result))
        if self.on_tick is not None:
            self.on_tick()

    @property
    def queued(self) -> list[Queued]:
        return [r for r in self.results if isinstance(r, Queued)]

    @property
    def not_queued(self) -> list[NotQueued]:
        return [r for r in self.results if isinstance(r, NotQueued)]

    @property
    def job_ids(self) -> list[str]:
        """The ids of the jobs queued or found queued, each once, in order."""
        return list(dict.fromkeys(q.outcome.job_id for q in self.queued if q.outcome.job_id is not None))

    @property
    def submitted(self) -> list[tuple[str, str]]:
        """(job name, job id) of the jobs this call submitted, as far as the backend told before it stopped."""
        return [(p.job_name, o.job_id) for p, o in self.seen if o.outcome == "submitted" and o.job_id is not None]


def queue_planned(
    planned: Planned,
    backend: Backend | None,
    tally: Tally,
    on_result: Callable[[Queued | NotQueued], None],
) -> None:
    """Queues the chains in waves (no backend: a dry run, nothing sent), each result kept in `tally` and told to
    `on_result`. A failure of the whole call, or Ctrl-C, raises; what was queued before stays queued, in `tally`."""

    def queue_wave(plans: Sequence[Plan]) -> list[Outcome | ComputeOnAwsError]:
        if backend is None:
            return [
                Outcome(outcome="dry-run", job_id=None, request=p.request, definition_ref=p.job.definition_name)
                for p in plans
            ]
        return backend.queue(plans, tally.tick)

    for _, result in queue_chains(list(planned.chains), queue_wave):
        tally.results.append(result)
        on_result(result)
