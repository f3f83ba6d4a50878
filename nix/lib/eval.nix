# Entry point for the helper's evaluation without nixpkgs:
#   nix-instantiate --eval --strict --json eval.nix --argstr jobsDir /abs/path/to/jobs
# With --argstr probe <job> (and --argstr attribute <name>), it forces just that job file (or that attribute) without
# catching anything, so that Nix itself reports what a failing declaration throws, and where.
{
  jobsDir,
  probe ? null,
  attribute ? null,
}:
let
  lib = import ./.;
  dir = /. + jobsDir;
  decl = import ./loadJob.nix {
    name = probe;
    file = dir + "/${probe}/default.nix";
  };
in
if probe == null then
  lib.mkManifest { evaluated = lib.evalJobs { jobsDir = dir; }; }
else
  builtins.deepSeq (if attribute == null then builtins.isAttrs decl else decl.${attribute}) null
