"""The code stays typed (mypy strict, with the boto3 stubs), linted and formatted (ruff): part of the test run."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def tool(name: str) -> str:
    path = shutil.which(name, path=str(__import__("pathlib").Path(sys.executable).parent)) or shutil.which(name)
    assert path is not None, f"{name} is not installed (pip install -e '.[test]')"
    return path


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_clean(command: list[str]) -> None:
    result = subprocess.run([tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
