"""Reading the Batch infrastructure of an account, and carrying out a plan's changes in order, each waited for."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from compute_on_aws.aws import batch as calls
from compute_on_aws.aws.session import calling
from compute_on_aws.declared.infrastructure import MANAGED_TAG
from compute_on_aws.errors import AwsError, ComputeOnAwsError
from compute_on_aws.infra import monitored, roles
from compute_on_aws.infra.cleanup import Decision, plan_cleanup
from compute_on_aws.infra.plan import Change, Settings, plan
from compute_on_aws.watching.waiting import Backoff

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient

    from compute_on_aws.declared.infrastructure import Infrastructure

# How long a compute environment or queue may take to settle (VALID after create or update, gone after delete).
SETTLE_TIMEOUT = 15 * 60.0
# A new instance profile is not usable by Batch at once (IAM is eventually consistent): seconds before going on.
IAM_PROPAGATION = 10.0


# A create answered with an error may still have been made: its answer lost after AWS acted, botocore sent it again,
# and the second met what the first made. `Replan(change)` plans that resource anew from what AWS now holds: the
# fresh change ("keep" if it is what was asked) and the resource as described (None if there is none).
Replan = Callable[[Change], tuple[Change, Mapping[str, Any] | None]]

# DescribeSchedulingPolicies takes at most this many ARNs.
DESCRIBE_POLICIES = 100
# DescribeLogGroups takes at most this many names.
DESCRIBE_LOG_GROUPS = 50


def read(batch: BatchClient) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every compute environment, job queue and scheduling policy of the account and region, by name (those being
    deleted left out)."""
    with calling("reading the compute environments, job queues and scheduling policies"):
        compute = {
            c["computeEnvironmentName"]: dict(c)
            for page in batch.get_paginator("describe_compute_environments").paginate()
            for c in page["computeEnvironments"]
            if c.get("status") not in ("DELETING", "DELETED")
        }
        queues = {
            q["jobQueueName"]: dict(q)
            for page in batch.get_paginator("describe_job_queues").paginate()
            for q in page["jobQueues"]
            if q.get("status") not in ("DELETING", "DELETED")
        }
        arns = [
            p["arn"]
            for page in batch.get_paginator("list_scheduling_policies").paginate()
            for p in page["schedulingPolicies"]
        ]
        policies = {
            p["name"]: dict(p)
            for start in range(0, len(arns), DESCRIBE_POLICIES)
            for p in batch.describe_scheduling_policies(arns=arns[start : start + DESCRIBE_POLICIES])[
                "schedulingPolicies"
            ]
        }
    return compute, queues, policies


def replanner(infra: Infrastructure, settings: Settings, batch: BatchClient) -> Replan:
    """Plans one resource anew from what the account holds now (see Replan)."""

    def replan(change: Change) -> tuple[Change, Mapping[str, Any] | None]:
        compute, queues, policies = read(batch)
        described = {"compute environment": compute, "job queue": queues, "scheduling policy": policies}
        current = described.get(change.kind, {}).get(change.name)
        fresh = next(
            c
            for c in plan(infra, settings, compute, queues, policies)
            if (c.kind, c.name) == (change.kind, change.name)
        )
        return fresh, current

    return replan


def read_consumables(batch: BatchClient, declared: Collection[str], *, prune: bool) -> dict[str, dict[str, Any]]:
    """The account's consumable resources, by name. The listing carries no tags: with prune, the undeclared ones are
    described (one call each) for the tag that says whose they are."""
    with calling("reading the consumable resources"):
        found = {
            r["consumableResourceName"]: dict(r)
            for page in batch.get_paginator("list_consumable_resources").paginate()
            for r in page["consumableResources"]
        }
        for name in [n for n in found if n not in declared] if prune else []:
            found[name]["tags"] = batch.describe_consumable_resource(consumableResource=name).get("tags", {})
    return found


