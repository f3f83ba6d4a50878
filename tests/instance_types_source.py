"""Where compute_on_aws/planning/instance_types.json comes from: EC2's DescribeInstanceTypes, as moto's server answers
it (its copy of AWS's), reduced to what the capacity check reads. `python tests/instance_types_source.py` rewrites the
table from the installed moto; tests/test_instances.py fails while the two differ, so the shipped table cannot drift
from its source unseen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parent.parent / "compute_on_aws" / "planning" / "instance_types.json"


def described(ec2: Any) -> dict[str, Any]:
    """Every instance type DescribeInstanceTypes describes (all its pages), by name."""
    pages = ec2.get_paginator("describe_instance_types").paginate()
    return {entry["InstanceType"]: entry for page in pages for entry in page["InstanceTypes"]}


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
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "ec2",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        TABLE.write_text(render(derive(described(client))), encoding="utf-8")
    finally:
        server.stop()
    print(f"{TABLE}: {TABLE.stat().st_size} bytes")
