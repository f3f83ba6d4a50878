# compute-on-aws build layer: everything that needs nixpkgs (entrypoints, images, the helper and the apps).
# The job library in ../lib stays pure; this layer only turns its result into derivations.
{
  pkgs,
  # This project's source, for building the helper.
  src,
}:
let
  helper = import ./helper.nix { inherit pkgs src; };
in
{
  inherit helper;
  mkEntrypoint = import ./mkEntrypoint.nix { inherit pkgs; };
  mkImage = import ./mkImage.nix { inherit pkgs; };
  mkJobs = import ./mkJobs.nix { inherit pkgs helper; };
}
