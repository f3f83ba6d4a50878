"""The local backend: jobs queued on this machine, run by workers with AWS Batch's semantics."""

from compute_on_aws.backends.local.control import LocalBackend

__all__ = ["LocalBackend"]
