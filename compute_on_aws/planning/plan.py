"""What queueing a job means, before any side effect: its name, queue, requests and the image to publish."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from compute_on_aws.declared.config import Config
from compute_on_aws.declared.manifest import Job, Manifest
from compute_on_aws.errors import UserError
from compute_on_aws.planning import limits, naming, render, runs
from compute_on_aws.planning.checks import PARAMETER_REFERENCE, job_problems

# Shown where Nix was not asked to build (an evaluation without nixpkgs): the real run resolves it.
UNRESOLVED = "<built by nix>"


# Docker's limit on a tag; a tag is the job's name and the image's content hash (Nix's, 32 characters).
TAG_LIMIT = 128


@dataclass(frozen=True, kw_only=True)
class ImagePush:
    """A Nix-built image to publish before submitting: the derivation streaming it, where it goes, and the system
    (x86_64-linux, aarch64-linux) its architecture must match."""

    drv: str
    target: str
    system: str


@dataclass(frozen=True, kw_only=True)
class Plan:
    job: Job
    job_name: str
    queue: str
    args: tuple[str, ...]
    definition: dict[str, Any]
    # jobDefinition is the definition's name here; the backend pins the revision it registers or reuses.
    request: dict[str, Any]
    image_push: ImagePush | None
    # The Nix-built entrypoint's derivation for the system the job runs on (the local backend builds it).
    program_drv: str | None
    # False when Nix did not build the entrypoint/image (evaluated without nixpkgs): fine for a dry run only.
    resolved: bool
    # A scheduled run's slot: its name holds it, and a job of that name in any status (finished ones too) is its
    # duplicate, so that a retried pipeline never runs a slot twice.
    slot: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Outcome:
    outcome: Literal["submitted", "duplicate", "dry-run"]
    job_id: str | None
    # The exact SubmitJob request (jobDefinition pinned to name:revision once known).
    request: dict[str, Any]
    definition_ref: str
    definition_registered: bool = False
    # What pushing the image sent ("2 of 41 layers sent, 3.1 MB"); empty when the registry had it.
    image_pushed: str = ""
    # For a duplicate: the status of the job already there.
    existing_status: str | None = None


def find_job(manifest: Manifest, name: str) -> Job:
    if name in manifest.jobs:
        return manifest.jobs[name]
    if name in manifest.errors:
        raise UserError(
            f"{name} is not valid: " + "; ".join(p.removeprefix(f"{name}: ") for p in manifest.errors[name])
        )
    known = sorted([*manifest.jobs, *manifest.errors])
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"declared jobs: {', '.join(known) or 'none'}"
    raise UserError(f"no job named {name!r} in {manifest.source} ({hint})")


def image_tag(job_name: str, content_hash: str) -> str:
    """`<job>-<content hash>`, the job's name shortened so that the tag stays within Docker's 128 characters."""
    return f"{job_name[: TAG_LIMIT - len(content_hash) - 1]}-{content_hash}"


def image_uri(job: Job, config: Config, system: str | None, *, pushed: bool = True) -> tuple[str, ImagePush | None]:
    """The image the definition names; for a Nix-built image, also what to push where.

    `pushed` is false for the local backend, which runs the entrypoint itself: no registry is needed (without one the
    image keeps its own name and tag) and nothing is pushed.
    """
    if job.image.kind == "reference":
        assert job.image.reference is not None
        return job.image.reference, None
    build = job.image.builds.get(system or "")
    tag = image_tag(job.name, build.tag or UNRESOLVED) if build else image_tag(job.name, UNRESOLVED)
    registry, repository = config.image.registry, config.image.repository
    if registry is None or repository is None:
        if not pushed:
            return f"{job.image.name}:{tag}", None
        raise UserError(
            f"{job.name}: image: Nix builds this job's image, so compute-on-aws.yaml needs image.registry and "
            'image.repository (where to push it); or declare image = "<reference>" in the job'
        )
    uri = f"{registry}/{repository}:{tag}"
    push = ImagePush(drv=build.drv, target=uri, system=system) if build and system and pushed else None
    return uri, push


def job_definition(job: Job, config: Config) -> dict[str, Any]:
    """The RegisterJobDefinition request of a job on AWS, whatever it is queued with (as `infra export` writes it)."""
    system = config.image.system
    image, _ = image_uri(job, config, system)
    return render.definition_request(job, config, image=image, command=job.command(system) or (UNRESOLVED,))


def _systems_built(manifest: Manifest, job: Job, system: str | None) -> None:
    """A manifest built for other systems than the one asked for is a user's choice to correct, not a dry run."""
    built = sorted({*job.program.builds, *job.image.builds})
    if built and system not in built:
        raise UserError(
            f"{job.name}: {manifest.source} has builds for {', '.join(built)}, not {system} (image.system in "
            "compute-on-aws.yaml): use a flake that builds images for it (compute-on-aws's flake builds x86_64-linux "
            "and aarch64-linux)"
        )


