# The compute-on-aws command-line helper (the Python package in compute_on_aws/), built and installed as a wheel.
{ pkgs, src }:
let
  py = pkgs.python3.pkgs;
in
py.buildPythonApplication {
  pname = "compute-on-aws";
  version = "0.1.0";
  pyproject = true;
  inherit src;
  build-system = [ py.setuptools ];
  dependencies = [
    py.boto3
    py.cronsim
    py.jinja2
    py.pyyaml
    py.rich
    py.typer
    py.tzdata
  ];
  # A wheel that lacks a subpackage fails here, not in the user's first `nix run`.
  pythonImportsCheck = [
    "compute_on_aws.cli"
    "compute_on_aws.backends.local.worker"
  ];
  # skopeo pushes Nix-built images; nix builds the entrypoint of the job being queued (it is the caller's nix).
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    "${pkgs.skopeo}/bin"
  ];
  meta = {
    description = "Declare batch jobs in Nix, queue them on AWS Batch (or run them locally) with one command";
    mainProgram = "compute-on-aws";
  };
}
