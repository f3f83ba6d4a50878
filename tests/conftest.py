"""Shared fixtures: a real moto server over HTTP, real Nix (offline settings), the CLI run as users run it."""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "nixpkgs-standin"
ACCOUNT = "123456789012"
REGION = "us-east-1"

# Offline Nix: no substituters, no global registry, no build users, no sandbox (see README, "Development").
NIX_CONFIG = "\n".join(
    [
        "experimental-features = nix-command flakes",
        "build-users-group =",
        "sandbox = false",
        "substituters =",
        "download-attempts = 1",
        "connect-timeout = 5",
        "warn-dirty = false",
    ]
)


@pytest.fixture(scope="session")
def nix_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    registry = tmp_path_factory.mktemp("nix") / "registry.json"
    registry.write_text('{"flakes": [], "version": 2}')
    return {"NIX_CONFIG": f"{NIX_CONFIG}\nflake-registry = {registry}\n", "TERM": "dumb"}


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, nix_env: dict[str, str], tmp_path: Path) -> None:
    """No real AWS profile or endpoint leaks in; fake credentials; Nix configured for this machine."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "COMPUTE_ON_AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for key, value in nix_env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _post(url: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST")
    urllib.request.urlopen(request).read()


@dataclass
class Moto:
    """The moto server and what it received, for assertions on fields moto ignores."""

    url: str
    received: dict[str, list[dict[str, Any]]]

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION)

    def submitted(self) -> list[dict[str, Any]]:
        return self.received["SubmitJob"]

    def registered(self) -> list[dict[str, Any]]:
        return self.received["RegisterJobDefinition"]

    def register_definition(self, name: str) -> None:
        """A minimal job definition registered behind the helper's back, as another tool would."""
        self.client("batch").register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={
                "image": "x",
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "4"}],
            },
        )

    def set_status(self, job_id: str, status: str) -> None:
        """Puts a held job in a state (see hold_jobs), as Batch's scheduler would."""
        from moto.batch.models import batch_backends

        batch_backends[ACCOUNT][REGION].get_job_by_id(job_id)._status = status


