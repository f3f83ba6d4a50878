"""The documentation is run: every example of docs/ and README.md as docs/README.md ("How the examples are tested")
says, the generated reference (docs/reference/) is current, and the Quick start is what CI runs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import ROOT, nix_value, pure_manifest, write_job

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
HELPER = str(Path(sys.executable).parent / "compute-on-aws")
# Languages of fenced blocks, and what is done with each (docs/README.md); a block in any other is an error.
LANGUAGES = {"sh", "nix", "yaml", "json", "python", "text"}
# Programs a `parse` block may run besides compute-on-aws and nix: not this project's, so only named.
OTHER_PROGRAMS = {"aws", "bash", "cat", "cd", "cp", "docker", "echo", "export", "git", "jq", "mkdir", "printf", "sed"}
OTHER_PROGRAMS |= {"./result", ".venv/bin/python", "python3"}
JOB_HEADER = re.compile(r"# jobs/([^/\s]+)/default\.nix\n")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def job(self) -> str | None:
        m = JOB_HEADER.match(self.text) if self.lang == "nix" else None
        return m.group(1) if m else None


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page (indented ones in lists too), each with the `<!-- doc-test: ... -->` before it."""
    lines = page.read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = re.match(r"^( *)```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = m.group(1), m.group(2), i
        body = []
        i += 1
        while not lines[i].startswith(f"{indent}```"):
            body.append(lines[i][len(indent) :])
            i += 1
        before = [line for line in lines[:start] if line.strip()]
        marker = re.fullmatch(r"<!-- doc-test: (.+) -->", before[-1].strip()) if before else None
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n", marker.group(1) if marker else None))
        i += 1
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]


def of(lang: str) -> list[Block]:
    return [b for b in ALL_BLOCKS if b.lang == lang]


def ids(block: Block) -> str:
    return block.where


def test_every_block_is_one_the_tests_know_how_to_check() -> None:
    """An example nobody checks cannot hide in an unlabelled block or behind a misspelled marker; json and python
    blocks parse."""
    for b in ALL_BLOCKS:
        assert b.lang in LANGUAGES, f"{b.where}: a ```{b.lang} block; use one of {sorted(LANGUAGES)}"
        if b.marker is not None:
            assert re.fullmatch(r"parse|exit \d+|without-config|output", b.marker), f"{b.where}: unknown marker"
            assert (b.marker == "output") == (b.lang == "text" and b.marker is not None), f"{b.where}: output is text"
            assert not (b.marker.startswith("exit") and b.lang != "sh"), f"{b.where}: exit N is for sh blocks"
            assert not (b.marker == "without-config" and b.job is None), f"{b.where}: without-config is for jobs"
        if b.lang == "nix":
            assert (b.job is None) == (b.marker == "parse"), f"{b.where}: a nix block is a job or marked parse"
        if b.lang == "json":
            json.loads(b.text)
        if b.lang == "python":
            compile(b.text, b.where, "exec")


# --- the generated reference -------------------------------------------------------------------------------------


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def locked_help_formatting() -> bool:
    """Whether typer and click are the versions tests/requirements.txt locks, with which cli.md was written (.ci/lowest
    runs older ones, which may wrap or spell help differently)."""
    from importlib.metadata import version

    lock = (ROOT / "tests" / "requirements.txt").read_text()
    pins = [rf"^{name}=={re.escape(version(name))} " for name in ("typer", "click")]
    return all(re.search(pin, lock, flags=re.MULTILINE) for pin in pins)


