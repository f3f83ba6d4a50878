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
