"""Lists users hand over in files or on stdin: job ids (--ids-from) and argument lists (--args-from)."""

from __future__ import annotations

import json
import shlex

from compute_on_aws.errors import UserError


def _lines(text: str) -> list[tuple[int, str]]:
    """Numbered lines that hold something: blank lines and # comments are skipped."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def parse_arg_lists(text: str, source: str) -> list[tuple[str, ...]]:
    """One argument list per line: a JSON array of strings (`["acme", "2026-11-01"]`) or shell words
    (`acme 2026-11-01`, quoted as a shell would: no variables, no globbing)."""
    lists: list[tuple[str, ...]] = []
    for number, line in _lines(text):
        where = f"{source}:{number}"
        if line.startswith("["):
            try:
                words = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: not a JSON array ({e.msg}); write shell words or one JSON array") from None
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise UserError(f"{where}: expected a JSON array of strings (quote numbers), got {line}")
        else:
            try:
                words = shlex.split(line)
            except ValueError as e:
                raise UserError(f"{where}: {e} (shell words: quote with ' or \")") from None
        if any("\0" in word for word in words):
            raise UserError(f"{where}: holds a NUL byte, which no program's argument can carry")
        lists.append(tuple(words))
    return lists


def parse_ids(text: str, source: str) -> list[str]:
    """Job ids, one per line (or separated by spaces); or the JSON that `queue --json` prints (its jobs' ids)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise UserError(f"{source}: looks like JSON but is not ({e.msg} at line {e.lineno})") from None
        jobs = data.get("jobs") if isinstance(data, dict) else None
        if not isinstance(jobs, list):
            raise UserError(f"{source}: expected the JSON of `compute-on-aws queue --json` (a jobs list)")
        return list(dict.fromkeys(str(j["jobId"]) for j in jobs if isinstance(j, dict) and j.get("jobId")))
    ids = [word for _, line in _lines(text) for word in line.split()]
    return list(dict.fromkeys(ids))
