# Flake outputs for a folder of jobs: the manifest, per-job entrypoints and images, the queue-job app and checks.
# Nothing here is built until asked for: the manifest names each job's derivations without depending on them, so
# queueing one job builds that job only, for the one system it runs on.
{
  pkgs,
  helper,
}:
{
  # Folder with one sub-folder per job (jobs/<name>/default.nix).
  jobsDir,
  # More arguments offered to job files that are functions.
  extraArgs ? { },
  # nixpkgs for each Linux system images may be built for (x86_64-linux, aarch64-linux: the config's image.system
  # picks one). By default `pkgs` itself for its own system, and nixpkgs imported again from `pkgs.path` for the other.
  imagePkgs ? { },
}:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    attrValues
    filter
    listToAttrs
    mapAttrs
    toJSON
    ;
  jobLib = import ../lib;
  filterAttrs =
    pred: set:
    listToAttrs (
      map (name: {
        inherit name;
        value = set.${name};
      }) (filter (name: pred name set.${name}) (attrNames set))
    );
  prefixed =
    suffix: set:
    listToAttrs (
      map (name: {
        name = "${name}-${suffix}";
        value = set.${name};
      }) (attrNames set)
    );

  hostSystem = pkgs.stdenv.hostPlatform.system;
  imageSystems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  pkgsFor =
    system:
    if system == hostSystem then
      pkgs
    else
      imagePkgs.${system} or (import pkgs.path {
        inherit system;
        inherit (pkgs) overlays;
      });

  # Job files are evaluated once per system, so that an entrypoint's `pkgs` is that system's.
  evaluatedFor =
    system:
    jobLib.evalJobs {
      inherit jobsDir extraArgs;
      pkgs = pkgsFor system;
    };
  evaluated = evaluatedFor hostSystem;
  errors = concatLists (attrValues evaluated.errors);

  entrypointsFor =
    system:
    let
      mkEntrypoint = import ./mkEntrypoint.nix { pkgs = pkgsFor system; };
    in
    mapAttrs (name: job: mkEntrypoint { inherit name; inherit (job) entrypoint; }) (
      filterAttrs (_: job: job.entrypoint != null) (evaluatedFor system).jobs
    );
  imagesFor =
    system:
    let
      mkImage = import ./mkImage.nix {
        pkgs = pkgsFor system;
        hostPkgs = pkgs;
      };
    in
    mapAttrs (name: entrypoint: mkImage { inherit name entrypoint; }) (
      filterAttrs (name: _: evaluated.jobs.${name}.image == null) (entrypointsFor system)
    );
  perSystem = systems: f: listToAttrs (map (system: { name = system; value = f system; }) systems);

  entrypoints = entrypointsFor hostSystem;
  # This machine's images when it is a Linux system images are built for, else the first (x86_64-linux).
  defaultImageSystem = if builtins.elem hostSystem imageSystems then hostSystem else builtins.head imageSystems;
  images = imagesFor defaultImageSystem;

  manifestData = jobLib.mkManifest {
    inherit evaluated hostSystem;
    entrypoints = perSystem ([ hostSystem ] ++ filter (s: s != hostSystem) imageSystems) entrypointsFor;
    images = perSystem imageSystems imagesFor;
  };
  manifest = pkgs.writeText "compute-on-aws-manifest.json" (toJSON manifestData);

  # The helper with this folder's manifest: `compute-on-aws jobs`, `render`, `queue`...
  cli = pkgs.writeShellApplication {
    name = "compute-on-aws";
    text = ''exec ${helper}/bin/compute-on-aws --manifest ${manifest} "$@"'';
    meta.description = "compute-on-aws with this flake's jobs: jobs, queue, status, wait, logs, cancel, ...";
  };
  queueJob = pkgs.writeShellApplication {
    name = "queue-job";
    text = ''exec ${helper}/bin/compute-on-aws --manifest ${manifest} queue "$@"'';
    meta.description = "Queues one of this flake's jobs: queue-job NAME [ARGS...] [--backend aws] [--wait]";
  };
  app = drv: {
    type = "app";
    program = "${drv}/bin/${drv.meta.mainProgram}";
    meta.description = drv.meta.description;
  };

  validJobs = pkgs.runCommand "compute-on-aws-jobs-valid" { } (
    if errors == [ ] then
      "touch $out"
    else
      ''
        cat >&2 <<'ERRORS'
        ${concatStringsSep "\n" errors}
        ERRORS
        exit 1
      ''
  );

  # shellcheck of each script entrypoint, as a check of its own: nixpkgs' writeShellApplication has run it in the
  # build, in passthru.tests or not at all depending on the version, so it is not left to the pinned nixpkgs.
  shellchecks = mapAttrs (
    name: entrypoint:
    pkgs.runCommand "${name}-shellcheck" { nativeBuildInputs = [ pkgs.shellcheck ]; } ''
      shellcheck ${entrypoint}/bin/${name}
      touch $out
    ''
  ) (filterAttrs (name: _: evaluated.jobs.${name}.entrypoint.type or null != "derivation") entrypoints);
in
{
  inherit
    manifest
    manifestData
    entrypoints
    images
    errors
    ;
  packages = prefixed "entrypoint" entrypoints // prefixed "image" images // {
    compute-on-aws = cli;
    queue-job = queueJob;
    default = cli;
  };
  apps = {
    queue-job = app queueJob;
    compute-on-aws = app cli;
    default = app cli;
  };
  checks = prefixed "entrypoint" entrypoints // prefixed "shellcheck" shellchecks // {
    jobs-valid = validJobs;
  };
}
