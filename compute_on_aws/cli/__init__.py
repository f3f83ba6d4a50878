"""The `compute-on-aws` command line: parses arguments, calls the modules that do the work, prints."""

from compute_on_aws.cli import infra, queueing, scheduling, watching  # noqa: F401 - each module registers its commands
from compute_on_aws.cli.app import app, main, run

__all__ = ["app", "main", "run"]
