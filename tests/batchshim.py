"""TEST SCAFFOLDING: what AWS Batch does with a job after SubmitJob, which moto cannot do on this machine.

moto runs a job only with a Docker engine (there is none here). Without one (its `batch.use_docker: false` backend, the
one the tests use) every job is SUCCEEDED the moment SubmitJob returns: no RUNNING job to wait on, no exit code, no
log line, nothing to cancel. Even with Docker, moto gives no exit code in DescribeJobs, no retried attempts and no
status reasons, names a job's log stream only once it ended, and leaves an array parent SUBMITTED when a child
failed. tests/test_batchshim.py shows the moto behaviour this stands in for, so that a moto release that changes it
is seen.

The shim speaks only HTTP, in the recording proxy in front of moto (tests/faultproxy.py, `intercept`): moto keeps the
jobs (their names, ids, definitions, queues, parameters, tags, dependencies); for each job the shim follows, it runs
a Script (the states the job passes through, its log lines, its attempts' exit codes) on its own clock, as Batch's
scheduler and ECS would, and:
- DescribeJobs and ListJobs answers give the job's state as Batch would (status, statusReason, startedAt,
  stoppedAt, attempts with their exit codes and log streams, an array's statusSummary), and ListJobs by status lists
  the jobs in that state;
- log lines are written to moto's CloudWatch Logs (its public API) while the job is RUNNING, in the stream the
  job's attempt names, as the awslogs driver does: in the group and with the stream prefix the job definition's
  logConfiguration names (Batch's default group and the definition's name otherwise), and DescribeJobs gives that
  logConfiguration in the job's container, as Batch does (moto leaves it out);
- CancelJob and TerminateJob act as Batch documents: a cancelled job FAILED if it had not started, a terminated job
  FAILED in any state (exit code 143 when it was RUNNING);
- a job that depends on another stays PENDING until that one SUCCEEDED, and FAILED when it FAILED;
- a compute environment keeps the ecsSettings (Container Insights) it was created or updated with, which moto drops;
- consumable resources (Create/Describe/List/Update/DeleteConsumableResource), which moto does not implement, are kept
  here and answered as Batch's API reference describes them;
- GetJobQueueSnapshot, which moto does not implement, answers the first 100 RUNNABLE jobs the shim follows in the
  queue, in submission order (a FIFO queue), each with the time it reached its place (earliestTimeAtPosition), and,
  when jobs carry a shareIdentifier, the first waiting job of each share (frontOfQuotaShares);
moto's own answers are used as they are for every job the shim does not follow.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faultproxy import Answer, FaultProxy

FINAL = ("SUCCEEDED", "FAILED")
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
LOG_GROUP = "/aws/batch/job"  # Batch's default awslogs group
EXITED = "Essential container in task exited"  # what Batch says of a container that exited


@dataclass
class Script:
    """What a job does: the states it passes through after SUBMITTED (seconds in each), the log lines it writes when
    RUNNING, how its attempts end, and whether it stays in its last state until cancelled or terminated."""

    path: list[tuple[str, float]] = field(
        default_factory=lambda: [("PENDING", 0.05), ("RUNNABLE", 0.05), ("STARTING", 0.05), ("RUNNING", 0.3)]
    )
    lines: list[str] = field(default_factory=list)
    # Exit codes of successive attempts (the last one decides); per array index when given as a dict.
    exit_codes: list[int] | dict[int, list[int]] = field(default_factory=lambda: [0])
    status_reason: str | None = None  # shown while in the last state of `path` (e.g. a stuck RUNNABLE)
    # The container's own reason for how each attempt ended (Batch's attempts[].container.reason, e.g.
    # "OutOfMemoryError: Container killed due to memory usage"); None: the container just exited.
    container_reason: str | None = None
    hold: bool = False  # stay in the last state of `path` until cancelled or terminated


# A job that stays SUBMITTED until something moves it (BatchShim.set_status, CancelJob, TerminateJob).
HELD = Script(path=[("SUBMITTED", 0.0)], hold=True)


def _json_answer(value: Any, status: int = 200) -> Answer:
    return Answer(status, [("Content-Type", "application/json")], json.dumps(value).encode())


def _client_error(message: str) -> Answer:
    return _json_answer({"__type": "ClientException", "message": message}, status=400)


def _now() -> int:
    return int(time.time() * 1000)


def _awslogs_options(definition: dict[str, Any]) -> dict[str, str]:
    config = definition.get("containerProperties", {}).get("logConfiguration", {})
    return dict(config.get("options", {})) if config.get("logDriver") == "awslogs" else {}


def _given(definition: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The job's resources, timeout and retry strategy: the submission's overrides, else its definition's."""
    given: dict[str, Any] = {}
    requirements = {r["type"]: r for r in definition.get("containerProperties", {}).get("resourceRequirements", [])}
    requirements |= {r["type"]: r for r in request.get("containerOverrides", {}).get("resourceRequirements", [])}
    if requirements:
        given["resourceRequirements"] = list(requirements.values())
    for key in ("timeout", "retryStrategy"):
        if request.get(key) or definition.get(key):
            given[key] = request.get(key) or definition[key]
    return given


