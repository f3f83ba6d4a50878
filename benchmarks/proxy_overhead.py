"""Benchmark 0: what the counting proxy (tests/faultproxy.py) adds to one call, so that the sequential baselines
here are not slowed by the harness. 200 sequential DescribeJobQueues, straight to moto and through the proxy, in
alternation: the median of each. Before the proxy set TCP_NODELAY, every answer through it waited ~40 ms (Nagle and
delayed ACK on loopback); the goal is under 2x a direct call.

    python proxy_overhead.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import boto3
from harness import CREDENTIALS, QUEUE, REGION, fault_proxy, moto

CALLS = 200


def main() -> dict[str, Any]:
    with moto() as url, fault_proxy(url) as proxy:
        clients = {
            way: boto3.client("batch", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)
            for way, endpoint in (("direct", url), ("proxy", proxy.url))
        }
        times: dict[str, list[float]] = {"direct": [], "proxy": []}
        for client in clients.values():
            client.describe_job_queues(jobQueues=[QUEUE])  # connections open, models loaded
        for _ in range(CALLS):
            for way, client in clients.items():
                start = time.perf_counter()
                client.describe_job_queues(jobQueues=[QUEUE])
                times[way].append(time.perf_counter() - start)
    direct, through = statistics.median(times["direct"]), statistics.median(times["proxy"])
    results = {"calls": CALLS, "direct_ms": direct * 1000, "proxy_ms": through * 1000, "ratio": through / direct}
    print(
        f"one call: {results['direct_ms']:.1f} ms straight to moto, {results['proxy_ms']:.1f} ms through the proxy "
        f"({results['ratio']:.2f}x)",
        file=sys.stderr,
    )
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
