"""Declared schedules on EventBridge Scheduler: one schedule per declaration, in the project's own schedule group, each
submitting to Batch (the scheduler's universal target) the request `queue` would send. `plan` only reads; `apply`
registers the definitions, then creates, updates and deletes schedules until the group matches the declarations."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cronsim import CronSim

from compute_on_aws import images
from compute_on_aws.aws.batch import SUBMISSION_PARAMETER, active_with_hash, ensure_definition, find_definition
from compute_on_aws.aws.session import Aws, calling, error_code
from compute_on_aws.declared import cron
from compute_on_aws.declared.config import Config
from compute_on_aws.declared.cron import WEEKDAYS, Schedule
from compute_on_aws.declared.manifest import Job, Manifest
from compute_on_aws.errors import AwsError, ComputeOnAwsError, UserError
from compute_on_aws.planning import naming
from compute_on_aws.planning.plan import Plan, plan
from compute_on_aws.planning.render import HASH_PARAMETER
from compute_on_aws.planning.runs import COMMIT_TAG, SCHEDULED_TIME_VARIABLE, SLOT_TAG

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_scheduler.type_defs import TagTypeDef

TARGET_ARN = "arn:aws:scheduler:::aws-sdk:batch:submitJob"
# A SubmitJob the scheduler could not make (throttled, Batch unavailable) is retried for an hour, 3 times at most: a
# retry after an answer that was lost could queue a run twice, so not 185 times over a day (AWS's default).
RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
# The fields of a schedule this tool sets, the ones compared with what AWS holds.
COMPARED = ("ScheduleExpression", "ScheduleExpressionTimezone", "State", "FlexibleTimeWindow", "Description")


@dataclass(frozen=True)
class Declared:
    """A declared schedule: the EventBridge schedule it becomes, and the plan of the job it submits."""

    name: str
    schedule: Schedule
    plan: Plan


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete", "unchanged"]
    name: str
    job: str | None = None
    details: tuple[str, ...] = ()
    declared: Declared | None = None


def declared(manifest: Manifest, config: Config, environ: Mapping[str, str]) -> list[Declared]:
    """Every schedule of every job, planned as `queue` plans it (variables from `environ`, limits, the definition)."""
    found = []
    for job in manifest.jobs.values():
        if job.schedules and job.after:
            raise UserError(
                f"{job.name}: schedule: EventBridge Scheduler submits one job, and {job.name} runs after "
                f"{', '.join(d.job for d in job.after)}: run its schedule from CI (ci github, ci gitlab: queue --due "
                "queues the whole chain), or schedule the first job of the chain"
            )
        for index, schedule in enumerate(job.schedules):
            eventbridge_expression(schedule, job=job.name)  # refuses what AWS's cron cannot say, early
            planned = plan(manifest, config, job.name, schedule.args, environ)
            job_name = eventbridge_job_name(job, schedule.args)
            # The scheduler fills the slot in; the commit is left out, so that a schedule changes only with its job.
            tags = {k: v for k, v in planned.request.get("tags", {}).items() if k != COMMIT_TAG}
            request = {**planned.request, "jobName": job_name, "tags": {**tags, SLOT_TAG: EVENTBRIDGE_TIME}}
            planned = replace(planned, job_name=job_name, request=request)
            found.append(Declared(eventbridge_name(job.name, index), schedule, planned))
    return found


def _universal(value: Any, *, keep_keys: bool = False) -> Any:
    """A request in the universal target's spelling: Batch's member names capitalised (jobName -> JobName), the
    keys of maps (parameters, tags) as they are."""
    if isinstance(value, dict):
        return {
            (k if keep_keys else k[:1].upper() + k[1:]): _universal(v, keep_keys=k in ("parameters", "tags"))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_universal(v) for v in value]
    return value


def submit_input(d: Declared, definition_ref: str) -> dict[str, Any]:
    """The SubmitJob request the schedule sends: `queue`'s, pinned to the definition's revision, with the slot's time
    and the invocation's id (to find the job it created) filled in by the scheduler."""
    request = {
        **d.plan.request,
        "jobDefinition": definition_ref,
        "parameters": {SUBMISSION_PARAMETER: EVENTBRIDGE_EXECUTION},
    }
    overrides = dict(request.get("containerOverrides", {}))
    environment = [
        *overrides.get("environment", []),
        {"name": SCHEDULED_TIME_VARIABLE, "value": EVENTBRIDGE_TIME},
    ]
    overrides["environment"] = sorted(environment, key=lambda v: v["name"])
    request["containerOverrides"] = overrides
    result: dict[str, Any] = _universal(request)
    return result