def read_log_groups(logs: CloudWatchLogsClient, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The named log groups that exist, by name: one DescribeLogGroups per 50 names where botocore has
    logGroupIdentifiers, else one per name (by prefix, which also finds longer names: only exact ones count)."""
    found: dict[str, dict[str, Any]] = {}
    wanted = set(names)
    model = logs.meta.service_model.operation_model("DescribeLogGroups").input_shape
    if model is not None and "logGroupIdentifiers" in model.members:
        requests: list[dict[str, Any]] = [
            {"logGroupIdentifiers": list(names[i : i + DESCRIBE_LOG_GROUPS])}
            for i in range(0, len(names), DESCRIBE_LOG_GROUPS)
        ]
    else:
        requests = [{"logGroupNamePrefix": name} for name in names]
    paginator = logs.get_paginator("describe_log_groups")
    for request in requests:
        with calling("reading the jobs' log groups"):
            for page in paginator.paginate(**request):
                found |= {g["logGroupName"]: dict(g) for g in page["logGroups"] if g["logGroupName"] in wanted}
    return found


def read_revisions(batch: BatchClient, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every ACTIVE revision of each definition name."""
    found: dict[str, list[dict[str, Any]]] = {}
    paginator = batch.get_paginator("describe_job_definitions")
    for name in names:
        with calling(f"reading the revisions of {name}"):
            pages = paginator.paginate(jobDefinitionName=name, status="ACTIVE")
            found[name] = [dict(d) for page in pages for d in page["jobDefinitions"]]
    return found


def revisions_in_use(
    batch: BatchClient, queues: Sequence[str], schedules: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """name:revision -> what uses it: the project's queued or running jobs (one listing per queue and status), and
    the schedules (each pins a revision in the SubmitJob it sends)."""
    used: dict[str, str] = {}
    for queue in queues:
        with calling(f"listing the active jobs of {queue}"):
            for job in calls.list_queue(batch, queue, calls.ACTIVE_STATUSES) or []:
                if job.get("jobDefinition"):
                    used.setdefault(job["jobDefinition"].rsplit("/", 1)[-1], f"job {job['jobId']} ({job['status']})")
    for name, schedule in schedules.items():
        try:
            submitted = json.loads(schedule.get("Target", {}).get("Input", "{}"))
        except ValueError:
            continue
        ref = str(submitted.get("JobDefinition", "")).rsplit("/", 1)[-1]
        if ref:
            used.setdefault(ref, f"schedule {name}")
    return used


def clean_up(
    batch: BatchClient,
    names: Sequence[str],
    queues: Sequence[str],
    schedules: Mapping[str, Mapping[str, Any]],
    *,
    keep: int,
    apply: bool,
) -> tuple[list[Decision], list[str], dict[str, str]]:
    """The cleanup plan of these definitions, and with `apply` the revisions deregistered (name:revision); and the
    image each revision names. A failure part-way says which were deregistered before it."""
    revisions = read_revisions(batch, names)
    images = {
        f"{name}:{d['revision']}": str(d.get("containerProperties", {}).get("image", ""))
        for name, found in revisions.items()
        for d in found
    }
    decisions = plan_cleanup(revisions, revisions_in_use(batch, queues, schedules), keep=keep)
    done: list[str] = []
    for d in decisions if apply else ():
        if d.action != "deregister":
            continue
        try:
            with calling(f"deregistering {d.ref}"):
                batch.deregister_job_definition(jobDefinition=d.arn)
        except AwsError as e:
            raise AwsError(f"{e} (deregistered before it: {', '.join(done) or 'none'})", e.code) from None
        done.append(d.ref)
    return decisions, done, images


def image_tags(ecr: ECRClient, repository: str) -> list[str]:
    """Every tag of an ECR repository."""
    with calling(f"listing the images of {repository}"):
        pages = ecr.get_paginator("list_images").paginate(repositoryName=repository, filter={"tagStatus": "TAGGED"})
        return [i["imageTag"] for page in pages for i in page["imageIds"] if "imageTag" in i]


def delete_tags(ecr: ECRClient, repository: str, tags: Sequence[str]) -> None:
    """BatchDeleteImage, 100 tags a call (its limit). An image loses a tag; ECR removes it with its last one."""
    for start in range(0, len(tags), 100):
        chunk: list[Any] = [{"imageTag": t} for t in tags[start : start + 100]]
        with calling(f"deleting {len(chunk)} image tags of {repository}"):
            answer = ecr.batch_delete_image(repositoryName=repository, imageIds=chunk)
        failures = [f for f in answer.get("failures", []) if f.get("failureCode") != "ImageNotFound"]
        if failures:
            first = failures[0]
            raise AwsError(
                f"deleting image tag {first.get('imageId', {}).get('imageTag')} of {repository}: "
                f"AWS {first.get('failureCode')}: {first.get('failureReason')}",
                first.get("failureCode"),
            )


def _settled(
    describe: Callable[[], Mapping[str, Any] | None],
    what: str,
    *,
    gone: bool = False,
    timeout: float = SETTLE_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Polls (backing off) until the resource is VALID, or gone; INVALID or the timeout is an error."""
    deadline = time.monotonic() + timeout
    for delay in Backoff(first=1.0, cap=15.0).delays():
        current = describe()
        status = None if current is None else current.get("status")
        if gone and current is None:
            return
        if not gone and status == "VALID":
            return
        if status == "INVALID":
            reason = current.get("statusReason", "no reason given") if current else ""
            raise AwsError(f"{what}: Batch says INVALID: {reason}")
        if time.monotonic() + delay > deadline:
            raise AwsError(
                f"{what}: still {status or 'not gone'} after {timeout / 60:.0f} minutes; see the Batch console"
            )
        sleep(delay)


class Applier:
    """Carries out changes one by one; `done` lists what was done, for the report of a failure part-way."""

    def __init__(
        self,
        batch: BatchClient,
        iam: IAMClient,
        logs: CloudWatchLogsClient,
        on_step: Callable[[str], None],
        *,
        partition: str = "aws",
        tags: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        replan: Replan | None = None,
        monitoring: tuple[Any, Any, Any] | None = None,
    ):
        self.batch = batch
        self.iam = iam
        self.logs = logs
        self.on_step = on_step
        self.partition = partition
        self.tags = dict(tags or {})
        self.sleep = sleep
        self.replan = replan
        # The SNS, EventBridge and CloudWatch clients, for the notifications and alarms.
        self.monitoring = monitoring
        self.done: list[str] = []
        # Scheduling policies created by this applier, name -> ARN, for the queues that use them.
        self.policies: dict[str, str] = {}

    def _compute(self, name: str) -> Mapping[str, Any] | None:
        found = self.batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
        return next((dict(c) for c in found if c.get("status") != "DELETED"), None)

    def _queue(self, name: str) -> Mapping[str, Any] | None:
        found = self.batch.describe_job_queues(jobQueues=[name])["jobQueues"]
        return next((dict(q) for q in found if q.get("status") != "DELETED"), None)

    def _arns(self, order: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """A queue's order with ARNs: UpdateJobQueue names compute environments by ARN (one call for all of them)."""
        names = [entry["computeEnvironment"] for entry in order]
        found = self.batch.describe_compute_environments(computeEnvironments=names)["computeEnvironments"]
        arns = {c["computeEnvironmentName"]: c["computeEnvironmentArn"] for c in found if c.get("status") != "DELETED"}
        missing = [name for name in names if name not in arns]
        if missing:
            raise AwsError(f"compute environment {missing[0]} does not exist")
        return [{**entry, "computeEnvironment": arns[entry["computeEnvironment"]]} for entry in order]

    def _create(self, change: Change, create: Callable[[], Any]) -> Mapping[str, Any]:
        """`create()`'s answer; where it failed but the resource asked for is there, tagged as this project's (a
        retried create meeting the first one's work), the resource as described. Anything else there is a conflict."""
        import botocore.exceptions

        try:
            answer: Mapping[str, Any] = create()
        except botocore.exceptions.ClientError as error:  # AWS answered: a retry may have met the first attempt's work
            if self.replan is None:
                raise
            try:
                fresh, current = self.replan(change)
            except Exception:
                raise error from None  # the create's own failure is what to report, not the reading's
            if current is None:
                raise
        else:
            return answer
        scope = self.tags.get(MANAGED_TAG)
        theirs = (current.get("tags") or {}).get(MANAGED_TAG)
        if fresh.action == "keep" and theirs == scope:
            return current
        why = list(fresh.details)
        if theirs != scope:
            why.append(f"tag {MANAGED_TAG} {theirs!r}, not {scope!r}: not made by this project's apply")
        raise AwsError(
            f"{change.kind} {change.name} already exists and is not what was asked ({'; '.join(why) or fresh.action}): "
            "rename the declaration, or make the two agree"
        )

    def apply(self, change: Change) -> None:
        what = f"{change.kind} {change.name}"
        step = {"create": "creating", "update": "updating", "delete": "deleting", "replace": "replacing"}[change.action]
        with calling(f"{step} {what}", self.done):
            if change.kind in ("role", "instance profile"):
                roles.create(self.iam, change, partition=self.partition, tags=self.tags)
                if change.kind == "instance profile":
                    self.sleep(IAM_PROPAGATION)
            elif change.kind == "log group":
                if change.action == "create":
                    self.logs.create_log_group(logGroupName=change.name, tags=self.tags)
                if "retentionInDays" in change.request:
                    self.logs.put_retention_policy(
                        logGroupName=change.name, retentionInDays=change.request["retentionInDays"]
                    )
            elif change.kind == "compute environment":
                self._apply_compute(change, what)
            elif change.kind == "scheduling policy":
                self._apply_policy(change)
            elif change.kind == "consumable resource":
                self._apply_consumable(change)
            elif change.kind in ("sns topic", "event rule", "alarm"):
                assert self.monitoring is not None, "an Applier for notifications is given their clients"
                monitored.apply(change, *self.monitoring)
            else:
                self._apply_queue(change, what)
        self.done.append(f"{change.action}d {what}")
        self.on_step(f"{change.action}d {what}")

    def _apply_consumable(self, change: Change) -> None:
        request: Any = change.request
        if change.action in ("delete", "replace"):
            self.batch.delete_consumable_resource(consumableResource=change.name)
        if change.action in ("create", "replace"):
            self.batch.create_consumable_resource(**request)
        elif change.action == "update":
            self.batch.update_consumable_resource(**request)

    def _apply_compute(self, change: Change, what: str) -> None:
        batch, describe = self.batch, lambda: self._compute(change.name)
        if change.action == "create":
            self._create(change, lambda: batch.create_compute_environment(**change.request))
        elif change.action == "update":
            batch.update_compute_environment(**change.request)
        else:
            # Batch deletes only a disabled compute environment.
            batch.update_compute_environment(computeEnvironment=change.name, state="DISABLED")
            _settled(describe, what, sleep=self.sleep)
            batch.delete_compute_environment(computeEnvironment=change.name)
        _settled(describe, what, gone=change.action == "delete", sleep=self.sleep)

    def _apply_policy(self, change: Change) -> None:
        # Scheduling policies have no status to wait for: they are usable once created.
        if change.action == "create":
            made = self._create(change, lambda: self.batch.create_scheduling_policy(**change.request))
            self.policies[change.name] = made["arn"]
        elif change.action == "update":
            self.batch.update_scheduling_policy(**change.request)
        else:
            self.batch.delete_scheduling_policy(arn=change.request["arn"])

    def _policy_arn(self, request: dict[str, Any]) -> None:
        """A declared policy created by this apply stands by its name in a queue's request until then."""
        name = request.get("schedulingPolicyArn")
        if name is not None and not name.startswith("arn:"):
            if name not in self.policies:
                raise AwsError(f"scheduling policy {name} does not exist")
            request["schedulingPolicyArn"] = self.policies[name]

    def _apply_queue(self, change: Change, what: str) -> None:
        batch, describe = self.batch, lambda: self._queue(change.name)
        request = dict(change.request)
        self._policy_arn(request)
        if change.action == "update":
            request["computeEnvironmentOrder"] = self._arns(request["computeEnvironmentOrder"])
            batch.update_job_queue(**request)
        elif change.action in ("delete", "replace"):
            # Deleting a queue ends its jobs: not while any waits or runs.
            active = calls.list_queue(batch, change.name, calls.ACTIVE_STATUSES) or []
            if active:
                raise ComputeOnAwsError(
                    f"{'deleting' if change.action == 'delete' else 'replacing'} {what}: {len(active)} job(s) still "
                    "waiting or running in it, which deleting the queue would end: let them finish (compute-on-aws "
                    f"list --queue {change.name}) or cancel them, then apply again"
                )
            # Batch deletes only a disabled queue.
            batch.update_job_queue(jobQueue=change.name, state="DISABLED")
            _settled(describe, what, sleep=self.sleep)
            batch.delete_job_queue(jobQueue=change.name)
            _settled(describe, what, gone=True, sleep=self.sleep)
        if change.action == "create":
            self._create(change, lambda: batch.create_job_queue(**request))
        elif change.action == "replace":
            batch.create_job_queue(**request)
        if change.action != "delete":
            _settled(describe, what, sleep=self.sleep)


def apply(changes: Sequence[Change], applier: Applier) -> None:
    """The changes in their order. A failure part-way raises an error that names what was done before it."""
    refused = [c for c in changes if c.action == "replace" and c.kind == "compute environment"]
    if refused:
        raise ComputeOnAwsError(
            "; ".join(f"{c.kind} {c.name}: {'; '.join(c.details)}" for c in refused)
            + ": declare it under a new name (apply creates it; apply --prune then deletes the old one); "
            "nothing was changed"
        )
    pending = [c for c in changes if c.action != "keep"]
    for index, change in enumerate(pending):
        try:
            applier.apply(change)
        except ComputeOnAwsError as e:
            rest = [f"{c.action} {c.kind} {c.name}" for c in pending[index + 1 :]]
            if not rest:
                raise
            message = f"{e}; not done: {', '.join(rest)}"
            raise (AwsError(message, e.code) if isinstance(e, AwsError) else ComputeOnAwsError(message)) from None
