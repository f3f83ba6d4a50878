"""What a project declares, read and checked: the job manifest Nix evaluated, compute-on-aws.yaml and the
infrastructure it declares, and schedules as times. The ground every other layer stands on: no I/O but reading files."""
