"""The flake end to end with real Nix: entrypoints and images built, `nix run .#queue-job` against moto and a real
registry. nixpkgs cannot be fetched here, so tests/nixpkgs-standin stands in for it (see its header)."""

from __future__ import annotations

import functools
import io
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Moto, current_system, flake_args, needs_nixpkgs_nix, nix, standin, write_job

pytestmark = needs_nixpkgs_nix

SYSTEM = current_system()


def build(project: Path, *attrs: str) -> list[str]:
    result = nix("build", "--no-link", "--json", *flake_args(project), *(f"path:{project}#{a}" for a in attrs))
    return [entry["outputs"]["out"] for entry in json.loads(result.stdout)]


def manifest(project: Path) -> dict:
    """Every job's manifest, as the flake's apps ask for it at run time (see nix.evaluate_flake)."""
    target = f"path:{project}#legacyPackages.{SYSTEM}.computeOnAws.manifestFor"
    return json.loads(nix("eval", "--json", *flake_args(project), target, "--apply", "f: f null").stdout)


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


# `nix eval REF#ATTR` tries packages.<system>.ATTR first, and packages' names need every job evaluated: under a system
# no flake has packages for, Nix takes ATTR as it is (as the helper does, see nix.evaluate_flake).
AS_IS = ["--system", "compute-on-aws-no-system"]


def app_program(project: Path, app: str) -> str:
    """The program of the app, built, as `nix run` builds it (from the app alone: no other output is evaluated)."""
    target = f"path:{project}#apps.{SYSTEM}.{app}.program"
    apply = "p: { inherit p; drvs = builtins.attrNames (builtins.getContext p); }"
    found = json.loads(nix("eval", "--json", *AS_IS, *flake_args(project), target, "--apply", apply).stdout)
    subprocess.run(["nix-store", "--realise", *found["drvs"]], capture_output=True, check=True)
    program: str = found["p"]
    return program


