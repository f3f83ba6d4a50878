"""The offline capacity check: whether a job can run on a compute environment's instanceTypes, answered from the
shipped table of EC2 instance types, never refusing what AWS would run and never drifting from its source."""

from __future__ import annotations

import json

import pytest
from conftest import Moto
from instance_types_source import TABLE, derive, described, render

from compute_on_aws.planning.instances import BUNDLES, Capacity, can_run, capacities, largest

GIB = 1024


def test_a_family_covers_every_size_of_it() -> None:
    # m6i: from m6i.large (2 vCPUs, 8 GiB) to m6i.32xlarge and m6i.metal (128 vCPUs, 512 GiB).
    assert can_run(["m6i"], vcpus=2, memory=4 * GIB, gpus=0)
    assert can_run(["m6i"], vcpus=64, memory=256 * GIB, gpus=0)
    assert can_run(["m6i"], vcpus=128, memory=512 * GIB, gpus=0)
    assert not can_run(["m6i"], vcpus=200, memory=4 * GIB, gpus=0)
    assert not can_run(["m6i"], vcpus=2, memory=512 * GIB + 1, gpus=0)
    assert largest(["m6i"]) == Capacity(vcpus=128, memory=512 * GIB, gpus=0, architectures=("x86_64",))


def test_an_exact_type_is_limited_to_itself() -> None:
    # c6i.2xlarge: 8 vCPUs, 16 GiB; its family goes far beyond.
    assert capacities(["c6i.2xlarge"]) == [Capacity(vcpus=8, memory=16 * GIB, gpus=0, architectures=("x86_64",))]
    assert can_run(["c6i.2xlarge"], vcpus=8, memory=16 * GIB, gpus=0)
    assert not can_run(["c6i.2xlarge"], vcpus=9, memory=1 * GIB, gpus=0)
    assert not can_run(["c6i.2xlarge"], vcpus=1, memory=16 * GIB + 1, gpus=0)
    assert can_run(["c6i"], vcpus=9, memory=16 * GIB + 1, gpus=0)


def test_one_type_must_meet_every_need_at_once() -> None:
    # c6i.4xlarge has the vCPUs (16, with 32 GiB), r6i.2xlarge the memory (64 GiB, with 8 vCPUs): neither has both.
    types = ["c6i.4xlarge", "r6i.2xlarge"]
    assert can_run(types, vcpus=16, memory=32 * GIB, gpus=0)
    assert can_run(types, vcpus=8, memory=64 * GIB, gpus=0)
    assert not can_run(types, vcpus=16, memory=64 * GIB, gpus=0)
    # largest() reports each maximum on its own: the bound of a message, not an instance that exists.
    assert largest(types) == Capacity(vcpus=16, memory=64 * GIB, gpus=0, architectures=("x86_64",))
    # The same with GPUs: g5.xlarge has a GPU and 4 vCPUs, m6i the vCPUs and no GPU.
    assert not can_run(["m6i", "g5.xlarge"], vcpus=64, memory=8 * GIB, gpus=1)
    assert can_run(["m6i", "g5.xlarge"], vcpus=4, memory=8 * GIB, gpus=1)


def test_gpus_come_only_from_gpu_instances() -> None:
    assert not can_run(["m6i"], vcpus=1, memory=GIB, gpus=1)
    assert can_run(["g5"], vcpus=1, memory=GIB, gpus=1)
    assert can_run(["g5"], vcpus=192, memory=768 * GIB, gpus=8)  # g5.48xlarge
    assert not can_run(["g5"], vcpus=1, memory=GIB, gpus=9)
    assert can_run(["p3dn.24xlarge"], vcpus=96, memory=768 * GIB, gpus=8)
    assert not can_run(["p3dn.24xlarge"], vcpus=1, memory=GIB, gpus=9)
    # A fractional GPU (g6f) is one device to the job: asking for it is not refused.
    assert can_run(["g6f.large"], vcpus=1, memory=GIB, gpus=1)


