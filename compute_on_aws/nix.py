"""The only module that runs Nix: evaluating job folders without nixpkgs, and building one job's derivations."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from compute_on_aws.errors import NixError, UserError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Nix refusing a derivation for another system: Nix 2.8-2.18 ("a 'X' with features {} is required to build '...',
# but I am a 'Y'"), and later versions ("Required system: 'X' ... Current system: 'Y'").
_WRONG_SYSTEM = (
    re.compile(
        r"a '(?P<required>[^']+)' with features \{[^}]*\} is required to build .*but I am a '(?P<current>[^']+)'"
    ),
    re.compile(r"Required system: '(?P<required>[^']+)'.*Current system: '(?P<current>[^']+)'", re.DOTALL),
)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise UserError(
            f"{argv[0]} not found on PATH: install Nix (Debian: apt install nix-bin) or pass --manifest FILE"
        )
    env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1"}
    # errors="replace": what Nix prints is read even where a value holds bytes that are not UTF-8.
    return subprocess.run(argv, capture_output=True, text=True, errors="replace", env=env, check=False)


# nixpkgs refusing the evaluating Nix when imported (its default.nix, from lib/minfeatures.nix): an `abort` whose
# message lists the missing features, one "- " line each, and names the Nix. The flake's own outputs check first
# (nix/lib/requireNix.nix); a flake that imports its own nixpkgs meets this one.
_NIXPKGS_REFUSES = "This version of Nixpkgs requires an implementation of Nix with the following features:"
_EVALUATING_WITH = re.compile(r"evaluating with Nix (?P<version>[^\s,:]+)")


def _nixpkgs_refuses(stderr: str) -> str | None:
    """One line for nixpkgs' refusal of this Nix, or None when it is another failure."""
    lines = [line.strip() for line in _ANSI.sub("", stderr).splitlines()]
    if _NIXPKGS_REFUSES not in lines:
        return None
    features = []
    for line in lines[lines.index(_NIXPKGS_REFUSES) + 1 :]:
        if not line.startswith("- "):
            break
        features.append(line.removeprefix("- "))
    found = _EVALUATING_WITH.search(stderr)
    return (
        f"this Nix ({found['version'] if found else 'an older one'}) is older than the flake's nixpkgs accepts "
        f"(it needs {'; '.join(features) or 'a newer Nix'}): install a newer Nix (Debian 13's nix-bin, the installer "
        "at https://nixos.org/download, Determinate Nix or Lix), or use the helper without the flake (it evaluates "
        "jobs/ with nix-instantiate, Nix 2.8 or newer)"
    )


