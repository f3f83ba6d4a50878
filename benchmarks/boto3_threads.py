"""The strongest way a user would queue many jobs with boto3 alone: list the queue's active jobs once, then SubmitJob
the names not found from a thread pool (one client, shared: boto3 clients are thread-safe).

    python boto3_threads.py ENDPOINT QUEUE DEFINITION THREADS NAMES_FILE

Prints how many jobs it submitted. Run by queue_1000.py in a process of its own, so that its CPU and memory are its
own.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


def main() -> None:
    endpoint, queue, definition, threads, names_file = sys.argv[1:6]
    names = Path(names_file).read_text().split()
    batch = boto3.client(
        "batch",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=int(threads), retries={"mode": "standard", "max_attempts": 10}),
    )
    pages = batch.get_paginator("list_jobs")
    active = {
        job["jobName"]
        for status in ACTIVE
        for page in pages.paginate(jobQueue=queue, jobStatus=status)
        for job in page["jobSummaryList"]
    }

    def submit(name: str) -> str:
        return str(batch.submit_job(jobName=name, jobQueue=queue, jobDefinition=definition)["jobId"])

    with ThreadPoolExecutor(int(threads)) as pool:
        submitted = list(pool.map(submit, [n for n in names if n not in active]))
    print(len(submitted))


if __name__ == "__main__":
    main()