@pytest.fixture
def moto(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """A clean moto with a compute environment and the queues the example jobs use."""
    from moto.batch.responses import BatchResponse

    _post(f"{moto_server}/moto-api/reset")
    # moto's full Batch backend runs containers with Docker, which this machine lacks: the simple one ends every
    # job SUCCEEDED at once. hold_jobs switches back to the full one with its runner replaced.
    _post(f"{moto_server}/moto-api/config", {"batch": {"use_docker": False}})
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    recorded = (
        "SubmitJob",
        "RegisterJobDefinition",
        "CreateComputeEnvironment",
        "UpdateComputeEnvironment",
        "DeleteComputeEnvironment",
        "CreateJobQueue",
        "UpdateJobQueue",
        "DeleteJobQueue",
        "CreateSchedulingPolicy",
        "UpdateSchedulingPolicy",
        "DeleteSchedulingPolicy",
    )
    received: dict[str, list[dict[str, Any]]] = {action: [] for action in recorded}
    for action, method in ((a, a.lower()) for a in recorded):
        original = getattr(BatchResponse, method)

        def recording(self: Any, _original: Any = original, _action: str = action) -> Any:
            received[_action].append(json.loads(self.body))
            return _original(self)

        monkeypatch.setattr(BatchResponse, method, recording)
    m = Moto(url=moto_server, received=received)
    iam = m.client("iam")
    role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    batch = m.client("batch")
    env = batch.create_compute_environment(computeEnvironmentName="local-ce", type="UNMANAGED", serviceRole=role)
    for queue in ("default", "etl-small", "other"):
        batch.create_job_queue(
            jobQueueName=queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
        )
    return m


@pytest.fixture
def account(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What a team has before declaring compute: a VPC's subnet and security group, the roles Batch needs, and AWS's
    managed policies (moto loads them only when asked, at the start of an account: here, into the one in use)."""
    from moto.iam.models import iam_backends

    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    backend = iam_backends[ACCOUNT]["global"]
    backend.aws_managed_policies = backend._init_aws_policies()
    backend.managed_policies.update({p.arn: p for p in backend.aws_managed_policies})
    ec2, iam = moto.client("ec2"), moto.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)["GroupId"]
    service = iam.get_role(RoleName="batch-service")["Role"]["Arn"]
    iam.create_role(RoleName="ecs-instance", AssumeRolePolicyDocument="{}")
    profile = iam.create_instance_profile(InstanceProfileName="ecs-instance")["InstanceProfile"]["Arn"]
    for calls in moto.received.values():  # the moto fixture's own queues: only what the tests do counts
        calls.clear()
    return {"subnet": subnet, "group": group, "service": service, "profile": profile}


@pytest.fixture
def hold_jobs(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """Jobs stay in the state a test puts them in (moto cannot run containers here; see moto.set_status)."""
    from moto.batch.models import Job

    monkeypatch.setattr(Job, "run", lambda self: None)
    _post(f"{moto.url}/moto-api/config", {"batch": {"use_docker": True}})
    _post(
        f"{moto.url}/moto-api/state-manager/set-transition",
        {"model_name": "batch::job", "transition": {"progression": "manual", "times": 10**9}},
    )
    yield moto
    _post(f"{moto.url}/moto-api/state-manager/unset-transition", {"model_name": "batch::job"})


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Runs `compute-on-aws ARGS...` in this process (through main(), as the console script does).

    The working directory is an empty temporary one unless `cwd` is given: no compute-on-aws.yaml is read by accident.
    """
    from compute_on_aws.cli import main

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    def run(*args: str, cwd: Path | None = None, stdin: str = "") -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        monkeypatch.setattr(sys, "argv", ["compute-on-aws", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return Result(code=code, out=captured.out, err=captured.err)

    return run


def write_job(jobs: Path, name: str, text: str) -> Path:
    folder = jobs / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "default.nix").write_text(text)
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of this repository's flake (jobs, nix library, helper source) to build and modify freely."""
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("flake.nix", "flake.lock", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("nix", "jobs", "compute_on_aws"):
        shutil.copytree(ROOT / name, dest / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def pure_manifest(jobs: Path) -> dict[str, Any]:
    """The manifest of a jobs folder evaluated without nixpkgs, straight from the Nix library."""
    result = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            str(ROOT / "nix/lib/eval.nix"),
            "--argstr",
            "jobsDir",
            str(jobs),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def nix_value(expression: str) -> Any:
    """The value of a pure Nix expression, through nix-instantiate as the helper evaluates."""
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expression],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def nix(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["nix", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"nix {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@functools.cache
def current_system() -> str:
    """Nix's name for this machine's system (x86_64-linux...)."""
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--json", "--expr", "builtins.currentSystem"],
        capture_output=True,
        text=True,
        check=True,
    )
    system: str = json.loads(result.stdout)
    return system


@functools.cache
def standin() -> Path:
    """A copy of tests/nixpkgs-standin with host.json: the interpreter its python3 stands for (this test run's base
    python) and the site-packages holding the helper's dependencies (this test run's)."""
    copy = Path(tempfile.mkdtemp(prefix="nixpkgs-standin-")) / "nixpkgs"
    shutil.copytree(STANDIN, copy)
    (copy / "host.json").write_text(
        json.dumps(
            {
                "python": os.path.realpath(sys._base_executable),
                "pythonVersion": f"{sys.version_info.major}.{sys.version_info.minor}",
                "sitePackages": sysconfig.get_path("purelib"),
                # What it holds (dist-info names carry versions): another set of packages is another derivation.
                "sitePackagesEntries": sorted(os.listdir(sysconfig.get_path("purelib"))),
            }
        )
    )
    return copy


def flake_args(project: Path) -> list[str]:
    """Evaluate the copied flake with the offline nixpkgs stand-in (tests/nixpkgs-standin)."""
    return ["--no-write-lock-file", "--override-input", "nixpkgs", f"path:{standin()}"]


@dataclass
class Script:
    """What a moto job does (moto cannot run containers here): the states it passes through (seconds in each),
    the log lines it writes while RUNNING, how its attempts end, and whether it stays put until stopped."""

    path: list[tuple[str, float]] = field(
        default_factory=lambda: [("PENDING", 0.05), ("RUNNABLE", 0.05), ("STARTING", 0.05), ("RUNNING", 0.3)]
    )
    lines: list[str] = field(default_factory=list)
    # Exit codes of successive attempts (the last one decides); per array index when given as a dict.
    exit_codes: list[int] | dict[int, list[int]] = field(default_factory=lambda: [0])
    status_reason: str | None = None  # shown while in the last state of `path` (e.g. a stuck RUNNABLE)
    hold: bool = False  # stay in the last state of `path` until cancelled or terminated


@pytest.fixture
def scripted(hold_jobs: Moto, monkeypatch: pytest.MonkeyPatch) -> dict[str, Script]:
    """Jobs in moto follow the Script registered under their name: RUNNING with CloudWatch lines, exit codes..."""
    import threading
    import time as _time

    from moto.batch.models import Job
    from moto.core.utils import unix_time_millis

    scripts: dict[str, Script] = {}
    lock = threading.Lock()

    def write(job: Any, line: str) -> None:
        with lock:
            job.log_stream_name = job._stream_name
            job._log_backend.ensure_log_group("/aws/batch/job")
            if job.log_stream_name not in job._log_backend.groups["/aws/batch/job"].streams:
                job._log_backend.ensure_log_stream("/aws/batch/job", job.log_stream_name)
            job._log_backend.put_log_events(
                "/aws/batch/job", job.log_stream_name, [{"timestamp": int(unix_time_millis()), "message": line}]
            )

    def pause(job: Any, seconds: float) -> bool:
        end = _time.monotonic() + seconds
        while _time.monotonic() < end:
            if job.stop:
                return False
            _time.sleep(0.01)
        return not job.stop

    def run(job: Any) -> None:
        script = scripts.get(job.job_name, Script())
        index = job.array_properties.get("index")
        codes = script.exit_codes[index] if isinstance(script.exit_codes, dict) else script.exit_codes
        for number, code in enumerate(codes, 1):
            for state, seconds in script.path:
                job._status = state
                if state == "RUNNING":
                    job.job_started_at = datetime.now()
                    job._stream_name = f"{job.job_definition.name}/default/{job.job_id.replace(':', '-')}-{number}"
                    job.log_stream_name = job._stream_name
                    job._start_attempt()
                    for line in script.lines:
                        write(job, line)
                        if not pause(job, 0.02):
                            break
                if (state, seconds) == script.path[-1] and script.status_reason:
                    job.job_stopped_reason = script.status_reason
                held = script.hold and (state, seconds) == script.path[-1]
                while held and not job.stop:
                    _time.sleep(0.01)
                if not pause(job, seconds) or job.stop:
                    job.exit_code = 143 if job._status == "RUNNING" else None
                    job._mark_stopped(success=False)
                    return
            job.exit_code = code
            if job.latest_attempt is not None:
                job.latest_attempt["container"]["exitCode"] = code
                job.latest_attempt["statusReason"] = "Essential container in task exited"
                job.latest_attempt["container"]["logStreamName"] = job.log_stream_name
        job.job_stopped_reason = "Essential container in task exited"  # as AWS says of an exited container
        job._mark_stopped(success=codes[-1] == 0)

    monkeypatch.setattr(Job, "run", run)
    return scripts