def run_app(project: Path, app: str, *args: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """`nix run path:PROJECT#APP -- ARGS`; where `nix run` would leave a chroot, the app's program, built by Nix, is
    executed directly, as `nix run` does. `prefix` runs it inside another command (see without_system_policy)."""
    target = f"path:{project}#{app}"
    if nix_run_stays_in_this_root():
        command = ["nix", "run", *flake_args(project), target, "--", *args]
    else:
        command = [app_program(project, app), *args]
    return subprocess.run([*(prefix or []), *command], capture_output=True, text=True, check=False)


@pytest.fixture
def without_system_policy() -> list[str]:
    """A command prefix that hides /etc/containers (skopeo's default policy.json) in a mount namespace of its own, as
    on macOS, NixOS and most Linux machines. Needs root and a mount namespace (CI has both; a chroot has no private
    root mount, and skips)."""
    prefix = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs none /etc/containers && exec "$@"',
        "hidden",
    ]
    probe = subprocess.run(
        [*prefix, "test", "!", "-e", "/etc/containers/policy.json"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    return prefix


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
    assert (
        before["observes-etl"]["image"]["builds"][SYSTEM]["tag"]
        == manifest(project)["jobs"]["observes-etl"]["image"]["builds"][SYSTEM]["tag"]
    )
    write_job(project / "jobs", "other", '{ queue = "q"; entrypoint.text = "echo two"; }')
    after = manifest(project)["jobs"]
    assert (
        after["observes-etl"]["image"]["builds"][SYSTEM]["tag"]
        == before["observes-etl"]["image"]["builds"][SYSTEM]["tag"]
    )
    assert after["other"]["image"]["builds"][SYSTEM]["tag"] != before["other"]["image"]["builds"][SYSTEM]["tag"]
    (entrypoint,) = build(project, "other-entrypoint")
    assert after["other"]["program"]["builds"][SYSTEM]["command"] == [f"{entrypoint}/bin/other"]


def test_the_manifest_depends_on_no_job_build(project: Path) -> None:
    token = uuid.uuid4().hex[:12]  # a job no earlier test can have built
    write_job(project / "jobs", "fresh", f'{{ queue = "q"; entrypoint.text = "echo {token}"; }}')
    job = manifest(project)["jobs"]["fresh"]
    for drv in (job["image"]["builds"][SYSTEM]["drv"], job["program"]["builds"][SYSTEM]["drv"]):
        outputs = subprocess.run(["nix-store", "--query", "--outputs", drv], capture_output=True, text=True, check=True)
        assert not Path(outputs.stdout.strip()).exists()
    assert (
        job["program"]["builds"][SYSTEM]["command"][0].startswith("/nix/store/")
        and job["image"]["builds"][SYSTEM]["tag"]
    )


def test_an_entrypoint_that_shellcheck_faults_does_not_build(project: Path) -> None:
    write_job(project / "jobs", "sloppy", "{ queue = \"q\"; entrypoint.text = ''echo $1''; }")
    target = f"path:{project}#checks.{SYSTEM}.sloppy-entrypoint"
    result = nix("build", "--no-link", *flake_args(project), target, check=False)
    assert result.returncode != 0
    assert "SC2086" in result.stderr  # Double quote to prevent globbing and word splitting


def test_shellcheck_is_a_check_of_its_own_whatever_nixpkgs_writeshellapplication_does(project: Path) -> None:
    write_job(project / "jobs", "sloppy", "{ queue = \"q\"; entrypoint.text = ''echo $1''; }")
    # A nixpkgs whose writeShellApplication leaves shellcheck out of the build (as in passthru.tests): a copy of the
    # stand-in with its checkPhase reduced to `bash -n`.
    lenient = Path(tempfile.mkdtemp(prefix="nixpkgs-lenient-")) / "nixpkgs"
    shutil.copytree(standin(), lenient)
    source = (lenient / "pkgs.nix").read_text()
    assert "shellcheck $out/bin/${name}" in source
    (lenient / "pkgs.nix").write_text(source.replace("shellcheck $out/bin/${name}", "true"))
    args = ["--no-write-lock-file", "--override-input", "nixpkgs", f"path:{lenient}"]
    entrypoint = nix("build", "--no-link", *args, f"path:{project}#checks.{SYSTEM}.sloppy-entrypoint", check=False)
    assert entrypoint.returncode == 0, entrypoint.stderr
    check = nix("build", "--no-link", *args, f"path:{project}#checks.{SYSTEM}.sloppy-shellcheck", check=False)
    assert check.returncode != 0
    assert "SC2086" in check.stderr
    clean = nix("build", "--no-link", *args, f"path:{project}#checks.{SYSTEM}.observes-etl-shellcheck", check=False)
    assert clean.returncode == 0, clean.stderr


def test_images_have_a_world_writable_tmp(project: Path) -> None:
    (stream,) = build(project, "observes-etl-image")
    found = []
    with tarfile.open(fileobj=io.BytesIO(subprocess.run([stream], capture_output=True, check=True).stdout)) as archive:
        for name in json.load(archive.extractfile("manifest.json"))[0]["Layers"]:  # type: ignore[arg-type]
            with tarfile.open(fileobj=archive.extractfile(name)) as layer:
                found += [m for m in layer.getmembers() if m.name.strip("./") == "tmp"]
    assert [(m.isdir(), oct(m.mode)) for m in found] == [(True, "0o1777")]


def test_every_app_on_every_system_has_a_description(project: Path) -> None:
    apps = json.loads(nix("eval", "--json", *flake_args(project), f"path:{project}#apps").stdout)
    assert sorted(apps) == ["aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"]
    for system, by_name in apps.items():
        assert sorted(by_name) == ["compute-on-aws", "default", "queue-job"], system
        for name, app in by_name.items():
            assert app["type"] == "app" and app["program"].startswith("/nix/store/"), (system, name)
            assert app["meta"]["description"], (system, name)


def test_flake_check_passes_and_warns_only_about_lib(project: Path) -> None:
    result = nix("flake", "check", *flake_args(project), f"path:{project}")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    # The lock-file warning comes from the test's --override-input; Nix 2.19 and later say which systems they did not
    # check (those other than this machine's), whatever the flake; `lib` is a convention Nix 2.8 does not know.
    notices = ("not writing modified lock file", "The check omitted these incompatible systems")
    remaining = [w for w in warnings if not any(n in w for n in notices)]
    assert remaining in ([], ["warning: unknown flake output 'lib'"]), remaining


def test_on_a_mac_local_runs_use_mac_entrypoints_and_images_are_linux(project: Path) -> None:
    """The manifest a Mac's `nix run .#queue-job` reads: entrypoints for the Mac (local backend) and for each Linux
    system, images for Linux only; nixpkgs for Linux comes from the Mac's own nixpkgs (pkgs.path) by default."""
    expression = f"""
      let
        pkgs = import {standin()} {{ system = "aarch64-darwin"; }};
        lib = import {project}/nix/pkgs {{ inherit pkgs; src = {project}; }};
      in (lib.mkJobs {{ jobsDir = {project}/jobs; }}).manifestData
    """
    data = json.loads(nix("eval", "--json", "--impure", "--expr", expression).stdout)
    assert data["hostSystem"] == "aarch64-darwin"
    job = data["jobs"]["observes-etl"]
    assert sorted(job["program"]["builds"]) == ["aarch64-darwin", "aarch64-linux", "x86_64-linux"]
    assert sorted(job["image"]["builds"]) == ["aarch64-linux", "x86_64-linux"]
    for system, build in [*job["program"]["builds"].items(), *job["image"]["builds"].items()]:
        shown = json.loads(nix("show-derivation", build["drv"]).stdout)
        assert next(iter(shown.values()))["system"] == system


def other_image_system() -> str:
    return "aarch64-linux" if SYSTEM == "x86_64-linux" else "x86_64-linux"


def test_an_image_for_a_system_this_machine_cannot_build_is_one_clear_line(
    project: Path, moto: Moto, registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_COMMIT_SHA", "0123abc")
    other = other_image_system()
    (project / "compute-on-aws.yaml").write_text(
        f"image:\n  registry: {registry}\n  repository: jobs\n  tls_verify: false\n  system: {other}\n"
        "roles:\n  execution: arn:aws:iam::123456789012:role/exec\n"
    )
    result = run_app(
        project, "queue-job", "observes-etl", "--backend", "aws", "--config", str(project / "compute-on-aws.yaml")
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: building the image of observes-etl needs a {other} machine and this one is {SYSTEM}: give Nix a "
        f"builder for {other} (a remote builder in nix.conf's `builders`, or emulation with `extra-platforms`), or set "
        "image.system in compute-on-aws.yaml to what your compute environments run"
    )
    assert moto.submitted() == []


def test_queue_refuses_an_image_of_another_architecture_than_image_system(
    project: Path, tmp_path: Path, moto: Moto, registry: str
) -> None:
    """A flake that builds the 'aarch64-linux' images with this machine's nixpkgs gets images Graviton cannot start."""
    consumer = tmp_path / "consumer"
    write_job(consumer / "jobs", "arm-job", '{ queue = "default"; entrypoint.text = "echo arm"; }')
    other = other_image_system()
    (consumer / "flake.nix").write_text(
        """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.compute-on-aws.url = "path:PROJECT";
  inputs.compute-on-aws.inputs.nixpkgs.follows = "nixpkgs";
  outputs = { self, nixpkgs, compute-on-aws }:
    let
      pkgs = nixpkgs.legacyPackages.SYSTEM;
      jobs = compute-on-aws.lib.mkJobs { inherit pkgs; jobsDir = ./jobs; imagePkgs.OTHER = pkgs; };
    in { apps.SYSTEM = jobs.apps; packages.SYSTEM = jobs.packages; };
}
""".replace("PROJECT", str(project))
        .replace("SYSTEM", SYSTEM)
        .replace("OTHER", other)
    )
    config = consumer / "compute-on-aws.yaml"
    config.write_text(f"image:\n  registry: {registry}\n  repository: jobs\n  tls_verify: false\n  system: {other}\n")
    result = run_app(consumer, "queue-job", "arm-job", "--backend", "aws", "--config", str(config))
    assert result.returncode == 2, result.stderr
    arch = {"x86_64-linux": "amd64", "aarch64-linux": "arm64"}
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: the image of arm-job is built for {arch[SYSTEM]}, and image.system is {other} ({arch[other]}): "
        f"build images with nixpkgs for {other} (mkJobs' imagePkgs), or set image.system to what your compute "
        "environments run (nothing was tagged)"
    )
    assert moto.submitted() == []
    try:
        tags = json.loads(urllib.request.urlopen(f"http://{registry}/v2/jobs/tags/list").read()).get("tags")
    except urllib.error.HTTPError as e:  # a repository with no tag at all is unknown to the registry
        assert e.code == 404
        tags = None
    assert tags in (None, [])


def test_a_helper_wheel_missing_a_subpackage_fails_its_nix_build(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.setuptools.packages.find]\n", '[tool.setuptools]\npackages = ["compute_on_aws"]\n[tool.x]\n'
        )
    )
    result = nix("build", "--no-link", *flake_args(project), f"path:{project}#compute-on-aws", check=False)
    assert result.returncode != 0
    assert "pythonImportsCheck: compute_on_aws.cli" in result.stderr


