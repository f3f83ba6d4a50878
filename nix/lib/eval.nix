# Entry point for the helper's evaluation without nixpkgs:
#   nix-instantiate --eval --strict --json eval.nix --argstr jobsDir /abs/path/to/jobs
{ jobsDir }:
let
  lib = import ./.;
in
lib.mkManifest { evaluated = lib.evalJobs { jobsDir = /. + jobsDir; }; }
