# A job's entrypoint: its package behind a small wrapper, or a shell script (strict mode, shellcheck) with its
# runtime inputs on PATH.
{ pkgs }:
{
  # The job's name; the script's name too (bin/<name>).
  name,
  # The job's entrypoint attribute: a derivation, or { text; runtimeInputs ? [ ]; }.
  entrypoint,
}:
let
  indexOfRerun = ''
    if [ -n "''${COMPUTE_ON_AWS_ARRAY_INDICES:-}" ]; then
      __at=''${AWS_BATCH_JOB_ARRAY_INDEX:-0}
      IFS=, read -ra __ranges <<< "$COMPUTE_ON_AWS_ARRAY_INDICES"
      for __range in "''${__ranges[@]}"; do
        __low=''${__range%-*}
        __high=''${__range#*-}
        if (( __at <= __high - __low )); then
          export AWS_BATCH_JOB_ARRAY_INDEX=$(( __low + __at ))
          break
        fi
        __at=$(( __at - (__high - __low + 1) ))
      done
      unset __at __ranges __range __low __high
    fi
  '';
  # The package's program, as the manifest names it (manifest.nix's programOf, lib.getExe).
  programOf =
    drv: "${drv}/bin/${drv.meta.mainProgram or drv.pname or (builtins.parseDrvName drv.name).name}";
in
# A re-run of some children of an array (compute-on-aws rerun): its child i stands for the i-th index of
# COMPUTE_ON_AWS_ARRAY_INDICES (ranges, "3,7-9,15"); the program sees the index that child had.
if entrypoint.type or null == "derivation" then
  # The package's program, exec'd (it keeps the process and its signals) after the index is set back; the package's
  # bin/ is on PATH, as it was when its bin/ was the image's.
  pkgs.writeShellApplication {
    inherit name;
    text = indexOfRerun + ''exec ${programOf entrypoint} "$@"'';
    runtimeInputs = [ entrypoint ];
    passthru.package = entrypoint;
  }
else
  pkgs.writeShellApplication {
    inherit name;
    text = indexOfRerun + entrypoint.text;
    runtimeInputs = entrypoint.runtimeInputs or [ ];
  }
