"""compute-on-aws: declare batch jobs in Nix, queue them on AWS Batch with one command."""

__version__ = "0.1.0"
