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
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from batchshim import HELD, BatchShim, Script
from faultproxy import FaultProxy, fault_proxy
from registryproxy import docker_registry

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "nixpkgs-standin"
ACCOUNT = "123456789012"
REGION = "us-east-1"

# Offline Nix: no substituters, no global registry, no build users, no sandbox (see docs/development.md).
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


def _post(url: str, body: Any = None) -> None:
    """A POST to moto's own API: a JSON body, or a text one (reset-auth reads the request's raw data)."""
    text = isinstance(body, str)
    data = body.encode() if text else json.dumps(body or {}).encode()
    headers = {"Content-Type": "text/plain" if text else "application/json"}
    urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST", headers=headers)).read()


@dataclass
class Moto:
    """The moto server behind a recording proxy (the endpoint the helper talks to), and what it received, for
    assertions on fields moto ignores; `shim` runs jobs as Batch would (tests/batchshim.py)."""

    url: str
    server: str
    proxy: FaultProxy
    shim: BatchShim

    @property
    def received(self) -> defaultdict[str, list[dict[str, Any]]]:
        """The requests moto received, per action, as the API reads them (tests/faultproxy.py, read_request)."""
        return self.proxy.bodies

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
        self.shim.set_status(job_id, status)

    def reset(self) -> None:
        """A new, empty account with the compute environment and the queues the example jobs use."""
        # moto's full Batch backend runs containers with Docker, which this machine lacks: the simple one ends every
        # job SUCCEEDED at once, and the shim runs the jobs a test follows.
        _post(f"{self.server}/moto-api/config", {"batch": {"use_docker": False}})
        _post(f"{self.server}/moto-api/reset")
        iam = self.client("iam")
        role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        batch = self.client("batch")
        env = batch.create_compute_environment(computeEnvironmentName="local-ce", type="UNMANAGED", serviceRole=role)
        for queue in ("default", "etl-small", "other"):
            batch.create_job_queue(
                jobQueueName=queue,
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
            )


@pytest.fixture
def moto(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """A clean moto with a compute environment and the queues the example jobs use, behind a recording proxy."""
    with fault_proxy(moto_server) as recorder:
        m = Moto(url=recorder.url, server=moto_server, proxy=recorder, shim=BatchShim(recorder, moto_server, REGION))
        monkeypatch.setenv("AWS_ENDPOINT_URL", recorder.url)
        m.reset()
        try:
            yield m
        finally:
            m.shim.close()


@pytest.fixture
def account(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What a team has before declaring compute: a VPC's subnet and security group, the roles Batch needs, and AWS's
    managed policies (moto loads them into a new account when the server's MOTO_IAM_LOAD_MANAGED_POLICIES says so:
    the server runs in this process)."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    moto.reset()
    ec2, iam = moto.client("ec2"), moto.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)["GroupId"]
    service = iam.get_role(RoleName="batch-service")["Role"]["Arn"]
    iam.create_role(RoleName="ecs-instance", AssumeRolePolicyDocument="{}")
    profile = iam.create_instance_profile(InstanceProfileName="ecs-instance")["InstanceProfile"]["Arn"]
    moto.proxy.clear()  # the moto fixture's own calls: only what the tests do counts
    return {"subnet": subnet, "group": group, "service": service, "profile": profile}


@pytest.fixture
def hold_jobs(moto: Moto) -> Moto:
    """Jobs stay SUBMITTED until a test moves them (moto.set_status), cancels or terminates them."""
    moto.shim.default = HELD
    return moto


@pytest.fixture
def as_user(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, Any]], None]]:
    """From the call on, moto checks every call against `policy` (its documented /moto-api/reset-auth, with no
    unauthenticated calls left). Two moto quirks are met halfway: it compares Batch calls with the resource "*", so
    resources are widened (this checks the actions; the test above checks the resources), it names Batch actions
    in lower case (IAM ignores case), so each action is also given in lower case, and it names CloudWatch's by the
    service's endpoint prefix (monitoring:, not cloudwatch:), so those are given under both."""

    def with_policy(policy: dict[str, Any]) -> None:
        for statement in policy["Statement"]:
            statement["Resource"] = "*"
            statement["Action"] += [action.lower() for action in statement["Action"]]
            statement["Action"] += [
                a.replace("cloudwatch:", "monitoring:", 1) for a in statement["Action"] if a.startswith("cloudwatch:")
            ]
        iam = moto.client("iam")
        for user, document in (("ci", policy), ("shim", ALLOW_ALL)):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="compute-on-aws", PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName="ci")["AccessKey"]
        shim_key = iam.create_access_key(UserName="shim")["AccessKey"]
        moto.shim.credentials = (shim_key["AccessKeyId"], shim_key["SecretAccessKey"])
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        _post(f"{moto.server}/moto-api/reset-auth", "0")

    try:
        yield with_policy
    finally:
        _post(f"{moto.server}/moto-api/reset-auth", "inf")


ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def queued(self) -> list[dict[str, Any]]:
        """The jobs of `queue --json` (or `render --json`), each with its definition from `definitions` (printed once
        per declared job) under "definition"."""
        document = self.json()
        return [{**job, "definition": document["definitions"][job["job"]]} for job in document["jobs"]]


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
def standin(requires: str | None = None) -> Path:
    """A copy of tests/nixpkgs-standin with host.json: the interpreter its python3 stands for (this test run's base
    python) and the site-packages holding the helper's dependencies (this test run's). With `requires`, its
    lib/minfeatures.nix also asks for that Nix version, as a later nixpkgs would (the pin's gate, never a laxer one)."""
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
    if requires is not None:
        features = copy / "lib" / "minfeatures.nix"
        features.write_text(
            features.read_text().replace(
                "  features = [\n",
                "  features = [\n"
                f'    {{ description = "`builtins.nixVersion` reports at least {requires}";\n'
                f'      condition = builtins.compareVersions "{requires}" builtins.nixVersion != 1; }}\n',
                1,
            )
        )
        (copy / "lib" / "minver.nix").write_text(f'"{requires}"\n')
    return copy


