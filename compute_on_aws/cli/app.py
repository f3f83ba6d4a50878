"""The `compute-on-aws` application: global options, shared helpers and the entry point. Exit codes: 0 done (a
skipped duplicate included), 1 AWS/network/Nix/tool failure or a job that failed, 2 a user's mistake, 124 timed out,
130 interrupted.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from compute_on_aws import interrupts
from compute_on_aws.errors import ComputeOnAwsError, Signalled, UserError

if TYPE_CHECKING:
    from compute_on_aws.backends import Backend
    from compute_on_aws.declared.config import Config
    from compute_on_aws.declared.manifest import Manifest

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Queue batch jobs declared in Nix on AWS Batch.",
)

# After the job's name, options this command does not know are the job's arguments; `--` passes everything after it.
JOB_ARGS = {"ignore_unknown_options": True}


@dataclass(frozen=True)
class Settings:
    jobs: Path
    manifest: Path | None
    config: Path | None
    env: str | None
    backend: str | None = None
    state_dir: Path | None = None
    # A flake to ask for the manifest (see nix.evaluate_flake): set by the flake's apps, not typed by users.
    flake: str | None = None


def non_empty(option: str) -> Callable[[str], str]:
    """An option parser refusing an empty value (a CI variable expanded to nothing), which would mean "unset"."""

    def parse(text: str) -> str:
        if not text.strip():
            raise UserError(f"{option}: expected a value, got an empty string")
        return text

    return parse


def non_empty_path(option: str) -> Callable[[str], Path]:
    """As non_empty, for a path: an empty one would otherwise be the current folder."""

    def parse(text: str) -> Path:
        return Path(non_empty(option)(text))

    return parse


@app.callback()
def settings(
    ctx: typer.Context,
    jobs: Annotated[
        Path, typer.Option("--jobs", help="Folder of job declarations.", envvar="COMPUTE_ON_AWS_JOBS")
    ] = Path("jobs"),
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest", help="An evaluated manifest (JSON) instead of --jobs.", envvar="COMPUTE_ON_AWS_MANIFEST"
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file [default: ./compute-on-aws.yaml if present].",
            envvar="COMPUTE_ON_AWS_CONFIG",
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="Environment from the config's environments.",
            envvar="COMPUTE_ON_AWS_ENV",
            parser=non_empty("--env"),
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="local or aws [default: the config's backend, else local].",
            envvar="COMPUTE_ON_AWS_BACKEND",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="The local backend's state [default: the config's local.state_dir, else "
            "$XDG_STATE_HOME/compute-on-aws, else ~/.local/state/compute-on-aws].",
            envvar="COMPUTE_ON_AWS_STATE_DIR",
            parser=non_empty_path("--state-dir"),
        ),
    ] = None,
    flake_manifest: Annotated[
        str | None,
        typer.Option(
            "--flake-manifest",
            help="JSON naming a flake whose manifest to evaluate for the jobs asked for (written by mkJobs' apps).",
            envvar="COMPUTE_ON_AWS_FLAKE",
            hidden=True,
        ),
    ] = None,
) -> None:
    """Queue batch jobs declared in Nix (jobs/<name>/default.nix) on AWS Batch, or run them on this machine."""
    ctx.obj = Settings(
        jobs=jobs,
        manifest=manifest,
        config=config,
        env=env,
        backend=backend,
        state_dir=state_dir,
        flake=flake_manifest,
    )


# The options of the callback above: each command that uses one also takes it after its name, as below.
GLOBAL_OPTIONS = ("--jobs", "--manifest", "--config", "--env", "--backend", "--state-dir")


def refuse_global_options(ctx: typer.Context, words: Sequence[str]) -> None:
    """A command whose unknown options are a job's arguments would take a global option it has no use for as one of
    them: refused instead. `words` are those before `--` (after it, anything is an argument)."""
    for word in words:
        option = word.split("=", 1)[0]
        if option in GLOBAL_OPTIONS:
            raise UserError(_global_option_here(option, ctx.command_path, job_args=True))


def _global_option_here(option: str, command_path: str, *, job_args: bool) -> str:
    program, _, command = command_path.partition(" ")
    return (
        f"{option}: `{command}` does not take it after its name: give it before (`{program} {option} ... {command}`)"
        + ("; a job argument spelt like it goes after --" if job_args else "")
    )


# --config and --env may also follow the command (`nix run .#queue-job -- NAME --env staging` passes them there).
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Settings file (overrides the global option).")]
EnvOption = Annotated[
    str | None, typer.Option("--env", help="Environment from the config's environments.", parser=non_empty("--env"))
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
BackendOption = Annotated[str | None, typer.Option("--backend", help="local or aws (overrides the config).")]
StateDirOption = Annotated[
    Path | None,
    typer.Option("--state-dir", help="The local backend's state folder.", parser=non_empty_path("--state-dir")),
]


def _shown(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def at_least(
    minimum: float, maximum: float | None = None
) -> Callable[[typer.CallbackParam, float | None], float | None]:
    """An option callback refusing NaN, infinities and numbers outside [minimum, maximum] (click lets NaN through
    ranges)."""

    def check(param: typer.CallbackParam, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value >= minimum):
            raise UserError(f"{param.opts[0]}: expected a number >= {minimum:g}, got {value:g}")
        if value is not None and maximum is not None and value > maximum:
            raise UserError(f"{param.opts[0]}: expected at most {_shown(maximum)}, got {_shown(value)}")
        return value

    return check


def overridden(
    ctx: typer.Context,
    config: Path | None,
    env: str | None,
    backend: str | None = None,
    state_dir: Path | None = None,
) -> Settings:
    s: Settings = ctx.obj
    return replace(
        s,
        config=config or s.config,
        env=env or s.env,
        backend=backend or s.backend,
        state_dir=state_dir or s.state_dir,
    )


def backend_for(s: Settings, config: Config) -> Backend:
    """The one backend of this command, from --backend or the config."""
    from compute_on_aws.backends import open_backend

    return open_backend(s.backend or config.backend, config, state_dir=s.state_dir)


def load_manifest(s: Settings, only: Sequence[str] | None = None) -> Manifest:
    """The declared jobs; with `only`, just those and the jobs they run after are evaluated (another team's broken job
    file does not stop them). From --manifest (which holds every job already), else the flake of --flake-manifest, else
    the --jobs folder."""
    from compute_on_aws import nix
    from compute_on_aws.declared.manifest import parse_manifest

    if s.manifest is None and s.flake is not None:
        return parse_manifest(nix.evaluate_flake(s.flake, only), source=nix.flake_source(s.flake))
    if s.manifest is None:
        return parse_manifest(nix.evaluate_jobs(s.jobs, only), source=str(s.jobs))
    try:
        data = json.loads(s.manifest.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"manifest {s.manifest}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"manifest {s.manifest}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"manifest {s.manifest}: not JSON (line {e.lineno}: {e.msg})") from None
    return parse_manifest(data, source=str(s.manifest))


def load_settings_config(s: Settings) -> Config:
    from compute_on_aws.declared.config import load_config

    return load_config(s.config, environment=s.env)


def read_input(path: str, option: str) -> str:
    """A file's text, or stdin's for `-`."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"{option} {path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{option} {path}: not UTF-8 text (byte {e.start})") from None


def print_json(data: Any) -> None:
    """The document written as it is encoded, 8192 pieces at a time: never all of it as one string (10000 jobs'
    results are tens of MB of small strings while joined)."""
    pieces = json.JSONEncoder(indent=2).iterencode(data)
    for batch in iter(lambda: list(itertools.islice(pieces, 8192)), []):
        sys.stdout.write("".join(batch))
    sys.stdout.write("\n")


def _fail(message: str, code: int) -> NoReturn:
    # Several problems found at once (a config checked whole): one line each.
    for line in message.splitlines() or [message]:
        print(f"error: {line}", file=sys.stderr)
    sys.exit(code)


class _ReaderMayLeave:
    """Standard output whose reader may stop reading (`| head`, `| grep -q`): what comes after that is dropped, and
    the command still does all it was asked (a bulk `queue` is not cut off half-way) and exits with its own status,
    so that `set -o pipefail` sees the reader's. (click would end the command at the first such write, exit 1.)"""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        # Anything still buffered, and every later write, goes to /dev/null instead of failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    # Ctrl-C and SIGTERM (a cancelled CI pipeline, a stopped container) end in one line and exit 130, or in the
    # waiting commands' own handling (--cancel-on-interrupt).
    interrupts.install()
    if sys.stdout is not None and not isinstance(sys.stdout, _ReaderMayLeave):
        sys.stdout = _ReaderMayLeave(sys.stdout)
    # Not standalone: click's usage errors come here too, to be one line like ours (help is still click's own).
    try:
        code = app(prog_name="compute-on-aws", standalone_mode=False)
    except ComputeOnAwsError as e:
        _fail(str(e), e.exit_code)
    except (Signalled, KeyboardInterrupt):
        _fail("interrupted", 130)
    except Exception as e:
        _click_failure(e)
        # A bug: still one line, with the way to the traceback.
        if os.environ.get("COMPUTE_ON_AWS_DEBUG"):
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} (COMPUTE_ON_AWS_DEBUG=1 shows the traceback; please report it)", 1
        )
    sys.exit(code if isinstance(code, int) else 0)