def test_checks_fail_on_an_invalid_declaration(project: Path) -> None:
    write_job(project / "jobs", "broken", '{ queue = "q"; command = [ "x" ]; image = "i"; attempts = 0; }')
    result = nix("build", "--no-link", *flake_args(project), f"path:{project}#checks.{SYSTEM}.jobs-valid", check=False)
    assert result.returncode != 0
    assert "broken: attempts: must be between 1 and 10, got 0" in result.stderr


def test_checks_read_the_jobs_against_the_infrastructure_compute_on_aws_yaml_declares(project: Path) -> None:
    """`nix flake check` finds a queue typo, or a job no compute of its queue can hold, before anything is queued."""
    shutil.copy2(ROOT / "compute-on-aws.yaml", project / "compute-on-aws.yaml")
    check = ["build", "--no-link", *flake_args(project), f"path:{project}#checks.{SYSTEM}.jobs-valid"]
    assert nix(*check, check=False).returncode == 0
    write_job(project / "jobs", "typo", '{ queue = "defualt"; command = [ "x" ]; image = "i"; }')
    write_job(project / "jobs", "giant", '{ queue = "urgent"; command = [ "x" ]; image = "i"; memory = 2000000; }')
    result = nix(*check, check=False)
    assert result.returncode != 0
    assert "typo: queue: 'defualt' is not among the queues compute-on-aws.yaml declares (did you mean default?)" in (
        result.stderr
    )
    assert "giant: needs 1 vCPU, 2000000 MiB on EC2, which no compute environment of queue urgent can give" in (
        result.stderr
    )


