"""Where compute_on_aws/infra/instance_types.json comes from: EC2's DescribeInstanceTypes as moto ships it, reduced to
what the capacity check reads. `python tests/instance_types_source.py` rewrites the table from the installed moto;
tests/test_instances.py fails while the two differ, so the shipped table cannot drift from its source unseen."""

from __future__ import annotations

import gzip
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parent.parent / "compute_on_aws" / "infra" / "instance_types.json"


def described() -> dict[str, Any]:
    """moto's copy of DescribeInstanceTypes, by instance type, found through moto's package wherever it is."""
    # files("moto"), not files("moto.ec2"): the data only, without importing moto's EC2 models.
    data = (files("moto") / "ec2" / "resources" / "instance_types.json.gz").read_bytes()
    result: dict[str, Any] = json.loads(gzip.decompress(data))
    return result


def gpus(entry: dict[str, Any]) -> int:
    """The GPUs the instance shows its containers. A fractional GPU (g6f: Count 0, LogicalGpuCount 1) is one device:
    the larger of the two counts, so that a job asking for it is never called impossible."""
    return sum(
        max(gpu.get("Count", 0), gpu.get("LogicalGpuCount", 0)) for gpu in entry.get("GpuInfo", {}).get("Gpus", [])
    )


def derive(entries: dict[str, Any]) -> dict[str, list[Any]]:
    """type -> [vCPUs, memory MiB (nominal), GPUs, architectures]: the capacity check needs nothing else."""
    return {
        name: [
            entry["VCpuInfo"]["DefaultVCpus"],
            entry["MemoryInfo"]["SizeInMiB"],
            gpus(entry),
            sorted(entry["ProcessorInfo"]["SupportedArchitectures"]),
        ]
        for name, entry in sorted(entries.items())
    }


def render(table: dict[str, list[Any]]) -> str:
    """The table as shipped: JSON, one type a line in sorted order, so that a refresh diffs line by line."""
    lines = [f"{json.dumps(name)}:{json.dumps(row, separators=(',', ':'))}" for name, row in sorted(table.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    TABLE.write_text(render(derive(described())), encoding="utf-8")
    print(f"{TABLE}: {TABLE.stat().st_size} bytes")
