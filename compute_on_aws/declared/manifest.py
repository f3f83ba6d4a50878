"""The manifest (what Nix evaluated from the job declarations) as frozen dataclasses, checked at the boundary."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from compute_on_aws.declared.container import Container, parse_container
from compute_on_aws.declared.cron import Schedule, problem
from compute_on_aws.errors import UserError

MANIFEST_VERSION = 5


@dataclass(frozen=True, kw_only=True)
class RetryRule:
    action: Literal["RETRY", "EXIT"]
    on_status_reason: str | None = None
    on_reason: str | None = None
    on_exit_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class Build:
    """One system's build of a Nix-built entrypoint or image: its derivation, and the command or tag it gives."""

    drv: str
    command: tuple[str, ...] = ()
    tag: str | None = None


@dataclass(frozen=True, kw_only=True)
class Program:
    """A plain command run in a given image, or a Nix-built entrypoint, built per system (none without nixpkgs)."""

    kind: Literal["command", "entrypoint"]
    command: tuple[str, ...] | None = None
    builds: dict[str, Build] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Dependency:
    """A job that must succeed first; with N_TO_N (two arrays of one size), child i waits for its child i only."""

    job: str
    type: Literal["N_TO_N"] | None = None


@dataclass(frozen=True, kw_only=True)
class Image:
    """A given image reference, or an image Nix builds (tag and drv unknown without nixpkgs)."""

    kind: Literal["reference", "nix"]
    reference: str | None = None
    name: str | None = None
    builds: dict[str, Build] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Job:
    name: str
    description: str
    queue: str | None
    definition_name: str
    platform: Literal["EC2", "FARGATE"]
    vcpus: float
    memory: int
    gpus: int
    attempts: int
    retry_rules: tuple[RetryRule, ...]
    attempt_duration_seconds: int | None
    environment: tuple[str, ...]
    plaintext_credentials: tuple[str, ...]
    # Jobs that must succeed first; queueing this job queues them too.
    after: tuple[Dependency, ...]
    # Array children run one at a time, in index order (SEQUENTIAL).
    sequential: bool
    env: dict[str, str]
    secrets: dict[str, str]
    parallel: int
    tags: dict[str, str]
    propagate_tags: bool
    allow_duplicates: bool
    # The events of the job sent to the config's notifications topic (None: the config's own choice).
    notify: tuple[str, ...] | None
    include_positional_args_in_name: bool
    scheduling_priority: int | None
    share_identifier: str | None
    job_role_arn: str | None
    execution_role_arn: str | None
    program: Program
    image: Image
    schedules: tuple[Schedule, ...] = ()
    # Volumes, Linux parameters, ulimits, logs, Fargate's disk, run tags and consumable resources.
    container: Container = field(default_factory=Container)
    # The job's entry in the manifest as Nix wrote it (every attribute, checked by nix/lib/declaration.nix): what a
    # template reads of a field the helper itself has no use for (docs/contributing.md, "A new job-definition field").
    declared: Mapping[str, Any] = field(default_factory=dict)

    def command(self, system: str | None) -> tuple[str, ...] | None:
        """What the container runs, for images of `system`; None where Nix did not build it (no nixpkgs)."""
        if self.program.kind == "command":
            return self.program.command
        build = self.program.builds.get(system or "")
        return None if build is None else build.command

    def resolved(self, system: str | None) -> bool:
        """Whether Nix resolved everything needed to run on `system` (not without nixpkgs, nor for other systems)."""
        return self.command(system) is not None and (self.image.kind == "reference" or system in self.image.builds)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    jobs: dict[str, Job]
    # {job: ["<job>: <attribute>: <problem>", ...]} for every invalid declaration.
    errors: dict[str, tuple[str, ...]]
    source: str
    # The system the flake evaluated for (its entrypoints run here on the local backend); None without nixpkgs.
    host_system: str | None = None


