# A job's entrypoint: its package as given, or a shell script (strict mode, shellcheck) with its runtime inputs on PATH.
{ pkgs }:
{
  # The job's name; the script's name too (bin/<name>).
  name,
  # The job's entrypoint attribute: a derivation, or { text; runtimeInputs ? [ ]; }.
  entrypoint,
}:
if entrypoint.type or null == "derivation" then
  entrypoint
else
  pkgs.writeShellApplication {
    inherit name;
    inherit (entrypoint) text;
    runtimeInputs = entrypoint.runtimeInputs or [ ];
  }