def _refuse_parameter_references(job: Job, args: Sequence[str]) -> None:
    """For the arguments of one run; the declared command is checked with the job (checks.job_problems)."""
    for i, arg in enumerate(args, 1):
        if PARAMETER_REFERENCE in arg:
            raise UserError(
                f"{job.name}: argument {i} {arg[:60]!r}: AWS Batch would replace {PARAMETER_REFERENCE}... with a job "
                "parameter and the local backend would not; pass this value another way (a variable, a file)"
            )


# Rendered definitions by job name, image and command, with the limits each breaks by itself.
Definitions = dict[tuple[str, str, tuple[str, ...]], tuple[dict[str, Any], tuple[str, ...]]]


def plan(
    manifest: Manifest,
    config: Config,
    name: str,
    args: Sequence[str],
    environ: Mapping[str, str],
    depends_on: Sequence[tuple[str, str | None]] = (),
    *,
    pushed_image: bool = True,
    slot: datetime | None = None,
    definitions: Definitions | None = None,
) -> Plan:
    """The requests that queue job `name` with `args`. `definitions` keeps the definitions rendered for the next plans
    of the same manifest and config: a thousand plans of one job render it once (and share it: read-only)."""
    job = find_job(manifest, name)
    _refuse_parameter_references(job, args)
    missing = [v for v in job.environment if v not in environ]
    if missing:
        raise UserError(
            f"{job.name}: environment: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set in this "
            "shell, and the job copies its environment from here (set them, or remove them from the declaration)"
        )
    variables = {v: environ[v] for v in job.environment}
    if slot is not None:
        variables[runs.SCHEDULED_TIME_VARIABLE] = runs.scheduled_time(slot)
    queue = job.queue or config.queue
    if queue is None:
        raise UserError(f"{job.name}: queue: not declared, and compute-on-aws.yaml sets no default queue")
    problems = job_problems(job, queue, config.infrastructure, config.image.system)
    if problems:
        raise UserError(problems[0])
    # On AWS the container runs the image built for image.system; locally, the entrypoint built for this machine.
    system = config.image.system if pushed_image else manifest.host_system
    if manifest.host_system is not None:
        _systems_built(manifest, job, system)
    image, push = image_uri(job, config, system, pushed=pushed_image)
    command = job.command(system) or (UNRESOLVED,)
    key = (job.name, image, tuple(command))
    rendered = definitions.get(key) if definitions is not None else None
    if rendered is None:
        made = render.definition_request(job, config, image=image, command=command)
        rendered = (made, limits.definition_problems(made))
        if definitions is not None:
            definitions[key] = rendered
    definition, of_definition = rendered
    job_name = (
        naming.job_name(job.name, tuple(args), include_args=job.include_positional_args_in_name)
        if slot is None
        else runs.slot_name(job, slot, tuple(args))
    )
    request = render.submit_request(
        job,
        job_name=job_name,
        queue=queue,
        definition=definition,
        definition_ref=job.definition_name,
        args=args,
        variables=variables,
        depends_on=depends_on,
        tags=runs.run_tags(job, tuple(args), slot, environ),
    )
    limits.check(job.name, definition, request, of_definition)
    return Plan(
        job=job,
        job_name=job_name,
        queue=queue,
        args=tuple(args),
        definition=definition,
        request=request,
        image_push=push,
        program_drv=job.program.builds[system].drv if system in job.program.builds else None,
        resolved=job.resolved(system),
        slot=slot,
    )
