# TEST SCAFFOLDING, NOT NIXPKGS. An offline stand-in for the few nixpkgs functions compute-on-aws's flake uses, so tests
# can build entrypoints and images and run `nix run .#queue-job` on machines that cannot fetch nixpkgs. Each function
# names, in its header, the nixpkgs file and revision whose behaviour it copies, and what it leaves out.
#
# Tests pass a copy of this folder holding host.json (written by tests/conftest.py: the host's python3 and the
# site-packages holding the helper's dependencies):
#   nix build --override-input nixpkgs path:<copy> .#queue-job
# Its derivations are impure (they use the host's /bin/sh, python3 and tools); never use it outside tests.
{
  description = "TEST SCAFFOLDING: offline stand-in for the parts of nixpkgs compute-on-aws uses";
  outputs =
    { self }:
    {
      legacyPackages = builtins.listToAttrs (
        map
          (system: {
            name = system;
            value = import ./. { inherit system; };
          })
          [
            "x86_64-linux"
            "aarch64-linux"
            "x86_64-darwin"
            "aarch64-darwin"
          ]
      );
    };
}
