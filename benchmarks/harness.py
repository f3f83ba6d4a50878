"""What every benchmark here shares: moto in its own process, a proxy that counts (and may throttle or fail) calls,
the environment a user's shell would have, and a clock.

Run from the repository root with the project's virtualenv: `.venv/bin/python benchmarks/run_all.py`.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from faultproxy import FaultProxy, fault_proxy  # noqa: E402

REGION = "us-east-1"
QUEUE = "default"
DEFINITION = "tenant"
COMPUTE_ON_AWS = str(Path(sys.executable).parent / "compute-on-aws")
NIX_CONFIG = "\n".join(
    [
        "experimental-features = nix-command flakes",
        "build-users-group =",
        "sandbox = false",
        "substituters =",
        "warn-dirty = false",
    ]
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST")
    urllib.request.urlopen(request).read()


@contextmanager
def moto(*, hold: bool = False) -> Iterator[str]:
    """A moto server in a process of its own, with a queue and a job definition. `hold` keeps every job SUBMITTED
    (moto's simple backend ends each job SUCCEEDED as it is submitted)."""
    port = _free_port()
    command = [sys.executable, str(ROOT / "benchmarks" / "moto_server.py"), str(port), *(["--hold"] if hold else [])]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                _post(f"{url}/moto-api/reset")
                break
            except OSError:
                time.sleep(0.05)
        _post(f"{url}/moto-api/config", {"batch": {"use_docker": hold}})
        import boto3

        iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **CREDENTIALS)
        role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        batch = boto3.client("batch", endpoint_url=url, region_name=REGION, **CREDENTIALS)
        env = batch.create_compute_environment(computeEnvironmentName="bench-ce", type="UNMANAGED", serviceRole=role)
        batch.create_job_queue(
            jobQueueName=QUEUE,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
        )
        batch.register_job_definition(
            jobDefinitionName=DEFINITION,
            type="container",
            containerProperties={
                "image": "busybox:1.36",
                "command": ["echo"],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            },
        )
        yield url
    finally:
        process.terminate()
        process.wait()


CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def environment(endpoint: str, **more: str) -> dict[str, str]:
    """A shell's environment pointed at the endpoint, with fake credentials and offline Nix."""
    registry = Path(tempfile.gettempdir()) / "compute-on-aws-bench-registry.json"
    registry.write_text('{"flakes": [], "version": 2}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COMPUTE_ON_AWS_"))}
    return {
        **env,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "NIX_CONFIG": f"{NIX_CONFIG}\nflake-registry = {registry}\n",
        "TERM": "dumb",
        **more,
    }


def jobs_folder(root: Path, count: int, name: str = "tenant") -> Path:
    """A jobs folder of `count` declared jobs: `name` and `<name>-1` ... (all alike, on one queue)."""
    folder = root / "jobs"
    for i in range(count):
        job = folder / (name if i == 0 else f"{name}-{i}")
        job.mkdir(parents=True)
        (job / "default.nix").write_text(
            f'{{ queue = "{QUEUE}"; command = [ "echo" ]; image = "busybox:1.36"; memory = 512; }}\n'
        )
    return folder


def config_file(root: Path, calls_per_second: float) -> Path:
    path = root / "compute-on-aws.yaml"
    path.write_text(f"backend: aws\nregion: {REGION}\naws:\n  calls_per_second: {calls_per_second}\n")
    return path


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def median_of(runs: int, action: Callable[[], Any]) -> float:
    return statistics.median(timed(action)[0] for _ in range(runs))


def run(command: list[str], env: dict[str, str], *, allow_failure: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 and not allow_failure:
        raise SystemExit(f"{' '.join(command[:6])}...: exit {result.returncode}: {result.stderr.strip()[-800:]}")
    return result


def measured(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One process: its wall time, the CPU it used (user + system), its peak memory, and what it printed."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        # wait4 rather than wait: it also gives the child's own rusage (CPU, peak RSS), not every child's together.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command[:6])}...: exit {process.returncode}: {err.read().strip()[-800:]}")
        return {
            "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_mib": usage.ru_maxrss / 1024,
            "stdout": out.read(),
        }


def batch_calls(proxy: FaultProxy) -> int:
    """Batch API calls the proxy received (throttled ones and pages included)."""
    return sum(proxy.received.values())


__all__ = ["FaultProxy", "fault_proxy"]