def test_queue_job_app_submits_hello_to_aws(project: Path, moto: Moto) -> None:
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


def test_from_an_empty_account_the_readme_s_commands_take_a_job_to_batch(
    project: Path, moto: Moto, account: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/infrastructure.md through the flake's apps: infra plan, infra apply, then a job queued on what apply
    created (hello: observes-etl would also push its image, which test_queue_job_app_builds_pushes_... covers)."""
    batch = moto.client("batch")
    for queue in batch.describe_job_queues()["jobQueues"]:  # the moto fixture's queues: an empty account has none
        batch.update_job_queue(jobQueue=queue["jobQueueName"], state="DISABLED")
        batch.delete_job_queue(jobQueue=queue["jobQueueName"])
    config = yaml.safe_load((ROOT / "compute-on-aws.yaml").read_text())
    for ce in config["compute"].values():  # this account's network, for the example's placeholders
        ce |= {"subnets": [account["subnet"]], "security_groups": [account["group"]]}
    # moto requires a service role where AWS would use its service-linked role (which roles.create would make).
    config["roles"] |= {"instance": account["profile"], "service": account["service"]}
    (project / "compute-on-aws.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(project)

    plan = run_app(project, "compute-on-aws", "infra", "plan")
    assert plan.returncode == 0, plan.stderr
    # The example's Batch resources, and its notifications: the topic, the FAILED rule, and etl-small's two alarms
    # with their counting rules.
    assert plan.stdout.splitlines()[-1] == "12 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged."
    assert batch.describe_job_queues()["jobQueues"] == []
    applied = run_app(project, "compute-on-aws", "infra", "apply")
    assert applied.returncode == 0, applied.stderr
    created = [line for line in applied.stdout.splitlines() if line.startswith("created ")]
    assert created[:6] == [
        "created compute environment spot",
        "created compute environment on-demand",
        "created scheduling policy etl-small",
        "created job queue etl-small",
        "created job queue default",
        "created job queue urgent",
    ]
    assert created[6:] == [
        "created sns topic compute-on-aws-alerts",
        "created event rule compute-on-aws-default-failed",
        "created event rule compute-on-aws-default-alarm-etl-small-failed",
        "created event rule compute-on-aws-default-alarm-etl-small-blocked",
        "created alarm compute-on-aws-default-etl-small-failed",
        "created alarm compute-on-aws-default-etl-small-blocked",
    ]
    queued = run_app(project, "queue-job", "hello", "--backend", "aws", "--json")
    assert queued.returncode == 0, queued.stderr
    (submitted,) = moto.submitted()
    assert submitted["jobQueue"] == "default"
    (default,) = batch.describe_job_queues(jobQueues=["default"])["jobQueues"]
    assert default["tags"]["compute-on-aws:infra"] == "default"


def test_queue_job_app_reports_a_users_mistake_in_one_line(project: Path, moto: Moto) -> None:
    result = run_app(project, "queue-job", "helo")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no job named 'helo' in {_manifest_path(result)} (did you mean hello?)"
    )


def test_a_broken_job_file_stops_only_the_commands_that_read_every_job(project: Path) -> None:
    """tryEval cannot catch a syntax error: the apps evaluate only the jobs they queue, so a broken file elsewhere does
    not stop them, while `jobs` (which reads every job) reports it."""
    write_job(project / "jobs", "broken", "{ queue = ; }")
    queued = run_app(project, "queue-job", "hello", "--dry-run", "--json")
    assert queued.returncode == 0, queued.stderr
    (job,) = json.loads(queued.stdout)["jobs"]
    assert job["outcome"] == "dry-run" and job["request"]["jobName"] == "hello"
    # The app embeds no manifest (which would have needed every job evaluated when it was built).
    assert "--manifest" not in Path(app_program(project, "queue-job")).read_text()
    listed = run_app(project, "compute-on-aws", "jobs")
    assert listed.returncode == 2
    # The last line, and the only error (nix run's own lines come before: the lock file, what it builds).
    line = listed.stderr.strip().splitlines()[-1]
    assert [e for e in listed.stderr.splitlines() if e.startswith("error")] == [line]
    assert line.startswith("error: flake path:/nix/store/") and "syntax error, unexpected ';'" in line
    assert line.endswith("/jobs/broken/default.nix:1:11)")
    # A job's own entrypoint and image, and the apps' packages, are named from the folder alone: they build.
    assert len(build(project, "observes-etl-entrypoint", "queue-job")) == 2
    own = nix("build", "--no-link", *flake_args(project), f"path:{project}#broken-image", check=False)
    assert own.returncode == 1 and "syntax error, unexpected ';'" in own.stderr


def test_a_job_with_nothing_for_nix_to_build_says_so(project: Path) -> None:
    for attr, said in (
        ("hello-entrypoint", "job hello has no entrypoint to build (it runs `command` in `image`)"),
        ("hello-image", "job hello has no Nix-built image to build (it names its own `image`)"),
    ):
        result = nix("build", "--no-link", *flake_args(project), f"path:{project}#{attr}", check=False)
        assert result.returncode == 1 and f"error: compute-on-aws: {said}" in result.stderr


def test_queue_job_app_hands_odd_job_names_to_nix_intact(project: Path) -> None:
    name = 'a"${b}\\c'
    result = run_app(project, "queue-job", name)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no job named {name!r} in {_manifest_path(result)} (declared jobs: hello, observes-etl)"
    )


def _manifest_path(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.split(" in ", 1)[1].split(" (", 1)[0]


def test_queue_job_app_builds_pushes_and_submits_one_nix_job(
    project: Path, moto: Moto, registry: str, monkeypatch: pytest.MonkeyPatch, without_system_policy: list[str]
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
    tag = jobs["observes-etl"]["image"]["builds"][SYSTEM]["tag"]
    result = run_app(
        project, "queue-job", "observes-etl", "2026-11-25", "--backend", "aws", prefix=without_system_policy
    )
    assert result.returncode == 0, result.stderr
    target = f"{registry}/jobs:observes-etl-{tag}"
    assert f"pushed {target}" in result.stdout
    definition = moto.registered()[0]["containerProperties"]
    assert definition["image"] == target
    assert definition["command"] == jobs["observes-etl"]["program"]["builds"][SYSTEM]["command"]
    pushed = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"], capture_output=True, text=True, check=True
    )
    assert json.loads(pushed.stdout)["Digest"].startswith("sha256:")
    # Only the queued job's image was built.
    other = subprocess.run(
        ["nix-store", "--query", "--outputs", jobs["other-etl"]["image"]["builds"][SYSTEM]["drv"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert not Path(other).exists()
    # Queueing another day finds the image in the registry and pushes nothing.
    again = run_app(project, "queue-job", "observes-etl", "2026-11-26", "--backend", "aws")
    assert again.returncode == 0, again.stderr
    assert "pushed" not in again.stdout and "reused observes-etl:1" in again.stdout
    # Another job's image shares the store paths both closures hold (CA certificates, the shell): the registry has
    # those layers, and only the others are sent.
    other = run_app(project, "queue-job", "other-etl", "--backend", "aws")
    assert other.returncode == 0, other.stderr
    sent = re.search(r"pushed \S+:other-etl-\S+: (\d+) of (\d+) layers sent", other.stdout)
    assert sent is not None, other.stdout
    assert 0 < int(sent[1]) < int(sent[2])


def test_an_image_copies_itself_to_a_registry(project: Path, registry: str, without_system_policy: list[str]) -> None:
    (copy_to,) = build(project, "observes-etl-image.copyTo")
    (stream,) = build(project, "observes-etl-image")
    target = f"docker://{registry}/by-hand:etl"
    result = subprocess.run(
        [*without_system_policy, f"{copy_to}/bin/copy-to", target, "--dest-tls-verify=false"],
        capture_output=True,
        text=True,
        check=False,
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


def test_another_flake_declares_its_own_jobs_through_lib(project: Path, tmp_path: Path, moto: Moto) -> None:
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


def test_queue_job_app_runs_a_job_locally(project: Path, tmp_path: Path) -> None:
    write_job(
        project / "jobs",
        "greet",
        '{ pkgs, ... }: { queue = "default"; entrypoint.text = "echo built and ran \\"$1\\""; }',
    )
    state = tmp_path / "state"
    result = run_app(
        project, "queue-job", "greet", "world", "--backend", "local", "--state-dir", str(state), "--follow"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "built and ran world"


def test_queue_job_due_builds_and_runs_a_scheduled_job_once(project: Path, tmp_path: Path) -> None:
    write_job(
        project / "jobs",
        "greet",
        '{ pkgs, ... }: { queue = "default"; entrypoint.text = "echo \\"slot $COMPUTE_ON_AWS_SCHEDULED_TIME\\""; '
        'schedule = { cron = "0 5 * * *"; timezone = "Europe/Berlin"; }; }',
    )
    state = tmp_path / "state"
    # 05:00 in Berlin is 04:00 UTC in winter; observes-etl's 05:00 UTC is not due yet.
    due = ("queue-job", "--due", "--at", "2026-11-28T04:30Z", "--backend", "local", "--state-dir", str(state))
    result = run_app(project, *due, "--follow")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "slot 2026-11-28T04:00:00Z"
    again = run_app(project, *due)
    assert again.returncode == 0, again.stderr
    assert "duplicate: greet_2026-11-28T0400Z is already SUCCEEDED" in again.stdout
    listed = run_app(project, "compute-on-aws", "schedules", "list", "--at", "2026-11-28T00:00Z", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["job"]: r for r in json.loads(listed.stdout)["schedules"]}
    assert rows["greet"]["next"][0] == {"utc": "2026-11-28T04:00:00Z", "local": "2026-11-28T05:00:00+01:00"}
    assert rows["observes-etl"]["cron"] == "0 5 * * *"


def test_another_flake_passing_self_queues_a_job_past_a_broken_one(project: Path, tmp_path: Path) -> None:
    """docs/flake.md's consumer with `flake = self`: the helper re-evaluates the flake with the inputs the app was
    built from (here nixpkgs, and compute-on-aws whose nixpkgs follows it), for the queued job only."""
    consumer = tmp_path / "consumer"
    write_job(
        consumer / "batch", "nightly", '{ queue = "default"; command = [ "echo" "nightly" ]; image = "busybox"; }'
    )
    write_job(consumer / "batch", "broken", "{ queue = ; }")
    (consumer / "flake.nix").write_text(
        """{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.compute-on-aws.url = "path:PROJECT";
  inputs.compute-on-aws.inputs.nixpkgs.follows = "nixpkgs";
  outputs = { self, nixpkgs, compute-on-aws }:
    let
      jobs = compute-on-aws.lib.mkJobs {
        pkgs = nixpkgs.legacyPackages.SYSTEM;
        jobsDir = ./batch;
        flake = self;
      };
    in { apps.SYSTEM = jobs.apps; packages.SYSTEM = jobs.packages; legacyPackages.SYSTEM = jobs.legacyPackages; };
}
""".replace("PROJECT", str(project)).replace("SYSTEM", SYSTEM)
    )
    result = run_app(consumer, "queue-job", "nightly", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    (job,) = json.loads(result.stdout)["jobs"]
    assert job["request"]["jobName"] == "nightly" and job["request"]["jobQueue"] == "default"
    script = Path(app_program(consumer, "queue-job")).read_text()
    spec = json.loads(script.split("--flake-manifest '", 1)[1].split("'", 1)[0])
    assert sorted(spec["overrides"]) == ["compute-on-aws", "nixpkgs"]
    assert spec["ref"].startswith("path:/nix/store/") and "?narHash=sha256-" in spec["ref"]


def test_infra_export_through_the_flake_names_the_images_nix_builds(project: Path) -> None:
    """Without nixpkgs the export refuses a Nix-built job (tests/test_infra.py); through the flake's app, each job's
    definition names the image tag and entrypoint Nix resolved (nothing is built: the tags come from evaluation)."""
    result = run_app(project, "compute-on-aws", "infra", "export", "--format", "terraform")
    assert result.returncode == 0, result.stderr
    assert "<built by nix>" not in result.stdout
    # Every definition is in it; the one thing said is what Terraform's provider cannot take.
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: compute.spot.container_insights is not in the export (no argument of hashicorp/aws's "
        "aws_batch_compute_environment known here sets it): infra apply sets it, or set it beside Terraform"
    ]
    definitions = json.loads(result.stdout)["resource"]["aws_batch_job_definition"]
    etl = json.loads(definitions["observes-etl"]["container_properties"])
    assert re.fullmatch(
        r"123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com/compute-on-aws:observes-etl-\w+", etl["image"]
    )
    assert etl["command"][0].startswith("/nix/store/")
