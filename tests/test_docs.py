"""README.md is the reference: it must name every declaration attribute, config key and command that exists."""

from __future__ import annotations

import re
import shlex
import subprocess

import yaml
from conftest import ROOT, nix_value

from compute_on_aws.cli import app
from compute_on_aws.declared.config import KEYS

README = (ROOT / "README.md").read_text()


def test_every_declaration_attribute_is_documented_with_its_default() -> None:
    attributes = nix_value(f"builtins.attrNames (import {ROOT}/nix/lib).attributes")
    documented = re.findall(r"^\| `(\w+)` \|", README, flags=re.MULTILINE)
    assert sorted(set(documented) & set(attributes)) == sorted(attributes)


def test_every_config_key_is_documented() -> None:
    for key in KEYS:
        assert f"`{key}`" in README, key


def test_every_command_is_documented() -> None:
    for command in app.registered_commands:
        assert f"| `{command.name} " in README, command.name


def test_quick_start_test_command_is_what_ci_runs() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.strip() for line in quick_start.splitlines() if line.startswith("    ")]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci
    assert commands[0].startswith("bash .ci/setup && ")
    assert "bash .ci/setup" in ci[: ci.index(commands[1])]


def test_every_nix_flag_in_the_readme_exists_in_the_nix_that_runs_the_tests() -> None:
    """The README's nix commands parse, options before `--`, under the Nix the tests run (CI: Debian 12's 2.8 and
    Debian 13's 2.26): each is given to Nix with --help last, which Nix answers once every flag before it is known."""
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    spans = [" ".join(span.split()) for span in re.findall(r"`([^`]*)`", prose)]
    commands = [c.split(" -- ", 1)[0] for span in spans for c in re.findall(r"(?:^|\$\()(nix [^)|]*)", span)]
    assert commands
    for command in commands:
        result = subprocess.run([*shlex.split(command), "--help"], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{command}: {result.stderr.strip()}"


def test_the_infrastructure_example_is_a_valid_declaration() -> None:
    """What a reader copies from "Setting up AWS Batch" reads without a problem, fair share included."""
    from compute_on_aws.declared.infrastructure import parse_infrastructure

    section = README.split("## Setting up AWS Batch", 1)[1]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    infra = parse_infrastructure(example["compute"], example["queues"], where="README.md")
    assert set(infra.queues) == {"default", "urgent", "shared"}
    assert infra.queues["shared"].fair_share is not None
