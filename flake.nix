{
  description = "compute-on-aws: declare batch jobs in Nix, queue them on AWS Batch (or run them locally) with one command";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      # The helper runs anywhere; images are always Linux images, built for the config's image.system (a Mac needs a
      # Linux builder to push them, and runs jobs locally with entrypoints built for itself).
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f system;
          }) systems
        );

      # The helper's source: just what its build reads, so editing tests or docs does not rebuild it.
      src = builtins.path {
        name = "compute-on-aws-src";
        path = ./.;
        filter =
          path: type:
          let
            rel = builtins.substring (builtins.stringLength (toString ./.) + 1) (-1) (toString path);
            top = builtins.head (builtins.split "/" rel);
          in
          builtins.elem top [
            "pyproject.toml"
            "README.md"
            "compute_on_aws"
            "nix"
          ];
      };

      # mkLib :: pkgs -> { helper, mkEntrypoint, mkImage, mkJobs }
      mkLib = pkgs: import ./nix/pkgs { inherit pkgs src; };
      # Under a Nix older than the pinned nixpkgs accepts, every output but `lib` is one line saying so (instead of
      # nixpkgs' own abort, many lines deep): the pin's own minimum, read without importing it.
      requireNix = import ./nix/lib/requireNix.nix nixpkgs;
      ownJobs =
        system:
        requireNix (
          (mkLib nixpkgs.legacyPackages.${system}).mkJobs {
            jobsDir = ./jobs;
            imagePkgs = { inherit (nixpkgs.legacyPackages) x86_64-linux aarch64-linux; };
            # The apps then ask this flake for just the jobs they queue (legacyPackages below): one broken job file
            # does not stop the others from being queued.
            flake = self;
          }
        );
    in
    {
      # For other flakes: `compute-on-aws.lib.mkJobs { pkgs; jobsDir = ./jobs; flake = self; }` gives
      # { packages, apps, checks, legacyPackages, manifest, ... } for their own jobs folder; the pure job library is
      # here too.
      lib = import ./nix/lib // {
        inherit mkLib;
        mkJobs = { pkgs, ... }@args: requireNix ((mkLib pkgs).mkJobs (removeAttrs args [ "pkgs" ]));
      };

      packages = forAllSystems (system: (ownJobs system).packages);
      apps = forAllSystems (system: (ownJobs system).apps);
      checks = forAllSystems (system: (ownJobs system).checks);
      # computeOnAws.manifestFor, which the apps evaluate at run time (see mkJobs' `flake`).
      legacyPackages = forAllSystems (system: (ownJobs system).legacyPackages);
    };
}