class _Reader:
    """Reads typed fields from decoded JSON, naming the field in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> UserError:
        return UserError(f"manifest {self.source}: {where}: {what}")

    def get(self, obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if key not in obj:
            raise self.fail(f"{where}.{key}", "missing")
        value = obj[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
            raise self.fail(f"{where}.{key}", f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def optional(self, obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        return None if obj.get(key) is None else self.get(obj, key, kind, where)

    def strings(self, obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        values = self.get(obj, key, list, where)
        if not all(isinstance(v, str) for v in values):
            raise self.fail(f"{where}.{key}", "expected a list of strings")
        return tuple(values)

    def mapping(self, obj: dict[str, Any], key: str, where: str) -> dict[str, str]:
        values = self.get(obj, key, dict, where)
        if not all(isinstance(v, str) for v in values.values()):
            raise self.fail(f"{where}.{key}", "expected string values")
        return dict(values)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "an object",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _program(r: _Reader, data: dict[str, Any], where: str) -> Program:
    kind = r.get(data, "kind", str, where)
    if kind not in ("command", "entrypoint"):
        raise r.fail(f"{where}.kind", f"unknown program kind {kind!r}")
    if kind == "command":
        return Program(kind=kind, command=r.strings(data, "command", where))
    return Program(kind=kind, builds=_builds(r, data, where, "command"))


def _builds(r: _Reader, data: dict[str, Any], where: str, gives: Literal["command", "tag"]) -> dict[str, Build]:
    builds: dict[str, Build] = {}
    for system, build in r.get(data, "builds", dict, where).items():
        at = f"{where}.builds.{system}"
        if not isinstance(build, dict):
            raise r.fail(at, "expected an object")
        if gives == "command":
            builds[system] = Build(drv=r.get(build, "drv", str, at), command=r.strings(build, "command", at))
        else:
            builds[system] = Build(drv=r.get(build, "drv", str, at), tag=r.get(build, "tag", str, at))
    return builds


def _image(r: _Reader, data: dict[str, Any], where: str) -> Image:
    kind = r.get(data, "kind", str, where)
    if kind == "reference":
        return Image(kind="reference", reference=r.get(data, "reference", str, where))
    if kind == "nix":
        return Image(kind="nix", name=r.get(data, "name", str, where), builds=_builds(r, data, where, "tag"))
    raise r.fail(f"{where}.kind", f"unknown image kind {kind!r}")


def _dependency(r: _Reader, data: Any, where: str) -> Dependency:
    if not isinstance(data, dict) or not isinstance(data.get("job"), str) or data.get("type") not in (None, "N_TO_N"):
        raise r.fail(where, 'expected {"job": <name>, "type": null or "N_TO_N"}')
    return Dependency(job=data["job"], type=data.get("type"))


def _retry_rule(r: _Reader, data: Any, where: str) -> RetryRule:
    if not isinstance(data, dict) or data.get("action") not in ("RETRY", "EXIT"):
        raise r.fail(where, "expected a rule with action RETRY or EXIT")
    return RetryRule(
        action=data["action"],
        on_status_reason=r.optional(data, "onStatusReason", str, where),
        on_reason=r.optional(data, "onReason", str, where),
        on_exit_code=r.optional(data, "onExitCode", str, where),
    )


def _schedule(r: _Reader, data: Any, where: str) -> Schedule:
    if not isinstance(data, dict):
        raise r.fail(where, "expected an object")
    return Schedule(
        cron=r.get(data, "cron", str, where),
        timezone=r.get(data, "timezone", str, where),
        args=r.strings(data, "args", where),
        enabled=r.get(data, "enable", bool, where),
    )


def _job(r: _Reader, name: str, data: Any) -> Job:
    where = f"jobs.{name}"
    if not isinstance(data, dict):
        raise r.fail(where, "expected an object")
    platform = r.get(data, "platform", str, where)
    if platform not in ("EC2", "FARGATE"):
        raise r.fail(f"{where}.platform", f"expected EC2 or FARGATE, got {platform!r}")
    return Job(
        declared=MappingProxyType(copy.deepcopy(data)),
        name=name,
        description=r.get(data, "description", str, where),
        queue=r.optional(data, "queue", str, where),
        definition_name=r.get(data, "definitionName", str, where),
        platform=platform,
        vcpus=r.get(data, "vcpus", (int, float), where),
        memory=r.get(data, "memory", int, where),
        gpus=r.get(data, "gpus", int, where),
        attempts=r.get(data, "attempts", int, where),
        retry_rules=tuple(
            _retry_rule(r, rule, f"{where}.retryRules[{i}]")
            for i, rule in enumerate(r.get(data, "retryRules", list, where))
        ),
        attempt_duration_seconds=r.optional(data, "attemptDurationSeconds", int, where),
        environment=r.strings(data, "environment", where),
        plaintext_credentials=r.strings(data, "plaintextCredentials", where),
        after=tuple(_dependency(r, d, f"{where}.after[{i}]") for i, d in enumerate(r.get(data, "after", list, where))),
        sequential=r.get(data, "sequential", bool, where),
        env=r.mapping(data, "env", where),
        secrets=r.mapping(data, "secrets", where),
        parallel=r.get(data, "parallel", int, where),
        tags=r.mapping(data, "tags", where),
        propagate_tags=r.get(data, "propagateTags", bool, where),
        allow_duplicates=r.get(data, "allowDuplicates", bool, where),
        notify=None if data.get("notify") is None else r.strings(data, "notify", where),
        include_positional_args_in_name=r.get(data, "includePositionalArgsInName", bool, where),
        scheduling_priority=r.optional(data, "schedulingPriority", int, where),
        share_identifier=r.optional(data, "shareIdentifier", str, where),
        job_role_arn=r.optional(data, "jobRoleArn", str, where),
        execution_role_arn=r.optional(data, "executionRoleArn", str, where),
        program=_program(r, r.get(data, "program", dict, where), f"{where}.program"),
        image=_image(r, r.get(data, "image", dict, where), f"{where}.image"),
        schedules=tuple(
            _schedule(r, entry, f"{where}.schedules[{i}]")
            for i, entry in enumerate(r.get(data, "schedules", list, where))
        ),
        container=parse_container(lambda at, what: r.fail(at, what), data, where),
    )


def parse_manifest(data: Any, source: str) -> Manifest:
    """Checks a decoded manifest and returns it as dataclasses; any mismatch is a UserError naming the field."""
    r = _Reader(source)
    if not isinstance(data, dict):
        raise r.fail("top level", "expected an object")
    version = r.get(data, "version", int, "top level")
    if version != MANIFEST_VERSION:
        raise r.fail(
            "version",
            f"this helper reads version {MANIFEST_VERSION}, got {version} (update compute-on-aws or the flake)",
        )
    errors = {name: tuple(problems) for name, problems in r.get(data, "errors", dict, "top level").items()}
    jobs = {name: _job(r, name, job) for name, job in sorted(r.get(data, "jobs", dict, "top level").items())}
    # Nix checked the schedules against cron's syntax; the library that computes their runs has the last word (a
    # 31st of February), and a job it refuses is invalid like any other.
    for name, job in list(jobs.items()):
        problems = [(i, problem(schedule)) for i, schedule in enumerate(job.schedules)]
        if any(p for _, p in problems):
            errors[name] = tuple(f"{name}: schedule: entry {i + 1}: {p}" for i, p in problems if p)
            del jobs[name]
    # Two jobs registering one definition name would register revisions over each other's at every queue.
    sharing: dict[str, list[str]] = {}
    for name, job in jobs.items():
        sharing.setdefault(job.definition_name, []).append(name)
    for definition, names in sharing.items():
        for name in names if len(names) > 1 else ():
            others = " and ".join(n for n in names if n != name)
            errors[name] = (
                f"{name}: definitionName: {definition!r} is also the definition of {others}: each would register a "
                "revision over the other's whenever queued (give each job a definition name of its own)",
            )
            del jobs[name]
    return Manifest(
        jobs=jobs,
        errors=dict(sorted(errors.items())),
        source=source,
        host_system=r.optional(data, "hostSystem", str, "top level"),
    )