@functools.cache
def nix_version() -> str:
    version: str = nix_value("builtins.nixVersion")
    return version


@functools.cache
def nixpkgs_accepts_this_nix() -> bool:
    """Whether the pinned nixpkgs (its gate, which the stand-in copies: lib/minfeatures.nix) accepts the Nix here."""
    accepted: bool = nix_value(f"(import {STANDIN}/lib/minfeatures.nix).missing == [ ]")
    return accepted


# Tests of the flake's nixpkgs-using outputs: real nixpkgs refuses an older Nix, so they run only where it would not
# (CI runs them in a Debian 13 root, .ci/trixie); tests/test_nix_versions.py checks what an older Nix says instead.
needs_nixpkgs_nix = pytest.mark.skipif(
    not nixpkgs_accepts_this_nix(),
    reason=f"the pinned nixpkgs refuses Nix {nix_version()} (lib/minfeatures.nix); CI runs this in Debian 13",
)


def flake_args(project: Path) -> list[str]:
    """Evaluate the copied flake with the offline nixpkgs stand-in (tests/nixpkgs-standin)."""
    return ["--no-write-lock-file", "--override-input", "nixpkgs", f"path:{standin()}"]


@pytest.fixture
def scripted(moto: Moto) -> dict[str, Script]:
    """Jobs follow the Script registered under their name (by default a short run that succeeds), as Batch would run
    them: through its states, with CloudWatch lines, exit codes, attempts (tests/batchshim.py)."""
    moto.shim.default = Script()
    return moto.shim.scripts


def botocore_has(operation: str, member: str | None = None) -> bool:
    """Whether the installed botocore's Batch model has an operation (and a member of its input): the lowest
    supported botocore predates some of what the tests send."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("batch")
    if operation not in model.operation_names:
        return False
    shape = model.operation_model(operation).input_shape
    return member is None or (shape is not None and member in shape.members)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A real image registry (Debian's docker-registry) on loopback."""
    with docker_registry(tmp_path) as address:
        yield address
