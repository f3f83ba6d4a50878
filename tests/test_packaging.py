"""What users install: the sdist and the wheel (what pip and nixpkgs' buildPythonApplication install), checked for
every module and data file of the source tree, and the wheel's console script run from a new virtualenv outside the
repository, never from the source tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, write_job


def shipped_files() -> set[str]:
    """Every file of the package in the source tree, as it must appear in a wheel (nixlib links to nix/lib)."""
    tracked = subprocess.run(
        ["git", "ls-files", "compute_on_aws", "nix/lib"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = {f for f in tracked if f.startswith("compute_on_aws/") and f != "compute_on_aws/nixlib"}
    files |= {f.replace("nix/lib/", "compute_on_aws/nixlib/", 1) for f in tracked if f.startswith("nix/lib/")}
    return files


def build(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", *args], capture_output=True, text=True, check=True)


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, each built straight from a clean copy of the tracked files (nixpkgs builds the wheel
    from the source, no isolation), and a wheel built from the sdist (as pip does from PyPI) in from-sdist/."""
    src = tmp_path_factory.mktemp("src")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            (src / name).symlink_to(os.readlink(ROOT / name))
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    build("--sdist", "--wheel", "--outdir", str(out), str(src))
    (sdist,) = out.glob("*.tar.gz")
    build("--wheel", "--outdir", str(out / "from-sdist"), str(sdist))
    return out


@pytest.mark.parametrize("built_from", [".", "from-sdist"])
def test_the_wheel_holds_every_module_template_and_the_nix_library(dist: Path, built_from: str) -> None:
    (wheel,) = (dist / built_from).glob("*.whl")
    names = {n for n in zipfile.ZipFile(wheel).namelist() if not n.startswith("compute_on_aws-")}
    assert names == shipped_files()
    metadata = zipfile.ZipFile(wheel).read("compute_on_aws-0.1.0.dist-info/entry_points.txt").decode()
    assert "compute-on-aws = compute_on_aws.cli:run" in metadata


def test_the_sdist_holds_every_module_template_and_the_nix_library(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    assert {n for n in names if n.startswith("compute_on_aws/")} == shipped_files()
    assert "pyproject.toml" in names


@pytest.fixture(scope="session")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv outside the repository with the wheel installed (not editable). Its dependencies are this test
    run's (a path in a .pth: that folder's own .pth files, such as an editable install's, are not run)."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (wheel,) = dist.glob("*.whl")
    subprocess.run([venv / "bin" / "python", "-m", "installer", str(wheel)], check=True)
    return venv


def run_installed(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [venv / "bin" / "compute-on-aws", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def test_the_installed_package_is_imported_from_the_virtualenv_not_the_source_tree(installed: Path) -> None:
    where = subprocess.run(
        [
            installed / "bin" / "python",
            "-c",
            "import compute_on_aws.cli, compute_on_aws.backends.local; print(compute_on_aws.__file__)",
        ],
        cwd=installed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed)), where


def test_the_installed_console_script_lists_queues_and_runs_a_job(installed: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "repo"
    shutil.copytree(ROOT / "jobs" / "hello", workdir / "jobs" / "hello")
    listed = run_installed(installed, "jobs", "--json", cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    assert [j["name"] for j in json.loads(listed.stdout)["jobs"]] == ["hello"]
    dry = run_installed(installed, "queue", "hello", "x", "--dry-run", "--json", "--backend", "aws", cwd=workdir)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["jobs"][0]["request"]["containerOverrides"]["command"][-1] == "x"
    state = tmp_path / "state"
    ran = run_installed(installed, "queue", "hello", "--state-dir", str(state), "--follow", cwd=workdir)
    log = state / "worker.log"
    assert ran.returncode == 0, ran.stderr + (log.read_text() if log.exists() else "(no worker log)")
    assert ran.stdout.splitlines()[-1] == "hello from compute-on-aws"


def test_the_installed_helper_computes_schedules_and_prints_pipelines(installed: Path, tmp_path: Path) -> None:
    """cronsim, the timezone data and the pipeline templates come with the wheel."""
    workdir = tmp_path / "repo"
    write_job(
        workdir / "jobs",
        "etl",
        '{ command = [ "etl" ]; image = "i"; schedule = { cron = "0 5 * * *"; timezone = "America/New_York"; }; }',
    )
    (workdir / "compute-on-aws.yaml").write_text("region: us-east-1\nroles:\n  ci: arn:aws:iam::123456789012:role/ci\n")
    listed = run_installed(installed, "schedules", "list", "--at", "2026-11-28T00:00Z", "--json", cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["schedules"][0]["next"][0]["utc"] == "2026-11-28T10:00:00Z"
    for kind in ("github", "gitlab"):
        pipeline = run_installed(installed, "ci", kind, cwd=workdir)
        assert pipeline.returncode == 0, pipeline.stderr
        assert "nix run .#queue-job -- --due --backend aws" in pipeline.stdout


def test_the_installed_helper_checks_jobs_against_the_instance_types_it_ships(installed: Path, tmp_path: Path) -> None:
    """The EC2 instance table (planning/instance_types.json) comes with the wheel: a job no m6i holds is refused."""
    workdir = tmp_path / "repo"
    write_job(workdir / "jobs", "big", '{ queue = "q"; command = [ "x" ]; image = "i"; memory = 600000; }')
    (workdir / "compute-on-aws.yaml").write_text(
        "compute:\n  c: {type: EC2, max_vcpus: 64, instance_types: [m6i], subnets: [s], security_groups: [g]}\n"
        "queues:\n  q: {compute: [c]}\n"
    )
    listed = run_installed(installed, "jobs", cwd=workdir)
    assert listed.returncode == 2
    assert "m6i instances: up to 128 vCPU, 524288 MiB, x86_64" in listed.stderr
