"""AWS job names from a job's name and its arguments: readable when possible, always valid, never shared."""

from __future__ import annotations

import random
import re

import pytest

from compute_on_aws.planning.naming import VALID, job_name

HASHED = re.compile(r".*--[0-9a-f]{16}")
# Every character a job name may hold by AWS's rule, written out here rather than taken from the module.
AWS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def assert_valid(name: str) -> None:
    assert len(name) <= 128, (len(name), name)
    assert VALID.fullmatch(name), name
    assert AWS_NAME.fullmatch(name), name


@pytest.mark.parametrize("include_args", [True, False])
def test_without_arguments_the_name_is_the_jobs_name(include_args: bool) -> None:
    assert job_name("observes-etl", (), include_args=include_args) == "observes-etl"


def test_arguments_left_out_of_the_name_when_asked() -> None:
    assert job_name("observes-etl", ("2026-11-25", "--since", "s3://b/k"), include_args=False) == "observes-etl"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("2026-11-25", "full"), "observes-etl_2026-11-25_full"),
        (("2026-11-25",), "observes-etl_2026-11-25"),
        (("A1", "b2", "c-3-d"), "observes-etl_A1_b2_c-3-d"),
        (("0",), "observes-etl_0"),
    ],
)
def test_plain_arguments_join_with_underscores(args: tuple[str, ...], expected: str) -> None:
    name = job_name("observes-etl", args, include_args=True)
    assert name == expected
    # Splitting after the job's name spells the arguments back.
    assert tuple(name.removeprefix("observes-etl_").split("_")) == args


@pytest.mark.parametrize(
    "args",
    [
        ("--since",),
        ("s3://b/k",),
        ("a b",),
        ("",),
        ("a_b",),
        ("-x",),
        ("x-",),
        ("a--b",),
        ("2026-11-25", "--since", "s3://bucket/key with spaces"),
        ("é",),
        ("", ""),
    ],
)
def test_other_arguments_take_the_hashed_form(args: tuple[str, ...]) -> None:
    name = job_name("observes-etl", args, include_args=True)
    assert_valid(name)
    assert HASHED.fullmatch(name), name
    assert name.startswith("observes-etl")


def test_plain_arguments_too_long_together_take_the_hashed_form() -> None:
    args = tuple(f"part{i:03}" for i in range(20))  # plainly spelled: 12 + 20 * 8 = 172 characters
    name = job_name("observes-etl", args, include_args=True)
    assert_valid(name)
    assert HASHED.fullmatch(name)


def test_readable_prefix_keeps_what_it_can() -> None:
    name = job_name("observes-etl", ("--since", "2026-11-25"), include_args=True)
    assert name.startswith("observes-etl_since_2026-11-25--")


@pytest.mark.parametrize("args", [("x",), ("2026-11-25", "full"), ("--since",), ("a" * 300,)])
def test_a_128_character_job_name_with_arguments(args: tuple[str, ...]) -> None:
    long_name = "j" * 127 + "b"
    name = job_name(long_name, args, include_args=True)
    assert_valid(name)
    assert HASHED.fullmatch(name)
    assert name != long_name
    assert job_name(long_name, (), include_args=True) == long_name


ALPHABET = "abcXYZ019" + "-_/ ." + "é"
JOB_NAMES = ["observes-etl", "a", "job_with_underscores", "x--y", "n" * 100, "m" * 128]


def random_arg(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return ""
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 8)))


def generated_lists(seed: int, count: int) -> set[tuple[str, ...]]:
    rng = random.Random(seed)
    lists = {tuple(random_arg(rng) for _ in range(rng.randint(0, 4))) for _ in range(count)}
    adversarial = [
        ("a-b",),
        ("a", "b"),
        ("a_b",),
        ("a b",),
        ("a--b",),
        ("a-", "b"),
        ("a", "-b"),
        ("a", "", "b"),
        ("a", "b", ""),
        ("", "a", "b"),
        ("",),
        ("", ""),
        ("a/b",),
        ("a.b",),
        ("A", "B"),
        ("a", "B"),
        ("ab",),
        ("a", "b", "c"),
        ("a_b_c",),
        ("a_b", "c"),
    ]
    long_args = [("x" * 200 + f"{i:03}",) for i in range(40)]
    long_lists = [("x" * 150, f"tail{i}") for i in range(40)] + [("p", "y" * 140 + str(i)) for i in range(40)]
    plain_but_long = [("q" * 30, "q" * 30, "q" * 30, "q" * 30, f"{i}") for i in range(20)]
    return lists | set(adversarial) | set(long_args) | set(long_lists) | set(plain_but_long)


@pytest.mark.parametrize("job", JOB_NAMES)
def test_distinct_argument_lists_get_distinct_valid_names(job: str) -> None:
    lists = generated_lists(seed=sum(map(ord, job)), count=4000)
    assert len(lists) > 3000
    names: dict[str, tuple[str, ...]] = {}
    for args in lists:
        name = job_name(job, args, include_args=True)
        assert_valid(name)
        assert name not in names, f"{args!r} and {names[name]!r} both named {name!r}"
        names[name] = args


def test_names_do_not_depend_on_anything_but_the_arguments() -> None:
    args = ("--since", "s3://b/k", "")
    assert job_name("observes-etl", args, include_args=True) == job_name("observes-etl", args, include_args=True)
