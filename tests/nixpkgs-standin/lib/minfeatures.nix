# TEST SCAFFOLDING, NOT NIXPKGS: lib/minfeatures.nix of the pin (NixOS/nixpkgs 1cabc318c11299f07ca53e3cb719854682fe6eb3,
# since August 2025): what the evaluating Nix must offer, as { all; supported; missing; } lists of
# { description; condition; }. The same two conditions as the pin's, in the same order: a `nixVersion` builtin, and
# one reporting 2.18 or later (Lix reports 2.18 whatever its release).
let
  features = [
    {
      description = "the `nixVersion` builtin";
      condition = builtins ? nixVersion;
    }
    {
      description = "`builtins.nixVersion` reports at least 2.18";
      condition = builtins ? nixVersion && builtins.compareVersions "2.18" builtins.nixVersion != 1;
    }
  ];
  split = builtins.partition (feature: feature.condition) features;
in
{
  all = features;
  supported = split.right;
  missing = split.wrong;
}