def test_the_reference_is_what_the_code_says() -> None:
    """docs/reference/ is current: `docs/generate.py --check` names any page to regenerate."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"], capture_output=True, text=True, check=False
    )
    only_cli = result.stderr.startswith("stale: docs/reference/cli.md ") and result.stderr.count("stale: ") == 1
    if result.returncode != 0 and only_cli and not locked_help_formatting():
        pytest.skip("cli.md is written with the typer and click tests/requirements.txt locks; these differ")
    assert result.returncode == 0, result.stderr + result.stdout


def test_the_reference_names_every_command_attribute_and_config_key() -> None:
    from compute_on_aws.cli import app
    from compute_on_aws.declared.config import KEYS, SECTION_KEYS

    cli = (ROOT / "docs/reference/cli.md").read_text()
    for command in app.registered_commands:
        assert f"## compute-on-aws {command.name}\n" in cli, command.name
    for group in app.registered_groups:
        assert f"## compute-on-aws {group.name}\n" in cli, group.name
    attributes = (ROOT / "docs/reference/job-attributes.md").read_text()
    for name in nix_value(f"builtins.attrNames (import {ROOT}/nix/lib).attributes"):
        assert f"| `{name}` |" in attributes, name
    config = (ROOT / "docs/reference/config.md").read_text()
    for key in [*KEYS, *(k for section in SECTION_KEYS.values() for k in section)]:
        assert f"| `{key}` |" in config, key


# --- Nix, YAML, JSON and Python examples -------------------------------------------------------------------------


JOB_PAGES = sorted({b.page for b in of("nix") if b.job is not None})


@pytest.mark.parametrize("page", JOB_PAGES, ids=[str(p.relative_to(ROOT)) for p in JOB_PAGES])
def test_job_examples_evaluate_without_a_problem(page: Path, tmp_path: Path) -> None:
    """A page's jobs, next to the repository's, read by the declaration library as `compute-on-aws jobs` does, against
    the repository's config (queues declared, shares where they share fairly, compute that holds them)."""
    jobs = [b for b in of("nix") if b.page == page and b.job is not None]
    names = [b.job for b in jobs]
    assert len(names) == len(set(names)), f"{page.name} declares a job twice: {names}"
    for without_config in (False, True):
        chosen = [b for b in jobs if (b.marker == "without-config") == without_config]
        if not chosen:
            continue
        folder = tmp_path / ("alone" if without_config else "with-config") / "jobs"
        shutil.copytree(ROOT / "jobs", folder)
        for b in chosen:
            assert b.job is not None
            write_job(folder, b.job, b.text)
        config = ROOT / "compute-on-aws.yaml"
        if without_config:
            config = tmp_path / "empty.yaml"
            config.write_text("")
        result = helper("--jobs", str(folder), "--config", str(config), "jobs", "--json", cwd=tmp_path)
        assert result.returncode == 0, f"{[b.where for b in chosen]}: {result.stderr}"
        listed = {j["name"] for j in json.loads(result.stdout)["jobs"]}
        assert {b.job for b in chosen} <= listed