def _definition_name(reference: str) -> str:
    """`arn:...:job-definition/NAME:REV`, `NAME:REV` or `NAME` -> NAME."""
    return reference.rsplit("/", 1)[-1].split(":", 1)[0]


@dataclass
class Run:
    """One job the shim follows (an array's parent has children and no script of its own)."""

    job_id: str
    definition: str
    script: Script | None
    index: int | None = None
    depends_on: list[str] = field(default_factory=list)
    children: list[Run] = field(default_factory=list)
    status: str = "SUBMITTED"
    status_reason: str | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    stream: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    queue: str = ""  # the queue's name
    log_options: dict[str, str] = field(default_factory=dict)  # the definition's awslogs options
    # What DescribeJobs tells of the job's definition and moto leaves out: resourceRequirements, timeout, retryStrategy
    given: dict[str, Any] = field(default_factory=dict)
    share: str | None = None  # its shareIdentifier

    @property
    def log_group(self) -> str:
        return self.log_options.get("awslogs-group", LOG_GROUP)

    @property
    def stream_prefix(self) -> str:
        return self.log_options.get("awslogs-stream-prefix", self.definition)  # Batch's default: the definition

    # Set when the job must stop (cancelled, terminated, or the shim closed); `moved` when a test put it somewhere
    # (set_status): its Script no longer runs. `wake` is set with either.
    stop_reason: str | None = None
    moved: bool = False
    wake: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> dict[str, Any]:
        """The state fields Batch would report, read together."""
        if self.children:
            counts = dict.fromkeys(STATUSES, 0)
            for child in self.children:
                counts[child.status] += 1
            done = counts["SUCCEEDED"] + counts["FAILED"]
            if done == len(self.children):
                status = "FAILED" if counts["FAILED"] else "SUCCEEDED"
            elif counts["SUBMITTED"] == len(self.children):
                status = "SUBMITTED"
            else:
                status = "PENDING"  # Batch: a parent is PENDING once any child moved on, until all ended
            stopped = max((c.stopped_at or 0 for c in self.children), default=0) if status in FINAL else None
            return {
                "status": status,
                "statusReason": None,
                "startedAt": None,
                "stoppedAt": stopped,
                "exitCode": None,
                "stream": None,
                "attempts": [],
                "arrayProperties": {"size": len(self.children), "statusSummary": counts},
            }
        return {
            "status": self.status,
            "statusReason": self.status_reason,
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
            "exitCode": self.exit_code,
            "stream": self.stream,
            "attempts": copy.deepcopy(self.attempts),
            "arrayProperties": {"index": self.index} if self.index is not None else None,
        }