def run() -> NoReturn:
    """The console script: main(), then out without the interpreter's teardown. Freeing every object one by one
    took 0.1 s after a 1000-job call, for a process that is ending anyway; nothing here needs it (no atexit work,
    every file and transaction closed where it was used), and threads still waiting on a socket are not waited for."""
    try:
        main()
        code: int | str | None = 0
    except SystemExit as e:
        code = e.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)


def _click_failure(e: Exception) -> None:
    """click's own errors, as one line (a group called alone shows its help, as click does); anything else returns.
    Known by class name: typer brings its own copy of click (typer._click) from 0.20 on, click itself before."""
    kinds = {c.__name__ for c in type(e).__mro__}
    if "NoArgsIsHelpError" in kinds:
        e.show()  # type: ignore[attr-defined]
        sys.exit(2)
    option = getattr(e, "option_name", None)
    ctx = getattr(e, "ctx", None)
    if "NoSuchOption" in kinds and option in GLOBAL_OPTIONS and ctx is not None:
        _fail(_global_option_here(str(option), ctx.command_path, job_args=False), 2)
    if "UsageError" in kinds:
        where = f" ({ctx.command_path} --help lists what it takes)" if ctx is not None else ""
        _fail(f"{e.format_message()}{where}", 2)  # type: ignore[attr-defined]
    if "ClickException" in kinds:
        _fail(e.format_message(), int(getattr(e, "exit_code", 1)))  # type: ignore[attr-defined]
    if "Abort" in kinds:
        _fail("interrupted", 130)