def _problem(stderr: str) -> str:
    """A Nix failure on one line: its innermost `error:` message and the position Nix gives for it.

    Nix 2.8 prints `error: MESSAGE` and, where the error has one (a syntax error, an undefined variable), its
    position after it; Nix 2.18 and later open with a bare `error:`, then a frame per `… while ...`, and end the same
    way. The frames are left out (Nix 2.8 shows none without --show-trace): the same mistake reads the same on
    every Nix."""
    lines = [line.strip() for line in _ANSI.sub("", stderr).splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if not errors:
        return " | ".join(lines[-5:]) or "no output"
    worded = [i for i in errors if lines[i].removeprefix("error:").strip()]
    last = worded[-1] if worded else errors[-1]
    message = lines[last].removeprefix("error:").strip()
    if not message:
        message = next((line for line in lines[last + 1 :] if not line.startswith(("…", "at /"))), "no message")
    position = next((line for line in lines[last + 1 :] if line.startswith("at /")), None)
    return f"{message} ({position.removeprefix('at ').rstrip(':')})" if position else message


def library_dir() -> Path:
    """The pure job library shipped inside this package (a link to nix/lib in the source tree)."""
    return Path(str(resources.files("compute_on_aws") / "nixlib"))


def evaluate_jobs(jobs_dir: Path, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluates a jobs folder without nixpkgs into manifest data (entrypoints and images left unresolved).

    With `only`, just those jobs and the jobs they run after (transitively) are evaluated: the other job files are not
    even read, so one that Nix cannot parse does not stop these.
    """
    if not jobs_dir.is_dir():
        raise UserError(f"jobs folder {jobs_dir} not found (pass --jobs DIR, or run from your repository's root)")
    if only is not None:
        _check_names(jobs_dir, only)
    _check_text(jobs_dir, only)
    result = _evaluate(jobs_dir, only)
    if result.returncode != 0:
        # Evaluation fails only on what evalJobs cannot report as data: syntax errors, missing attributes of pkgs...
        problem = _problem(result.stderr)
        if problem.startswith(_UNPLACED):
            culprit = _culprit(jobs_dir, only)
            if culprit is not None:
                problem = f"{culprit}: {problem} in {jobs_dir / culprit / 'default.nix'} or a job it runs after"
        raise UserError(f"jobs folder {jobs_dir}: {problem}")
    data: dict[str, Any] = json.loads(result.stdout)
    data["errors"] = {
        job: [_explained(jobs_dir, problem) for problem in problems] for job, problems in data["errors"].items()
    }
    return data


def _evaluate(jobs_dir: Path, only: Sequence[str] | None) -> subprocess.CompletedProcess[str]:
    selection = [] if only is None else ["--argstr", "only", json.dumps(list(only))]
    return _run(
        [
            "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            str(library_dir() / "eval.nix"),
            "--argstr",
            "jobsDir",
            str(jobs_dir.resolve()),
            *selection,
        ]
    )


# Failures Nix gives no position for: the job is found by evaluating halves of the jobs asked for.
_UNPLACED = ("stack overflow", "infinite recursion")


def _culprit(jobs_dir: Path, only: Sequence[str] | None) -> str | None:
    """The job whose evaluation fails (with those it runs after): about log2(jobs) evaluations, only on failure."""
    candidates = sorted(only if only is not None else _job_names(jobs_dir))
    while len(candidates) > 1:
        half = candidates[: len(candidates) // 2]
        candidates = half if _evaluate(jobs_dir, half).returncode != 0 else candidates[len(half) :]
    if candidates and _evaluate(jobs_dir, candidates).returncode != 0:
        return candidates[0]
    return None


def _job_names(jobs_dir: Path) -> list[str]:
    # Jobs are the folders Nix's readDir calls directories: a symlink to a folder is not one.
    return [p.name for p in jobs_dir.iterdir() if p.is_dir() and not p.is_symlink()]


def _check_text(jobs_dir: Path, only: Sequence[str] | None) -> None:
    """Job files are UTF-8 text without a byte order mark: Nix reads a BOM as a syntax error at 1:1, and other bytes
    would reach the manifest's JSON undecodable."""
    for name in only if only is not None else _job_names(jobs_dir):
        path = jobs_dir / name / "default.nix"
        try:
            data = path.read_bytes()
        except OSError:
            continue  # a missing default.nix: the evaluation says so, as it always did
        if data.startswith(b"\xef\xbb\xbf"):
            raise UserError(
                f"{path}: starts with a UTF-8 byte order mark (BOM), which Nix cannot parse: save it as UTF-8 "
                "without one"
            )
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start}): save it as UTF-8") from None


def _check_names(jobs_dir: Path, names: Sequence[str]) -> None:
    """Refuses a name that is no job, as plan.find_job does: Nix leaves such a name out of its result silently."""
    _refuse_unknown(names, _job_names(jobs_dir), str(jobs_dir))


def _refuse_unknown(names: Sequence[str], known: Sequence[str], source: str) -> None:
    known = sorted(known)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}?" if close else f"declared jobs: {', '.join(known) or 'none'}"
            raise UserError(f"no job named {name!r} in {source} ({hint})")


def flake_source(spec: str) -> str:
    """What messages call the jobs of a flake spec (see evaluate_flake): `flake <ref>`, its lock query left out."""
    return f"flake {_flake_spec(spec)[0].split('?', 1)[0]}"


def _flake_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """The flake, attribute and input overrides of --flake-manifest (written by mkJobs' wrappers)."""
    try:
        data = json.loads(spec)
        ref, attr, overrides = data["ref"], data["attr"], data.get("overrides", {})
    except (json.JSONDecodeError, TypeError, KeyError):
        raise UserError(
            '--flake-manifest: expected {"ref": ..., "attr": ..., "overrides": {...}} as mkJobs writes it'
        ) from None
    if not (isinstance(ref, str) and isinstance(attr, str) and isinstance(overrides, dict)):
        raise UserError('--flake-manifest: "ref" and "attr" must be strings, "overrides" an object')
    return ref, attr, {str(k): str(v) for k, v in overrides.items()}


