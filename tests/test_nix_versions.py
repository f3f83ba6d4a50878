"""Under a Nix older than the pinned nixpkgs accepts, the user reads one line (the Nix found, the Nix needed, how to get
one), from `nix run` as from the helper; the helper without the flake keeps working on any Nix from 2.8.

These run under every Nix: where the pin's own gate (lib/minfeatures.nix, copied by the stand-in) accepts the Nix
here, a copy of the stand-in asks for a later one, as a later nixpkgs would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import current_system, nix, nix_version, nixpkgs_accepts_this_nix, standin, write_job

SYSTEM = current_system()
TOO_OLD = f"compute-on-aws: this Nix ({nix_version()}) is older than the pinned nixpkgs accepts (it needs "


@pytest.fixture
def strict() -> tuple[Path, str]:
    """A nixpkgs stand-in that refuses this Nix, and what it names as needed."""
    if not nixpkgs_accepts_this_nix():
        return standin(), "`builtins.nixVersion` reports at least 2.18"
    return standin(requires="99.0"), "`builtins.nixVersion` reports at least 99.0"


def override(nixpkgs: Path) -> list[str]:
    return ["--no-write-lock-file", "--override-input", "nixpkgs", f"path:{nixpkgs}"]


def errors(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.strip().startswith("error:")]


def test_nix_itself_stops_with_the_one_line_before_nixpkgs_aborts(project: Path, strict: tuple[Path, str]) -> None:
    nixpkgs, needed = strict
    result = nix("build", "--no-link", *override(nixpkgs), f"path:{project}#queue-job", check=False)
    assert result.returncode == 1
    (line,) = [e for e in errors(result.stderr) if e != "error:"]  # Nix 2.18 and later open with a bare "error:"
    assert line.startswith(f"error: {TOO_OLD}{needed}")
    assert "install Nix" in line and "nix-instantiate" in line
    assert "This version of Nixpkgs requires" not in result.stderr  # nixpkgs was never imported
    if not nixpkgs_accepts_this_nix():  # as a user of Debian 12's Nix 2.8 sees it: the first error line
        assert errors(result.stderr)[0] == line


def test_the_helper_says_it_in_one_line_for_this_flake(cli, project: Path, strict: tuple[Path, str]) -> None:
    nixpkgs, needed = strict
    spec = {
        "ref": f"path:{project}",
        "attr": f"legacyPackages.{SYSTEM}.computeOnAws.manifestFor",
        "overrides": {"nixpkgs": f"path:{nixpkgs}"},
    }
    result = cli("--flake-manifest", json.dumps(spec), "jobs")
    assert result.code == 2
    assert result.err.startswith(f"error: flake path:{project}: {TOO_OLD}{needed}")
    assert len(result.err.splitlines()) == 1


def test_the_helper_says_it_in_one_line_for_a_flake_whose_nixpkgs_aborts(
    cli, tmp_path: Path, strict: tuple[Path, str]
) -> None:
    """A flake of its own, importing nixpkgs without compute-on-aws' check: nixpkgs' abort, many lines deep, is one."""
    nixpkgs, needed = strict
    flake = tmp_path / "theirs"
    flake.mkdir()
    (flake / "flake.nix").write_text(
        """{
  inputs.nixpkgs.url = "path:NIXPKGS";
  outputs = { self, nixpkgs }: {
    legacyPackages.SYSTEM.computeOnAws.manifestFor = builtins.seq nixpkgs.legacyPackages.SYSTEM.path (only: { });
  };
}
""".replace("NIXPKGS", str(nixpkgs)).replace("SYSTEM", SYSTEM)
    )
    spec = {"ref": f"path:{flake}", "attr": f"legacyPackages.{SYSTEM}.computeOnAws.manifestFor", "overrides": {}}
    result = cli("--flake-manifest", json.dumps(spec), "jobs")
    assert result.code == 2
    assert result.err.startswith(
        f"error: flake path:{flake}: this Nix ({nix_version()}) is older than the flake's nixpkgs accepts "
        f"(it needs {needed}): install a newer Nix"
    )
    assert len(result.err.splitlines()) == 1


def test_without_the_flake_the_helper_evaluates_jobs_on_this_nix(cli, tmp_path: Path) -> None:
    """pip's helper needs no nixpkgs: nix-instantiate and the job library, from Nix 2.8 on."""
    jobs = tmp_path / "jobs"
    write_job(jobs, "report", '{ queue = "default"; command = [ "report" ]; image = "busybox"; }')
    result = cli("--jobs", str(jobs), "jobs", "--json")
    assert result.code == 0, result.err
    assert [j["name"] for j in result.json()["jobs"]] == ["report"]
