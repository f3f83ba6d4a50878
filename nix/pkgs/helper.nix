# The compute-on-aws command-line helper (the Python package in compute_on_aws/).
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
    py.jinja2
    py.pyyaml
    py.typer
  ];
  # skopeo pushes Nix-built images; nix builds the entrypoint of the job being queued (it is the caller's nix).
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    "${pkgs.skopeo}/bin"
  ];
  meta.mainProgram = "compute-on-aws";
}
