"""The local backend: jobs queued on this machine, run by workers with AWS Batch's semantics."""