class BatchShim:
    """Follows the jobs submitted through `proxy` (see the module's docstring): each by the Script registered under
    its name in `scripts`, else by `default` (None: moto's own answers, the job is not followed)."""

    def __init__(self, proxy: FaultProxy, moto_url: str, region: str) -> None:
        self.moto_url = moto_url
        self.region = region
        self.scripts: dict[str, Script] = {}
        self.default: Script | None = None
        # The shim's own calls to moto (not through the proxy, so not recorded): a key moto accepts, also once it
        # checks IAM policies (tests/test_policy.py gives it an administrator's).
        self.credentials = ("testing", "testing")
        self._runs: dict[str, Run] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._clients: dict[tuple[str, tuple[str, str]], Any] = {}
        # compute environment name -> the ecsSettings last sent for it
        self._ecs_settings: dict[str, dict[str, Any]] = {}
        # consumable resource name -> what DescribeConsumableResource answers
        self.consumables: dict[str, dict[str, Any]] = {}
        # job id -> (its place at the front of its queue, since when): what GetJobQueueSnapshot last answered
        self._places: dict[str, tuple[int, int]] = {}
        # A revision as moto describes it, read once (a revision never changes)
        self._definitions: dict[str, dict[str, Any]] = {}
        # job name -> when each SubmitJob of it under way began (moto may have created the job, not yet followed)
        self._submitting: dict[str, list[int]] = {}
        for action, interceptor in (
            ("CreateConsumableResource", self._create_consumable),
            ("DescribeConsumableResource", self._describe_consumable),
            ("ListConsumableResources", self._list_consumables),
            ("UpdateConsumableResource", self._update_consumable),
            ("DeleteConsumableResource", self._delete_consumable),
            ("SubmitJob", self._submit),
            ("GetJobQueueSnapshot", self._snapshot),
            ("DescribeJobs", self._describe),
            ("ListJobs", self._list),
            ("CancelJob", self._cancel),
            ("TerminateJob", self._terminate),
            ("CreateComputeEnvironment", self._keep_ecs_settings),
            ("UpdateComputeEnvironment", self._keep_ecs_settings),
            ("DescribeComputeEnvironments", self._describe_compute),
        ):
            proxy.intercept(action, interceptor)

    # -- what tests call

    def set_status(self, job_id: str, status: str) -> None:
        """Puts a followed job in a state, as Batch's scheduler would (a final one ends it, with no container exit
        code: nothing ran)."""
        run = self._runs[job_id]
        with self._lock:
            run.moved = True
            run.status = status
            if status == "RUNNING" and run.started_at is None:
                run.started_at = _now()
            if status in FINAL:
                run.stopped_at = _now()
        run.wake.set()

    def alive(self, job_ids: list[str]) -> list[str]:
        """Of these jobs, those nobody cancelled or terminated."""
        with self._lock:
            return [j for j in job_ids if j in self._runs and self._runs[j].stop_reason is None]

    def close(self) -> None:
        """Ends every job the shim still runs (their threads stop within a moment)."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop_reason = run.stop_reason or "shim closed"
            run.wake.set()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- moto's public API

    def client(self, service: str) -> Any:
        import boto3

        key = (service, self.credentials)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                endpoint_url=self.moto_url,
                region_name=self.region,
                aws_access_key_id=self.credentials[0],
                aws_secret_access_key=self.credentials[1],
            )
        return self._clients[key]

    def _write(self, group: str, stream: str, line: str) -> None:
        logs = self.client("logs")
        with self._log_lock:
            for create in (
                lambda: logs.create_log_group(logGroupName=group),
                lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream),
            ):
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    create()
            logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": _now(), "message": line}]
            )

    def _definition(self, reference: str) -> dict[str, Any]:
        """The definition a SubmitJob names (its ARN, NAME:REV, or NAME for the newest), as moto describes it."""
        if reference in self._definitions:
            return self._definitions[reference]
        name, _, revision = reference.rsplit("/", 1)[-1].partition(":")
        found = self.client("batch").describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
        found = [d for d in found if str(d["revision"]) == revision or (not revision and d["status"] == "ACTIVE")]
        definition = dict(max(found, key=lambda d: d["revision"])) if found else {}
        if revision:
            self._definitions[reference] = definition
        return definition

    # -- interceptors

    def _submit(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        # From moto's creating the job to the shim's following it, moto lists it SUCCEEDED: listed meanwhile, it is
        # SUBMITTED, as Batch lists a job it has just created (a concurrent caller's settlement must see it).
        name, since = request.get("jobName", ""), _now() - 1
        with self._lock:
            self._submitting.setdefault(name, []).append(since)
        try:
            return self._submitted(request, forward)
        finally:
            with self._lock:
                self._submitting[name].remove(since)
                if not self._submitting[name]:
                    del self._submitting[name]

    def _submitted(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        script = self.scripts.get(request.get("jobName", ""), self.default)
        if answer.status != 200 or script is None:
            return answer
        job_id = answer.json()["jobId"]
        definition = _definition_name(request["jobDefinition"])
        depends = [d["jobId"] for d in request.get("dependsOn", []) if "jobId" in d]
        size = request.get("arrayProperties", {}).get("size")
        described = self._definition(request["jobDefinition"])
        facts = {
            "queue": request["jobQueue"].rsplit("/", 1)[-1],
            "log_options": _awslogs_options(described),
            "given": _given(described, request),
            "share": request.get("shareIdentifier"),
        }
        run = Run(job_id, definition, None if size else script, depends_on=depends, **facts)
        children = [
            Run(f"{job_id}:{i}", definition, script, index=i, depends_on=depends, **facts) for i in range(size or 0)
        ]
        run.children = children
        with self._lock:
            self._runs[job_id] = run
            for child in children:
                self._runs[child.job_id] = child
        for each in children or [run]:
            thread = threading.Thread(target=self._follow, args=(each,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return answer

    def _overlaid(self, job: dict[str, Any], *, summary: bool) -> dict[str, Any]:
        run = self._runs.get(job.get("jobId", ""))
        if run is None:
            with self._lock:
                starts = list(self._submitting.get(job.get("jobName", ""), []))
            if (
                starts
                and job.get("createdAt", 0) >= min(starts)
                and self.scripts.get(job.get("jobName", ""), self.default) is not None
            ):
                job = {k: v for k, v in job.items() if k not in ("statusReason", "startedAt", "stoppedAt")}
                job["status"] = "SUBMITTED"
            return job
        with self._lock:
            state = run.snapshot()
        job = dict(job)
        for key in ("status", "statusReason", "startedAt", "stoppedAt"):
            if state[key] is None:
                job.pop(key, None)
            else:
                job[key] = state[key]
        if state["arrayProperties"] is not None:
            shown = dict(state["arrayProperties"])
            if summary:
                shown.pop("statusSummary", None)
            job["arrayProperties"] = shown
        else:
            job.pop("arrayProperties", None)
        container = {} if summary else dict(job.get("container", {}))
        container.pop("exitCode", None)
        container.pop("logStreamName", None)
        if state["exitCode"] is not None:
            container["exitCode"] = state["exitCode"]
        if not summary and state["stream"] is not None:
            container["logStreamName"] = state["stream"]
        if not summary and run.log_options:  # Batch's ContainerDetail has it, moto's leaves it out
            container["logConfiguration"] = {"logDriver": "awslogs", "options": dict(run.log_options)}
        if not summary and "resourceRequirements" in run.given:
            container["resourceRequirements"] = run.given["resourceRequirements"]
        if not summary:
            job.update({k: v for k, v in run.given.items() if k in ("timeout", "retryStrategy")})
        if container:
            job["container"] = container
        else:
            job.pop("container", None)
        if not summary:
            job["attempts"] = state["attempts"]
        return job

    def _consumable_arn(self, name: str) -> str:
        return f"arn:aws:batch:{self.region}:123456789012:consumable-resource/{name}"

    def _found(self, request: dict[str, Any], key: str) -> dict[str, Any] | None:
        return self.consumables.get(str(request.get(key, "")).rsplit("/", 1)[-1])

    def _create_consumable(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        name = request["consumableResourceName"]
        if name in self.consumables:
            return _client_error(f"consumable resource {name} already exists")
        total = int(request.get("totalQuantity", 0))
        self.consumables[name] = {
            "consumableResourceName": name,
            "consumableResourceArn": self._consumable_arn(name),
            "totalQuantity": total,
            "inUseQuantity": 0,
            "availableQuantity": total,
            "resourceType": request.get("resourceType", "REPLENISHABLE"),
            "createdAt": _now(),
            "tags": dict(request.get("tags", {})),
        }
        return _json_answer({"consumableResourceName": name, "consumableResourceArn": self._consumable_arn(name)})

    def _snapshot(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        queue = request["jobQueue"].rsplit("/", 1)[-1]
        now = _now()
        with self._lock:
            waiting = [r for r in self._runs.values() if r.queue == queue and r.status == "RUNNABLE"]
        front = []
        heads: dict[str, list[dict[str, Any]]] = {}
        for place, run in enumerate(waiting[:100]):
            before = self._places.get(run.job_id)
            since = before[1] if before is not None and before[0] == place else now
            self._places[run.job_id] = (place, since)
            arn = f"arn:aws:batch:{self.region}:123456789012:job/{run.job_id}"
            front.append({"jobArn": arn, "earliestTimeAtPosition": since})
            if run.share is not None and run.share not in heads:
                heads[run.share] = [{"jobArn": arn, "earliestTimeAtPosition": since}]
        answer: dict[str, Any] = {"frontOfQueue": {"jobs": front, "lastUpdatedAt": now}}
        if heads:  # as a queue with a quota-share policy answers: the first waiting job of each share
            answer["frontOfQuotaShares"] = {"quotaShares": heads, "lastUpdatedAt": now}
        return _json_answer(answer)

    def _describe_consumable(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        found = self._found(request, "consumableResource")
        return _client_error("no such consumable resource") if found is None else _json_answer(found)

    def _list_consumables(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        # A summary each, as the model has it: no tags (DescribeConsumableResource gives those).
        summary = ("consumableResourceArn", "consumableResourceName", "totalQuantity", "inUseQuantity", "resourceType")
        listed = [{k: r[k] for k in summary if k in r} for r in self.consumables.values()]
        return _json_answer({"consumableResources": listed})

    def _update_consumable(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        found = self._found(request, "consumableResource")
        if found is None:
            return _client_error("no such consumable resource")
        quantity = int(request.get("quantity", 0))
        operation = request.get("operation", "SET")
        total = {"SET": quantity, "ADD": found["totalQuantity"] + quantity}.get(
            operation, found["totalQuantity"] - quantity
        )
        found.update(totalQuantity=total, availableQuantity=total - found["inUseQuantity"])
        return _json_answer({k: found[k] for k in ("consumableResourceName", "consumableResourceArn", "totalQuantity")})

    def _delete_consumable(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        found = self._found(request, "consumableResource")
        if found is None:
            return _client_error("no such consumable resource")
        del self.consumables[found["consumableResourceName"]]
        return _json_answer({})

    def _keep_ecs_settings(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        name = request.get("computeEnvironmentName") or str(request.get("computeEnvironment", "")).split("/")[-1]
        if answer.status == 200 and "ecsSettings" in request:
            self._ecs_settings[name] = request["ecsSettings"]
        return answer

    def _describe_compute(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        if answer.status != 200 or not self._ecs_settings:
            return answer
        body = answer.json()
        for ce in body.get("computeEnvironments", []):
            if ce.get("computeEnvironmentName") in self._ecs_settings:
                ce["ecsSettings"] = self._ecs_settings[ce["computeEnvironmentName"]]
        return answer.with_json(body)

    def _describe(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        if answer.status != 200 or not self._runs:
            return answer
        body = answer.json()
        body["jobs"] = [self._overlaid(job, summary=False) for job in body.get("jobs", [])]
        return answer.with_json(body)

    def _list(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        if answer.status != 200 or not (self._runs or self._submitting):
            return answer
        status = request.get("jobStatus")
        if status is not None and not request.get("filters"):
            # moto lists by the states it gave its jobs (all SUCCEEDED): list every state, then keep this one.
            everything = {k: request[k] for k in ("jobQueue", "arrayJobId") if k in request}
            jobs = self.client("batch").list_jobs(**everything)["jobSummaryList"]
            listed = [j for j in (self._overlaid(job, summary=True) for job in jobs) if j.get("status") == status]
        else:
            listed = [self._overlaid(job, summary=True) for job in answer.json().get("jobSummaryList", [])]
        return answer.with_json({"jobSummaryList": listed})

    def _stop(self, request: dict[str, Any], states: tuple[str, ...]) -> None:
        run = self._runs.get(request.get("jobId", ""))
        if run is None:
            return
        for each in run.children or [run]:
            with self._lock:
                stopping = each.status in states and each.stop_reason is None
                if stopping:
                    each.stop_reason = request.get("reason", "")
            if stopping and each.moved:  # no Script runs it any more: Batch's answer, now
                self._stopped(each)
            elif stopping:
                each.wake.set()

    def _cancel(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        # Batch: jobs that reached STARTING or RUNNING are not cancelled (TerminateJob stops those).
        self._stop(request, ("SUBMITTED", "PENDING", "RUNNABLE"))
        return answer

    def _terminate(self, request: dict[str, Any], forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        self._stop(request, STATUSES[:5])
        return answer

    # -- a job's life

    def _pause(self, run: Run, seconds: float) -> bool:
        """Waits `seconds` (for ever when negative); False when the job must stop or was moved meanwhile (`wake` is
        set only then)."""
        if run.stop_reason is None and not run.moved:
            run.wake.wait(None if seconds < 0 else seconds)
        return run.stop_reason is None and not run.moved

    def _set(self, run: Run, **fields: Any) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(run, name, value)

    def _follow(self, run: Run) -> None:
        assert run.script is not None
        script = run.script
        if run.depends_on and not self._dependencies(run):
            return
        codes = script.exit_codes[run.index or 0] if isinstance(script.exit_codes, dict) else script.exit_codes
        for number, code in enumerate(codes, 1):
            for step, (state, seconds) in enumerate(script.path):
                last = step == len(script.path) - 1
                if run.stop_reason is not None or run.moved:
                    self._stopped(run)
                    return
                self._set(run, status=state, status_reason=script.status_reason if last else None)
                if state == "RUNNING":
                    stream = f"{run.stream_prefix}/default/{run.job_id.replace(':', '-')}-{number}"
                    started = _now()
                    attempt = {"container": {"logStreamName": stream}, "startedAt": started}
                    self._set(run, started_at=started, stream=stream, attempts=[*run.attempts, attempt])
                    for line in script.lines:
                        self._write(run.log_group, stream, line)
                        if not self._pause(run, 0.02):
                            break
                if not self._pause(run, -1 if script.hold and last else seconds):
                    self._stopped(run)
                    return
            with self._lock:
                if run.attempts:
                    run.attempts[-1]["container"]["exitCode"] = code
                    run.attempts[-1]["stoppedAt"] = _now()
                    run.attempts[-1]["statusReason"] = EXITED
                    if script.container_reason is not None:
                        run.attempts[-1]["container"]["reason"] = script.container_reason
        with self._lock:
            if run.moved:  # a test put it somewhere as its last attempt ended
                return
            run.status = "SUCCEEDED" if codes[-1] == 0 else "FAILED"
            run.status_reason = EXITED
            run.exit_code = codes[-1]
            run.stopped_at = _now()

    def _dependencies(self, run: Run) -> bool:
        """Waits PENDING for the jobs `run` depends on (those the shim follows); False if it must not run."""
        self._set(run, status="PENDING")
        while True:
            with self._lock:
                states = [self._runs[j].snapshot()["status"] for j in run.depends_on if j in self._runs]
            if "FAILED" in states:
                self._set(run, status="FAILED", status_reason="Dependent Job failed", stopped_at=_now())
                return False
            if all(s == "SUCCEEDED" for s in states):
                return True
            if not self._pause(run, 0.05):
                self._stopped(run)
                return False

    def _stopped(self, run: Run) -> None:
        """A job cancelled or terminated, as Batch ends it (one a test moved is where the test put it)."""
        with self._lock:
            if run.moved and run.stop_reason is None:
                return
            running = run.status == "RUNNING"
            run.exit_code = 143 if running else None
            if running and run.attempts:
                run.attempts[-1]["container"]["exitCode"] = 143
                run.attempts[-1]["stoppedAt"] = _now()
            run.status = "FAILED"
            run.status_reason = run.stop_reason
            run.stopped_at = _now()
