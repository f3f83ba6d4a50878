"""AWS job names from a job's name and positional arguments: valid, readable, never shared by two argument lists."""

from __future__ import annotations

import hashlib
import json
import re

MAX_LENGTH = 128
VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Letters and digits in groups joined by single dashes: dates, ids, words. No `_` (the separator) and no `--`.
_PLAIN_ARG = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
_INVALID = re.compile(r"[^A-Za-z0-9-]+")
_HASH_LENGTH = 16


def job_name(name: str, args: tuple[str, ...], *, include_args: bool) -> str:
    """`name_arg1_arg2` when that spells the arguments back, else a readable prefix, `--` and a hash of the arguments.

    Plain arguments (letters and digits, single dashes inside: `2026-11-25`, `full`) join with `_`, and splitting on
    `_` after the job's name gives them back. Any other list (`--since`, `s3://...`, an empty argument, a name over 128
    characters) is spelled approximately and made unique by `--` and a hash of the exact list. After the job's name a
    plain name never holds `--` and a hashed one always does, so the two forms cannot meet.
    """
    if not include_args or not args:
        return name
    plain = "_".join([name, *args])
    if all(_PLAIN_ARG.fullmatch(a) for a in args) and len(plain) <= MAX_LENGTH:
        return plain
    digest = hashlib.sha256(json.dumps([name, *args]).encode()).hexdigest()[:_HASH_LENGTH]
    spelled = [re.sub("-{2,}", "-", _INVALID.sub("-", a)).strip("-") for a in args]
    readable = "_".join([name, *(s for s in spelled if s)])[: MAX_LENGTH - _HASH_LENGTH - 2].rstrip("-_")
    return f"{readable}--{digest}"