def schedule_request(d: Declared, definition_ref: str, config: Config) -> dict[str, Any]:
    """The CreateSchedule/UpdateSchedule request of a declared schedule."""
    assert config.scheduler_role_arn is not None
    return {
        "Name": d.name,
        "GroupName": config.schedule_group,
        "ScheduleExpression": eventbridge_expression(d.schedule, job=d.plan.job.name),
        "ScheduleExpressionTimezone": d.schedule.timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED" if d.schedule.enabled else "DISABLED",
        "Description": f"compute-on-aws: {d.plan.job.name}: {cron.explain(d.schedule)}"[:512],
        "Target": {
            "Arn": TARGET_ARN,
            "RoleArn": config.scheduler_role_arn,
            "Input": json.dumps(submit_input(d, definition_ref), sort_keys=True),
            "RetryPolicy": RETRY_POLICY,
        },
    }


def differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs, in words; variables by name only (their values may be secrets)."""
    found = [
        f"{key}: {_shown(current.get(key))} -> {_shown(wanted[key])}"
        for key in COMPARED
        if current.get(key) != wanted[key]
    ]
    target, was = wanted["Target"], current.get("Target", {})
    found += [
        f"Target.{key}: {_shown(was.get(key))} -> {_shown(target[key])}"
        for key in ("Arn", "RoleArn", "RetryPolicy")
        if was.get(key) != target[key]
    ]
    try:
        old = json.loads(was.get("Input", "{}"))
    except json.JSONDecodeError:
        old = {}
    new = json.loads(target["Input"])
    old_env, new_env = (_variables(x) for x in (old, new))
    for key in sorted(set(old) | set(new)):
        if key == "ContainerOverrides":
            continue
        if old.get(key) != new.get(key):
            found.append(f"{key}: {_shown(old.get(key))} -> {_shown(new.get(key))}")
    old_command = old.get("ContainerOverrides", {}).get("Command")
    new_command = new.get("ContainerOverrides", {}).get("Command")
    if old_command != new_command:
        found.append(f"Command: {_shown(old_command)} -> {_shown(new_command)}")
    found += [
        f"environment {name}: {'added' if name not in old_env else 'removed' if name not in new_env else 'changed'}"
        for name in sorted(set(old_env) | set(new_env))
        if old_env.get(name) != new_env.get(name)
    ]
    return found


def _variables(request: dict[str, Any]) -> dict[str, str]:
    return {v["Name"]: v["Value"] for v in request.get("ContainerOverrides", {}).get("Environment", [])}


def _shown(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, sort_keys=True)


class Schedules:
    """The schedule group on AWS, read once; changes computed against it and applied."""

    def __init__(self, aws: Aws, config: Config) -> None:
        self.aws = aws
        self.config = config
        self.group = config.schedule_group
        self._refs: dict[str, str] = {}
        # Definitions looked up and not found: shown as a new revision without a second lookup.
        self._unregistered: set[str] = set()

    def _client(self) -> EventBridgeSchedulerClient:
        return self.aws.scheduler()

    def group_exists(self) -> bool:
        import botocore.exceptions

        with calling(f"reading schedule group {self.group}"):
            try:
                self._client().get_schedule_group(Name=self.group)
            except botocore.exceptions.ClientError as e:
                if error_code(e) == "ResourceNotFoundException":
                    return False
                raise
        return True

    def current(self) -> dict[str, dict[str, Any]]:
        """Every schedule in the group, in full: ListSchedules gives summaries only, so one GetSchedule each, made
        concurrently (Scheduler has no call that reads many)."""
        client = self._client()
        with calling(f"listing the schedules of group {self.group}"):
            names = sorted(
                s["Name"]
                for page in client.get_paginator("list_schedules").paginate(GroupName=self.group)
                for s in page["Schedules"]
            )

        def read(name: str) -> dict[str, Any]:
            with calling(f"reading schedule {name} of group {self.group}"):
                return dict(client.get_schedule(GroupName=self.group, Name=name))

        return dict(zip(names, self.aws.map(read, names), strict=True))

    def definition_ref(self, d: Declared, *, register: bool, done: list[str]) -> str:
        """`name:revision` of the job's definition, looked up once per definition and run (schedules of one job share
        it); with `register`, registered when missing."""
        key = _definition_key(d)
        if key in self._refs:
            return self._refs[key]
        new_revision = f"{d.plan.definition['jobDefinitionName']}:<new revision>"
        if not register and key in self._unregistered:
            return new_revision
        batch = self.aws.batch()
        ref: str | None
        what = f"{d.plan.job.name}: {'registering' if register else 'looking up'} job definition"
        with calling(f"{what} {d.plan.job.definition_name}", done):
            if register:
                # Looked up by plan a moment ago and not found: registered without a second look.
                ref, registered = ensure_definition(batch, d.plan.definition, known_missing=key in self._unregistered)
                if registered:
                    done.append(f"registered job definition {ref}")
            else:
                ref = find_definition(batch, d.plan.definition)
        if ref is None:
            self._unregistered.add(key)
            return new_revision
        self._refs[key] = ref
        return ref

    def _look_up(self, wanted: list[Declared], current: dict[str, dict[str, Any]]) -> None:
        """Each distinct definition's revision, in few calls: the revisions the schedules name already are confirmed
        100 per DescribeJobDefinitions (unchanged schedules, the usual case); the others are looked up by name, one
        call each (Batch's lookup takes one name), concurrently within aws.calls_per_second."""
        distinct = {_definition_key(d): d for d in wanted}
        pinned: dict[str, tuple[str, str]] = {}  # the revision a schedule names (ARN) -> its key, name:revision
        for d in wanted:
            found = _pinned_revision(current.get(d.name))
            if found is not None and found[1].split(":", 1)[0] == d.plan.definition["jobDefinitionName"]:
                pinned[found[0]] = (_definition_key(d), found[1])
        if pinned:
            hashes = {
                arn: distinct[key].plan.definition["parameters"][HASH_PARAMETER] for arn, (key, _) in pinned.items()
            }
            with calling("reading the job definitions the schedules name"):
                confirmed = active_with_hash(self.aws.batch(), hashes)
            for arn in sorted(confirmed):
                key, ref = pinned[arn]
                self._refs.setdefault(key, ref)
        rest = [d for key, d in distinct.items() if key not in self._refs]
        self.aws.map(lambda d: self.definition_ref(d, register=False, done=[]), rest)

    def changes(self, wanted: list[Declared], current: dict[str, dict[str, Any]]) -> list[Change]:
        """What apply would do; reads only (a definition not registered yet shows as a new revision)."""
        self._look_up(wanted, current)
        changes = []
        for d in wanted:
            request = schedule_request(d, self.definition_ref(d, register=False, done=[]), self.config)
            if d.name not in current:
                changes.append(Change("create", d.name, d.plan.job.name, _summary(request), d))
                continue
            details = differences(current[d.name], request)
            changes.append(Change("update" if details else "unchanged", d.name, d.plan.job.name, tuple(details), d))
        names = {d.name for d in wanted}
        changes += [Change("delete", name) for name in current if name not in names]
        return changes

    def _create(self, request: dict[str, Any]) -> None:
        """CreateSchedule; where it meets a schedule of that name (its own first attempt, retried by botocore after an
        answer was lost), that schedule is kept if it is the one asked for, and a conflict otherwise."""
        import botocore.exceptions

        client = self._client()
        try:
            client.create_schedule(**request)
        except botocore.exceptions.ClientError as e:
            if error_code(e) != "ConflictException":
                raise
            current = dict(client.get_schedule(GroupName=self.group, Name=request["Name"]))
            found = differences(current, request)
            if found:
                raise AwsError(
                    f"schedule {request['Name']} already exists in group {self.group} and is not what was asked "
                    f"({'; '.join(found)}): apply again to update it"
                ) from None

    def apply(self, changes: list[Change], *, create_group: bool) -> list[str]:
        """Makes the changes; returns what was done, in order. First what the schedules name (the images, then each
        distinct definition, concurrently), then the schedules themselves, concurrently: they are independent, one
        call each, and EventBridge Scheduler has no call that writes many."""
        done: list[str] = []
        if create_group:
            self._create_group(done)
        writes = self._prepared(changes, done)
        failed = []
        for (change, _), error in zip(writes, self.aws.map(self._write, writes), strict=True):
            if error is None:
                done.append(f"{change.action}d {change.name}")
            else:
                failed.append(error)
        if failed:
            # Each schedule was written whatever became of the others: the first failure, how many more, what was done.
            raise _with_done(failed[0], done, also_failed=len(failed) - 1)
        return done

    def _create_group(self, done: list[str]) -> None:
        import botocore.exceptions

        with calling(f"creating schedule group {self.group}", done):
            tags: list[TagTypeDef] = [{"Key": k, "Value": v} for k, v in sorted(self.config.tags.items())]
            try:
                self._client().create_schedule_group(Name=self.group, Tags=tags)
            except botocore.exceptions.ClientError as e:
                # A retried create meeting the group its first attempt made: the group is this project's own.
                if error_code(e) != "ConflictException" or not self.group_exists():
                    raise
        done.append(f"created schedule group {self.group}")

    def _prepared(self, changes: list[Change], done: list[str]) -> list[tuple[Change, dict[str, Any] | None]]:
        """The images pushed and the definitions registered; each change with its request (None: a delete)."""
        made = [c.declared for c in changes if c.action in ("create", "update") and c.declared is not None]
        for each in made:
            if each.plan.image_push is not None:
                pushed = images.publish(
                    each.plan.image_push, self.config.image, self.aws, what=f"the image of {each.plan.job.name}"
                )
                if pushed:
                    done.append(f"pushed image {each.plan.image_push.target}")
        # Each distinct definition looked up (and registered) once, concurrently within aws.calls_per_second.
        distinct = list({_definition_key(each): each for each in made}.values())
        registered: list[list[str]] = [[] for _ in distinct]
        try:
            self.aws.map(
                lambda i: self.definition_ref(distinct[i], register=True, done=registered[i]), range(len(distinct))
            )
        except ComputeOnAwsError as e:
            raise _with_done(e, done + [line for lines in registered for line in lines]) from None
        done += [line for lines in registered for line in lines]
        writes: list[tuple[Change, dict[str, Any] | None]] = []
        for change in changes:
            if change.action in ("create", "update"):
                d = change.declared
                assert d is not None
                ref = self.definition_ref(d, register=True, done=done)
                writes.append((change, schedule_request(d, ref, self.config)))
            elif change.action == "delete":
                writes.append((change, None))
        return writes

    def _write(self, item: tuple[Change, dict[str, Any] | None]) -> ComputeOnAwsError | None:
        """One schedule created, updated or deleted; the failure returned, not raised (the others go on)."""
        change, request = item
        if request is None:
            what = f"deleting schedule {change.name} from group {self.group}"
        else:
            verb = "creating" if change.action == "create" else "updating"
            what = f"{change.job}: {verb} schedule {change.name} in group {self.group}"
        try:
            with calling(what):
                if request is None:
                    self._client().delete_schedule(GroupName=self.group, Name=change.name)
                elif change.action == "create":
                    self._create(request)
                else:
                    self._client().update_schedule(**request)
        except ComputeOnAwsError as e:
            return e
        return None


def _with_done(error: ComputeOnAwsError, done: list[str], *, also_failed: int = 0) -> ComputeOnAwsError:
    """The error of a step that failed while others went on, with how many more failed and all that was done."""
    more = f"; {also_failed} other change(s) failed too" if also_failed else ""
    already = f" (already done: {'; '.join(done)})" if done else ""
    if isinstance(error, AwsError):
        return AwsError(f"{error}{more}{already}", error.code)
    return type(error)(f"{error}{more}{already}")


def _definition_key(d: Declared) -> str:
    """What tells definitions apart: their rendered request (schedules of one job share it)."""
    return json.dumps(d.plan.definition, sort_keys=True)


def _pinned_revision(schedule: dict[str, Any] | None) -> tuple[str, str] | None:
    """The revision a schedule's SubmitJob input names, as an ARN (in the schedule's partition, region and account)
    and as `name:revision`; None if it names none that way."""
    if schedule is None:
        return None
    try:
        ref = json.loads(schedule.get("Target", {}).get("Input", "{}")).get("JobDefinition")
    except (json.JSONDecodeError, AttributeError):
        return None
    arn = str(schedule.get("Arn", "")).split(":")
    if not isinstance(ref, str) or ref.count(":") != 1 or not ref.rsplit(":", 1)[1].isdigit() or len(arn) < 6:
        return None
    return f"arn:{arn[1]}:batch:{arn[3]}:{arn[4]}:job-definition/{ref}", ref


def _summary(request: dict[str, Any]) -> tuple[str, ...]:
    submit = json.loads(request["Target"]["Input"])
    variables = ", ".join(_variables(submit))
    return (
        f"{request['ScheduleExpression']} {request['ScheduleExpressionTimezone']}, {request['State'].lower()}",
        f"submits {submit['JobName']} to {submit['JobQueue']} with {submit['JobDefinition']}",
        f"environment: {variables} (values not shown)",
    )


# Batch job names allow no `:`, and EventBridge Scheduler's time has them: its runs share one name per schedule, and
# get their slot in SCHEDULED_TIME_VARIABLE (the scheduler invokes each slot once: AWS's own guarantee).
EVENTBRIDGE_TIME = "<aws.scheduler.scheduled-time>"
EVENTBRIDGE_EXECUTION = "<aws.scheduler.execution-id>"
_SCHEDULE_NAME_LIMIT = 64


def eventbridge_name(job: str, index: int) -> str:
    """`observes-etl.0`: the job and the schedule's place in its declaration (`.` is in no job name)."""
    name = f"{job}.{index}"
    if len(name) <= _SCHEDULE_NAME_LIMIT:
        return name
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    return f"{job[: _SCHEDULE_NAME_LIMIT - len(digest) - len(str(index)) - 2]}-{digest}.{index}"


def eventbridge_job_name(job: Job, args: tuple[str, ...]) -> str:
    return naming.job_name(f"{job.name}_scheduled", args, include_args=True)


def eventbridge_expression(schedule: Schedule, *, job: str) -> str:
    """`cron(0 5 * * ? *)`: AWS's six fields (a year at the end), one of the two day fields `?`, weekdays by name (AWS
    numbers them from 1 = Sunday). Cron runs a day matching either day field when both are restricted; AWS cannot."""
    # AWS writes a step from the field's first value (0/15), not from `*`.
    minute, hour, dom, month, dow = (
        ",".join(f"{low}/{item[2:]}" if item.startswith("*/") else item for item in field.split(","))
        for field, low in zip(schedule.cron.split(), (0, 0, 1, 1, 0), strict=True)
    )
    if dom != "*" and dow != "*":
        raise UserError(
            f"{job}: schedule {schedule.cron!r} restricts both the day of the month and the day of the week, which "
            "EventBridge Scheduler cannot express: declare two schedules, one for each"
        )
    if dow == "*":
        return f"cron({minute} {hour} {dom} {month} ? *)"
    sim = CronSim(schedule.cron, datetime(2026, 1, 1, tzinfo=UTC))
    days = ",".join(WEEKDAYS[d] for d in sorted(w for w in sim.weekdays if isinstance(w, int)))
    return f"cron({minute} {hour} ? {month} {days} *)"
