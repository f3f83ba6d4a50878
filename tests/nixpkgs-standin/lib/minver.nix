# TEST SCAFFOLDING, NOT NIXPKGS: lib/minver.nix of the pin (NixOS/nixpkgs 1cabc318c11299f07ca53e3cb719854682fe6eb3):
# the oldest Nix it names, as a version string.
"2.18"
