"""The local backend with the flake's own manifest: a job whose entrypoint Nix builds, queued and followed on this
machine (the worker builds the entrypoint). nixpkgs is tests/nixpkgs-standin, as in test_flake.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import current_system, flake_args, needs_nixpkgs_nix, nix, write_job

pytestmark = needs_nixpkgs_nix


def built_manifest(project: Path) -> Path:
    """The manifest the flake's apps evaluate at run time (see manifest() in test_flake.py), in a file."""
    target = f"path:{project}#legacyPackages.{current_system()}.computeOnAws.manifestFor"
    result = nix("eval", "--json", *flake_args(project), target, "--apply", "f: f null")
    path = project.parent / "manifest.json"
    path.write_text(result.stdout)
    return path


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """The local state folder; workers `queue` started in it are stopped at teardown."""
    folder = tmp_path / "state"
    yield folder
    database = folder / "state.sqlite"
    if not database.exists():
        return
    db = sqlite3.connect(database, timeout=30)
    try:
        pids = [row[0] for row in db.execute("SELECT pid FROM workers")]
    finally:
        db.close()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def built_job(project: Path) -> dict[str, Any]:
    """A job with a Nix-built entrypoint, never built before (a token in its text); its manifest and program."""
    token = uuid.uuid4().hex[:12]
    write_job(
        project / "jobs",
        "built",
        '{ pkgs, ... }: { queue = "q"; entrypoint = { text = \'\'echo built-and-ran "$1" # '
        + token
        + "''; runtimeInputs = [ pkgs.coreutils ]; }; }",
    )
    manifest = built_manifest(project)
    build = json.loads(manifest.read_text())["jobs"]["built"]["program"]["builds"][current_system()]
    return {"manifest": manifest, "command": build["command"], "drv": build["drv"]}


def config(tmp_path: Path, state: Path, **top: Any) -> Path:
    path = tmp_path / "compute-on-aws.yaml"
    path.write_text(json.dumps({"backend": "local", "local": {"state_dir": str(state)}, **top}))
    return path


def test_queue_follow_builds_and_runs_a_nix_entrypoint_locally(
    cli: Any, tmp_path: Path, state: Path, built_job: dict[str, Any]
) -> None:
    entrypoint = Path(built_job["command"][0])
    assert not entrypoint.exists()
    # The image settings are for AWS only; see the next test.
    cfg = config(tmp_path, state, image={"registry": "registry.example.com", "repository": "jobs"})
    result = cli("--config", str(cfg), "--manifest", str(built_job["manifest"]), "queue", "built", "today", "--follow")
    assert result.code == 0, result.err
    assert "built-and-ran today" in result.out.splitlines()
    assert entrypoint.exists()  # built by the worker: nothing else built it
    db = sqlite3.connect(state / "state.sqlite")
    try:
        ((log_path,),) = db.execute("SELECT log_path FROM attempts").fetchall()
    finally:
        db.close()
    assert built_job["drv"] in Path(log_path).read_text()


def test_a_nix_entrypoint_runs_locally_without_any_image_settings(
    cli: Any, tmp_path: Path, state: Path, built_job: dict[str, Any]
) -> None:
    cfg = config(tmp_path, state)
    result = cli("--config", str(cfg), "--manifest", str(built_job["manifest"]), "queue", "built", "today", "--follow")
    assert result.code == 0, result.err
    assert "built-and-ran today" in result.out.splitlines()


@pytest.mark.parametrize("kind", ["script", "package"])
def test_rerun_of_a_nix_built_array_gives_each_child_its_original_index(
    cli: Any, tmp_path: Path, state: Path, project: Path, kind: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # Children 1 and 4 fail until the file `fixed` exists; each writes the index it sees.
    script = (
        f'i=$AWS_BATCH_JOB_ARRAY_INDEX; echo "$i" >> {out}/seen; '
        f'if [ ! -e {out}/fixed ] && {{ [ "$i" = 1 ] || [ "$i" = 4 ]; }}; then exit 1; fi'
    )
    # A script entrypoint, or a package of the user's own (behind the generated wrapper).
    entrypoint = (
        "{ text = ''" + script + "''; }"
        if kind == "script"
        else "pkgs.writeShellApplication { name = \"fan-tool\"; text = ''" + script + "''; }"
    )
    write_job(project / "jobs", "fan", '{ pkgs, ... }: { queue = "q"; parallel = 6; entrypoint = ' + entrypoint + "; }")
    manifest = built_manifest(project)
    cfg = config(tmp_path, state)

    def run(*args: str) -> Any:
        return cli("--config", str(cfg), "--manifest", str(manifest), *args)

    first = run("queue", "fan", "--wait", "--json")
    assert first.code == 1, first.err
    array = first.json()["jobs"][0]["jobId"]
    assert sorted((out / "seen").read_text().split()) == ["0", "1", "2", "3", "4", "5"]
    (out / "seen").unlink()
    (out / "fixed").touch()
    rerun = run("rerun", array, "--json")
    assert rerun.code == 0, rerun.err
    (made,) = rerun.json()["reruns"]
    assert (made["outcome"], made["indices"], made["request"]["arrayProperties"]) == ("submitted", "1,4", {"size": 2})
    assert run("wait", made["jobId"]).code == 0
    # The re-run's children 0 and 1 saw the indices 1 and 4 they stand for.
    assert sorted((out / "seen").read_text().split()) == ["1", "4"]