def test_architecture_follows_the_family() -> None:
    assert can_run(["m6g"], vcpus=1, memory=GIB, gpus=0, architecture="arm64")
    assert not can_run(["m6g"], vcpus=1, memory=GIB, gpus=0, architecture="x86_64")
    assert not can_run(["m6i"], vcpus=1, memory=GIB, gpus=0, architecture="arm64")
    assert can_run(["m6i"], vcpus=1, memory=GIB, gpus=0, architecture="x86_64")
    # As ECS's runtimePlatform spells it, and no architecture asked: either will do.
    assert can_run(["m6g"], vcpus=1, memory=GIB, gpus=0, architecture="ARM64")
    assert can_run(["m6g"], vcpus=1, memory=GIB, gpus=0)


def test_optimal_is_both_its_old_and_its_new_families() -> None:
    # Its old families (c4, m4, r4, c5, m5, r5) and default_x86_64 (m6i, c6i, r6i, c7i): whichever an environment got.
    assert can_run(["optimal"], vcpus=192, memory=GIB, gpus=0)  # c7i.48xlarge
    assert can_run(["optimal"], vcpus=1, memory=1024 * GIB, gpus=0)  # r6i.32xlarge
    assert not can_run(["optimal"], vcpus=193, memory=GIB, gpus=0)
    assert not can_run(["optimal"], vcpus=1, memory=1024 * GIB + 1, gpus=0)
    assert not can_run(["optimal"], vcpus=1, memory=GIB, gpus=1)
    assert not can_run(["optimal"], vcpus=1, memory=GIB, gpus=0, architecture="arm64")
    optimal = capacities(["optimal"])
    new = capacities(["default_x86_64"])
    assert optimal is not None
    assert new is not None
    assert set(new) < set(optimal)
    old = capacities(["c4", "m4", "r4", "c5", "m5", "r5"])
    assert old is not None
    assert set(old) <= set(optimal)
    assert capacities(["optimal", "m4"]) == optimal


def test_default_bundles_keep_to_their_architecture() -> None:
    assert can_run(["default_arm64"], vcpus=64, memory=GIB, gpus=0, architecture="arm64")  # m6g/c6g/r6g/c7g.16xlarge
    assert not can_run(["default_arm64"], vcpus=65, memory=GIB, gpus=0)
    assert not can_run(["default_arm64"], vcpus=1, memory=GIB, gpus=0, architecture="x86_64")
    assert not can_run(["default_x86_64"], vcpus=1, memory=GIB, gpus=0, architecture="arm64")
    assert can_run(["default_x86_64"], vcpus=192, memory=GIB, gpus=0, architecture="x86_64")


@pytest.mark.parametrize("types", [["m99z"], ["m6i", "m99z"], ["m6i.99xlarge"], ["optimal", "zz1.large"], []])
def test_what_the_table_does_not_know_is_never_refused(types: list[str]) -> None:
    assert capacities(types) is None
    assert largest(types) is None
    assert can_run(types, vcpus=100_000, memory=10**9, gpus=64, architecture="arm64")


def test_every_bundle_family_is_in_the_table() -> None:
    # Otherwise optimal and default_* would silently check nothing.
    for name, families in BUNDLES.items():
        for family in families:
            assert capacities([family]), (name, family)


def test_the_shipped_table_agrees_with_what_moto_describes(moto: Moto) -> None:
    """An instance type's capacity never changes, so every type the table shares with the installed moto must read
    the same; a newer moto may know more types (rewrite the table with `python tests/instance_types_source.py`), and
    those the table lacks are never refused."""
    import botocore.session

    gpu = botocore.session.get_session().get_service_model("ec2").shape_for("GpuDeviceInfo")
    if "LogicalGpuCount" not in gpu.members:
        # moto writes its answers through the installed botocore's model: an older one drops fractional GPUs.
        pytest.skip("this botocore's EC2 model has no LogicalGpuCount: moto's answer leaves fractional GPUs out")
    shipped = json.loads(TABLE.read_text(encoding="utf-8"))
    derived = derive(described(moto.client("ec2")))
    shared = set(shipped) & set(derived)
    assert len(shared) >= 0.95 * len(shipped)
    assert {name: shipped[name] for name in shared} == {name: derived[name] for name in shared}
    assert TABLE.read_text(encoding="utf-8") == render(shipped)