_NO_SYSTEM = "compute-on-aws-no-system"


def _nix_string(text: str) -> str:
    """A Nix string literal holding `text` exactly (`${` would interpolate, so every `$` is escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def evaluate_flake(spec: str, only: Sequence[str] | None = None) -> dict[str, Any]:
    """The manifest a flake's apps read at run time (mkJobs with `flake = self`): its manifestFor, applied to `only`.

    With `only`, just those jobs and the jobs they run after are evaluated, as evaluate_jobs does: another job file
    that Nix cannot parse does not stop them. The flake and its inputs are the store paths the app was built from.
    """
    ref, attr, overrides = _flake_spec(spec)
    selection = _nix_string(json.dumps(None if only is None else list(only)))
    # manifestFor also names every job (a folder listing): names left out of the manifest are refused here.
    apply = f"f: {{ manifest = f (builtins.fromJSON {selection}); jobNames = f.jobNames or null; }}"
    argv = ["nix", "--extra-experimental-features", "nix-command flakes", "eval", "--json", "--no-write-lock-file"]
    # `nix eval REF#ATTR` tries packages.<system>.ATTR first, which forces packages.<system>: its names need every job
    # evaluated, so one broken job file would stop this too. Under a system no flake has packages for, Nix goes on to
    # ATTR itself (Nix 2.8 has no leading `.` for an attribute path taken as is). It only names prefixes here: the
    # manifest's systems come from `attr`, and nothing is built.
    argv += ["--system", _NO_SYSTEM]
    for name, override in overrides.items():
        argv += ["--override-input", name, override]
    result = _run([*argv, f"{ref}#{attr}", "--apply", apply])
    # On success stderr holds only warnings (e.g. the lock file the overrides changed and Nix does not write).
    if result.returncode != 0:
        raise UserError(f"{flake_source(spec)}: {_nixpkgs_refuses(result.stderr) or _problem(result.stderr)}")
    data: dict[str, Any] = json.loads(result.stdout)
    if only is not None and data["jobNames"] is not None:
        _refuse_unknown(only, data["jobNames"], flake_source(spec))
    manifest: dict[str, Any] = data["manifest"]
    return manifest


# A value that threw: Nix's tryEval, which evalJobs reports problems with, keeps no message.
_THREW = re.compile(
    r"(?P<job>[^:]+): (?P<attribute>[^:]+): could not be evaluated"
    r"( without nixpkgs \(only entrypoint may use pkgs\))?"
)
_NO_NIXPKGS = "this evaluation has no nixpkgs"


def _explained(jobs_dir: Path, problem: str) -> str:
    """A problem saying only that a value threw, with what it threw: that job file (or attribute) forced again alone,
    without catching. Costs one evaluation per such problem, and only when there is one."""
    found = _THREW.fullmatch(problem)
    if found is None:
        return problem
    job, attribute = found["job"], found["attribute"]
    only = [] if attribute == "default.nix" else ["--argstr", "attribute", attribute]
    probe = ["--argstr", "jobsDir", str(jobs_dir.resolve()), "--argstr", "probe", job, *only]
    result = _run(["nix-instantiate", "--eval", "--strict", str(library_dir() / "eval.nix"), *probe])
    message = _problem(result.stderr)
    if result.returncode == 0 or _NO_NIXPKGS in message:
        return problem
    where = jobs_dir / job / "default.nix" if attribute == "default.nix" else attribute
    return f"{job}: {where}: {message}"


def realise(drv: str, what: str) -> str:
    """Builds a derivation (e.g. one job's image) and returns its output path."""
    result = _run(["nix-store", "--realise", drv])
    if result.returncode != 0:
        stderr = _ANSI.sub("", result.stderr)
        for pattern in _WRONG_SYSTEM:
            if found := pattern.search(stderr):
                required, current = found["required"], found["current"]
                raise NixError(
                    f"building {what} needs a {required} machine and this one is {current}: give Nix a builder for "
                    f"{required} (a remote builder in nix.conf's `builders`, or emulation with `extra-platforms`), "
                    "or set image.system in compute-on-aws.yaml to what your compute environments run"
                )
        raise NixError(f"building {what} failed: {_problem(result.stderr)}")
    return result.stdout.strip().splitlines()[-1]
