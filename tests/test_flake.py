"""The flake end to end with real Nix: entrypoints and images built, `nix run .#queue-job` against moto and a real
registry. nixpkgs cannot be fetched here, so tests/nixpkgs-standin stands in for it (see its header)."""

from __future__ import annotations

import functools
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Moto, flake_args, nix, write_job

SYSTEM = json.loads(
    subprocess.run(
        ["nix-instantiate", "--eval", "--json", "--expr", "builtins.currentSystem"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
)


@pytest.fixture
def host_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in helper runs on the python3 found on PATH: this test run's, which has the dependencies."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def build(project: Path, *attrs: str) -> list[str]:
    result = nix("build", "--no-link", "--json", *flake_args(project), *(f"path:{project}#{a}" for a in attrs))
    return [entry["outputs"]["out"] for entry in json.loads(result.stdout)]


def manifest(project: Path) -> dict:
    (path,) = build(project, "compute-on-aws")
    script = Path(path, "bin", "compute-on-aws").read_text()
    manifest_path = script.split("--manifest ", 1)[1].split()[0]
    return json.loads(Path(manifest_path).read_text())


@functools.cache
def nix_run_stays_in_this_root() -> bool:
    """Whether `nix run` executes programs in this filesystem root.

    Nix 2.8's `nix run` re-enters the mount namespace it started in just before exec. In a chroot (CI and
    fresh-machine run in one) that leaves the chroot: the program runs on the host, or is "unable to execute". A probe
    app reads a file that exists only here.
    """
    probe = Path(tempfile.mkdtemp(prefix="nix-run-probe-"))
    (probe / "marker").write_text("here")
    (probe / "flake.nix").write_text(
        """{ outputs = { self }: { apps.SYSTEM.default = { type = "app"; program = "${derivation {
          name = "probe"; system = "SYSTEM"; builder = "/bin/sh";
          args = [ "-c" "printf '#!/bin/sh\\nexec cat MARKER\\n' > $out; /bin/chmod +x $out" ]; }}"; }; }; }
""".replace("SYSTEM", SYSTEM).replace("MARKER", str(probe / "marker"))
    )
    result = nix("run", f"path:{probe}", check=False)
    return result.returncode == 0 and result.stdout == "here"


def run_app(project: Path, app: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`nix run path:PROJECT#APP -- ARGS`; where `nix run` would leave a chroot, the app's program, built by Nix, is
    executed directly, as `nix run` does."""
    target = f"path:{project}#{app}"
    if nix_run_stays_in_this_root():
        return nix("run", *flake_args(project), target, "--", *args, check=False)
    nix("build", "--no-link", *flake_args(project), f"path:{project}#{app}")
    program = nix("eval", "--raw", *flake_args(project), f"path:{project}#apps.{SYSTEM}.{app}.program").stdout
    return subprocess.run([program, *args], capture_output=True, text=True, check=False)


def test_entrypoint_is_a_strict_shell_script_with_its_inputs(project: Path) -> None:
    write_job(
        project / "jobs",
        "echo-args",
        "{ pkgs, ... }: { queue = \"q\"; entrypoint = { text = ''echo \"args: $*\"; jq --version''; "
        "runtimeInputs = [ pkgs.jq ]; }; }",
    )
    (path,) = build(project, "echo-args-entrypoint")
    script = Path(path, "bin", "echo-args")
    assert "set -o errexit" in script.read_text() and "set -o nounset" in script.read_text()
    out = subprocess.run([script, "a", "b c"], capture_output=True, text=True, check=True, env={"PATH": "/nonexistent"})
    assert out.stdout.splitlines()[0] == "args: a b c"
    assert out.stdout.splitlines()[1].startswith("jq-")


def test_image_tag_follows_the_content_of_its_job_only(project: Path) -> None:
    write_job(project / "jobs", "other", '{ queue = "q"; entrypoint.text = "echo one"; }')
    before = manifest(project)["jobs"]
    assert before["observes-etl"]["image"]["tag"] == manifest(project)["jobs"]["observes-etl"]["image"]["tag"]
    write_job(project / "jobs", "other", '{ queue = "q"; entrypoint.text = "echo two"; }')
    after = manifest(project)["jobs"]
    assert after["observes-etl"]["image"]["tag"] == before["observes-etl"]["image"]["tag"]
    assert after["other"]["image"]["tag"] != before["other"]["image"]["tag"]
    (entrypoint,) = build(project, "other-entrypoint")
    assert after["other"]["program"]["command"] == [f"{entrypoint}/bin/other"]


def test_the_manifest_depends_on_no_job_build(project: Path) -> None:
    token = uuid.uuid4().hex[:12]  # a job no earlier test can have built
    write_job(project / "jobs", "fresh", f'{{ queue = "q"; entrypoint.text = "echo {token}"; }}')
    job = manifest(project)["jobs"]["fresh"]
    for drv in (job["image"]["drv"], job["program"]["drv"]):
        outputs = subprocess.run(["nix-store", "--query", "--outputs", drv], capture_output=True, text=True, check=True)
        assert not Path(outputs.stdout.strip()).exists()
    assert job["program"]["command"][0].startswith("/nix/store/") and job["image"]["tag"]


def test_an_entrypoint_that_shellcheck_faults_does_not_build(project: Path) -> None:
    write_job(project / "jobs", "sloppy", "{ queue = \"q\"; entrypoint.text = ''echo $1''; }")
    target = f"path:{project}#checks.{SYSTEM}.sloppy-entrypoint"
    result = nix("build", "--no-link", *flake_args(project), target, check=False)
    assert result.returncode != 0
    assert "SC2086" in result.stderr  # Double quote to prevent globbing and word splitting


def test_checks_fail_on_an_invalid_declaration(project: Path) -> None:
    write_job(project / "jobs", "broken", '{ queue = "q"; command = [ "x" ]; image = "i"; attempts = 0; }')
    result = nix("build", "--no-link", *flake_args(project), f"path:{project}#checks.{SYSTEM}.jobs-valid", check=False)
    assert result.returncode != 0
    assert "broken: attempts: must be between 1 and 10, got 0" in result.stderr


def test_queue_job_app_submits_hello_to_aws(project: Path, moto: Moto, host_python: None) -> None:
    result = run_app(project, "queue-job", "hello", "--backend", "aws", "--json", "--", "--json", "x y")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)["jobs"][0]
    assert job["outcome"] == "submitted"
    assert moto.submitted()[0]["containerOverrides"]["command"] == [
        "echo",
        "hello from compute-on-aws",
        "--json",
        "x y",
    ]


def test_queue_job_app_reports_a_users_mistake_in_one_line(project: Path, moto: Moto, host_python: None) -> None:
    result = run_app(project, "queue-job", "helo")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no job named 'helo' in {_manifest_path(result)} (did you mean hello?)"
    )


def _manifest_path(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.split(" in ", 1)[1].split(" (", 1)[0]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A real image registry (Debian's docker-registry) on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{address}/v2/").read()
            break
        except OSError:
            time.sleep(0.05)
    yield address
    process.terminate()
    process.wait()


def test_queue_job_app_builds_pushes_and_submits_one_nix_job(
    project: Path, moto: Moto, registry: str, host_python: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_job(project / "jobs", "other-etl", '{ queue = "etl-small"; entrypoint.text = "echo other"; }')
    (project / "compute-on-aws.yaml").write_text(
        "image:\n"
        f"  registry: {registry}\n"
        "  repository: jobs\n"
        "  tls_verify: false\n"
        "  login: ecr\n"  # a token from moto's ECR, offered to a registry that needs none
        "roles:\n"
        "  execution: arn:aws:iam::123456789012:role/exec\n"
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("CI_COMMIT_SHA", "0123abc")
    jobs = manifest(project)["jobs"]
    tag = jobs["observes-etl"]["image"]["tag"]
    result = run_app(project, "queue-job", "observes-etl", "2026-11-25", "--backend", "aws")
    assert result.returncode == 0, result.stderr
    target = f"{registry}/jobs:observes-etl-{tag}"
    assert f"pushed {target}" in result.stdout
    definition = moto.registered()[0]["containerProperties"]
    assert definition["image"] == target
    assert definition["command"] == jobs["observes-etl"]["program"]["command"]
    pushed = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"], capture_output=True, text=True, check=True
    )
    assert json.loads(pushed.stdout)["Digest"].startswith("sha256:")
    # Only the queued job's image was built.
    other = subprocess.run(
        ["nix-store", "--query", "--outputs", jobs["other-etl"]["image"]["drv"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert not Path(other).exists()
    # Queueing another day finds the image in the registry and pushes nothing.
    again = run_app(project, "queue-job", "observes-etl", "2026-11-26", "--backend", "aws")
    assert again.returncode == 0, again.stderr
    assert "pushed" not in again.stdout and "reused observes-etl:1" in again.stdout


def test_an_image_copies_itself_to_a_registry(project: Path, registry: str) -> None:
    (copy_to,) = build(project, "observes-etl-image.copyTo")
    (stream,) = build(project, "observes-etl-image")
    target = f"docker://{registry}/by-hand:etl"
    result = subprocess.run(
        [f"{copy_to}/bin/copy-to", target, "--dest-tls-verify=false"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    pushed = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", target], capture_output=True, text=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(subprocess.run([stream], capture_output=True, check=True).stdout)) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        (archived,) = json.load(member)
    assert len(json.loads(pushed.stdout)["layers"]) == len(archived["Layers"]) > 0
    usage = subprocess.run([f"{copy_to}/bin/copy-to"], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: copy-to DESTINATION")


def test_another_flake_declares_its_own_jobs_through_lib(
    project: Path, tmp_path: Path, moto: Moto, host_python: None
) -> None:
    consumer = tmp_path / "consumer"
    write_job(
        consumer / "batch", "nightly", '{ queue = "default"; command = [ "echo" "nightly" ]; image = "busybox"; }'
    )
    (consumer / "flake.nix").write_text(
        """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.compute-on-aws.url = "path:PROJECT";
  inputs.compute-on-aws.inputs.nixpkgs.follows = "nixpkgs";
  outputs = { self, nixpkgs, compute-on-aws }:
    let jobs = compute-on-aws.lib.mkJobs { pkgs = nixpkgs.legacyPackages.SYSTEM; jobsDir = ./batch; };
    in { apps.SYSTEM = jobs.apps; packages.SYSTEM = jobs.packages; };
}
""".replace("PROJECT", str(project)).replace("SYSTEM", SYSTEM)
    )
    result = run_app(consumer, "queue-job", "nightly", "--json", "--backend", "aws")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobs"][0]["jobName"] == "nightly"
    assert moto.submitted()[0]["jobName"] == "nightly"


def test_queue_job_app_runs_a_job_locally(project: Path, tmp_path: Path, host_python: None) -> None:
    write_job(
        project / "jobs", "greet", '{ pkgs, ... }: { queue = "q"; entrypoint.text = "echo built and ran \\"$1\\""; }'
    )
    state = tmp_path / "state"
    result = run_app(
        project, "queue-job", "greet", "world", "--backend", "local", "--state-dir", str(state), "--follow"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "built and ran world"
