# requireNix :: nixpkgs source -> value -> value
#
# `value` as it is when the evaluating Nix is one the nixpkgs source accepts, else one line saying which Nix runs,
# which the source needs and how to get one. nixpkgs checks this itself when imported (lib/minfeatures.nix since
# August 2025, lib/minver.nix before), with an `abort` that `nix run` prints as a many-line trace under its own
# frames; reading the same files first, without importing nixpkgs, gives the user that one line instead.
nixpkgs:
let
  file = name: "${nixpkgs}/lib/${name}";
  found = builtins.nixVersion or "too old to report its version";
  needed = if builtins.pathExists (file "minver.nix") then import (file "minver.nix") else null;
  missing =
    if builtins.pathExists (file "minfeatures.nix") then
      map (feature: feature.description) (import (file "minfeatures.nix")).missing
    else if needed != null && (!(builtins ? nixVersion) || builtins.compareVersions needed found == 1) then
      [ "Nix ${needed} or newer" ]
    else
      [ ];
in
value:
if missing == [ ] then
  value
else
  throw (
    "compute-on-aws: this Nix (${found}) is older than the pinned nixpkgs accepts "
    + "(it needs ${builtins.concatStringsSep "; " missing}): install Nix ${
      if needed == null then "" else "${needed} or "
    }newer (Debian 13's nix-bin, the installer at https://nixos.org/download, Determinate Nix or Lix), "
    + "or use the helper without the flake (pip install it; it evaluates jobs/ with nix-instantiate, Nix 2.8 or newer)"
  )
