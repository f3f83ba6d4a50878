# Entry point for the helper's evaluation without nixpkgs:
#   nix-instantiate --eval --strict --json eval.nix --argstr jobsDir /abs/path/to/jobs [--argstr only '["job", ...]']
# With only (a JSON list of job names), just those jobs and the jobs they run after are evaluated (evalJobs' `only`).
# With --argstr probe <job> (and --argstr attribute <name>), it forces just that job file (or that attribute) without
# catching anything, so that Nix itself reports what a failing declaration throws, and where.
{
  jobsDir,
  probe ? null,
  attribute ? null,
  # A JSON list, as --argstr passes only strings.
  only ? null,
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
  lib.mkManifest {
    evaluated = lib.evalJobs {
      jobsDir = dir;
      only = if only == null then null else builtins.fromJSON only;
    };
  }
else
  builtins.deepSeq (if attribute == null then builtins.isAttrs decl else decl.${attribute}) null
