# compute-on-aws job library: pure Nix (builtins only, no nixpkgs).
#
# Turns a folder of job declarations (jobs/<name>/default.nix) into a validated manifest. Building entrypoints and images
# needs nixpkgs and lives in ../pkgs; everything here evaluates offline in milliseconds.
let
  declaration = import ./declaration.nix;
in
{
  inherit (declaration) attributes defaultRetryRules;

  # discoverJobs :: path -> { <name> = path; }
  discoverJobs = import ./discoverJobs.nix;

  # evalJobs :: { jobsDir, pkgs ? null, extraArgs ? { }, only ? null }
  #   -> { jobs = { <name> = declaration; }; errors = { <name> = [ string ]; }; }
  # only: null for every job, or a list of job names: those and the jobs they run after; no other job file is imported.
  evalJobs = import ./evalJobs.nix;

  # mkManifest :: { evaluated, entrypoints ? { }, images ? { }, hostSystem ? null } -> JSON-able manifest (./manifest.nix)
  mkManifest = import ./manifest.nix;

  # requireNix :: nixpkgs source -> value -> value: the value, or one line when this Nix is older than that nixpkgs
  # accepts (read from its lib/minfeatures.nix without importing it). The flake's outputs but `lib` go through it.
  requireNix = import ./requireNix.nix;
}
