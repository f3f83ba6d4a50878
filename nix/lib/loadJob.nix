# Loads one job file: its attribute set, or what its function returns for the arguments it names (like callPackage).
{
  # The job's name (its folder's).
  name,
  # Its default.nix.
  file,
  # nixpkgs; null loads without it (a job that uses pkgs outside its entrypoint then throws, saying so).
  pkgs ? null,
  # More arguments offered to job files that are functions.
  extraArgs ? { },
}:
let
  raw = import file;
  offered = {
    pkgs =
      if pkgs == null then
        throw "compute-on-aws: this evaluation has no nixpkgs (only entrypoints may refer to pkgs)"
      else
        pkgs;
    inherit name;
  }
  // extraArgs;
  wanted = builtins.functionArgs raw;
in
if builtins.isFunction raw then raw (if wanted == { } then offered else builtins.intersectAttrs wanted offered) else raw
