# TEST SCAFFOLDING, NOT NIXPKGS: see flake.nix. The pin's default.nix (NixOS/nixpkgs
# 1cabc318c11299f07ca53e3cb719854682fe6eb3), which every `import nixpkgs { ... }` and the flake's legacyPackages go
# through: with a feature of lib/minfeatures.nix missing, evaluation aborts (`abort`, which tryEval cannot catch) with
# a message naming the missing features and the Nix evaluating; otherwise the package set (pkgs.nix here, the pin's
# pkgs/top-level/impure.nix). The message's first line is the pin's, so that what reads it reads the same text.
let
  missing = (import ./lib/minfeatures.nix).missing;
in
if missing != [ ] then
  abort ''

    This version of Nixpkgs requires an implementation of Nix with the following features:
    ${builtins.concatStringsSep "\n" (map (feature: "- ${feature.description}") missing)}

    You are evaluating with Nix ${builtins.nixVersion or "(too old to know)"}: upgrade it (nixos-rebuild on NixOS,
    the installer again elsewhere) to evaluate this revision. (The stand-in's words; the pin says more.)
  ''
else
  import ./pkgs.nix
