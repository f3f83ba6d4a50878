# TEST SCAFFOLDING, NOT NIXPKGS. An offline stand-in for the few nixpkgs functions compute-on-aws's flake uses, with
# nixpkgs' own argument names, so tests can build entrypoints and run `nix run .#queue-job` on machines that cannot
# fetch nixpkgs:  nix run --override-input nixpkgs path:$PWD/tests/nixpkgs-standin .#queue-job -- hello
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
          ]
      );
    };
}