@pytest.mark.parametrize("block", [b for b in of("nix") if b.job is None], ids=ids)
def test_other_nix_examples_parse(block: Block, tmp_path: Path) -> None:
    (tmp_path / "example.nix").write_text(block.text)
    result = subprocess.run(
        ["nix-instantiate", "--parse", str(tmp_path / "example.nix")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{block.where}: {result.stderr}"


@pytest.mark.parametrize("block", of("yaml"), ids=ids)
def test_yaml_examples_are_configs_the_loader_reads(block: Block, tmp_path: Path) -> None:
    """Each config example read by the real loader, at its top level and in each of its environments."""
    from compute_on_aws.declared.config import load_config

    data = yaml.safe_load(block.text)
    if block.marker == "parse":
        return
    path = tmp_path / "compute-on-aws.yaml"
    path.write_text(block.text)
    for environment in [None, *(data.get("environments") or {})]:
        load_config(path, environment=environment)


# --- shell commands ----------------------------------------------------------------------------------------------


def helper(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HELPER, *args], capture_output=True, text=True, cwd=cwd, env=env, check=False, timeout=300)


def without_comments(line: str) -> str:
    """A shell line without its comment: # at the start of a word, outside quotes (not in `.#queue-job`)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a script (pipelines, lists, $(...) split apart), without assignments before them,
    redirections or here-documents."""
    commands: list[list[str]] = []
    lines = script.replace("\\\n", " ").splitlines()
    heredoc = None
    for line in lines:
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        lexer = shlex.shlex(without_comments(line), posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = ""
        current: list[str] = []
        tokens = list(lexer)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token == "<<":
                heredoc = tokens[i + 1]
                i += 2
                continue
            if token in (">", ">>", "<"):
                i += 2
                continue
            if set(token) <= set(";&|()"):
                commands.append(current)
                current = []
            elif token.endswith("$") and i + 1 < len(tokens) and tokens[i + 1] == "(":
                current.append(token[:-1])
            else:
                current.append(token)
            i += 1
        commands.append(current)
    result = []
    for command in commands:
        while command and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", command[0]):
            command = command[1:]
        if command:
            result.append(command)
    return result


def parse_helper(args: list[str], where: str, cwd: Path) -> None:
    """The helper's own parser over these words: `--help` (before a `--`) fails on an option that does not exist."""
    cut = args.index("--") if "--" in args else len(args)
    result = helper(*args[:cut], "--help", *args[cut:], cwd=cwd)
    assert result.returncode == 0 and result.stdout.startswith("Usage:"), (
        f"{where}: compute-on-aws {shlex.join(args)}: {result.stderr.strip() or result.stdout}"
    )


def parse_nix(args: list[str], where: str, cwd: Path) -> None:
    """Nix's own parser over the options before `--` (Nix answers --help once every flag before it is known), and
    the helper's over what the flake's apps pass on."""
    cut = args.index("--") if "--" in args else len(args)
    result = subprocess.run(["nix", *args[:cut], "--help"], capture_output=True, text=True, check=False, cwd=cwd)
    assert result.returncode == 0, f"{where}: nix {shlex.join(args[:cut])}: {result.stderr.strip()}"
    apps = {".#compute-on-aws": [], ".#queue-job": ["queue"]}
    app = next((apps[a] for a in args[:cut] if a in apps), None)
    if app is not None:
        parse_helper([*app, *args[cut + 1 :]], where, cwd)


def parse_command(command: list[str], where: str, cwd: Path) -> None:
    program = command[0]
    if program == "compute-on-aws" or program.endswith("/compute-on-aws"):
        parse_helper(command[1:], where, cwd)
    elif program == "nix":
        parse_nix(command[1:], where, cwd)
    else:
        assert program in OTHER_PROGRAMS, f"{where}: {program}: not a program the docs' tests know"


def scratch_project(tmp_path: Path) -> Path:
    """A copy of the repository's jobs and config, where examples may write files, with `.venv` this test run's."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("jobs", "examples"):
        shutil.copytree(ROOT / name, project / name)
    shutil.copy2(ROOT / "compute-on-aws.yaml", project / "compute-on-aws.yaml")
    (project / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return project


def shell_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


def run_script(
    script: str, where: str, project: Path, env: dict[str, str], expected: int = 0
) -> tuple[dict[str, str], str]:
    """Runs a block as a reader would type it into bash; returns what it printed (stdout and stderr, as a terminal
    mixes them) and the environment it leaves (what it exported), in which the page's next block runs."""
    saved = project.parent / "environment"
    result = subprocess.run(
        ["bash", "-c", f"trap 'env -0 > {shlex.quote(str(saved))}' EXIT\nset -euo pipefail\n{script}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=project,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == expected, (
        f"{where}: exit {result.returncode}, expected {expected}\n{script}\noutput:\n{result.stdout}"
    )
    pairs = (item.split("=", 1) for item in saved.read_text().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k not in ("_", "SHLVL", "PWD", "OLDPWD")}, result.stdout


def shows(output: str, expected: str) -> bool:
    """Whether the lines of `expected` appear in `output` in this order (others may come between); `...` in a line
    stands for anything (a job id)."""
    lines = iter(output.splitlines())
    for want in expected.splitlines():
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")))
        if not any(pattern.fullmatch(line) for line in lines):
            return False
    return True


SHELL_PAGES = sorted({b.page for b in of("sh")})


@pytest.mark.parametrize("page", SHELL_PAGES, ids=[str(p.relative_to(ROOT)) for p in SHELL_PAGES])
def test_shell_examples_run_as_written(page: Path, tmp_path: Path) -> None:
    """A page's sh blocks, in order, in one copy of the repository holding the page's jobs too: each run (exit 0, or
    the N of `exit N`; a text block marked `output` after it is what it printed), or, marked `parse`, each of its
    commands parsed by the real compute-on-aws and nix."""
    project = scratch_project(tmp_path)
    for b in of("nix"):
        if b.page == page and b.job is not None:
            write_job(project / "jobs", b.job, b.text)
    env = shell_env(tmp_path)
    output = None
    for b in blocks(page):
        if b.lang == "text" and b.marker == "output":
            assert output is not None, f"{b.where}: output of no block that ran"
            assert shows(output, b.text), f"{b.where}: the block before printed\n{output}"
        if b.lang != "sh":
            continue
        output = None
        syntax = subprocess.run(["bash", "-n"], input=b.text, capture_output=True, text=True, check=False)
        assert syntax.returncode == 0, f"{b.where}: {syntax.stderr}"
        if b.marker == "parse":
            for command in simple_commands(b.text):
                parse_command(command, b.where, project)
        else:
            expected = int(b.marker.split()[1]) if b.marker else 0
            env, output = run_script(b.text, b.where, project, env, expected)


def inline_commands(page: Path) -> list[list[str]]:
    """Commands written in inline code in the prose: `nix ...` and `compute-on-aws ...`."""
    prose = re.sub(r"^ *```.*?^ *```", "", page.read_text(), flags=re.DOTALL | re.MULTILINE)
    spans = [" ".join(span.replace("\\|", "|").split()) for span in re.findall(r"`([^`]+)`", prose)]
    return [c for s in spans if re.match(r"(nix|compute-on-aws) ", s) for c in simple_commands(s)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_inline_commands_parse(page: Path, tmp_path: Path) -> None:
    """Under the Nix the tests run (CI: Debian 12's 2.8 and Debian 13's 2.26) and the helper installed."""
    for command in inline_commands(page):
        if command[0] in ("nix", "compute-on-aws"):
            parse_command(command, str(page.relative_to(ROOT)), tmp_path)


def test_the_command_parser_sees_each_command() -> None:
    script = "a=$(jq -r .x q.json) && nix run .#queue-job -- hello | sed s/a/b/ > out # c\ncat <<'EOF'\nnot a\nEOF\n"
    assert simple_commands(script) == [
        ["jq", "-r", ".x", "q.json"],
        ["nix", "run", ".#queue-job", "--", "hello"],
        ["sed", "s/a/b/"],
        ["cat"],
    ]


# --- the README's Quick start ------------------------------------------------------------------------------------


def test_quick_start_test_command_is_what_ci_runs() -> None:
    quick_start = README.read_text().split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.strip() for line in quick_start.splitlines() if line.startswith("    ")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci
    assert commands[0].startswith("bash .ci/setup && ")
    assert "bash .ci/setup" in ci[: ci.index(commands[1])]


def test_quick_start_queues_hello_once_set_up(tmp_path: Path) -> None:
    """What the Quick start's first command does after .ci/setup (which the tests do not run), run as written."""
    quick_start = README.read_text().split("## Quick start", 1)[1].split("##", 1)[0]
    first = next(line.strip() for line in quick_start.splitlines() if line.startswith("    "))
    _, output = run_script(first.split(" && ", 1)[1], "README.md", scratch_project(tmp_path), shell_env(tmp_path))
    assert shows(output, "hello from compute-on-aws"), output


# --- statements the docs make about the code ---------------------------------------------------------------------


def test_the_options_each_command_takes_after_its_name_are_those_its_help_shows() -> None:
    """docs/configuration.md's table, against every command's --help."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    table = page.split("<!-- doc-test: options-after-command -->\n", 1)[1].split("\n\n", 1)[0]
    documented = {
        row.split("|")[1].strip(" `"): set(re.findall(r"`([a-z -]+)`", row.split("|")[2]))
        for row in table.splitlines()[2:]
    }
    gen = generator()
    commands: dict[str, str] = {}

    def walk(path: list[str]) -> None:
        text = gen.help_text(path)
        names = gen.subcommands(text)
        if not names and path:
            commands[" ".join(path)] = text.split("\nOptions:\n", 1)[1]
        for name in names:
            walk([*path, name])

    walk([])
    for option, listed in documented.items():
        taking = {c for c, options in commands.items() if re.search(rf"^  {option}\b", options, flags=re.MULTILINE)}
        assert listed == taking, f"{option}: documented for {sorted(listed)}, --help shows {sorted(taking)}"


def test_the_makes_retry_line_retries_any_failure_as_makes_did(tmp_path: Path) -> None:
    """docs/coming-from-makes.md's retryRules line, evaluated, then run on the local backend: a job exiting 3 with
    attempts = 3 runs three times with it, once without it."""
    page = (ROOT / "docs" / "coming-from-makes.md").read_text()
    lines = {line.strip() for line in page.splitlines() if line.strip().startswith("retryRules = ")}
    assert len(lines) == 1, lines
    line = lines.pop()
    jobs = tmp_path / "jobs"
    base = 'queue = "default"; command = [ "sh" "-c" "exit 3" ]; image = "busybox:1.36"; attempts = 3;'
    write_job(jobs, "as-in-makes", f"{{ {base} {line} }}")
    write_job(jobs, "default-rules", f"{{ {base} }}")
    assert pure_manifest(jobs)["jobs"]["as-in-makes"]["retryRules"] == []
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    queued = helper("--jobs", str(jobs), "queue", "--all", "--json", cwd=tmp_path, env=env)
    assert queued.returncode == 0, queued.stderr
    (tmp_path / "queued.json").write_text(queued.stdout)
    waited = helper("--jobs", str(jobs), "wait", "--ids-from", "queued.json", cwd=tmp_path, env=env)
    assert waited.returncode == 1, waited.stderr
    status = helper("--jobs", str(jobs), "status", "--ids-from", "queued.json", "--json", cwd=tmp_path, env=env)
    attempts = {j["job_name"]: [a["exit_code"] for a in j["attempts"]] for j in json.loads(status.stdout)["jobs"]}
    assert attempts == {"as-in-makes": [3, 3, 3], "default-rules": [3]}
